"""``--mode=reconstruction``: how well the model reaches data, through the family's own
reconstruction (``Family.make_reconstructor``).

- EBM: z by gradient descent on ||x - M_theta(z)||^2 through the noise-free K-step sampler
  (``flow.invert``, ``num_iters`` = 200), with snapshots M_theta(z_t), t = 0, 25, ..., drawn
  beside each target;
- latent families: z inferred by the short-run inference chain, then decoded (the generator:
  g(z); the latent EBM: a noise-free chain in x given z from a fixed start).

The targets are ``num_images`` examples of ``split`` (``train``, the default, or ``test``:
see ``splits``) picked with the seed, or, for an EBM with ``targets='model'``, images M_theta
itself produced from z* ~ p_0 (which it can reach exactly). The mean squared error per pixel is
reported; for a latent family, beside PCA with the same d fitted on the training split and
scored on the same targets.

Keys: the data indices ``default_rng(seed)``; the reconstruction ``fold_in(key(seed), 0)``; z*
for ``targets='model'`` ``fold_in(key(seed), 1)``.
"""
from __future__ import annotations

import os

import jax
import numpy as np

from ebm_jax import plotting
from ebm_jax.core import flow
from ebm_jax.evaluation import common, options, splits, stats
from ebm_jax.families import base
from ebm_jax.runtime import distributed, parallel, validation

PCA_MAX_TRAIN = 5000


def pick_targets(run, config, num_images: int, seed: int, targets: str, split: str):
    """``(x_target, description)``: data examples of ``split`` or images of M_theta."""
    if targets == "data":
        dataset, first, count = splits.split_dataset(config, split)
        num_images = min(num_images, count)
        idx = first + np.sort(np.random.default_rng(seed).choice(count, num_images,
                                                                 replace=False))
        return dataset.get(idx), {"targets": "data", "dataset": config.data.dataset,
                                  "split": split, "indices": idx.tolist()}
    kw = flow.flow_kwargs(config.sampling)
    z_star = kw["prior"].sample(jax.random.fold_in(jax.random.key(seed), 1),
                                (num_images,) + tuple(run.data_shape))
    x = jax.jit(lambda p, z: flow.flow_map(lambda v: run.energy(p, v), z,
                                           num_steps=kw["num_steps"],
                                           step_size=kw["step_size"]))(run.params, z_star)
    return np.asarray(x), {"targets": "model"}


def pca_mse(train_ND: np.ndarray, x_ND: np.ndarray, d: int) -> float:
    """Per-pixel MSE of ``x`` projected on the top ``d`` principal components of ``train``."""
    mean, basis = stats.pca_basis(train_ND, d)
    rec = stats.pca_codes(mean, basis, x_ND) @ basis + mean
    return float(np.mean(np.square(rec - np.asarray(x_ND, np.float64).reshape(len(x_ND), -1))))


NUM_IMAGES = options.NUM_IMAGES.but(help="targets reconstructed (default: num_samples, at "
                                    "most 16)")
NUM_ITERS = options.Option("num_iters", "integer", "gradient steps on z", default=200,
                           positive=True)
SPLIT = options.SPLIT.but(help="the targets' split", default="train")
TARGETS = options.Option("targets", "enum", "data examples, or images the model produced",
                         default="data", choices=("data", "model"))
SNAPSHOT_EVERY = options.Option("snapshot_every", "integer", "steps between the pictures' columns", default=25, positive=True)
LEARNING_RATE = options.Option("learning_rate", "float", "Adam's step on z", default=0.05)


