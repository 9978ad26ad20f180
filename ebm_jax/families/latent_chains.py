"""Short-run Langevin for latent-variable models: inference and synthesis.

Both are ``sampler.langevin`` runs over z:

- inference, z ~ p(z | x): on a joint log-density ``joint_fn(x_B..., z_Bd) -> f_B`` (any
  callable; ``energy`` of a latent model with its params closed over is one) with x held fixed,
  from z_0 ~ N(0, init_std^2) (cold start) or from a stored z (warm start); K, s, sigma from
  the ``inference`` block;
- synthesis, (x, z) ~ p(x, z) for a model whose x given z is N(g(z), obs_std^2 I): z by a
  chain on the marginal log p(z) (``log_prior_fn``) from N(0, init_std^2), with the
  ``sampling`` block's K and its ``latent_step_size`` and ``latent_noise_std``, then x = g(z),
  the mode of p(x | z). The generator needs no chain: its p(z) is N(0, I).

The Langevin update is z <- z + s grad f + sigma eps; it targets exp(f) as s -> 0 when
sigma^2 = 2 s.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from ebm_jax.core import sampler

Array = jax.Array
JointFn = Callable[[Array, Array], Array]


def inference_kwargs(inference_config) -> dict:
    """The ``langevin`` keyword arguments (s, sigma, unroll) of an ``inference`` block; its
    ``num_steps`` is K."""
    c = inference_config
    return dict(step_size=float(c.step_size), noise_std=float(c.noise_std),
                unroll=sampler.resolve_unroll(c.get("unroll", 0), sampler.default_unroll()))


def init_latents(key: Array, num: int, latent_dim: int, std: float = 1.0) -> Array:
    """z_0 ~ N(0, std^2 I), shaped (num, latent_dim)."""
    return std * jax.random.normal(key, (num, latent_dim), jnp.float32)


def infer(joint_fn: JointFn, x_B: Array, z0_Bd: Array, key: Array | None,
          num_steps: int, step_size: float, noise_std: float,
          **langevin_kwargs) -> sampler.ChainResult:
    """K Langevin steps on z targeting p(z | x) ∝ exp f(x, z), x fixed; the result's ``x``
    field holds the final z."""
    return sampler.langevin(lambda z: joint_fn(x_B, z), z0_Bd, key, num_steps, step_size,
                            noise_std, **langevin_kwargs)


def synthesize(log_prior_fn: Callable[[Array], Array], generate_fn: Callable[[Array], Array],
               key: Array, num: int, latent_dim: int, num_steps, *, step_size: float,
               noise_std: float, latent_init_std: float = 1.0,
               **run_kwargs) -> tuple[Array, Array, sampler.ChainResult]:
    """K steps of the ``sampling.method`` chain (``sampler.run``; ``run_kwargs`` hold the method
    and its options) on log p(z) from z_0 ~ N(0, latent_init_std^2), then x = g(z); returns
    (x, z, the z chain's result). Keys: z_0 ``fold_in(key, 0)``, chain noise
    ``fold_in(key, 1)``."""
    z0 = init_latents(jax.random.fold_in(key, 0), num, latent_dim, latent_init_std)
    out = sampler.run(log_prior_fn, z0, jax.random.fold_in(key, 1), num_steps, step_size,
                      noise_std, **run_kwargs)
    return generate_fn(out.x), out.x, out


def synthesis_kwargs(config) -> dict:
    """The keyword arguments of ``synthesize`` held in a config: the ``sampling`` block's s and
    sigma of z, its unrolling and method, and the ``inference`` block's z_0 scale."""
    sampling = config.sampling
    method = sampler.method_of(sampling)
    return dict(method=method, **sampler.METHODS[method].options(sampling),
                step_size=float(sampling.latent_step_size),
                noise_std=float(sampling.latent_noise_std),
                unroll=sampler.resolve_unroll(sampling.get("unroll", 0), sampler.default_unroll()),
                latent_init_std=float(config.inference.init_std))
