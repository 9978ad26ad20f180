"""Short-run chains from z_rho = rho z1 + sqrt(1 - rho^2) z2, rho in [0, 1], for any energy.

Keys: z1 ``fold_in(key, 0)``, z2 ``fold_in(key, 1)``, the fixed noise ``fold_in(key, 2)``
(drawn as one array of shape (K, rows, ...)), and with it, for a Metropolis-corrected method,
the accept tests' key ``fold_in(key, 4)``, the same in every column; without fixed noise,
column j uses ``fold_in(fold_in(key, 3), j)`` as the chain's key (``sampler.run``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ebm_jax.core import sampler
from ebm_jax.core.prior import Prior


def interpolate(z1, z2, rho_R):
    """z_rho for every rho: shape (R, *z1.shape)."""
    rho = jnp.asarray(rho_R, z1.dtype).reshape((-1,) + (1,) * z1.ndim)
    return rho * z1[None] + jnp.sqrt(jnp.maximum(1.0 - rho * rho, 0.0)) * z2[None]


def interpolation_chains(energy_fn, key, shape, rho_R, num_steps: int, *, fixed_noise=True,
                         prior: Prior = Prior(), **run_kwargs):
    """Returns ``(x_RB..., z1_B..., z2_B..., eps)`` (``eps`` None without fixed noise): the
    final states of the chains from each z_rho, z1 and z2 drawn from ``prior``. With
    ``fixed_noise`` every rho replays the same Langevin noise, so rho = 1 is exactly z1's
    chain."""
    z1 = prior.sample(jax.random.fold_in(key, 0), shape)
    z2 = prior.sample(jax.random.fold_in(key, 1), shape)
    z_RB = interpolate(z1, z2, rho_R)
    kw = run_kwargs
    eps = None
    if fixed_noise:
        eps = jax.random.normal(jax.random.fold_in(key, 2), (num_steps,) + tuple(shape))
        shared = jax.random.fold_in(key, 4)
        run = lambda z, k: sampler.run(energy_fn, z, shared, num_steps, noise=eps, **kw).x
    else:
        run = lambda z, k: sampler.run(energy_fn, z, k, num_steps, **kw).x
    keys = jax.vmap(lambda j: jax.random.fold_in(jax.random.fold_in(key, 3), j))(
        jnp.arange(len(rho_R)))
    return jax.lax.map(lambda zk: run(*zk), (z_RB, keys)), z1, z2, eps
