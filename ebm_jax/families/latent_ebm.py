"""The latent EBM: a continuous-latent Boltzmann machine f(x, z), by Monte Carlo EM.

    f(x, z) = -|x - g(z)|^2 / (2 obs_std^2) + u(z) - |z|^2 / 2        (``models.latent_nets``)

so that p(x | z) = N(g(z), obs_std^2 I) and the marginal p(z) ∝ exp(u(z) - |z|^2 / 2) is an
EBM on z. Each update infers z ~ p(z | x) with x held at the data (the positive phase, a
short-run chain, ``latent.py``), draws z' ~ p(z) by a short-run chain on u(z) - |z|^2 / 2
from N(0, I) and sets x' = g(z') (the negative phase: the ``sampling`` block's K,
``latent_step_size`` and ``latent_noise_std``), and takes one optimizer step on

    L(theta) = mean_j f(x'_j, z'_j) - mean_i f(x_i, z_i),

the Monte Carlo estimate of -grad log p(x): for g it is the generator's gradient (the Gaussian's
normaliser does not depend on g, and at x' = g(z') its term is 0), for u the EBM gap
mean u(z') - mean u(z). Samples are g(z') of fresh prior chains; reconstruction is g(z) of the
inferred z: the end point of any noise-free chain in x given z, since p(x | z) is Gaussian
with mode g(z).

Why the earlier form did not learn, measured on digits (d = 16, 300 updates, the 297 held-out
digits, ``evaluate.py --mode=reconstruction --split=test`` and ``--mode=probe``):

- f(x, z) = <h(x), W z + b> + u(z) - |z|^2 / 2 with h a ConvNet feature of x. Its posterior is
  N(W^T h(x) + grad u, I)-like with unit spread whatever x is, and the posterior means moved
  by 0.014 (std across digits) against that spread of 1: the inferred z carried none of x
  (two chains on the same digit differ as much as two digits do: 0% of z's variance explained
  by x; probe accuracy 0.084, chance 0.1). The x-only part <h(x), b> models p(x) by itself, so
  maximum likelihood never needs z. p(x | z) has no mode either: the noise-free chain in x
  given z ran off to 31% of pixels beyond +-1 (MSE 0.77, mean image 0.30).
- The same coupling added to the Gaussian term above diverged within 150 updates (the codes'
  std grew from 1 to 80, f on data from 8e2 to 4e5): the unbounded <h(x), W z> term outgrows
  -|z|^2 / 2.

What the present form gives (``configs/latent_ebm_digits.py``: obs_std 0.2, inference K=30,
s=0.005, sigma=0.1, codes the mean of 8 chains; 2,000 updates, no rollback; 297 held-out
digits; PCA-16 0.0486 MSE and 0.896 probe accuracy, raw pixels 0.909; the EBM of
``configs/digits.py`` has a digit FID of 16.1):

- cold start: MSE 0.0289, probe 0.902, digit FID 16.9;
- warm start, scored with the same K=30 chain from noise: MSE 0.047, probe 0.882, FID 11.9.
  Its training chains are long (each example's z is refined at every visit), so its held-out
  codes need a longer chain: with ``--config.inference.num_steps=100`` (cold run: 0.0240,
  0.892) it scores 0.0245 and 0.886, with 300 (cold: 0.0227) 0.0203 and 0.879;
- one chain per code instead of the mean of 8: MSE 0.0376, probe 0.872 to 0.882 over three
  seeds (0.904 with 8 chains over the same seeds);
- obs_std 0.3 (s=0.01): MSE 0.036, probe 0.898, FID 20.2; obs_std 0.15 (K=60, s=0.003): MSE
  0.0185, probe 0.880. A narrower p(x | z) reconstructs better and, below 0.2, probes worse.

The probe's standard error on 297 digits is about 0.017, so probes within 0.02 of each other
do not differ measurably.
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
    capabilities = latent.LatentFamily.capabilities | {base.SNAPSHOTS, base.ENERGY_PRIOR}
    guard_spec = base.GuardSpec(
        finite=("loss", "energy_gap", "prior_gap", "grad_norm_params", "grad_norm_prior",
                "grad_norm_z", "param_norm", "samples_mean", "samples_std", "z_std"),
        bounds=(("energy_gap", "max_energy_gap"), ("grad_norm_params", "max_grad_norm")),
        collapse="samples_chain_std")
    progress_fields = {"gap": "prior_gap", "mse": "recon_mse", "z_std": "z_std"}

    def build_model(self, model_config, data_shape):
        return latent_nets.build_latent_energy(model_config, data_shape)

    def _synthesize(self, params, key, num, config=None, **kwargs):
        return latent_chains.synthesize(
            lambda z: self.model.log_prior(params, z), lambda z: self.model.generate(params, z),
            key, num, self.latent_dim, **kwargs,
            **latent_chains.synthesis_kwargs(config or self.config))

    def objective(self, frozen, x, z, key, constrain, step):
        chain_length = sampler.chain_length(self.config.sampling)
        x_neg, z_neg, chain = self._synthesize(
            frozen, key, x.shape[0], constrain=constrain,
            **chain_length(jax.random.fold_in(key, 4)))
        x_neg, z_neg = jax.lax.stop_gradient(x_neg), jax.lax.stop_gradient(z_neg)
        model = self.model
        x_rec = model.generate(frozen, z)

        def loss_fn(params):
            f_data, f_chain = model.energy(params, x, z), model.energy(params, x_neg, z_neg)
            prior_gap = jnp.mean(model.log_prior(params, z)) - jnp.mean(
                model.log_prior(params, z_neg))
            loss = jnp.mean(f_chain) - jnp.mean(f_data)
            return loss, dict(energy_gap=-loss, prior_gap=prior_gap, f_data=jnp.mean(f_data),
                              f_chains=jnp.mean(f_chain))

        return loss_fn, dict(grad_norm_prior=chain.grad_norm, num_langevin_steps=chain.num_steps,
                             recon_mse=jnp.mean(jnp.square(x_rec - x)),
                             z_neg_std=jnp.std(z_neg), **ebm.sample_statistics(x_neg))

    def make_sampler(self, config=None, *, mesh=None, snapshot_steps: Sequence[int] = ()):
        """g(z') of fresh prior chains; the snapshots are g of the chain's z_t."""
        config = config or self.config
        k = sampler.chain_length(config.sampling)()
        constrain = parallel.split_constraint(mesh)

        def sample(params, key, num: int) -> sampler.ChainResult:
            x, _, out = self._synthesize(params, key, num, config, **k,
                                         snapshot_steps=snapshot_steps, constrain=constrain)
            snaps = out.snapshots
            if snaps is not None:
                snaps = jax.vmap(lambda z: self.model.generate(params, z))(snaps)
            return out._replace(x=x, snapshots=snaps)

        return jax.jit(sample, static_argnums=2)

    def decode(self, params, z_Bd, config=None):
        """g(z): the mode of p(x | z), where a noise-free chain in x given z from any start
        ends."""
        return self.model.generate(params, z_Bd)
