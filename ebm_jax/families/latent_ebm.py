"""The latent EBM: a deep continuous-latent Boltzmann machine f(x, z), by Monte Carlo EM.

    f(x, z) = <h(x), W z + b> + u(z) - |z|^2 / 2        (``models.latent_nets``)

Each update infers z ~ p(z | x) with x held at the data (the positive phase, ``latent.py``),
draws (x', z') jointly from noise by the synthesis chain (the negative phase: the ``sampling``
block's K, s and sigma for x, ``sampling.latent_step_size`` and ``latent_noise_std`` for z),
and takes one optimizer step on

    L(theta) = mean_j f(x'_j, z'_j) - mean_i f(x_i, z_i),

the Monte Carlo estimate of -grad log p(x). Reconstruction: z inferred from x, then a
noise-free chain in x given z from a fixed start (x_0 = 0), with the sampling block's K and s.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from ebm_jax.core import sampler
from ebm_jax.families import base, ebm, latent, latent_chains
from ebm_jax.models import latent_nets
from ebm_jax.runtime import parallel


class LatentEBM(latent.LatentFamily):
    name = "latent_ebm"
    capabilities = latent.LatentFamily.capabilities | {base.SNAPSHOTS}
    guard_spec = base.GuardSpec(
        finite=("loss", "energy_gap", "grad_norm_params", "grad_norm_x", "grad_norm_z",
                "param_norm", "samples_mean", "samples_std", "z_std"),
        bounds=(("energy_gap", "max_energy_gap"), ("grad_norm_params", "max_grad_norm")),
        collapse="samples_chain_std")
    progress_fields = {"gap": "energy_gap", "r_t": "grad_norm_x", "z_std": "z_std"}

    def build_model(self, model_config, data_shape):
        return latent_nets.build_latent_energy(model_config, data_shape)

    def _synthesize(self, params, key, num, config=None, **kwargs):
        config = config or self.config
        return latent_chains.synthesize(
            lambda a, b: self.model.energy(params, a, b), key, num, self.data_shape,
            self.latent_dim, **kwargs, **latent_chains.synthesis_kwargs(config))

    def objective(self, frozen, x, z, key, constrain, step):
        chain_length = sampler.chain_length(self.config.sampling)
        x_neg, z_neg, chain = self._synthesize(
            frozen, key, x.shape[0], constrain=constrain,
            **chain_length(jax.random.fold_in(key, 4)))
        x_neg, z_neg = jax.lax.stop_gradient(x_neg), jax.lax.stop_gradient(z_neg)
        energy = self.model.energy

        def loss_fn(params):
            f_data, f_chain = energy(params, x, z), energy(params, x_neg, z_neg)
            loss = jnp.mean(f_chain) - jnp.mean(f_data)
            return loss, dict(energy_gap=-loss, f_data=jnp.mean(f_data),
                              f_chains=jnp.mean(f_chain))

        return loss_fn, dict(grad_norm_x=chain.grad_norm, num_langevin_steps=chain.num_steps,
                             **ebm.sample_statistics(x_neg))

    def make_sampler(self, config=None, *, mesh=None, snapshot_steps: Sequence[int] = ()):
        """The joint chain from noise; its snapshots are of the x part."""
        config = config or self.config
        num_steps = int(config.sampling.num_steps)
        size = self.data_shape
        constrain = parallel.split_constraint(mesh)

        def sample(params, key, num: int) -> sampler.ChainResult:
            x, _, out = self._synthesize(params, key, num, config, num_steps=num_steps,
                                         snapshot_steps=snapshot_steps, constrain=constrain)
            snaps = out.snapshots
            if snaps is not None:
                snaps = jax.vmap(lambda v: latent_chains.unpack(v, size)[0])(snaps)
            return out._replace(x=x, snapshots=snaps)

        return jax.jit(sample, static_argnums=2)

    def decode(self, params, z_Bd, config=None):
        """The noise-free chain in x given z, from x_0 = 0: a deterministic point of high
        p(x | z)."""
        s_cfg = (config or self.config).sampling
        x0 = jnp.zeros((z_Bd.shape[0],) + self.data_shape, z_Bd.dtype)
        return sampler.langevin(lambda a: self.model.energy(params, a, z_Bd), x0, None,
                                int(s_cfg.num_steps), float(s_cfg.step_size), 0.0,
                                unroll=sampler.resolve_unroll(s_cfg.get("unroll", 0), 1)).x
