"""The replay buffer of persistent chains (Du and Mordatch, 2019; Grathwohl et al., 2020).

The buffer holds N chains. Each update draws m distinct rows, restarts each of them from p_0
with probability ``reinit_prob``, runs the K-step chain from there and writes the end states
back into the same rows. Keys of one draw: rows ``fold_in(key, 0)``, fresh starts
``fold_in(key, 1)``, the restart coin ``fold_in(key, 2)``; all are drawn for the global batch,
so the draw does not depend on how many devices or processes share it.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp

from ebm_jax.core.prior import Prior

Array = jax.Array


class Draw(NamedTuple):
    """The starts x0 of one update's chains, the buffer rows they came from (``index``) and
    which of them restarted from p_0 (``restarted``, boolean per chain)."""
    x0: Array
    index: Array
    restarted: Array


def init(key: Array, size: int, example_shape: Sequence[int], prior: Prior) -> Array:
    """A buffer of ``size`` chains at their start x_0 ~ p_0."""
    return prior.sample(key, (int(size),) + tuple(example_shape))


def draw(key: Array, buffer: Array, num: int, prior: Prior, reinit_prob: float) -> Draw:
    """``num`` distinct rows of ``buffer``, each replaced by a fresh x_0 ~ p_0 with probability
    ``reinit_prob``."""
    index = jax.random.choice(jax.random.fold_in(key, 0), buffer.shape[0], (num,), replace=False)
    fresh = prior.sample(jax.random.fold_in(key, 1), (num,) + buffer.shape[1:])
    restarted = jax.random.uniform(jax.random.fold_in(key, 2), (num,)) < reinit_prob
    x0 = jnp.where(restarted.reshape((-1,) + (1,) * (buffer.ndim - 1)), fresh, buffer[index])
    return Draw(x0, index, restarted)


def write(buffer: Array, index: Array, x: Array) -> Array:
    """The buffer with rows ``index`` set to the chains' end states ``x``."""
    return buffer.at[index].set(x.astype(buffer.dtype))
