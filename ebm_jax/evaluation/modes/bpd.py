"""``--mode=bpd``: bits/dim of images under the noise-free short-run flow (``likelihood``)."""
from __future__ import annotations

import logging
import os

import jax
import numpy as np

from ebm_jax.core import flow
from ebm_jax.evaluation import common, likelihood, splits
from ebm_jax.families import base
from ebm_jax.runtime import distributed, parallel, validation


def evaluate_bpd(run, config, out_dir: str, request) -> dict:
    """The ``bpd`` mode: bits/dim of ``num_images`` images of ``split`` under the flow, with
    the log-det method ``logdet`` (exact | per_step | stochastic), per image and averaged."""
    num_images = int(request.option("num_images", 16))
    split = request.option("split", "test")
    method = request.option("logdet", "exact")
    levels = likelihood.num_levels(config.data)
    x = splits.load_split(config, split, num_images)
    kwargs = flow.flow_kwargs(config.sampling)
    ld_kwargs = {}
    if method in ("exact", "per_step"):
        ld_kwargs["chunk_size"] = int(request.option("chunk_size", 64))
    invert_kwargs = dict(num_iters=int(request.option("inversion_iters", 200)),
                         learning_rate=float(request.option("inversion_lr", 0.05)))
    energy = run.energy

    @jax.jit
    def compute(params, x, key):
        return likelihood.flow_bpd(lambda v: energy(params, v), x, key, levels=levels,
                        logdet_method=method, logdet_kwargs=ld_kwargs, **kwargs,
                        **invert_kwargs)

    # The images are split over every device of every process, then gathered; each image's
    # result depends on its own row only, and padding keeps the random draws of the others.
    out = compute(run.params, parallel.shard_rows(x, run.mesh), jax.random.key(request.seed))
    out = {k: distributed.gather(v)[:len(x)] for k, v in out.items()}
    per_image = {k: np.asarray(v).tolist() for k, v in out.items()}
    out_of_support = int(np.sum(np.asarray(out["at_boundary"]) > 0))
    stats = {k: float(np.mean(v)) for k, v in out.items() if k != "at_boundary"}
    stats["out_of_support"] = out_of_support
    if "spectral_radius" in out:
        stats["spectral_radius_max"] = float(np.max(out["spectral_radius"]))
        if stats["spectral_radius_max"] >= 1:
            logging.warning("the spectral radius of s*H reaches %.3f >= 1: the log-det series "
                            "diverges; use --logdet=exact or per_step",
                            stats["spectral_radius_max"])
    np.save(os.path.join(out_dir, "bpd_images.npy"), x)
    protocol = {"K": kwargs["num_steps"], "s": kwargs["step_size"], "p0": kwargs["prior"].kind,
                "init_low": kwargs["prior"].low, "init_high": kwargs["prior"].high,
                "levels": levels, "split": split, "num_images": int(len(x)),
                "logdet": method, **ld_kwargs, **invert_kwargs, "seed": int(request.seed),
                "checkpoint_step": int(run.step)}
    return {"mode": "bpd", "protocol": protocol, "stats": stats, "per_image": per_image}


def check(run, config, request) -> None:
    try:
        likelihood.check_smooth(config.model)
        likelihood.num_levels(config.data)
    except ValueError as error:
        raise validation.InputError(str(error)) from error
    splits.check_split(config, request.option("split", "test"))


MODE = common.Mode("bpd", evaluate_bpd, "bits/dim of images under the noise-free flow",
                   needs=frozenset({base.FLOW}), data="image", check=check, in_all=False)
