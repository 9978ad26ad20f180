"""Command-line flags shared by ``train.py`` and ``evaluate.py``.

Importing this module defines the flags; library code never imports it, so notebooks that
``import ebm_jax`` get no absl flags.
"""
from absl import flags

from ebm_jax.runtime import distributed

_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False,
    "Join JAX's multi-process runtime, detecting Slurm, Open MPI or Cloud TPU. Implied by "
    "--coordinator_address.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0, for clusters that are not detected.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes in the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, 0 .. n-1.")


def start_distributed_runtime() -> None:
    """Joins the multi-process runtime when the flags ask for it; call before any JAX work."""
    if _DISTRIBUTED.value or _COORDINATOR.value is not None:
        distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
