"""``--mode=diagnostics``: the learning dynamics of a run, and the moment-matching residual.

From ``metrics.jsonl``: the energy gap d_t = mean f(data) - mean f(chains) and the gradient
magnitude r_t = mean ||grad_x f|| along the chains over training (the two axes of the anatomy
of short-run EBM learning), plotted in ``diagnostics.png``; the training sample grids are listed.

The residual: the learning rule drives E_data[df/dtheta] - E_q[df/dtheta] to zero, q being the
short-run distribution. It is measured on ``num_batches`` (4) fresh pairs of a data batch
(``dataset.batch(i, m, seed)``, no data noise) and fresh chains (key ``fold_in(key(seed), i)``),
with m = ``training.batch_size``: the norm of the mean difference, also relative to the mean
norm of the two terms.
"""
from __future__ import annotations

import glob
import os

import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax import data
from ebm_jax.evaluation import evaluation
from ebm_jax.core import sampler
from ebm_jax.training import trainer


def moment_residual(energy, params, x_data, x_chain):
    """(||E_data df/dtheta - E_q df/dtheta||, ||E_data df/dtheta||, ||E_q df/dtheta||)."""
    g_data = jax.grad(lambda p: jnp.mean(energy(p, x_data)))(params)
    g_chain = jax.grad(lambda p: jnp.mean(energy(p, x_chain)))(params)
    norm = lambda t: jnp.sqrt(sum(jnp.sum(jnp.square(v)) for v in jax.tree_util.tree_leaves(t)))
    return norm(jax.tree_util.tree_map(jnp.subtract, g_data, g_chain)), norm(g_data), norm(g_chain)


def save_curves(rows: list[dict], path: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=100)
    for ax, key, title in ((axes[0], "energy_gap", "energy gap d_t"),
                           (axes[1], "grad_norm_x", "gradient magnitude r_t")):
        ax.plot(steps, [r[key] for r in rows])
        ax.set_xlabel("update")
        ax.set_title(title, fontsize=9)
    axes[0].axhline(0.0, color="k", lw=0.8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def evaluate_diagnostics(run, config, out_dir: str, request: evaluation.Request) -> dict:
    workdir = os.path.dirname(os.path.abspath(out_dir))
    rows = trainer.read_metrics(workdir)
    if not rows:
        raise ValueError(f"{workdir}/metrics.jsonl has no rows")
    save_curves(rows, os.path.join(out_dir, "diagnostics.png"))
    dataset = data.get_dataset(config.data, seed=int(config.seed))
    m = int(config.training.batch_size)
    num_batches = int(request.option("num_batches", 4))
    sample = sampler.make_sampler(run.energy, config.sampling, run.data_shape)
    residual = jax.jit(lambda p, a, b: moment_residual(run.energy, p, a, b))
    key = jax.random.key(request.seed)
    values = np.array([[float(v) for v in residual(
        run.params, dataset.batch(i, m, request.seed),
        sample(run.params, jax.random.fold_in(key, i), m).x)] for i in range(num_batches)])
    diff, g_data, g_chain = values.mean(axis=0)
    tail = rows[-max(1, len(rows) // 10):]
    protocol = evaluation.protocol(config, num_batches * m, request.seed, run.step)
    protocol.update(num_batches=num_batches, batch_size=m)
    return {"mode": "diagnostics", "protocol": protocol,
            "sample_grids": sorted(glob.glob(os.path.join(workdir, "samples", "*.png"))),
            "stats": {"moment_residual": diff,
                      "moment_residual_relative": diff / (0.5 * (g_data + g_chain)),
                      "energy_gap_last_tenth": float(np.mean([r["energy_gap"] for r in tail])),
                      "grad_norm_x_last_tenth": float(np.mean([r["grad_norm_x"] for r in tail])),
                      "num_logged_updates": len(rows)}}
