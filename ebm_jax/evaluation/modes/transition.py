"""``--mode=transition``: a model trained with K1 steps, sampled with K2 = 0, 20, ..., 200.

The same chains (same x_0, same noise) are read at every K2: step k of a chain draws its noise
from ``fold_in(key, k)``, so the state after K2 steps of one long chain is exactly a K2-step
chain. Over-saturation is measured per K2 as the fraction of values beyond +-1 and the mean
|x|; for an image model both grow once K2 passes K1. On digit data sets each K2 also gets the
digit network's FID, KID and confident fraction (``digit_features.per_snapshot``).
"""
from __future__ import annotations

import os

import numpy as np

from ebm_jax import plotting
from ebm_jax.core import sampler
from ebm_jax.evaluation import common, digit_features, options, stats
from ebm_jax.families import base
from ebm_jax.runtime import validation

DEFAULT_K2 = tuple(range(0, 201, 20))
K2 = options.Option("k2", "list", "the K2 values", default=DEFAULT_K2)
NUM_ROWS = options.NUM_ROWS.but(default=8)


def parse_k2(value) -> tuple[int, ...]:
    """``'0,50,100'`` or a sequence of ints to a sorted tuple of distinct K2 >= 0."""
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    k2 = tuple(sorted({int(v) for v in value}))
    if not k2 or k2[0] < 0:
        raise ValueError(f"K2 values must be non-negative integers, got {value!r}")
    return k2


def save_curves(k2, curves: dict[str, list[float]], k1: int, path: str):
    fig, axes = plotting.figure(1, len(curves), (4 * len(curves), 3.2))
    for ax, (name, values) in zip(axes.ravel(), curves.items()):
        ax.plot(k2, values, "o-")
        ax.axvline(k1, color="k", ls="--", lw=1, label=f"K1 = {k1}")
        ax.set_xlabel("K2 (sampling steps)")
        ax.set_ylabel(name, fontsize=9)
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def evaluate_transition(run, config, out_dir: str, request: common.Request) -> dict:
    k2 = parse_k2(request.option(K2))
    num_rows = min(int(request.option(NUM_ROWS)), request.num_samples)
    k1 = sampler.num_steps(run.config.sampling)
    long_run = common.apply_overrides(config, {"sampling.num_steps": k2[-1]})
    _, snaps_TB = common.draw_chains(run, long_run, request.num_samples, request.seed,
                                         snapshot_steps=k2)
    summaries = [stats.sample_summary(x) for x in snaps_TB]
    curves = {name: [s[name] for s in summaries]
              for name in ("saturation", "abs_mean", "std", "nonfinite")}
    np.save(os.path.join(out_dir, "transition.npy"), snaps_TB[:, :num_rows])
    strip = np.swapaxes(snaps_TB[:, :num_rows], 0, 1).reshape((-1,) + snaps_TB.shape[2:])
    plotting.save_labelled_grid(
        strip, os.path.join(out_dir, "transition.png"), len(k2), k2,
        f"K2, Langevin steps from the same noise (trained with K1 = {k1})",
        ylabel="chains", title=f"{request.num_samples} chains; {num_rows} shown")
    save_curves(k2, {"fraction of values beyond +-1": curves["saturation"],
                     "mean |x|": curves["abs_mean"]}, k1,
                os.path.join(out_dir, "transition_saturation.png"))
    flat = {}
    for i, k in enumerate(k2):
        flat[f"saturation_K{k}"] = curves["saturation"][i]
        flat[f"abs_mean_K{k}"] = curves["abs_mean"][i]
    per_k2 = digit_features.per_snapshot(config, k2, snaps_TB, request.seed)
    flat.update(per_k2)
    protocol = common.protocol(long_run, request.num_samples, request.seed, run.step)
    protocol.update(K=list(k2), K1=k1)
    result = {"mode": "transition", "protocol": protocol, "K2": list(k2), "curves": curves,
              "stats": flat}
    if per_k2:
        flat["fid_num_samples"] = request.num_samples
        result["notes"] = [
            f"Each fid_K<k> is over {request.num_samples} chains (fid_num_samples), the default "
            "of --mode=fid too, so that they compare with its FID; fewer chains bias the FID "
            "upwards."]
    return result


def check(run, config, request) -> None:
    try:
        parse_k2(request.option(K2))
    except ValueError as error:
        raise validation.InputError(str(error)) from error


MODE = common.Mode("transition", evaluate_transition, "the chain's states at K2 = 0..200 and "
                   "their over-saturation", needs=frozenset({base.SNAPSHOTS}), data="image",
                   check=check, options=(K2, NUM_ROWS))
