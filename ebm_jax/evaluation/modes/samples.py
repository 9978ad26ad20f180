"""``--mode=samples``: fresh samples from the run's sampler with a fixed seed, their statistics,
and for toy data the squared MMD against the true density."""
from __future__ import annotations

import os

import numpy as np

from ebm_jax import data, plotting
from ebm_jax.evaluation import common, stats


def evaluate_samples(run, config, out_dir: str, request: common.Request) -> dict:
    num_samples, seed = request.num_samples, request.seed
    x = common.draw_samples(run, config, num_samples, seed)
    np.save(os.path.join(out_dir, "samples.npy"), x)
    result = {"mode": "samples", "protocol": common.protocol(config, num_samples, seed, run.step),
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
                          title=f"short-run samples, K = {config.sampling.num_steps}")
    return result


MODE = common.Mode("samples", evaluate_samples, "fresh samples and their statistics")
