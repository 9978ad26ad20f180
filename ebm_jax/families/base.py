"""What a model family is: the one part of a run that varies.

The training loop, the divergence guard, checkpoints and the evaluation modes are written once
and depend on a ``Family`` alone (score_sde's ``get_step_fn`` is the model for this). A family
supplies:

- its state: ``init_state(key, tx, meta)`` and ``state_shardings(mesh, meta)``, where ``meta``
  holds what the state's shapes depend on beyond the config (``state_meta``: for instance the
  rows of a warm-start bank), saved in the workdir's ``meta.json``;
- its update: ``make_update(tx, mesh, meta)`` returns the jitted ``(state, batch) -> (state,
  metrics)``;
- its sampler, for pictures and evaluation: ``make_sampler(config, mesh=..., snapshot_steps=...)``
  returns ``sample(params, key, num) -> ChainResult`` of fresh samples of x;
- the statistics the guard checks (``guard_spec``) and the progress bar shows
  (``progress_fields``);
- what it can be evaluated on (``capabilities``), and the functions behind them.

A new family is one module that subclasses ``Family`` plus one line in ``registry.py``.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable, ClassVar, NamedTuple, Sequence

import flax.struct
import jax
import optax

from ebm_jax.runtime import parallel

Array = jax.Array

# What evaluation modes can ask of a family (``Family.capabilities``):
ENERGY = "energy"                  # ``energy(params, x_B) -> f_B``: the EBM's density exp f
FLOW = "flow"                      # the noise-free sampler is a flow of x_0 (bits/dim)
SNAPSHOTS = "snapshots"            # the sampler can keep the chain's states at given steps
INTERPOLATION = "interpolation"    # ``interpolate``: samples from z_rho between two starts
RECONSTRUCTION = "reconstruction"  # ``make_reconstructor``: x -> its reconstruction
INFERENCE = "inference"            # ``make_encoder``: x -> its inferred latent code z
LATENT = "latent"                  # ``latent_dim``: x is decoded from a code z of that size
ENERGY_PRIOR = "energy_prior"      # ``model.log_prior(params, z)``: u(z) - |z|^2 / 2, unnormalised


class TrainState(flax.struct.PyTreeNode):
    """The learning state of every family. ``bank`` is family-specific persistent state (the
    latent families' warm-start codes, one per training example; the EBM's replay buffer of
    persistent chains), None where there is none."""
    step: Array
    params: Any
    opt_state: Any
    bank: Array | None = None


class Batch(NamedTuple):
    """One update's share of the data: the examples ``x`` and their indices in the data set,
    both split along the mesh's data axis."""
    x: Array
    index: Array


class Reconstruction(NamedTuple):
    """What a family's reconstructor returns for targets x_B: ``x`` the reconstructions,
    ``z`` the codes found, ``snapshots`` the reconstructions along the search (iterations
    ``snapshot_iters``; None where there is no search), and ``stats_B`` per-example figures
    of the family's own (a dict of arrays)."""
    x: Array
    z: Array
    snapshots: Array | None = None
    snapshot_iters: tuple[int, ...] = ()
    stats_B: dict = {}


@dataclasses.dataclass(frozen=True)
class GuardSpec:
    """The metrics that show divergence: ``finite`` must stay finite; each ``(statistic,
    field)`` of ``bounds`` trips when |statistic| exceeds the guard config's ``field`` (0:
    off); each of ``growth`` trips when |statistic| grows past ``guard.max_growth`` times its
    recent scale (``training.guard.Growth``); ``collapse``, when below ``guard.collapse_std``,
    warns that the samples collapsed."""
    finite: tuple[str, ...]
    bounds: tuple[tuple[str, str], ...] = ()
    growth: tuple[str, ...] = ()
    collapse: str | None = None


class Family(abc.ABC):
    """Base class of the model families; see the module docstring for the contract."""
    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]] = frozenset()
    guard_spec: ClassVar[GuardSpec]
    progress_fields: ClassVar[dict[str, str]] = {}
    persistent: bool = False  # chains that start from a replay buffer (``TrainState.bank``)

    def __init__(self, config, data_shape: Sequence[int]):
        self.config = config
        self.data_shape = tuple(int(d) for d in data_shape)

    def with_config(self, config) -> Family:
        """This family for the same data, with another config (say, other chain settings)."""
        return type(self)(config, self.data_shape)

    def state_meta(self, num_examples: int, mesh) -> dict:
        """What the state's shapes need beyond the config, saved in ``meta.json``."""
        return {}

    @abc.abstractmethod
    def init_params(self, key: Array):
        """The network parameters drawn with ``key``."""

    def init_state(self, key: Array, tx: optax.GradientTransformation,
                   meta: dict | None = None) -> TrainState:
        params = self.init_params(key)
        return TrainState(jax.numpy.zeros((), jax.numpy.int32), params, tx.init(params))

    def state_shardings(self, mesh, meta: dict | None = None) -> TrainState:
        """Everything replicated; families with per-example state split it like the data."""
        rep = parallel.replicated(mesh)
        return TrainState(rep, rep, rep, None)

    @abc.abstractmethod
    def make_update(self, tx: optax.GradientTransformation, mesh=None, meta: dict | None = None
                    ) -> Callable[[TrainState, Batch], tuple[TrainState, dict]]:
        """The jitted learning update ``(state, batch) -> (state, metrics)``, its state placed
        on ``mesh`` as ``state_shardings(mesh, meta)`` says."""

    @abc.abstractmethod
    def make_sampler(self, config=None, *, mesh=None, snapshot_steps: Sequence[int] = ()):
        """``sample(params, key, num) -> ChainResult`` of fresh samples of x with the chain
        settings of ``config`` (default: the family's own); with a mesh, ``num`` must be a
        multiple of its devices."""

    def describe(self) -> str:
        """One phrase for the start-up log line."""
        return self.name

    def refuse(self, capability: str) -> str | None:
        """Why a capability is missing (None when the family has it)."""
        if capability in self.capabilities:
            return None
        return f"a {self.name} run has no {capability}"


def bank_meta(rows: int, mesh) -> dict:
    """``state_meta`` of a family with a bank of ``rows`` rows: rounded up to split across the
    mesh's devices."""
    return {"bank_size": parallel.round_up(rows, mesh)}


def bank_sharding(mesh, meta: dict | None):
    """A bank split along the data axis like the data, or replicated where its rows
    (``meta['bank_size']``) do not divide over the devices (a workdir trained on another
    device count)."""
    rows = int((meta or {}).get("bank_size", 0))
    if rows % mesh.devices.size:
        return parallel.replicated(mesh)
    return parallel.data_sharded(mesh)

