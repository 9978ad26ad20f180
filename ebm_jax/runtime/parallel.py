"""Data parallelism with ``jit`` over a one-axis device mesh.

The state is replicated (``P()``), every batch and every set of chains is split along the
``data`` axis (``P('data')``), and XLA partitions the computation: each device runs its own
chains on its own share of the batch, and the mean over the global batch turns into an
all-reduce of the gradients. The same code runs on the CPU, one GPU, or all GPUs of a host.

Random numbers are drawn for the global array and partitioned (``jax_threefry_partitionable``,
on by default since JAX 0.5), so each device draws its own, distinct slice, and the values do
not depend on the number of devices: 1 and 8 devices give the same chains.
"""
from __future__ import annotations

from typing import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh over ``devices`` (all devices by default)."""
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P(DATA_AXIS))


def split_constraint(mesh: Mesh | None):
    """``x -> x`` constrained to be split along the mesh's data axis; None without a mesh."""
    if mesh is None:
        return None
    sharding = data_sharded(mesh)
    return lambda x: jax.lax.with_sharding_constraint(x, sharding)


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    n = mesh.devices.size
    if batch_size % n:
        raise ValueError(f"training.batch_size={batch_size} is not divisible by the {n} devices "
                         f"in use; choose a multiple of {n}")


def round_up(n: int, mesh: Mesh) -> int:
    """The least multiple of the mesh's device count that is at least ``n``.

    Padding a draw to it keeps the first ``n`` chains unchanged: with partitionable threefry a
    random value depends on its flat index only, not on the array's length."""
    d = mesh.devices.size
    return -(-int(n) // d) * d


def shard_rows(x: np.ndarray, mesh: Mesh) -> jax.Array:
    """The rows of ``x`` (the same array on every process) as one array split along the mesh's
    data axis, padded to a multiple of its devices by repeating the last row. Each process
    places only the rows of its own devices; the caller drops the padded rows of the result."""
    x = np.asarray(x)
    pad = round_up(len(x), mesh) - len(x)
    if pad:
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
    return jax.make_array_from_callback(x.shape, data_sharded(mesh), lambda index: x[index])


def shard_batch(batch: np.ndarray, mesh: Mesh) -> jax.Array:
    """Places this process's share of a batch, split over the mesh's data axis."""
    return jax.make_array_from_process_local_data(data_sharded(mesh), np.asarray(batch))


def replicate(tree, mesh: Mesh):
    """Copies a pytree to every device of the mesh."""
    return jax.device_put(tree, replicated(mesh))
