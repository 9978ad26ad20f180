"""log|det dM/dz| of the noise-free short-run flow M (see ``flow``), three ways.

- ``exact_logdet``: the Jacobian of M by forward mode, its columns pushed through the K steps
  ``chunk_size`` at a time, then ``slogdet``. Memory: one chunk of tangents through one step,
  plus the D x D Jacobian; it does not grow with K.
- ``per_step_logdet``: each step x + s grad f(x) has the symmetric Jacobian I + s H_k, with H_k
  the Hessian of f at x_k, so log|det dM/dz| = sum_k log|det(I + s H_k)|. The per-step terms
  show which steps carry the change of volume.
- ``stochastic_logdet``: log det(I + A) = sum_{n>=1} (-1)^(n+1) tr(A^n) / n with A = s H_k,
  each trace estimated by Hutchinson's v^T A^n v (Rademacher v), one Hessian-vector product
  per term. The series converges only when the spectral radius of s H_k is below 1; a power
  iteration estimates that radius at run time for every step. With ``roulette`` the series is
  continued past ``num_terms`` by a Russian roulette (term num_terms + m kept with probability
  q^m and weighted by q^-m), which makes the estimate unbiased; without it, the series is cut
  at ``num_terms``. Cost: Hessian-vector products only, so it scales to large images.

Every function takes a batch z_B... and an energy callable ``energy_fn(x_B...) -> f_B``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from ebm_jax.core import flow

Array = jax.Array
METHODS = ("exact", "per_step", "stochastic")


class LogDet(NamedTuple):
    """logdet_B: log|det dM/dz| per example. stderr_B: its standard error over probes (0 for
    the exact methods). per_step_BK: the terms log|det(I + s H_k)| (exact for ``per_step``,
    estimated for ``stochastic``; None for ``exact``). spectral_radius_B: the largest estimated
    spectral radius of s H_k over the steps (``stochastic`` only; else None)."""
    logdet_B: Array
    stderr_B: Array
    per_step_BK: Array | None
    spectral_radius_B: Array | None


def _series_coef(n: Array) -> Array:
    """(-1)^(n+1) / n for a float n, without a power of a negative base."""
    return jnp.where(jnp.mod(n, 2) == 1, 1.0, -1.0) / n


def _single(fn, shape):
    """``fn`` on batches, as a map of one flattened example."""
    return lambda v_D: fn(v_D.reshape((1,) + tuple(shape))).reshape(-1)


def chunked_jacobian(fn_D: Callable[[Array], Array], x_D: Array, chunk_size: int) -> Array:
    """The D_out x D_in Jacobian of ``fn_D`` (a flat vector to a flat vector) at ``x_D`` by
    forward mode, ``chunk_size`` basis tangents at a time (``lax.map`` over the chunks,
    ``vmap`` within one), so that memory holds one chunk of tangents, not D_in of them."""
    dim = x_D.shape[0]
    chunk = max(1, min(int(chunk_size), dim))
    num_chunks = -(-dim // chunk)

    def columns(i):
        basis_CD = jax.nn.one_hot(i * chunk + jnp.arange(chunk), dim, dtype=x_D.dtype)
        return jax.vmap(lambda t: jax.jvp(fn_D, (x_D,), (t,))[1])(basis_CD)

    jt = jax.lax.map(columns, jnp.arange(num_chunks))
    return jt.reshape((num_chunks * chunk,) + jt.shape[2:])[:dim].T


def exact_logdet(energy_fn: Callable[[Array], Array], z: Array, *, num_steps: int,
                 step_size: float, chunk_size: int = 64, examples_per_pass: int = 1,
                 unroll: int | bool = 1) -> LogDet:
    """log|det dM/dz| from the full Jacobian (chunked forward mode, then ``slogdet``),
    ``examples_per_pass`` examples at a time (vmapped; 1 keeps the memory to one example)."""
    shape = z.shape[1:]
    m_D = _single(lambda v: flow.flow_map(energy_fn, v, num_steps=num_steps,
                                          step_size=step_size, remat=False, unroll=unroll), shape)

    def one(z_D):
        return jnp.linalg.slogdet(chunked_jacobian(m_D, z_D, chunk_size))[1]

    logdet_B = jax.lax.map(one, z.reshape(z.shape[0], -1), batch_size=examples_per_pass)
    return LogDet(logdet_B, jnp.zeros_like(logdet_B), None, None)


def per_step_logdet(energy_fn: Callable[[Array], Array], z: Array, *, num_steps: int,
                    step_size: float, chunk_size: int = 64,
                    examples_per_pass: int = 1) -> LogDet:
    """sum_k log|det(I + s H_k)| along the path, each Hessian built by chunked forward mode
    over the gradient; ``examples_per_pass`` examples at a time (as in ``exact_logdet``)."""
    shape = z.shape[1:]
    grad_D = _single(flow.energy_grad(energy_fn), shape)
    step_D = _single(flow.flow_step(energy_fn, step_size), shape)

    def one(z_D):
        def body(x_D, _):
            hess = chunked_jacobian(grad_D, x_D, chunk_size)
            eye = jnp.eye(x_D.shape[0], dtype=x_D.dtype)
            term = jnp.linalg.slogdet(eye + step_size * 0.5 * (hess + hess.T))[1]
            return step_D(x_D), term

        _, terms_K = jax.lax.scan(body, z_D, None, length=int(num_steps))
        return terms_K

    per_step_BK = jax.lax.map(one, z.reshape(z.shape[0], -1), batch_size=examples_per_pass)
    logdet_B = per_step_BK.sum(1)
    return LogDet(logdet_B, jnp.zeros_like(logdet_B), per_step_BK, None)


def stochastic_logdet(energy_fn: Callable[[Array], Array], z: Array, key: Array, *,
                      num_steps: int, step_size: float, num_terms: int = 8,
                      num_probes: int = 4, roulette: bool = True, continue_prob: float = 0.5,
                      max_terms: int = 64, power_iters: int = 10) -> LogDet:
    """The power-series-plus-Hutchinson estimate of sum_k log det(I + s H_k), whole batch at
    once (examples are independent, so a batch Hessian-vector product is per example).

    Each of ``num_probes`` probes draws its own Rademacher vector and, with ``roulette``, its
    own series length per step, so the probes' totals are independent and ``stderr_B`` is their
    standard error. ``max_terms`` caps the roulette (the chance of reaching it is
    ``continue_prob ** (max_terms - num_terms)``, the only bias left). ``spectral_radius_B`` is the largest
    power-iteration estimate of the spectral radius of s H_k over the steps; the series
    converges only where it is below 1 (a power iteration approaches the radius from below, so
    a value near 1 is already a warning).
    """
    grad_fn = flow.energy_grad(energy_fn)
    batch, axes = z.shape[0], tuple(range(1, z.ndim))
    num_terms, power_iters = int(num_terms), int(power_iters)
    max_extra = max(int(max_terms) - num_terms, 0) if roulette else 0
    q = float(continue_prob)

    def dot(a, b):
        return jnp.sum(a * b, axis=axes)

    def unit(u):
        norm_B = jnp.sqrt(dot(u, u))
        return u / norm_B.reshape((-1,) + (1,) * (u.ndim - 1)), norm_B

    def one_step(x, k):
        k_v, k_n, k_p = jax.random.split(jax.random.fold_in(key, k), 3)
        # One Hessian-vector product per iteration serves the probes and the power iteration.
        sh_P = jax.vmap(lambda v: step_size * jax.jvp(grad_fn, (x,), (v,))[1])
        v_P = jax.random.rademacher(k_v, (num_probes,) + x.shape, x.dtype)
        u, _ = unit(jax.random.normal(k_p, x.shape, x.dtype))
        if max_extra:
            # Term num_terms + m is kept while m <= m_PB, where P(m_PB >= m) = q^m.
            u_PB = jax.random.uniform(k_n, (num_probes, batch), x.dtype, 1e-30, 1.0)
            m_PB = jnp.minimum(jnp.floor(jnp.log(u_PB) / jnp.log(q)), max_extra)
        else:
            m_PB = jnp.zeros((num_probes, batch), x.dtype)
        last = jnp.maximum(num_terms + jnp.max(m_PB), power_iters)

        def body(c):
            n, w, u, total_PB, rho_B = c
            out = sh_P(jnp.concatenate([w, u[None]], axis=0))
            w, hu = out[:num_probes], out[num_probes]
            m = n - num_terms
            weight = jnp.where(m > 0, q ** -jnp.maximum(m, 0.0), 1.0)
            term_PB = _series_coef(n) * weight * jax.vmap(dot)(v_P, w)
            total_PB = total_PB + jnp.where(m <= m_PB, term_PB, 0.0)
            hu_unit, norm_B = unit(hu)
            power = n <= power_iters
            return (n + 1, w, jnp.where(power, hu_unit, u), total_PB,
                    jnp.where(power, norm_B, rho_B))

        init = (jnp.ones((), x.dtype), v_P, u, jnp.zeros((num_probes, batch), x.dtype),
                jnp.zeros((batch,), x.dtype))
        _, _, _, total_PB, rho_B = jax.lax.while_loop(lambda c: c[0] <= last, body, init)
        return x + step_size * grad_fn(x), (total_PB, rho_B)

    _, (total_KPB, rho_KB) = jax.lax.scan(one_step, z, jnp.arange(int(num_steps)))
    totals_PB = total_KPB.sum(0)
    logdet_B = totals_PB.mean(0)
    stderr_B = (totals_PB.std(0, ddof=1) / jnp.sqrt(num_probes) if num_probes > 1
                else jnp.full_like(logdet_B, jnp.nan))
    return LogDet(logdet_B, stderr_B, total_KPB.mean(1).T, rho_KB.max(0))


def logdet(method: str, energy_fn: Callable[[Array], Array], z: Array, key: Array | None = None,
           *, num_steps: int, step_size: float, **kwargs) -> LogDet:
    """Dispatches to ``exact_logdet``, ``per_step_logdet`` or ``stochastic_logdet`` (which
    needs ``key``); ``kwargs`` are the chosen method's own settings."""
    if method == "exact":
        return exact_logdet(energy_fn, z, num_steps=num_steps, step_size=step_size, **kwargs)
    if method == "per_step":
        return per_step_logdet(energy_fn, z, num_steps=num_steps, step_size=step_size, **kwargs)
    if method == "stochastic":
        return stochastic_logdet(energy_fn, z, key, num_steps=num_steps, step_size=step_size,
                                 **kwargs)
    raise ValueError(f"unknown log-determinant method {method!r}; choose one of {METHODS}")
