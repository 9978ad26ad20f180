"""``--mode=density`` for 1-D and 2-D models: the true density, the EBM's density and the
density of its short-run samples, on one grid.

The EBM density exp(f / T) / Z is normalised on the grid at two temperatures: T = 1, the model
as written, and T = sigma^2 / (2 s), the density a long Langevin run with the sampler's s and
sigma would reach. The short-run samples are smoothed by a Gaussian KDE (Scott's bandwidth).
KL(true || q) and the total variation between the true density and each q are computed on the
grid cells, and, as the floor that smoothing alone gives, between the true density and the
same KDE of as many true samples. Short-run samples can match the data while the EBM density is far colder (its mass
piled on a few modes): these numbers measure it.
"""
from __future__ import annotations

import os

import jax
import numpy as np
from scipy import stats as scipy_stats

from ebm_jax import data, plotting
from ebm_jax.core.prior import Prior
from ebm_jax.evaluation import common, options, stats
from ebm_jax.families import base


def grid_points(lim: float, dim: int, size: int):
    g = np.linspace(-lim, lim, size)
    mesh = np.meshgrid(*([g] * dim), indexing="xy")
    return np.stack([m.ravel() for m in mesh], axis=1).astype(np.float32), g


def normalise_log(log_q: np.ndarray) -> np.ndarray:
    """Probabilities of the grid cells from unnormalised log-densities."""
    log_q = np.asarray(log_q, np.float64)
    q = np.exp(log_q - log_q.max())
    return q / q.sum()


def save_panels(panels: dict[str, np.ndarray], grid, dim: int, path: str):
    fig, axes = plotting.figure(2, len(panels), (3.8 * len(panels), 6.6))
    lim = grid[-1]
    for col, (name, p) in enumerate(panels.items()):
        for row, values in enumerate((p, np.log(np.maximum(p, 1e-300)))):
            ax = axes[row, col]
            what = "log probability" if row else "probability"
            if dim == 1:
                ax.plot(grid, values, label=name)
                ax.set_xlabel("x", fontsize=8)
                ax.set_ylabel(f"{what} of the grid cell", fontsize=8)
                ax.legend(fontsize=7)
            else:
                shown = np.maximum(values, values.max() - 30) if row else values
                image = ax.imshow(shown.reshape(len(grid), len(grid)), origin="lower",
                                  extent=(-lim, lim, -lim, lim), cmap="viridis")
                fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03).set_label(
                    f"{what} of the grid cell", fontsize=7)
                ax.set_xlabel("x1", fontsize=8)
                ax.set_ylabel("x2", fontsize=8)
            ax.set_title(("" if row == 0 else "log ") + name, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


LIM = options.Option("lim", "float", "half-width of the square grid the densities are drawn on "
                     "(default: the prior's half-width)")
GRID_SIZE = options.Option("grid_size", "integer", "grid points per axis (default 400 in 1-D, "
                           "200 in 2-D)", positive=True)


def evaluate_density(run, config, out_dir: str, request: common.Request) -> dict:
    toy = data.TOY_DENSITIES[config.data.dataset]
    dim = run.data_shape[0]
    s, sigma = float(config.sampling.step_size), float(config.sampling.noise_std)
    temperature = sigma ** 2 / (2 * s)
    lim = float(request.option(LIM, Prior.from_config(config.sampling).scale))
    size = int(request.option(GRID_SIZE, 400 if dim == 1 else 200))
    pts, grid = grid_points(lim, dim, size)
    f = np.asarray(jax.jit(run.energy)(run.params, pts), np.float64)
    x = common.draw_samples(run, config, request.num_samples, request.seed)
    x = x[np.isfinite(x).all(axis=1)]
    kde = scipy_stats.gaussian_kde(x.T.astype(np.float64))
    # The same KDE of as many true samples: the floor that smoothing alone puts under the
    # KDE's scores.
    truth = toy.sample(np.random.default_rng(request.seed), len(x)).T.astype(np.float64)
    kde_truth = normalise_log(scipy_stats.gaussian_kde(truth).logpdf(pts.T.astype(np.float64)))
    panels = {"true": normalise_log(np.asarray(toy.log_density(pts))),
              "short-run samples (KDE)": normalise_log(kde.logpdf(pts.T.astype(np.float64))),
              f"EBM, T = {temperature:.2g}": normalise_log(f / temperature),
              "EBM, T = 1": normalise_log(f)}
    save_panels(panels, grid, dim, os.path.join(out_dir, "density.png"))
    true = panels["true"]
    result = {}
    for key, name in (("kde", "short-run samples (KDE)"),
                      ("ebm_T", f"EBM, T = {temperature:.2g}"), ("ebm_T1", "EBM, T = 1")):
        result[f"kl_true_vs_{key}"] = stats.discrete_kl(true, panels[name])
        result[f"tv_true_vs_{key}"] = stats.total_variation(true, panels[name])
    result["kl_true_vs_kde_of_true_samples"] = stats.discrete_kl(true, kde_truth)
    result["tv_true_vs_kde_of_true_samples"] = stats.total_variation(true, kde_truth)
    entropy = lambda p: float(-np.sum(p * np.log(np.maximum(p, 1e-300))))
    result.update(entropy_true=entropy(true), entropy_ebm_T=entropy(panels[
        f"EBM, T = {temperature:.2g}"]), entropy_ebm_T1=entropy(panels["EBM, T = 1"]),
                  temperature=temperature)
    protocol = common.protocol(config, request.num_samples, request.seed, run.step)
    protocol.update(grid_lim=lim, grid_size=size, kde="gaussian, Scott's bandwidth")
    return {"mode": "density", "protocol": protocol, "stats": result}


MODE = common.Mode("density", evaluate_density, "the EBM's density and its samples' against "
                   "the true one", needs=frozenset({base.ENERGY}), data="toy",
                   options=(LIM, GRID_SIZE))
