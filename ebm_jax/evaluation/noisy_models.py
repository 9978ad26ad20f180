"""Each family as the noisy latent model whose held-out likelihood ``--mode=bpd`` bounds:
u ~ p(u) on R^d, x = m(u) + tau * eps (``core.iwae``).

- the short-run EBM: z = z(u) ~ p_0 (``iwae.unconstrained``: u ~ N(0, I)), m(u) = M(z(u)) the
  noise-free K-step flow (``core.flow``); the search for the mode starts at the inversion z*
  of x, which also gives the review's figure, the density of M(z*) (``review``);
- the generator: p(u) = N(0, I), m = g, tau its ``obs_std``;
- the latent EBM: p(u) = exp(u_theta(u) - |u|^2 / 2) / Z, m = g, tau its ``obs_std``, with
  log Z by AIS from N(0, I) (``latent_log_z``).

The latent families start the mode search at the code their inference chains give.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax

from ebm_jax.core import ais, flow, iwae, logdet
from ebm_jax.core.prior import Prior
from ebm_jax.models import input_grad as input_grad_lib

Array = jax.Array


class NoisyModel(NamedTuple):
    """``decode(params, u_B) -> x_B``: m(u). ``log_prior(params, u_B) -> (B,)``: log p(u),
    normalised. ``init(params, x_B, key) -> (u0_B, diagnostics)``: where the mode search
    starts, and per-example figures of the family's own. ``latent_shape``: one u's shape.
    ``obs_std``: the model's own tau, or None where it has none (the EBM: tau is fitted)."""
    decode: Callable
    log_prior: Callable
    init: Callable
    latent_shape: tuple
    obs_std: float | None


def latent_log_z(log_prior_fn: Callable[[Array], Array], latent_dim: int, key: Array, *,
                 num_chains: int = 1024, num_temps: int = 500,
                 mcmc_step_size: float = 0.5) -> ais.AISResult:
    """log Z of exp(u(z) - |z|^2 / 2) minus (d/2) log 2 pi, i.e. log E_{N(0, I)} exp(u(z)), by
    AIS from N(0, I); ``log_prior_fn(z_Bd)`` = u(z) - |z|^2 / 2."""
    g = lambda z: log_prior_fn(z) - 0.5 * latent_dim * math.log(2 * math.pi)
    return ais.ais_log_z(g, key, (latent_dim,), num_chains=num_chains, num_temps=num_temps,
                         mcmc_step_size=mcmc_step_size, prior=Prior.gaussian(1.0))


def ebm_model(energy, sampling_config, *, inversion_iters: int = 200,
              inversion_lr: float = 0.05, logdet_method: str | None = "exact",
              logdet_kwargs: dict | None = None,
              input_grad: Callable | None = None) -> NoisyModel:
    """The short-run EBM of ``energy(params, x_B) -> f_B`` with the chain of
    ``sampling_config`` (K, s, p_0; its noise is dropped). ``init`` inverts the flow and, with
    ``logdet_method``, returns the review's diagnostic (``review``). ``input_grad(params) ->
    (x_B -> grad_x sum_B f)``, where given, is the flow's gradient in ``decode`` and the
    inversion (``EBM.input_grad()``: the chains' own, faster form), else ``jax.grad``."""
    kw = flow.flow_kwargs(sampling_config)
    prior = kw.pop("prior")
    to_z, to_u = iwae.unconstrained(prior)

    def decode(params, u_B):
        return flow.flow_map(lambda v: energy(params, v), to_z(u_B),
                             grad_fn=input_grad_lib.grad_fn_for(input_grad, params), **kw)

    def init(params, x_B, key):
        f = lambda v: energy(params, v)
        inv = flow.invert(f, x_B, jax.random.fold_in(key, 0), num_iters=inversion_iters,
                          learning_rate=inversion_lr, prior=prior,
                          grad_fn=input_grad_lib.grad_fn_for(input_grad, params), **kw)
        diag = dict(review_recon_mse=inv.mse_B, review_at_boundary=inv.at_boundary_B)
        if logdet_method:
            ld = logdet.logdet(logdet_method, f, inv.z, jax.random.fold_in(key, 1),
                               num_steps=kw["num_steps"], step_size=kw["step_size"],
                               **(logdet_kwargs or {}))
            diag["review_log_density"] = prior.log_prob(inv.z) - ld.logdet_B
        return to_u(inv.z), diag

    return NoisyModel(decode, lambda params, u: iwae.std_normal_log_prob(u), init, None, None)


def latent_model(family, log_z: float | None = None) -> NoisyModel:
    """The generator (``log_z`` None) or the latent EBM (its prior's ``latent_log_z``)."""
    model, d = family.model, family.latent_dim
    encode = family.make_encoder()

    if log_z is None:
        log_prior = lambda params, u: iwae.std_normal_log_prob(u)
    else:
        def log_prior(params, u):
            return model.log_prior(params, u) - 0.5 * d * math.log(2 * math.pi) - log_z

    def init(params, x_B, key):
        return encode(params, x_B, key), {}

    return NoisyModel(model.generate, log_prior, init, (d,),
                      float(family.config.model.get("obs_std", 1.0)))
