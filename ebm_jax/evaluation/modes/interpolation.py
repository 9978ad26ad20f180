"""``--mode=interpolation``: samples from z_rho = rho z1 + sqrt(1 - rho^2) z2.

Each row draws z1, z2 from the family's starting distribution; each column is one rho in
[0, 1]. For the EBM the sample is the short-run chain from z_rho (``core.interpolation``:
with ``fixed_noise``, the default, every column replays the same Langevin noise, so a row shows
how M_theta moves with its initial state alone, and rho = 1 is exactly the chain of z1); for
the generator it is g(z_rho). The keys derive from ``key(seed)`` as ``Family.interpolate``
says. On digit data sets each column (each rho) gets the digit FID, KID and confident fraction
of its rows (``digit_features.per_snapshot``): with ``--num_rows=500`` they compare with
``--mode=fid``.
"""
from __future__ import annotations

import os

import jax
import numpy as np

from ebm_jax import plotting
from ebm_jax.evaluation import common, digit_features, options, stats
from ebm_jax.families import base


NUM_ROWS = options.NUM_ROWS.but(help="pairs (z1, z2), one row each (default: num_samples, at "
                                "most 8); the picture shows the first 16; on digit data sets "
                                "each rho gets the digit FID of its rows (use 500 to compare "
                                "with --mode=fid)")
SHOWN_ROWS = 16
NUM_COLS = options.Option("num_cols", "integer", "values of rho in [0, 1]", default=10,
                          positive=True)
FIXED_NOISE = options.Option("fixed_noise", "bool", "the same Langevin noise for every rho",
                             default=True)


def evaluate_interpolation(run, config, out_dir: str, request: common.Request) -> dict:
    num_rows = int(request.option(NUM_ROWS, min(request.num_samples, 8)))
    num_cols = int(request.option(NUM_COLS))
    fixed_noise = bool(request.option(FIXED_NOISE))
    rho = np.linspace(0.0, 1.0, num_cols)
    family = run.family.with_config(config)

    @jax.jit
    def chains(params, key):
        return family.interpolate(params, key, num_rows, rho, fixed_noise=fixed_noise)

    x_RB = np.asarray(chains(run.params, jax.random.key(request.seed)))
    x_BR = np.swapaxes(x_RB, 0, 1)
    np.save(os.path.join(out_dir, "interpolation.npy"), x_BR)
    if run.is_image:
        shown = x_BR[:SHOWN_ROWS]
        plotting.save_labelled_grid(
            shown.reshape((-1,) + shown.shape[2:]), os.path.join(out_dir, "interpolation.png"),
            num_cols, [f"{r:.2f}" for r in rho],
            "ρ, in z_ρ = ρ z₁ + √(1 − ρ²) z₂" + (" (same Langevin noise in every column)"
                                                  if fixed_noise else ""),
            ylabel="pairs (z₁, z₂)")
    step_B = np.sqrt(np.mean(np.square(np.diff(x_BR, axis=1)).reshape(num_rows, num_cols - 1, -1),
                             axis=-1))
    ends = np.sqrt(np.mean(np.square(x_BR[:, -1] - x_BR[:, 0]).reshape(num_rows, -1), axis=-1))
    protocol = common.protocol(config, num_rows * num_cols, request.seed, run.step)
    protocol.update(num_rows=num_rows, rho=[float(r) for r in rho], fixed_noise=fixed_noise)
    summary = stats.sample_summary(x_RB.reshape((-1,) + x_RB.shape[2:]))
    flat = {"rms_step_between_columns": float(step_B.mean()),
            "max_rms_step_between_columns": float(step_B.max()),
            "rms_distance_of_ends": float(ends.mean()),
            "saturation": summary["saturation"]}
    # z_rho has the variance of z1 and z2 at every rho, not their distribution: the FID of the
    # inner columns against the ends says whether M_theta maps those starts to digits too.
    flat.update(digit_features.per_snapshot(config, [f"{r:.2f}" for r in rho], x_RB,
                                            request.seed, prefix="rho"))
    return {"mode": "interpolation", "protocol": protocol, "stats": flat}


MODE = common.Mode("interpolation", evaluate_interpolation, "samples from z_rho = rho z1 + "
                   "sqrt(1 - rho^2) z2", needs=frozenset({base.INTERPOLATION}),
                   options=(NUM_ROWS, NUM_COLS, FIXED_NOISE))
