"""What every evaluation mode shares: the request, the registration record of a mode, the
protocol it records, and fresh short-run chains drawn through the run's own sampler.

Every mode draws fresh samples from noise (never training samples) and records the exact
protocol it used: K, s, sigma, p_0, number of samples, seed and checkpoint step. For a run
trained with persistent chains, ``--mode=samples`` and ``--mode=fid`` also score the saved
replay buffer (``buffer_samples``), with ``buffer_``-prefixed stats (``SOURCES``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import ml_collections
import numpy as np

from ebm_jax import data
from ebm_jax.core import sampler
from ebm_jax.evaluation import digit_features
from ebm_jax.evaluation import options as options_lib
from ebm_jax.runtime import distributed, parallel, validation


@dataclasses.dataclass(frozen=True)
class Request:
    """What one evaluation call asks for. ``options`` holds the mode's own settings (for example
    ``num_images`` or ``logdet``); a mode reads only the keys it knows and ignores ``None``."""
    num_samples: int
    seed: int
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def option(self, name: str | options_lib.Option, default=None):
        """The value given for ``name``, else ``default``; for a declared option (``name`` an
        ``options.Option``), ``default`` falls back on the declared one."""
        if isinstance(name, options_lib.Option):
            name, default = name.name, name.default if default is None else default
        value = self.options.get(name)
        return default if value is None else value


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict[str, Any]):
    """Returns a copy of ``config`` with flat ``{'a.b': value}`` overrides applied."""
    config = ml_collections.ConfigDict(config.to_dict())
    for path, value in (overrides or {}).items():
        *parents, leaf = path.split(".")
        node = config
        for p in parents:
            node = node[p]
        if leaf not in node:
            raise validation.InputError(
                f"--config.{path}: the run's config has no field {path!r}; its fields are "
                "those of configs/default.py")
        node[leaf] = value
    return config


def protocol(config, num_samples: int, seed: int, step: int) -> dict:
    """K, s, sigma and p_0 exactly as the sampler reads them, plus what was sampled."""
    chain = sampler.sampling_kwargs(config.sampling)
    chain.pop("unroll")  # how the loop is compiled, not what it computes
    prior = chain.pop("prior")
    return {"K": sampler.num_steps(config.sampling), **chain, **prior.describe(),
            "num_samples": int(num_samples), "seed": int(seed), "checkpoint_step": int(step)}


def encoder_protocol(run, config, num_samples: int, seed: int, step: int) -> dict:
    """The record of a mode that encodes x into z: a latent family's inference chain
    (``encoder_protocol``), not its synthesis chain, plus what was encoded."""
    return {**run.family.encoder_protocol(config),
            "num_samples": int(num_samples), "seed": int(seed), "checkpoint_step": int(step)}


def batch_keys(num_samples: int, seed: int, batch_size: int):
    """``(key, n)`` per batch: batch ``i`` of ``n <= batch_size`` chains uses
    ``fold_in(key(seed), i)``, the convention of every mode that draws fresh chains."""
    key = jax.random.key(seed)
    for i, start in enumerate(range(0, num_samples, batch_size)):
        yield jax.random.fold_in(key, i), min(batch_size, num_samples - start)


def mesh_constraint(mesh, num: int):
    """A sharding constraint splitting ``num`` chains over ``mesh``, or None when ``num`` does
    not divide by its devices (the chains then stay whole; their values are the same)."""
    if mesh is None or num % mesh.devices.size:
        return None
    return parallel.split_constraint(mesh)


def draw_chains(run, config, num_samples: int, seed: int, *, batch_size: int = 1024,
                snapshot_steps=()) -> tuple[np.ndarray, np.ndarray | None]:
    """``num_samples`` fresh short-run chains (see ``batch_keys``): the final states and the
    states at ``snapshot_steps`` (step axis first), or None without snapshots.

    Each batch is split over the devices of ``run.mesh`` (by default all devices of all
    processes) and gathered, so every process returns the same chains, each drawn once. A
    batch is padded to a multiple of the device count, which leaves its chains unchanged
    (``parallel.round_up``)."""
    mesh = run.mesh
    sample = run.make_sampler(config, snapshot_steps)
    xs, snaps = [], []
    for key, n in batch_keys(num_samples, seed, batch_size):
        out = sample(run.params, key, parallel.round_up(n, mesh))
        xs.append(distributed.gather(out.x)[:n])
        if snapshot_steps:
            snaps.append(distributed.gather(out.snapshots)[:, :n])
    return (np.concatenate(xs, axis=0),
            np.concatenate(snaps, axis=1) if snapshot_steps else None)


def draw_samples(run, config, num_samples: int, seed: int, batch_size: int = 1024) -> np.ndarray:
    """``num_samples`` fresh short-run samples (see ``draw_chains``)."""
    return draw_chains(run, config, num_samples, seed, batch_size=batch_size)[0]


# What a persistent run's evaluation reports under each prefix of its stats.
SOURCES = {"": "short-run chains from p_0 with the training K (sampling.num_steps)",
           "buffer_": "chains of the saved replay buffer, rows drawn without replacement"}


def buffer_samples(run, num_samples: int, seed: int) -> np.ndarray | None:
    """``num_samples`` chains (at most the buffer's size) of a persistent run's saved replay
    buffer, rows drawn without replacement by ``numpy.random.default_rng(seed)``; None for a
    run without one (``training.chains='short_run'``, other families)."""
    if run.bank is None or not run.family.persistent:
        return None
    bank = distributed.gather(run.bank)
    rows = np.random.default_rng(seed).choice(len(bank), min(num_samples, len(bank)),
                                              replace=False)
    return bank[np.sort(rows)]


def default_num_samples(config, mode: str) -> int:
    """``config.eval.<mode>_num_samples`` where the config has it, else ``eval.num_samples``;
    fid and transition (which scores each K2 with the same network) on a digit data set take
    ``digit_features.default_num_samples``."""
    if mode in ("fid", "transition") and digit_features.network_for(config.data.dataset):
        return digit_features.default_num_samples(config)
    return int(config.eval.get(f"{mode}_num_samples", 0) or config.eval.num_samples)


@dataclasses.dataclass(frozen=True)
class Mode:
    """An evaluation mode: ``run(loaded_run, config, out_dir, request) -> dict`` with a flat
    ``"stats"`` dict of numbers, written to ``out_dir/<name>.json`` by the runner.

    ``needs``: the family capabilities it takes from the run (``families.base``); ``data``:
    ``image``, ``toy`` (a 1-D or 2-D toy density) or ``any``; ``check(run, config, request)``
    raises InputError for bad input before anything is written; ``in_all``: whether
    ``--mode=all`` runs it (the slow ones are run on their own); ``options``: the settings it
    takes from the command line (``options.py``), whose flags and checks are built from them."""
    name: str
    run: Callable[..., dict]
    summary: str
    needs: frozenset = frozenset()
    data: str = "any"
    check: Callable[..., None] | None = None
    in_all: bool = True
    options: tuple[options_lib.Option, ...] = ()

    def refusal(self, run) -> str | None:
        """Why this mode does not apply to ``run`` (one line), or None."""
        for capability in sorted(self.needs):
            reason = run.family.refuse(capability)
            if reason:
                return f"--mode={self.name} does not apply: {reason} ({self.summary})"
        if self.data == "image" and not run.is_image:
            return f"--mode={self.name} does not apply: it needs an image model"
        if self.data == "toy" and not is_toy(run):
            return (f"--mode={self.name} does not apply: it needs a model of a 1-D or 2-D toy "
                    "density")
        return None


def is_toy(run) -> bool:
    return (not run.is_image and run.config.data.dataset in data.TOY_DENSITIES
            and run.data_shape[0] in (1, 2))