def evaluate_reconstruction(run, config, out_dir: str, request: common.Request) -> dict:
    num_images = int(request.option(NUM_IMAGES, min(request.num_samples, 16)))
    num_iters = int(request.option(NUM_ITERS))
    every = int(request.option(SNAPSHOT_EVERY))
    learning_rate = float(request.option(LEARNING_RATE))
    split = request.option(SPLIT)
    x_target, source = pick_targets(run, config, num_images, request.seed,
                                    request.option(TARGETS), split)
    family = run.family.with_config(config)
    solve = family.make_reconstructor(num_iters=num_iters, learning_rate=learning_rate,
                                      snapshot_every=every)
    # The targets are split over every device of every process and gathered; padding rows
    # (parallel.shard_rows) leave the others' draws and optimisation unchanged.
    out = solve(run.params, parallel.shard_rows(x_target, run.mesh),
                jax.random.fold_in(jax.random.key(request.seed), 0))
    n = len(x_target)
    x_rec, z = distributed.gather(out.x)[:n], distributed.gather(out.z)[:n]
    axes = tuple(range(1, x_target.ndim))
    mse_B = np.mean(np.square(x_rec - x_target), axis=axes)
    result_stats = {"mse_per_pixel": float(np.mean(mse_B))}
    arrays = dict(target=x_target, z=z, x=x_rec)
    grid = np.concatenate([x_target[:, None], x_rec[:, None]], axis=1)
    columns, xlabel = ["target", "reconstruction"], "the target, then its reconstruction"
    latent = run.family.refuse(base.LATENT) is None
    if latent:  # z comes from the inference chain; the synthesis chain plays no part
        protocol = common.encoder_protocol(run, config, num_images, request.seed, run.step)
    else:
        protocol = common.protocol(config, num_images, request.seed, run.step)
    protocol.update(family=run.family.name, **source)
    if out.snapshots is not None:
        snaps_TB = distributed.gather(out.snapshots)[:, :n]
        mse_T = np.mean(np.square(snaps_TB - x_target[None]),
                        axis=tuple(range(2, snaps_TB.ndim))).mean(axis=1)
        arrays.update(snapshots=snaps_TB, snapshot_iters=np.asarray(out.snapshot_iters))
        grid = np.concatenate([x_target[:, None], np.swapaxes(snaps_TB, 0, 1)], axis=1)
        columns = ["target"] + [str(int(t)) for t in out.snapshot_iters]
        xlabel = "the target, then M_θ(z_t) after t Adam iterations on z"
        result_stats["mse_per_pixel_at_start"] = float(mse_T[0])
        protocol.update(flow_noise_std=0.0, num_iters=num_iters, learning_rate=learning_rate,
                        snapshot_iters=[int(t) for t in out.snapshot_iters])
    for name, value_B in out.stats_B.items():
        value_B = distributed.gather(value_B)[:n]
        result_stats[f"latent_fraction_{name}"] = float(np.mean(value_B) / np.prod(run.data_shape))
    baselines = {}
    if latent and source["targets"] == "data":
        latent_dim = run.family.latent_dim
        train = splits.load_split(config, "train", PCA_MAX_TRAIN)
        baselines[f"pca{latent_dim}_mse_per_pixel"] = pca_mse(train, x_target, latent_dim)
        baselines["mean_image_mse_per_pixel"] = float(np.mean(np.square(
            x_target - train.mean(0, keepdims=True))))
        result_stats.update(baselines)
    np.savez(os.path.join(out_dir, "reconstruction.npz"), **arrays)
    if run.is_image:
        plotting.save_labelled_grid(grid.reshape((-1,) + grid.shape[2:]),
                                    os.path.join(out_dir, "reconstruction.png"), grid.shape[1],
                                    columns, xlabel, ylabel=f"{source['targets']} examples")
    result = {"mode": "reconstruction", "protocol": protocol,
              "mse_per_example": [float(v) for v in mse_B], "baselines": baselines,
              "stats": result_stats}
    if out.snapshots is not None:
        result["mse_per_pixel_by_iter"] = [float(v) for v in mse_T]
    return result


def check(run, config, request) -> None:
    if request.option(TARGETS) == "model" and run.family.refuse(base.FLOW):
        raise validation.InputError("--targets=model needs an EBM, whose noise-free sampler "
                                    "produced the images it reconstructs")
    splits.check_split(config, request.option(SPLIT))


MODE = common.Mode("reconstruction", evaluate_reconstruction, "data reconstructed through the "
                   "family's own inference", needs=frozenset({base.RECONSTRUCTION}),
                   check=check, options=(NUM_IMAGES, NUM_ITERS, SPLIT, TARGETS,
                                         SNAPSHOT_EVERY, LEARNING_RATE))
