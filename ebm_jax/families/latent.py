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

from ebm_jax.families import base, latent_chains
from ebm_jax.families import update as update_lib
from ebm_jax.runtime import parallel

START = ("cold", "warm")


class LatentFamily(base.Family):
    """A family with a latent code z in R^d per example; subclasses give the model and the
    M-step ``objective``."""
    capabilities = frozenset({base.RECONSTRUCTION, base.INFERENCE, base.LATENT})

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
        warm, d, inference = self.warm, self.latent_dim, self.config.inference
        steps, chain_kwargs = int(inference.num_steps), latent_chains.inference_kwargs(inference)
        init_std, energy = float(inference.init_std), self.model.energy

        def objective(state, batch, x, frozen, key, constrain):
            """The E-step's codes z of the data x, then the family's M-step ``objective``."""
            if warm:
                z0 = state.bank[batch.index]
            else:
                z0 = latent_chains.init_latents(jax.random.fold_in(key, 2), x.shape[0], d,
                                                init_std)
            post = latent_chains.infer(lambda a, b: energy(frozen, a, b), x, z0,
                                       jax.random.fold_in(key, 3), steps, constrain=constrain,
                                       **chain_kwargs)
            z = jax.lax.stop_gradient(post.x)
            loss_fn, metrics = self.objective(frozen, x, z, jax.random.fold_in(key, 0),
                                              constrain, state.step)
            bank = state.bank.at[batch.index].set(z) if warm else None
            return update_lib.Objective(loss_fn, dict(
                metrics, grad_norm_z=post.grad_norm, z_mean=jnp.mean(z), z_std=jnp.std(z)), bank)

        return update_lib.make_update(self, objective, tx, mesh, meta)

    def make_encoder(self, config=None):
        """``encode(params, x_B, key) -> z_Bd``: the ``inference`` chain from a cold start
        (z_0 key ``fold_in(key, 0)``, chain noise ``fold_in(key, 1)``), jit-compiled. With
        ``inference.num_chains`` R > 1 the code is the mean of R such chains (chain r keyed
        by ``fold_in(key, r)``), a Monte Carlo estimate of E[z | x] (training uses one)."""
        inference = (config or self.config).inference
        chain_kwargs = latent_chains.inference_kwargs(inference)
        energy, d = self.model.energy, self.latent_dim
        num_chains = int(inference.get("num_chains", 1))
        if num_chains < 1:
            raise ValueError(f"inference.num_chains={num_chains}: it must be at least 1")

        def encode_one(params, x_B, key):
            z0 = latent_chains.init_latents(jax.random.fold_in(key, 0), x_B.shape[0], d,
                                            float(inference.init_std))
            return latent_chains.infer(lambda a, b: energy(params, a, b), x_B, z0,
                                       jax.random.fold_in(key, 1), int(inference.num_steps),
                                       **chain_kwargs).x

        def encode(params, x_B, key):
            if num_chains == 1:
                return encode_one(params, x_B, key)
            keys_R = jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(num_chains))
            return jnp.mean(jax.vmap(lambda k: encode_one(params, x_B, k))(keys_R), axis=0)

        return jax.jit(encode)

    def encoder_protocol(self, config=None) -> dict:
        """What ``make_encoder`` computes, for the records of the modes that use it: the
        ``inference`` chain's K, s, sigma and z_0's std, the chains averaged, and its start
        (always cold: a held-out x has no stored z)."""
        inference = (config or self.config).inference
        chain = latent_chains.inference_kwargs(inference)
        chain.pop("unroll")  # how the loop is compiled, not what it computes
        return {"K": int(inference.num_steps), **chain, "init_std": float(inference.init_std),
                "num_chains": int(inference.get("num_chains", 1)), "start": "cold"}

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
