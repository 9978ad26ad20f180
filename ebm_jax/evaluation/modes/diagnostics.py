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

from ebm_jax import plotting
from ebm_jax.evaluation import common, options
from ebm_jax.families import base
from ebm_jax.runtime import distributed, parallel, validation, workdir_files


def moment_residual(energy, params, x_data, x_chain):
    """(||E_data df/dtheta - E_q df/dtheta||, ||E_data df/dtheta||, ||E_q df/dtheta||)."""
    g_data = jax.grad(lambda p: jnp.mean(energy(p, x_data)))(params)
    g_chain = jax.grad(lambda p: jnp.mean(energy(p, x_chain)))(params)
    norm = lambda t: jnp.sqrt(sum(jnp.sum(jnp.square(v)) for v in jax.tree_util.tree_leaves(t)))
    return norm(jax.tree_util.tree_map(jnp.subtract, g_data, g_chain)), norm(g_data), norm(g_chain)


def save_curves(rows: list[dict], curves, path: str):
    steps = [r["step"] for r in rows]
    fig, axes = plotting.figure(1, len(curves), (4 * len(curves), 3.2))
    for ax, (key, label, title) in zip(axes.ravel(), curves):
        ax.plot(steps, [r[key] for r in rows])
        ax.set_xlabel("update (training step)", fontsize=9)
        ax.set_ylabel(label, fontsize=9)
        ax.set_title(title, fontsize=9)
        if key == "energy_gap":
            ax.axhline(0.0, color="k", lw=0.8)
    fig.tight_layout()
    fig.savefig(path)


# (metric, axis label, title)
CURVES = (("energy_gap", "d_t", "energy gap d_t = mean f(data) − mean f(chains)"),
          ("grad_norm_x", "r_t", "gradient magnitude r_t = mean ‖∇ₓf‖ on the chains"),
          ("recon_mse", "mean squared error per pixel", "reconstruction error"),
          ("loss", "loss", "loss"))


NUM_BATCHES = options.Option("num_batches", "integer", "fresh batches for the moment-matching "
                             "residual", default=4, positive=True)


def evaluate_diagnostics(run, config, out_dir: str, request: common.Request) -> dict:
    rows = [r for r in workdir_files.read_metrics(run.workdir) if "event" not in r]
    if not rows:
        raise validation.InputError(f"{run.workdir}/metrics.jsonl has no rows")
    curves = [curve for curve in CURVES if curve[0] in rows[0]][:2]
    save_curves(rows, curves, os.path.join(out_dir, "diagnostics.png"))
    tail = rows[-max(1, len(rows) // 10):]
    result = {f"{key}_last_tenth": float(np.mean([r[key] for r in tail])) for key, _, _ in curves}
    result["num_logged_updates"] = len(rows)
    m = int(config.training.batch_size)
    num_batches = int(request.option(NUM_BATCHES))
    protocol = common.protocol(config, num_batches * m, request.seed, run.step)
    if run.family.refuse(base.ENERGY) is None:
        dataset = validation.load_dataset(config.data, int(config.seed))
        sample = run.make_sampler(config)
        residual = jax.jit(lambda p, a, b: moment_residual(run.energy, p, a, b))
        key = jax.random.key(request.seed)
        n = parallel.round_up(m, run.mesh)
        values = np.array([[float(v) for v in residual(
            run.params, dataset.batch(i, m, request.seed),
            distributed.gather(sample(run.params, jax.random.fold_in(key, i), n).x)[:m])]
            for i in range(num_batches)])
        diff, g_data, g_chain = values.mean(axis=0)
        result.update(moment_residual=diff,
                      moment_residual_relative=diff / (0.5 * (g_data + g_chain)))
        protocol.update(num_batches=num_batches, batch_size=m)
    return {"mode": "diagnostics", "protocol": protocol,
            "sample_grids": sorted(glob.glob(os.path.join(run.workdir, "samples", "*.png"))),
            "stats": result}


MODE = common.Mode("diagnostics", evaluate_diagnostics, "the learning curves and, for an "
                   "EBM, the moment-matching residual", options=(NUM_BATCHES,))
