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

import math
from typing import Callable

import jax
import numpy as np

from ebm_jax.core import flow, logdet
from ebm_jax.core.prior import Prior

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
                  logdet_kwargs: dict | None = None, prior: Prior = Prior(),
                  unroll: int | bool = 1, **invert_kwargs) -> dict[str, Array]:
    """log p(M(z)) = log p_0(z) - log|det dM/dz| at the z that ``flow.invert`` finds for each
    x, and its parts, per example: ``log_p``, ``log_p0``, ``logdet``, ``logdet_stderr``,
    ``recon_mse`` (between x and M(z)), ``at_boundary`` (coordinates of z pinned on the prior's
    boundary) and, for the stochastic log-det, ``spectral_radius``."""
    k_inv, k_ld = jax.random.split(key)
    inv = flow.invert(energy_fn, x_B, k_inv, num_steps=num_steps, step_size=step_size,
                      unroll=unroll, prior=prior, **invert_kwargs)
    ld = logdet.logdet(logdet_method, energy_fn, inv.z, k_ld, num_steps=num_steps,
                       step_size=step_size, **(logdet_kwargs or {}))
    log_p0 = prior.log_prob(inv.z)
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
