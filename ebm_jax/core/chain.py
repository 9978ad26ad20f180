"""The loop every sampling method shares: K transitions of a Markov kernel, with dynamic K,
snapshots, the whole path or replayed noise, and per-step statistics averaged over the run.

A method (``sampler.langevin``, ``mala.chain``, ``hmc.chain``) supplies a ``Kernel``: the state
it carries (the chain's x first, then whatever it caches, such as f(x) and its gradient) and one
transition. Everything else about running a chain is here, once.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

Array = jax.Array


class ChainResult(NamedTuple):
    """What a chain returns.

    x: the final states, shaped like x_0.
    snapshots: the states after each step in ``snapshot_steps`` (step 0 is x_0), stacked on a
      leading axis; the whole path (K + 1 states) when ``return_path``; otherwise None.
    grad_norm: mean over chains and executed steps of the per-chain L2 norm of grad_x f.
    num_steps: the number of steps actually run (the dynamic K).
    accept_rate: for Metropolis-corrected methods, the fraction of proposals accepted, over
      chains and executed steps; None for the unadjusted Langevin chain.
    """
    x: Array
    snapshots: Array | None
    grad_norm: Array
    num_steps: Array
    accept_rate: Array | None = None


class Kernel(NamedTuple):
    """``init(x_0) -> state``, a tuple whose first entry is x; ``step(state, k, eps) -> (state,
    stats)``: transition k (0-based), with ``eps`` the replayed noise of that step or None, and
    ``stats`` a tuple of scalars that the loop averages over the executed steps (the first is
    the gradient norm, the second, if any, the acceptance rate)."""
    init: Callable[[Array], tuple]
    step: Callable[[tuple, Array, Any], tuple[tuple, tuple]]
    num_stats: int = 1


def run(kernel: Kernel, x0: Array, num_steps: int | Array, *, num_steps_max: int | None = None,
        num_steps_min: int = 0, noise: Array | None = None, snapshot_steps: Sequence[int] = (),
        return_path: bool = False, constrain: Callable[[Array], Array] | None = None,
        unroll: int | bool = 1) -> ChainResult:
    """Runs ``kernel`` for K = ``num_steps`` transitions from ``x0``; the keyword arguments are
    those of ``sampler.langevin``, which documents them."""
    static_k = num_steps_max is None
    if static_k:
        if not isinstance(num_steps, int):
            raise TypeError("num_steps must be a Python int unless num_steps_max is given")
        length = num_steps
    else:
        length = int(num_steps_max)
    if noise is not None and noise.shape != (length,) + x0.shape:
        raise ValueError(f"noise must have shape {(length,) + x0.shape}, got {noise.shape}")
    keep = tuple(int(s) for s in snapshot_steps)
    if any(s < 0 or s > length for s in keep):
        raise ValueError(f"snapshot_steps must lie in [0, {length}], got {keep}")
    constrain = constrain or (lambda x: x)
    zeros = (jnp.zeros((), x0.dtype),) * kernel.num_stats

    def skip(state, k, eps):
        return state, zeros

    def make_body(conditional: bool):
        def body(carry, inputs):
            state, sums, snaps = carry
            k, eps = inputs
            if conditional:
                state, stats = jax.lax.cond(k < num_steps, kernel.step, skip, state, k, eps)
            else:
                state, stats = kernel.step(state, k, eps)
            x = state[0]
            if keep:
                hit = jnp.asarray(keep) == k + 1
                snaps = jnp.where(hit.reshape((-1,) + (1,) * x.ndim), x[None], snaps)
            sums = tuple(a + b for a, b in zip(sums, stats))
            return (state, sums, snaps), (x if return_path else None)

        return body

    x0 = constrain(x0)
    snaps0 = None
    if keep:
        snaps0 = jnp.broadcast_to(x0[None], (len(keep),) + x0.shape)
    head = length if static_k else min(max(int(num_steps_min), 0), length)
    carry, paths = (kernel.init(x0), zeros, snaps0), [x0[None]]
    for lo, hi, conditional in ((0, head, False), (head, length, True)):
        if hi > lo:
            eps = None if noise is None else noise[lo:hi]
            carry, path = jax.lax.scan(make_body(conditional), carry,
                                       (jnp.arange(lo, hi), eps), unroll=unroll)
            paths.append(path)
    state, sums, snaps = carry
    k_run = jnp.asarray(length if static_k else jnp.clip(num_steps, head, length))
    means = [s / jnp.maximum(k_run, 1) for s in sums]
    if return_path:
        snaps = jnp.concatenate(paths, axis=0)
    return ChainResult(state[0], snaps, means[0], k_run, means[1] if len(means) > 1 else None)
