"""What the latent-variable families share: Monte Carlo EM with a short-run E-step.

E-step (both families): z_i ~ p(z | x_i) by the short-run inference chain (``latent_chains``),
with x_i (plus N(0, sigma_data^2) noise, on the data-noise schedule) held fixed, from fresh
noise (``inference.start='cold'``) or from the z_i that the last visit to example i left in the
bank (``'warm'``, persistent; the bank is part of the state, checkpointed, and split across
devices like the data).

M-step: one optimizer step on the family's ``objective``, the chains held constant.

Keys of update t, ``k_t = keys.step_key(seed, t)``: synthesis ``fold_in(k_t, 0)``, data noise
``fold_in(k_t, 1)``, cold z_0 ``fold_in(k_t, 2)``, inference noise ``fold_in(k_t, 3)``; the
synthesis chain's dynamic K ``fold_in(fold_in(k_t, 0), 4)``.
"""
from __future__ import annotations

import abc

import jax
import jax.numpy as jnp
import optax

from ebm_jax.core import keys, schedules
from ebm_jax.families import base, latent_chains
from ebm_jax.runtime import parallel

START = ("cold", "warm")


class LatentFamily(base.Family):
    """A family with a latent code z in R^d per example; subclasses give the model and the
    M-step ``objective``."""
    capabilities = frozenset({base.RECONSTRUCTION, base.INFERENCE})

    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        start = config.inference.start
        if start not in START:
            raise ValueError(f"inference.start={start!r}: choose cold or warm")
        self.warm = start == "warm"
        self.model = self.build_model(config.model, self.data_shape)
        self.latent_dim = self.model.latent_dim

    @abc.abstractmethod
    def build_model(self, model_config, data_shape):
        """The network, with ``init(key)``, ``latent_dim`` and the joint ``energy(params, x,
        z)`` = log p(x, z) up to a constant."""

    @abc.abstractmethod
    def objective(self, frozen, x, z, key, constrain, step):
        """``(loss_fn, metrics)``: ``loss_fn(params) -> (loss, aux metrics)`` of the M-step,
        given the data x and their inferred codes z; ``metrics`` of the chains it ran."""

    def describe(self) -> str:
        start = "warm" if self.warm else "cold"
        return f"{self.name} with d={self.latent_dim}, {start} start"

    def init_params(self, key):
        return self.model.init(key)

    def state_meta(self, num_examples: int, mesh) -> dict:
        """The warm-start bank's rows: the data set size rounded up to split across devices."""
        return base.bank_meta(num_examples, mesh) if self.warm else {}

    def init_state(self, key, tx, meta=None) -> base.TrainState:
        """Params from ``fold_in(key, 0)``; a warm bank of z_0 ~ N(0, init_std^2) from
        ``fold_in(key, 1)``."""
        params = self.init_params(jax.random.fold_in(key, 0))
        bank = None
        if self.warm:
            bank = latent_chains.init_latents(jax.random.fold_in(key, 1),
                                              int((meta or {})["bank_size"]), self.latent_dim,
                                              float(self.config.inference.init_std))
        return base.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), bank)

    def state_shardings(self, mesh, meta=None) -> base.TrainState:
        """The bank split along the data axis like the data, or replicated where its rows do
        not divide over the devices (a workdir trained on another device count)."""
        rep = parallel.replicated(mesh)
        return base.TrainState(rep, rep, rep, base.bank_sharding(mesh, meta) if self.warm else None)

    def make_update(self, tx: optax.GradientTransformation, mesh=None, meta=None):
        config, warm, d = self.config, self.warm, self.latent_dim
        i_cfg = config.inference
        i_steps, i_kwargs = int(i_cfg.num_steps), latent_chains.inference_kwargs(i_cfg)
        init_std, seed = float(i_cfg.init_std), int(config.seed)
        data_noise_std = schedules.data_noise(config.training)
        constrain = parallel.split_constraint(mesh) or (lambda a: a)
        energy = self.model.energy

        def update(state: base.TrainState, batch: base.Batch):
            key = keys.step_key(seed, state.step)
            frozen = jax.lax.stop_gradient(state.params)
            sigma_data = data_noise_std(state.step)
            x = constrain(batch.x + sigma_data * jax.random.normal(
                jax.random.fold_in(key, 1), batch.x.shape, batch.x.dtype))
            if warm:
                z0 = state.bank[batch.index]
            else:
                z0 = latent_chains.init_latents(jax.random.fold_in(key, 2), x.shape[0], d,
                                                init_std)
            post = latent_chains.infer(lambda a, b: energy(frozen, a, b), x, z0,
                                       jax.random.fold_in(key, 3), i_steps, constrain=constrain,
                                       **i_kwargs)
            z = jax.lax.stop_gradient(post.x)
            loss_fn, metrics = self.objective(frozen, x, z, jax.random.fold_in(key, 0),
                                              constrain, state.step)
            (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            bank = state.bank.at[batch.index].set(z) if warm else None
            metrics.update(aux, loss=loss, grad_norm_params=optax.tree.norm(grads),
                           param_norm=optax.tree.norm(params), grad_norm_z=post.grad_norm,
                           z_mean=jnp.mean(z), z_std=jnp.std(z), data_noise_std=sigma_data)
            return base.TrainState(state.step + 1, params, opt_state, bank), metrics

        return base.jit_update(update, self.state_shardings(mesh, meta) if mesh else None, mesh)

    def make_encoder(self, config=None):
        """``encode(params, x_B, key) -> z_Bd``: the ``inference`` chain from a cold start
        (z_0 key ``fold_in(key, 0)``, chain noise ``fold_in(key, 1)``), jit-compiled. With
        ``inference.num_chains`` R > 1 the code is the mean of R such chains (chain r keyed
        by ``fold_in(key, r)``), a Monte Carlo estimate of E[z | x] (training uses one)."""
        i_cfg = (config or self.config).inference
        i_kwargs = latent_chains.inference_kwargs(i_cfg)
        energy, d = self.model.energy, self.latent_dim
        num_chains = int(i_cfg.get("num_chains", 1))
        if num_chains < 1:
            raise ValueError(f"inference.num_chains={num_chains}: it must be at least 1")

        def encode_one(params, x_B, key):
            z0 = latent_chains.init_latents(jax.random.fold_in(key, 0), x_B.shape[0], d,
                                            float(i_cfg.init_std))
            return latent_chains.infer(lambda a, b: energy(params, a, b), x_B, z0,
                                       jax.random.fold_in(key, 1), int(i_cfg.num_steps),
                                       **i_kwargs).x

        def encode(params, x_B, key):
            if num_chains == 1:
                return encode_one(params, x_B, key)
            keys_R = jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(num_chains))
            return jnp.mean(jax.vmap(lambda k: encode_one(params, x_B, k))(keys_R), axis=0)

        return jax.jit(encode)

    @abc.abstractmethod
    def decode(self, params, z_Bd, config=None):
        """x from a code: the reconstruction's second half."""

    def make_reconstructor(self, config=None, **_):
        """``reconstruct(params, x_B, key) -> base.Reconstruction``: z inferred from x (see
        ``make_encoder``), then decoded by the family (``decode``)."""
        encode = self.make_encoder(config)

        def reconstruct(params, x_B, key):
            z = encode(params, x_B, key)
            return base.Reconstruction(self.decode(params, z, config), z)

        return jax.jit(reconstruct)
