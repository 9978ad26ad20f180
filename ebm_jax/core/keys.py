"""The random keys of a run, derived from the seed and the step, never carried or reused.

``init_key(seed)`` initialises the state; update ``t`` uses ``step_key(seed, t)`` and folds in
a small integer per use (chains, data noise, dynamic K, ...), as each family documents. A
resumed run therefore draws exactly the numbers of an uninterrupted one. Chains are drawn for
the global array and partitioned across devices (``runtime/parallel.py``), so every device gets
its own numbers without a device index in the key.
"""
from __future__ import annotations

import jax

Array = jax.Array


def init_key(seed: int) -> Array:
    """The key of the state's initialisation: ``fold_in(key(seed), 0)``."""
    return jax.random.fold_in(jax.random.key(seed), 0)


def step_key(seed: int | Array, step: Array) -> Array:
    """The key of update ``step``: ``fold_in(fold_in(key(seed), 1), step)``."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), 1), step)


def plot_key(seed: int, step: int) -> Array:
    """The key of the training pictures after ``step`` updates: ``fold_in(fold_in(key(seed),
    2), step)``."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), 2), step)
