"""Bits per dimension of images under the noise-free short-run flow x = M(z), z ~ p_0.

An image with L levels per value v in {0..L-1} sits in [-1, 1] as x = 2v/(L-1) - 1. Uniform
dequantisation adds u * 2/(L-1) with u ~ U[0, 1), giving a continuous y whose density p(y)
bounds the discrete probability: log P(v) >= E_u[log p(y)] + D log(2/(L-1)). Hence

    bits/dim = -log p(y) / (D ln 2) + log2((L-1)/2),

log2(127.5) for 8-bit images (L = 256) and log2(8) = 3 for scikit-learn's digits (L = 17); a
model uniform over the levels scores log2(L). The flow gives log p(y) = log p_0(z) -
log|det dM/dz| at the z that ``flow.invert`` finds; that is the density of M(z), which equals y
only when the reconstruction error is zero, so the error is reported beside it.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax import data
from ebm_jax.runtime import distributed, parallel
from ebm_jax.core import flow, logdet, sampler

Array = jax.Array

# Levels per value of each image data set; 8-bit images otherwise.
NUM_LEVELS = {"digits": 17}
PIECEWISE_LINEAR = ("leaky_relu", "relu")


def num_levels(data_config) -> int:
    """The number of levels of the data set's values (17 for digits at 8x8, else 256)."""
    if data_config.dataset == "digits" and int(data_config.get("image_size", 8) or 8) != 8:
        raise ValueError("resized digits no longer lie on their 17 levels; bits/dim need "
                         "data.image_size=8")
    return NUM_LEVELS.get(data_config.dataset, 256)


def dequantize(x: Array, key: Array, levels: int) -> Array:
    """x + u * 2/(L-1), u ~ U[0, 1): uniform noise over each value's bin."""
    return x + jax.random.uniform(key, x.shape, x.dtype) * (2.0 / (levels - 1))


def bits_per_dim(log_p_B: Array, dim: int, levels: int) -> Array:
    """Bits/dim of discrete images from the log-density of their dequantised values in
    [-1, 1] units (the per-dimension scale correction is log2((L-1)/2))."""
    return -log_p_B / (dim * math.log(2.0)) + math.log2((levels - 1) / 2.0)


def gaussian_bpd(train_x: np.ndarray, test_x: np.ndarray, levels: int,
                 seed: int = 0) -> np.ndarray:
    """Bits/dim of ``test_x`` per image under a full-covariance Gaussian fitted (maximum
    likelihood) to the dequantised ``train_x``: a sanity baseline for a model's bits/dim."""
    rng = np.random.default_rng(seed)
    step = 2.0 / (levels - 1)
    flat = lambda x: np.asarray(x, np.float64).reshape(len(x), -1)
    train = flat(train_x) + rng.random(flat(train_x).shape) * step
    test = flat(test_x) + rng.random(flat(test_x).shape) * step
    mean, cov = train.mean(0), np.cov(train, rowvar=False, bias=True)
    chol = np.linalg.cholesky(cov)
    white = np.linalg.solve(chol, (test - mean).T).T
    dim = train.shape[1]
    log_p = (-0.5 * np.sum(white ** 2, axis=1) - np.sum(np.log(np.diag(chol)))
             - 0.5 * dim * np.log(2 * np.pi))
    return np.asarray(bits_per_dim(log_p, dim, levels))


def check_smooth(model_config) -> None:
    """Refuses a piecewise-linear energy: its Hessian is zero almost everywhere, so every step
    of the flow preserves volume and the log-determinant is trivially 0."""
    activation = model_config.get("activation", "leaky_relu")
    if activation in PIECEWISE_LINEAR:
        raise ValueError(
            f"model.activation={activation!r} makes the energy piecewise linear: its Hessian is "
            "0 almost everywhere, so log|det dM/dz| = 0 and the flow's bits/dim would only "
            "measure p_0. Train a smooth energy (e.g. configs/digits_gelu.py, "
            "configs/cifar10_gelu.py, model.activation=gelu) for the likelihood.")


