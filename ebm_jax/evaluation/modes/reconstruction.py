"""``--mode=reconstruction``: how well the short-run flow M_theta reaches data.

For N images x, z is found by gradient descent on ||x - M_theta(z)||^2 (``flow.invert``:
``num_iters`` = 200 by default, M_theta the noise-free K-step sampler), and the mean squared
error per pixel is reported, with the snapshots M_theta(z_t), t = 0, 25, ..., 200, drawn beside
each target. The targets are N examples of the run's data set picked with the seed, or, with
``targets='model'``, images M_theta itself produced from z* ~ p_0 (which it can reach exactly).

Keys: the data indices ``default_rng(seed)``; z_0 ``fold_in(key(seed), 0)``; z* for
``targets='model'`` ``fold_in(key(seed), 1)``.
"""
from __future__ import annotations

import os

import jax
import numpy as np

from ebm_jax import data, plotting
from ebm_jax.runtime import distributed, parallel
from ebm_jax.evaluation import evaluation
from ebm_jax.core import flow, sampler


def pick_targets(run, config, num_images: int, seed: int, targets: str):
    """``(x_target, description)``: data examples or images of M_theta."""
    if targets == "data":
        dataset = data.get_dataset(config.data, seed=int(config.seed))
        idx = np.sort(np.random.default_rng(seed).choice(len(dataset), num_images,
                                                         replace=False))
        return dataset.get(idx), {"targets": "data", "dataset": config.data.dataset,
                                  "split": config.data.split, "indices": idx.tolist()}
    if targets == "model":
        kw = flow.flow_kwargs(config.sampling)
        z_star = sampler.init_chains(jax.random.fold_in(jax.random.key(seed), 1),
                                     (num_images,) + tuple(run.data_shape), kw["init"],
                                     kw["init_low"], kw["init_high"], kw["init_std"])
        x = jax.jit(lambda p, z: flow.flow_map(lambda v: run.energy(p, v), z,
                                               num_steps=kw["num_steps"],
                                               step_size=kw["step_size"]))(run.params, z_star)
        return np.asarray(x), {"targets": "model"}
    raise ValueError(f"unknown targets {targets!r}; choose 'data' or 'model'")


def evaluate_reconstruction(run, config, out_dir: str, request: evaluation.Request) -> dict:
    num_images = int(request.option("num_images", min(request.num_samples, 16)))
    num_iters = int(request.option("num_iters", 200))
    every = int(request.option("snapshot_every", 25))
    learning_rate = float(request.option("learning_rate", 0.05))
    x_target, source = pick_targets(run, config, num_images, request.seed,
                                    request.option("targets", "data"))
    kw = flow.flow_kwargs(config.sampling)

    @jax.jit
    def solve(params, x, key):
        return flow.invert(lambda v: run.energy(params, v), x, key, num_iters=num_iters,
                           learning_rate=learning_rate, snapshot_every=every, **kw)

    # The targets are split over every device of every process and gathered; padding rows
    # (parallel.shard_rows) leave the others' z_0 draws and optimisation unchanged.
    out = solve(run.params, parallel.shard_rows(x_target, run.mesh),
                jax.random.fold_in(jax.random.key(request.seed), 0))
    n = len(x_target)
    out = out._replace(z=distributed.gather(out.z)[:n], x=distributed.gather(out.x)[:n],
                       mse_B=distributed.gather(out.mse_B)[:n],
                       at_boundary_B=distributed.gather(out.at_boundary_B)[:n],
                       snapshots=distributed.gather(out.snapshots)[:, :n])
    snaps_TB = np.asarray(out.snapshots)
    axes = tuple(range(2, snaps_TB.ndim))
    mse_T = np.mean(np.square(snaps_TB - x_target[None]), axis=axes).mean(axis=1)
    np.savez(os.path.join(out_dir, "reconstruction.npz"), target=x_target, z=out.z, x=out.x,
             snapshots=snaps_TB, snapshot_iters=np.asarray(out.snapshot_iters))
    if run.is_image:
        grid = np.concatenate([x_target[:, None], np.swapaxes(snaps_TB, 0, 1)], axis=1)
        plotting.save_image_grid(grid.reshape((-1,) + grid.shape[2:]),
                                 os.path.join(out_dir, "reconstruction.png"), ncol=grid.shape[1])
    protocol = evaluation.protocol(config, num_images, request.seed, run.step)
    protocol.update(flow_noise_std=0.0, num_iters=num_iters, learning_rate=learning_rate,
                    snapshot_iters=[int(t) for t in out.snapshot_iters], **source)
    return {"mode": "reconstruction", "protocol": protocol,
            "mse_per_pixel_by_iter": [float(v) for v in mse_T],
            "mse_per_example": [float(v) for v in out.mse_B],
            "stats": {"mse_per_pixel": float(np.mean(out.mse_B)),
                      "mse_per_pixel_at_start": float(mse_T[0]),
                      "latent_fraction_at_boundary": float(
                          np.mean(out.at_boundary_B) / np.prod(run.data_shape))}}
