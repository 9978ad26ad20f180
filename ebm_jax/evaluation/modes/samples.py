"""``--mode=samples``: fresh samples from the run's sampler with a fixed seed, their statistics,
and for toy data the squared MMD against the true density. A run trained with persistent chains
also gets the same for chains of its saved replay buffer (``buffer_`` stats,
``buffer_samples.npy``)."""
from __future__ import annotations

import os

import numpy as np

from ebm_jax import data, plotting
from ebm_jax.core import sampler
from ebm_jax.evaluation import common, stats


def summary(run, config, x, seed: int) -> tuple[dict, object]:
    """The statistics of samples ``x``; for toy data also the squared MMD against the true
    density. Returns (stats, the true log-density or None)."""
    out = stats.sample_summary(x)
    toy = None if run.is_image else data.TOY_DENSITIES.get(config.data.dataset)
    if toy is None:
        return out, None
    truth = toy.sample(np.random.default_rng(seed), len(x))
    n = min(len(x), 2000)
    out["mmd2_vs_truth"] = stats.mmd2(x[:n], truth[:n])
    out["mean_true_log_density"] = float(np.mean(
        np.asarray(toy.log_density(x[np.isfinite(x).all(1)]))))
    return out, toy.log_density


def evaluate_samples(run, config, out_dir: str, request: common.Request) -> dict:
    num_samples, seed = request.num_samples, request.seed
    x = common.draw_samples(run, config, num_samples, seed)
    np.save(os.path.join(out_dir, "samples.npy"), x)
    result = {"mode": "samples", "protocol": common.protocol(config, num_samples, seed, run.step)}
    result["stats"], log_density = summary(run, config, x, seed)
    k = sampler.num_steps(config.sampling)
    plotting.save_samples(x, os.path.join(out_dir, "samples.png"), run.is_image, log_density,
                          title=f"short-run samples, K = {k}")
    buffer = common.buffer_samples(run, num_samples, seed)
    if buffer is not None:
        np.save(os.path.join(out_dir, "buffer_samples.npy"), buffer)
        result["protocol"].update(sources=common.SOURCES, buffer_num_samples=len(buffer))
        result["stats"].update({f"buffer_{name}": v
                                for name, v in summary(run, config, buffer, seed)[0].items()})
        plotting.save_samples(buffer, os.path.join(out_dir, "buffer_samples.png"), run.is_image,
                              log_density, title="replay buffer")
    return result


MODE = common.Mode("samples", evaluate_samples, "fresh samples and their statistics")
