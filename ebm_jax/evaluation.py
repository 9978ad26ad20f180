"""Evaluation modes of a trained workdir; each writes ``WORKDIR/eval/<mode>.json``.

Every mode draws fresh short-run chains from noise (never training samples) and records the
exact protocol it used: K, s, sigma, p_0, number of samples, seed and checkpoint step.
"""
from __future__ import annotations

import json
import os
import dataclasses
from typing import Any, Callable

import jax
import ml_collections
import numpy as np

from ebm_jax import checkpointing, data, plotting, sampler, stats


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


def draw_samples(run, config, num_samples: int, seed: int, batch_size: int = 1024) -> np.ndarray:
    """``num_samples`` fresh short-run samples, in batches; batch ``i`` uses
    ``fold_in(key(seed), i)``."""
    shape_sampler = run.make_sampler(config)
    key = jax.random.key(seed)
    out = []
    for i, start in enumerate(range(0, num_samples, batch_size)):
        n = min(batch_size, num_samples - start)
        out.append(np.asarray(jax.device_get(
            shape_sampler(run.params, jax.random.fold_in(key, i), n).x)))
    return np.concatenate(out, axis=0)


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
}


def evaluate(workdir: str, mode: str = "samples", *, num_samples: int | None = None,
             seed: int | None = None, step: int | None = None,
             overrides: dict[str, Any] | None = None, **options) -> dict:
    """Runs one evaluation mode on the checkpoint of ``workdir`` and writes its files.

    ``options`` are the mode's own settings (see ``Request``)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {sorted(MODES)}")
    run = checkpointing.load_workdir(workdir, step)
    config = apply_overrides(run.config, overrides)
    num_samples = int(num_samples or config.eval.num_samples)
    seed = int(config.eval.seed if seed is None else seed)
    out_dir = os.path.join(workdir, "eval")
    os.makedirs(out_dir, exist_ok=True)
    result = MODES[mode](run, config, out_dir, Request(num_samples, seed, options))
    with open(os.path.join(out_dir, f"{mode}.json"), "w") as f:
        json.dump(result, f, indent=2)
    summary = ", ".join(f"{k}={v:.4g}" for k, v in result["stats"].items())
    result["summary_line"] = f"{mode} at step {run.step} -> {out_dir}; {summary}"
    return result
