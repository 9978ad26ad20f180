"""One Monte Carlo EM update of a latent-variable model.

E-step (both families): z_i ~ p(z | x_i) by the short-run inference chain, with x_i (plus
N(0, sigma_data^2) noise) held fixed, from fresh noise (``inference.start='cold'``) or from the
z_i that the last visit to example i left in the bank (``'warm'``, persistent).

M-step, one optimizer step on L(theta), the chains held constant:

- latent_ebm: L = mean_j f(x'_j, z'_j) - mean_i f(x_i, z_i), with (x', z') from the joint
  synthesis chain, so -grad L = E_{p(z|x)}[grad f] - E_{p(x,z)}[grad f] = grad log p(x);
- generator: L = -mean_i log p(x_i, z_i) (alternating back-propagation).
"""
from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from ebm_jax.families import latent_chains
from ebm_jax.models import latent_nets
from ebm_jax.runtime import parallel
from ebm_jax.training import train_step

Array = jax.Array


class LatentTrainState(flax.struct.PyTreeNode):
    """The learning state; ``bank`` holds one z per training example (warm start; rows past
    the data set pad it to a multiple of the device count), or is None (cold start)."""
    step: Array
    params: Any
    opt_state: Any
    bank: Array | None


def bank_rows(num_examples: int, num_devices: int) -> int:
    """Rows of the bank: the data set size rounded up so the bank splits across devices."""
    return -(-int(num_examples) // num_devices) * num_devices


def init_state(model: latent_nets.LatentModel, key: Array, tx: optax.GradientTransformation,
               inference_config, bank_size: int = 0) -> LatentTrainState:
    """Params from ``fold_in(key, 0)``; a warm-start bank of ``bank_size`` z_0 ~ N(0,
    init_std^2) from ``fold_in(key, 1)``."""
    params = model.init(jax.random.fold_in(key, 0))
    bank = None
    if inference_config.start == "warm":
        bank = latent_chains.init_latents(jax.random.fold_in(key, 1), bank_size, model.latent_dim,
                                   float(inference_config.init_std))
    elif inference_config.start != "cold":
        raise ValueError(f"inference.start={inference_config.start!r}: choose cold or warm")
    return LatentTrainState(jnp.zeros((), jnp.int32), params, tx.init(params), bank)


def state_shardings(mesh: Mesh, warm: bool) -> LatentTrainState:
    """Replicated model state; the bank split along the data axis, like the data."""
    rep = parallel.replicated(mesh)
    return LatentTrainState(rep, rep, rep, parallel.data_sharded(mesh) if warm else None)


def make_train_step(model: latent_nets.LatentModel, tx: optax.GradientTransformation, config,
                    mesh: Mesh | None = None):
    """Returns ``train_step(state, data_B..., index_B) -> (state, metrics)``, jit-compiled.

    ``index_B`` are the batch's example indices (rows of the bank). Update ``t`` uses
    ``k_t = train_step.step_key(config.seed, t)``: synthesis ``fold_in(k_t, 0)``, data noise
    ``fold_in(k_t, 1)``, cold z_0 ``fold_in(k_t, 2)``, inference noise ``fold_in(k_t, 3)``.
    """
    i_cfg, s_cfg = config.inference, config.sampling
    warm = i_cfg.start == "warm"
    i_steps, i_kwargs = int(i_cfg.num_steps), latent_chains.inference_kwargs(i_cfg)
    s_steps, s_kwargs = int(s_cfg.num_steps), latent_chains.synthesis_kwargs(config)
    data_noise_std, seed = float(config.training.data_noise_std), int(config.seed)
    constrain = None
    if mesh is not None:
        sharding = parallel.data_sharded(mesh)
        constrain = lambda a: jax.lax.with_sharding_constraint(a, sharding)

    def update(state: LatentTrainState, data: Array, index: Array):
        key = train_step.step_key(seed, state.step)
        frozen = jax.lax.stop_gradient(state.params)
        joint = lambda a, b: model.energy(frozen, a, b)
        x = data + data_noise_std * jax.random.normal(jax.random.fold_in(key, 1), data.shape,
                                                      data.dtype)
        if warm:
            z0 = state.bank[index]
        else:
            z0 = latent_chains.init_latents(jax.random.fold_in(key, 2), data.shape[0],
                                     model.latent_dim, float(i_cfg.init_std))
        post = latent_chains.infer(joint, x, z0, jax.random.fold_in(key, 3), i_steps,
                            constrain=constrain, **i_kwargs)
        z = jax.lax.stop_gradient(post.x)
        metrics = dict(grad_norm_z=post.grad_norm, z_mean=jnp.mean(z), z_std=jnp.std(z))

        if model.family == "latent_ebm":
            x_neg, z_neg, chain = latent_chains.synthesize(
                joint, jax.random.fold_in(key, 0), data.shape[0], model.data_shape,
                model.latent_dim, s_steps, constrain=constrain, **s_kwargs)
            x_neg, z_neg = jax.lax.stop_gradient(x_neg), jax.lax.stop_gradient(z_neg)

            def loss_fn(params):
                f_data = model.energy(params, x, z)
                f_chain = model.energy(params, x_neg, z_neg)
                return jnp.mean(f_chain) - jnp.mean(f_data), (f_data, f_chain)

            (loss, (f_data, f_chain)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                state.params)
            metrics.update(energy_gap=-loss, f_data=jnp.mean(f_data),
                           f_chains=jnp.mean(f_chain), grad_norm_x=chain.grad_norm,
                           samples_mean=jnp.mean(x_neg), samples_std=jnp.std(x_neg),
                           samples_saturation=jnp.mean(jnp.abs(x_neg) > 1.0))
        else:
            def loss_fn(params):
                return -jnp.mean(model.energy(params, x, z))

            loss, grads = jax.value_and_grad(loss_fn)(state.params)
            x_rec = model.generate(state.params, z)
            metrics.update(recon_mse=jnp.mean(jnp.square(x_rec - x)))
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        bank = state.bank.at[index].set(z) if warm else None
        metrics.update(loss=loss, grad_norm_params=optax.tree.norm(grads))
        return LatentTrainState(state.step + 1, params, opt_state, bank), metrics

    if mesh is None:
        return jax.jit(update, donate_argnums=0)
    dat, shardings = parallel.data_sharded(mesh), state_shardings(mesh, warm)
    return jax.jit(update, in_shardings=(shardings, dat, dat),
                   out_shardings=(shardings, parallel.replicated(mesh)), donate_argnums=0)
