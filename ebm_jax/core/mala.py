"""Metropolis-adjusted Langevin (MALA): the Langevin proposal with an accept test, so that the
chain leaves its target exactly invariant (Roberts and Tweedie, 1996).

For a target pi(x) ∝ exp(log_p(x)) and a step eps, one transition is

    x' = x + eps^2 / 2 * grad log_p(x) + eps * n,    n ~ N(0, I),
    accept x' with probability min(1, pi(x') q(x | x') / (pi(x) q(x' | x))),

q(x' | x) = N(x + eps^2 / 2 grad log_p(x), eps^2 I). ``step`` is that transition for any
log-density; AIS (``core/ais.py``) takes it through its annealed path. ``chain`` runs it on a
sampler's energy f with the sampler's s and sigma: eps = sigma and log_p = f / T with
T = sigma^2 / (2 s), so the proposal is exactly the Langevin chain's x + s grad f + sigma n
and the accept test makes exp(f / T) invariant (exp(f) when sigma^2 = 2 s).

Keys of transition k of ``chain``: ``fold_in(key, k)``, of which the proposal noise takes
``fold_in(., 0)`` and the uniform of the accept test ``fold_in(., 1)``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from ebm_jax.core import chain as chain_lib

Array = jax.Array


class Point(NamedTuple):
    """A batch of states with their log-density log_p_B and its gradient (shaped like x)."""
    x: Array
    log_p: Array
    grad: Array


def temperature(step_size, noise_std):
    """T = sigma^2 / (2 s): the temperature at which x + s grad f + sigma eps samples exp(f/T)."""
    return noise_std ** 2 / (2.0 * step_size)


def propose(point: Point, noise: Array, eps) -> Array:
    """The Langevin proposal x + eps^2 / 2 grad log_p(x) + eps n."""
    return point.x + 0.5 * eps ** 2 * point.grad + eps * noise


def log_accept_ratio(current: Point, proposed: Point, noise: Array, eps) -> Array:
    """log [pi(x') q(x | x') / (pi(x) q(x' | x))] per chain; ``noise`` is the n that made x'."""
    axes = tuple(range(1, current.x.ndim))
    log_q_fwd = -jnp.sum(jnp.square(noise), axis=axes) / 2
    back = current.x - proposed.x - 0.5 * eps ** 2 * proposed.grad
    log_q_back = -jnp.sum(jnp.square(back), axis=axes) / (2 * eps ** 2)
    return proposed.log_p - current.log_p + log_q_back - log_q_fwd


def accept(key: Array, log_ratio: Array, proposed, current):
    """Per chain, ``proposed`` where log u < log_ratio (u ~ U(0, 1) from ``key``; a NaN ratio
    rejects), else ``current``; both are pytrees of batch-first arrays. Returns (the chosen
    pytree, the accepted mask)."""
    u = jax.random.uniform(key, log_ratio.shape, log_ratio.dtype)
    ok = jnp.log(u) < jnp.nan_to_num(log_ratio, nan=-jnp.inf)
    pick = lambda a, b: jnp.where(ok.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
    return jax.tree_util.tree_map(pick, proposed, current), ok


def step(value_and_grad: Callable[[Array], tuple[Array, Array]], current: Point, key: Array,
         eps, constrain: Callable[[Array], Array] = lambda x: x,
         noise: Array | None = None) -> tuple[Point, Array]:
    """One MALA transition from ``current``: returns (the new point, the accepted mask).
    ``value_and_grad(x) -> (log_p_B, grad)``; the proposal noise is ``noise`` or drawn from
    ``fold_in(key, 0)``, the uniform from ``fold_in(key, 1)``."""
    if noise is None:
        noise = jax.random.normal(jax.random.fold_in(key, 0), current.x.shape, current.x.dtype)
    x_prop = constrain(propose(current, noise, eps))
    proposed = Point(x_prop, *value_and_grad(x_prop))
    log_ratio = log_accept_ratio(current, proposed, noise, eps)
    return accept(jax.random.fold_in(key, 1), log_ratio, proposed, current)


def tempered(energy_fn: Callable[[Array], Array], grad_fn: Callable[[Array], Array] | None,
             step_size, noise_std):
    """``(log_p, grad_log_p, eps)`` of log_p = f / T for a sampler's s and sigma (see the
    module docstring); ``grad_fn`` is grad_x sum_B f (default: ``jax.grad`` of ``energy_fn``)."""
    if jnp.ndim(noise_std) == 0 and noise_std == 0:
        raise ValueError("a Metropolis-corrected chain needs noise: sampling.noise_std > 0")
    t = temperature(step_size, noise_std)
    grad_fn = grad_fn or jax.grad(lambda x: jnp.sum(energy_fn(x)))
    return (lambda x: energy_fn(x) / t), (lambda x: grad_fn(x) / t), noise_std


def grad_norm(point: Point, t) -> Array:
    """Mean over chains of |grad f| (the gradient of f, not of f / T)."""
    axes = tuple(range(1, point.x.ndim))
    return jnp.mean(jnp.sqrt(jnp.sum(jnp.square(point.grad * t), axis=axes)))


def chain(energy_fn: Callable[[Array], Array], x0: Array, key: Array | None,
          num_steps: int | Array, step_size: float = 1.0, noise_std: float = 0.01, *,
          grad_fn: Callable[[Array], Array] | None = None, constrain=None,
          **loop_kwargs) -> chain_lib.ChainResult:
    """K MALA transitions on exp(f / T) from ``x0``, with the arguments of
    ``sampler.langevin`` (``noise`` replays the proposals' n; the accept test still draws from
    ``key``). Each transition evaluates f and its gradient once, at the proposal."""
    log_p, grad_log_p, eps = tempered(energy_fn, grad_fn, step_size, noise_std)
    value_and_grad = lambda x: (log_p(x), grad_log_p(x))
    t = temperature(step_size, noise_std)
    keep_in = constrain or (lambda x: x)

    def init(x):
        return tuple(Point(x, *value_and_grad(x)))

    def transition(state, k, n):
        current = Point(*state)
        new, ok = step(value_and_grad, current, jax.random.fold_in(key, k), eps, keep_in, n)
        return tuple(new), (grad_norm(current, t), jnp.mean(ok.astype(current.x.dtype)))

    return chain_lib.run(chain_lib.Kernel(init, transition, 2), x0, num_steps,
                         constrain=constrain, **loop_kwargs)
