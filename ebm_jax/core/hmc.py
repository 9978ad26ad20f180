"""Hamiltonian Monte Carlo (HMC): L leapfrog steps of a Gaussian momentum, then an accept test
(Duane et al., 1987; Neal, 2011).

For a target pi(x) ∝ exp(log_p(x)), one transition draws p ~ N(0, I), runs L leapfrog steps of
size eps on H(x, p) = -log_p(x) + |p|^2 / 2 and accepts the end point with probability
min(1, exp(H(x, p) - H(x', p'))). Leapfrog is volume-preserving and, with the momentum negated,
its own inverse, so the chain leaves pi exactly invariant.

``chain`` takes a sampler's energy f, s and sigma as MALA does (``core/mala.py``): log_p = f / T
with T = sigma^2 / (2 s) and eps = sigma, so that one leapfrog step (L = 1) is exactly MALA's
transition. Each of the K transitions costs L gradients of f and one value of f. Keys of
transition k: ``fold_in(key, k)``; its momentum ``fold_in(., 0)``, its uniform ``fold_in(., 1)``.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from ebm_jax.core import chain as chain_lib
from ebm_jax.core import mala

Array = jax.Array


def options(sampling_config) -> dict:
    """The config's HMC settings: L, ``sampling.leapfrog_steps``."""
    return dict(leapfrog_steps=int(sampling_config.get("leapfrog_steps", 5)))


def leapfrog(grad_log_p: Callable[[Array], Array], x: Array, p: Array, eps, num_leapfrog: int,
             grad_x: Array | None = None, constrain: Callable[[Array], Array] = lambda a: a):
    """``num_leapfrog`` leapfrog steps of size ``eps`` from (x, p); ``grad_x`` is grad log_p(x)
    if known. Returns (x', p', grad log_p(x'))."""
    g = grad_log_p(x) if grad_x is None else grad_x
    p = p + 0.5 * eps * g
    for i in range(int(num_leapfrog)):
        x = constrain(x + eps * p)
        g = grad_log_p(x)
        p = p + (eps if i < num_leapfrog - 1 else 0.5 * eps) * g
    return x, p, g


def step(log_p: Callable[[Array], Array], grad_log_p: Callable[[Array], Array],
         current: mala.Point, key: Array, eps, num_leapfrog: int,
         constrain: Callable[[Array], Array] = lambda a: a,
         momentum: Array | None = None) -> tuple[mala.Point, Array]:
    """One HMC transition from ``current``: returns (the new point, the accepted mask)."""
    axes = tuple(range(1, current.x.ndim))
    if momentum is None:
        momentum = jax.random.normal(jax.random.fold_in(key, 0), current.x.shape,
                                     current.x.dtype)
    x1, p1, g1 = leapfrog(grad_log_p, current.x, momentum, eps, num_leapfrog, current.grad,
                          constrain)
    proposed = mala.Point(x1, log_p(x1), g1)
    kinetic = lambda p: 0.5 * jnp.sum(jnp.square(p), axis=axes)
    log_ratio = proposed.log_p - current.log_p - kinetic(p1) + kinetic(momentum)
    return mala.accept(jax.random.fold_in(key, 1), log_ratio, proposed, current)


def chain(energy_fn: Callable[[Array], Array], x0: Array, key: Array | None,
          num_steps: int | Array, step_size: float = 1.0, noise_std: float = 0.01, *,
          leapfrog_steps: int = 5, grad_fn: Callable[[Array], Array] | None = None,
          constrain=None, **loop_kwargs) -> chain_lib.ChainResult:
    """K HMC transitions of L = ``leapfrog_steps`` on exp(f / T) from ``x0``, with the
    arguments of ``sampler.langevin`` (``noise`` replays the momenta)."""
    log_p, grad_log_p, eps = mala.tempered(energy_fn, grad_fn, step_size, noise_std)
    t = mala.temperature(step_size, noise_std)
    keep_in = constrain or (lambda a: a)

    def init(x):
        return tuple(mala.Point(x, log_p(x), grad_log_p(x)))

    def transition(state, k, p):
        current = mala.Point(*state)
        new, ok = step(log_p, grad_log_p, current, jax.random.fold_in(key, k), eps,
                       leapfrog_steps, keep_in, p)
        return tuple(new), (mala.grad_norm(current, t), jnp.mean(ok.astype(current.x.dtype)))

    return chain_lib.run(chain_lib.Kernel(init, transition, 2), x0, num_steps,
                         constrain=constrain, **loop_kwargs)
