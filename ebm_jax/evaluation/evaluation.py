"""Evaluation modes of a trained workdir; each writes ``WORKDIR/eval/<mode>.json``.

Every mode draws fresh short-run chains from noise (never training samples) and records the
exact protocol it used: K, s, sigma, p_0, number of samples, seed and checkpoint step.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from typing import Any, Callable

import jax
import ml_collections
import numpy as np

from ebm_jax.core import ais, sampler
from ebm_jax.runtime import checkpointing, distributed, parallel
from ebm_jax import data, plotting
from ebm_jax.evaluation import digit_features, likelihood, stats


@dataclasses.dataclass(frozen=True)
class Request:
    """What one evaluation call asks for. ``options`` holds the mode's own settings (for example
    ``num_images`` or ``logdet``); a mode reads only the keys it knows and ignores ``None``."""
    num_samples: int
    seed: int
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def option(self, name: str, default=None):
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
            raise KeyError(f"--config.{path}: the run's config has no field {path!r}")
        node[leaf] = value
    return config


def protocol(config, num_samples: int, seed: int, step: int) -> dict:
    """K, s, sigma and p_0 exactly as the sampler reads them, plus what was sampled."""
    chain = sampler.sampling_kwargs(config.sampling)
    chain.pop("unroll")  # how the loop is compiled, not what it computes
    return {"K": int(config.sampling.num_steps), **chain, "num_samples": int(num_samples),
            "seed": int(seed), "checkpoint_step": int(step)}


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


def evaluate_samples(run, config, out_dir: str, request: Request) -> dict:
    num_samples, seed = request.num_samples, request.seed
    x = draw_samples(run, config, num_samples, seed)
    np.save(os.path.join(out_dir, "samples.npy"), x)
    result = {"mode": "samples", "protocol": protocol(config, num_samples, seed, run.step),
              "stats": stats.sample_summary(x)}
    log_density = None
    if not run.is_image:
        toy = data.TOY_DENSITIES.get(config.data.dataset)
        if toy is not None:
            log_density = toy.log_density
            truth = toy.sample(np.random.default_rng(seed), num_samples)
            n = min(num_samples, 2000)
            result["stats"]["mmd2_vs_truth"] = stats.mmd2(x[:n], truth[:n])
            result["stats"]["mean_true_log_density"] = float(np.mean(
                np.asarray(log_density(x[np.isfinite(x).all(1)]))))
    plotting.save_samples(x, os.path.join(out_dir, "samples.png"), run.is_image, log_density,
                          title=f"K={config.sampling.num_steps}")
    return result


# A mode is ``fn(run, config, out_dir, request) -> dict`` with a flat ``"stats"`` dict of numbers;
# ``evaluate`` writes the dict to ``out_dir/<mode>.json``.
MODES: dict[str, Callable[..., dict]] = {
    "samples": evaluate_samples,
    "bpd": likelihood.evaluate_bpd,
    "ais": ais.evaluate_ais,
}


def _register_modes():
    # The mode modules import this one, so they are registered once it is defined.
    from ebm_jax.evaluation.modes import (density, diagnostics, inception_metrics, interpolation,
                                    reconstruction, report, transition)
    MODES.update(transition=transition.evaluate_transition,
                 interpolation=interpolation.evaluate_interpolation,
                 reconstruction=reconstruction.evaluate_reconstruction,
                 density=density.evaluate_density,
                 diagnostics=diagnostics.evaluate_diagnostics,
                 fid=inception_metrics.evaluate_fid,
                 fid_stats=inception_metrics.evaluate_fid_stats,
                 all=report.evaluate_all)


_register_modes()


def default_num_samples(config, mode: str) -> int:
    """``config.eval.<mode>_num_samples`` where the config has it, else ``eval.num_samples``;
    fid on a digit data set takes ``digit_features.default_num_samples``."""
    if mode == "fid" and digit_features.network_for(config.data.dataset):
        return digit_features.default_num_samples(config)
    return int(config.eval.get(f"{mode}_num_samples", 0) or config.eval.num_samples)


def run_mode(run, config, out_dir: str, mode: str, request: Request) -> dict:
    """Runs one mode and writes its dict to ``out_dir/<mode>.json``."""
    result = MODES[mode](run, config, out_dir, request)
    with open(os.path.join(out_dir, f"{mode}.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


def evaluate(workdir: str, mode: str = "samples", *, num_samples: int | None = None,
             seed: int | None = None, step: int | None = None,
             overrides: dict[str, Any] | None = None, **options) -> dict:
    """Runs one evaluation mode on the checkpoint of ``workdir`` and writes its files.

    ``options`` are the mode's own settings (see ``Request``); ``num_samples`` defaults to
    ``default_num_samples``."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {sorted(MODES)}")
    run = checkpointing.load_workdir(workdir, step)
    config = apply_overrides(run.config, overrides)
    num_samples = int(num_samples or default_num_samples(config, mode))
    seed = int(config.eval.seed if seed is None else seed)
    out_dir = os.path.join(workdir, "eval")
    request = Request(num_samples, seed, options)
    if distributed.is_main_process():
        os.makedirs(out_dir, exist_ok=True)
        result = run_mode(run, config, out_dir, mode, request)
    else:
        # Every process runs the mode, for its share of the collective computations; the
        # files of the others are written to a scratch directory and dropped.
        with tempfile.TemporaryDirectory() as scratch:
            result = run_mode(run, config, scratch, mode, request)
    summary = ", ".join(f"{k}={v:.4g}" for k, v in result["stats"].items())
    result["summary_line"] = f"{mode} at step {run.step} -> {out_dir}; {summary}"
    return result
