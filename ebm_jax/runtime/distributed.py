"""Multi-process runs on JAX's distributed runtime (several hosts, or several processes on one).

Every process runs the same program. ``initialize`` joins the runtime; after it,
``jax.devices()`` lists the devices of all processes, and the one-axis mesh of
``ebm_jax.runtime.parallel`` spans them. Each process then

- reads only its own rows of every global batch (``Dataset.batch(..., process_index,
  process_count)``), which ``parallel.shard_batch`` assembles into one global array;
- draws its share of the chains: random numbers are drawn for the global array and
  partitioned, so every device of every process gets its own, distinct slice;
- takes part in every Orbax save and restore, while process 0 alone writes logs and pictures.
"""
from __future__ import annotations

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, cpu_collectives: str = "gloo") -> None:
    """Joins JAX's distributed runtime; call it before any other JAX call.

    With no arguments the runtime detects Slurm, Open MPI and Cloud TPU by itself. Elsewhere
    give all three: ``coordinator_address`` ('host:port' of process 0), ``num_processes`` and
    this ``process_id``. ``cpu_collectives`` picks the CPU backend's cross-process collectives
    ('gloo' or 'mpi'); GPUs and TPUs use their own.
    """
    given = [coordinator_address is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise ValueError("give all of coordinator_address, num_processes and process_id, or none "
                         "of them (to detect Slurm, Open MPI or Cloud TPU)")
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
    logging.info("process %d of %d: %d local and %d global devices", jax.process_index(),
                 jax.process_count(), jax.local_device_count(), jax.device_count())


def is_main_process() -> bool:
    """True on the process that writes logs, pictures and evaluation files."""
    return jax.process_index() == 0


def gather(x: jax.Array) -> np.ndarray:
    """The whole of a (possibly multi-process) sharded array, as numpy on every process."""
    if jax.process_count() == 1 or x.is_fully_addressable:
        return np.asarray(jax.device_get(x))
    if x.is_fully_replicated:
        return np.asarray(x.addressable_data(0))
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