def flow_log_prob(energy_fn: Callable[[Array], Array], x_B: Array, key: Array, *,
                  num_steps: int, step_size: float, logdet_method: str = "exact",
                  logdet_kwargs: dict | None = None, init: str = "uniform",
                  init_low: float = -1.0, init_high: float = 1.0, init_std: float = 1.0,
                  unroll: int | bool = 1, **invert_kwargs) -> dict[str, Array]:
    """log p(M(z)) = log p_0(z) - log|det dM/dz| at the z that ``flow.invert`` finds for each
    x, and its parts, per example: ``log_p``, ``log_p0``, ``logdet``, ``logdet_stderr``,
    ``recon_mse`` (between x and M(z)), ``at_boundary`` (coordinates of z pinned on the prior's
    boundary) and, for the stochastic log-det, ``spectral_radius``."""
    k_inv, k_ld = jax.random.split(key)
    prior = dict(init=init, init_low=init_low, init_high=init_high, init_std=init_std)
    inv = flow.invert(energy_fn, x_B, k_inv, num_steps=num_steps, step_size=step_size,
                      unroll=unroll, **prior, **invert_kwargs)
    ld = logdet.logdet(logdet_method, energy_fn, inv.z, k_ld, num_steps=num_steps,
                       step_size=step_size, **(logdet_kwargs or {}))
    log_p0 = sampler.init_log_prob(inv.z, init, init_low, init_high, init_std)
    out = dict(log_p=log_p0 - ld.logdet_B, log_p0=log_p0, logdet=ld.logdet_B,
               logdet_stderr=ld.stderr_B, recon_mse=inv.mse_B, at_boundary=inv.at_boundary_B)
    if ld.spectral_radius_B is not None:
        out["spectral_radius"] = ld.spectral_radius_B
    return out


def flow_bpd(energy_fn: Callable[[Array], Array], x_B: Array, key: Array, *, levels: int,
             **kwargs) -> dict[str, Array]:
    """Bits/dim of images ``x_B`` (in [-1, 1] on a grid of ``levels``) after one uniform
    dequantisation, per image: ``bpd``, ``nll`` (nats, of the dequantised image) and the parts
    of ``flow_log_prob`` (which takes ``kwargs``)."""
    k_deq, k_flow = jax.random.split(key)
    out = flow_log_prob(energy_fn, dequantize(x_B, k_deq, levels), k_flow, **kwargs)
    log_p = out.pop("log_p")
    return dict(bpd=bits_per_dim(log_p, x_B[0].size, levels), nll=-log_p, **out)


def load_images(config, split: str, num_images: int) -> np.ndarray:
    """The first ``num_images`` images of ``split``. tfds data sets read their own split; for
    local ones (digits, mnist5k, npy) ``test`` is the examples after the first
    ``data.max_examples``, which training never sees."""
    data_config = config.data
    if data.is_tfds_name(data_config.dataset):
        data_config = type(data_config)(data_config.to_dict())
        data_config.split = split
        dataset = data.get_dataset(data_config, seed=config.seed)
        first = 0
    else:
        full = type(data_config)(data_config.to_dict())
        full.max_examples = 0
        dataset = data.get_dataset(full, seed=config.seed)
        used = int(data_config.max_examples or 0)
        if split == "train":
            first = 0
        elif split == "test":
            if not 0 < used < len(dataset):
                raise ValueError(
                    f"{data_config.dataset!r} has no held-out images: training used "
                    f"{'all' if not used else used} of its {len(dataset)} examples "
                    "(data.max_examples); use --split=train or a config that holds some out, "
                    "such as configs/digits_gelu.py")
            first = used
        else:
            raise ValueError(f"split must be 'train' or 'test' for {data_config.dataset!r}")
    if not dataset.is_image:
        raise ValueError("bits/dim are defined for images on a grid of levels; "
                         f"{data_config.dataset!r} is not an image data set")
    count = min(int(num_images), len(dataset) - first)
    return dataset.get(np.arange(first, first + count))


def evaluate_bpd(run, config, out_dir: str, request) -> dict:
    """The ``bpd`` mode: bits/dim of ``num_images`` images of ``split`` under the flow, with
    the log-det method ``logdet`` (exact | per_step | stochastic), per image and averaged."""
    check_smooth(config.model)
    num_images = int(request.option("num_images", 16))
    split = request.option("split", "test")
    method = request.option("logdet", "exact")
    levels = num_levels(config.data)
    x = load_images(config, split, num_images)
    kwargs = flow.flow_kwargs(config.sampling)
    ld_kwargs = {}
    if method in ("exact", "per_step"):
        ld_kwargs["chunk_size"] = int(request.option("chunk_size", 64))
    invert_kwargs = dict(num_iters=int(request.option("inversion_iters", 200)),
                         learning_rate=float(request.option("inversion_lr", 0.05)))
    energy = run.energy

    @jax.jit
    def compute(params, x, key):
        return flow_bpd(lambda v: energy(params, v), x, key, levels=levels,
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
    protocol = {"K": kwargs["num_steps"], "s": kwargs["step_size"], "p0": kwargs["init"],
                "init_low": kwargs["init_low"], "init_high": kwargs["init_high"],
                "levels": levels, "split": split, "num_images": int(len(x)),
                "logdet": method, **ld_kwargs, **invert_kwargs, "seed": int(request.seed),
                "checkpoint_step": int(run.step)}
    return {"mode": "bpd", "protocol": protocol, "stats": stats, "per_image": per_image}
