"""Held-out likelihood: the importance-weighted bound on the noisy model x = m(u) + tau * eps
(``make_bound_fn``, the figure ``--mode=bpd`` reports, with its baselines ``gaussian_bpd`` and
``ppca_bpd``), and the review's diagnostic, the density of M(z*) under the noise-free
short-run flow x = M(z), z ~ p_0 (``flow_log_prob``, ``flow_bpd``), described here.

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
import jax.numpy as jnp
import numpy as np

from ebm_jax.core import flow, iwae, logdet
from ebm_jax.core.prior import Prior

Array = jax.Array

# Levels per value of each image data set; 8-bit images otherwise.
NUM_LEVELS = {"digits": 17}


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


# The held-out log-likelihood of the noisy model x = m(u) + tau * eps (``core.iwae``,
# ``noisy_models``): the importance-weighted bound, tau's fit, and AIS beside it.

BOUND_SIZES = (1, 10, 100, 1000)


def make_bound_fn(model, *, levels: int | None, num_samples: int, proposal: str = "dense",
                  map_iters: int = 100, map_lr: float = 0.05, defensive: float = 0.0,
                  num_probes: int = 8, newton_steps: int = 2, num_starts: int = 1,
                  hessian: bool = False, dof: float = 0.0):
    """``bound(params, x_B, u0_B, key, tau) -> (log_w_SB, u_star_B, proposal)``: the modes of
    log p(x, u) searched from ``u0_B`` and ``num_starts - 1`` draws of N(0, I)
    (``map_iters`` Adam steps; the dense proposal then takes ``newton_steps`` Gauss-Newton
    steps), a Laplace component at each (``dense`` or ``diag``, see ``iwae``), mixed with a
    ``defensive`` share of N(0, I), and the log weights of ``num_samples`` draws. ``u_star``
    is the mode of the highest log p(x, u). Keys: the extra starts ``fold_in(key, 2)``,
    proposal probes ``fold_in(key, 0)``, draws ``fold_in(key, 1)``."""
    if proposal not in ("dense", "diag"):
        raise ValueError(f"proposal must be 'dense' or 'diag', got {proposal!r}")
    starts = max(int(num_starts), 1)

    def bound(params, x_B, u0_B, key, tau):
        decode = lambda u: model.decode(params, u)

        def joint_of(x):
            return lambda u: (model.log_prior(params, u)
                              + iwae.obs_log_prob(x, decode(u), tau, levels))

        batch = u0_B.shape[0]
        extra = jax.random.normal(jax.random.fold_in(key, 2), (starts - 1,) + u0_B.shape)
        u0_N = jnp.concatenate([u0_B[None], extra]).reshape((-1,) + u0_B.shape[1:])
        x_N = jnp.concatenate([x_B] * starts)
        log_joint_n = joint_of(x_N)
        u_N = iwae.find_mode(log_joint_n, u0_N, num_iters=map_iters, learning_rate=map_lr)
        if proposal == "dense":
            u_N = iwae.newton_refine(log_joint_n, decode, u_N, tau, num_steps=newton_steps)
            q = iwae.laplace_dense(decode, u_N, tau, defensive=defensive,
                                   log_joint_one=(lambda x, u: joint_of(x)(u)) if hessian
                                   else None, x_B=x_N)
        else:
            q = iwae.laplace_diag(decode, u_N, tau, jax.random.fold_in(key, 0),
                                  num_probes=num_probes, defensive=defensive)
        split = lambda a: None if a is None else a[0].reshape((starts, batch) + a.shape[2:])
        q = iwae.Proposal(split(q.mean_MB), split(q.chol_MBdd), split(q.prec_MBd), defensive,
                          dof)
        best = jnp.argmax(log_joint_n(u_N).reshape(starts, batch), axis=0)
        u_star = q.mean_MB[best, jnp.arange(batch)]
        log_w = iwae.log_weights(joint_of(x_B), q, jax.random.fold_in(key, 1), num_samples)
        return log_w, u_star, q

    return bound


def bounds_by_size(log_w_SB, sizes=BOUND_SIZES) -> dict[int, np.ndarray]:
    """{S: the bound L_S per example} for the sizes up to the number of weights."""
    log_w = jnp.asarray(log_w_SB)
    return {s: np.asarray(iwae.iw_bound(log_w, s)) for s in sizes if s <= log_w.shape[0]}


def fit_obs_std(bound_of_tau: Callable[[float], np.ndarray], grid) -> tuple[float, dict]:
    """The tau of ``grid`` with the largest mean bound (``bound_of_tau(tau)`` gives the bound
    per training example), and {tau: mean bound}."""
    scores = {float(t): float(np.mean(bound_of_tau(float(t)))) for t in grid}
    finite = {t: v for t, v in scores.items() if np.isfinite(v)}
    if not finite:
        raise ValueError(f"no tau of the grid {list(grid)} gives a finite bound")
    return max(finite, key=finite.get), scores


def discrete_bpd(log_prob_B, dim: int) -> np.ndarray:
    """Bits/dim of a discrete probability: -log P / (D ln 2)."""
    return -np.asarray(log_prob_B) / (dim * math.log(2.0))


def mean_stderr(values) -> tuple[float, float]:
    """The mean and its standard error over examples."""
    v = np.asarray(values, np.float64)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def ppca_bpd(train_x: np.ndarray, test_x: np.ndarray, levels: int, latent_dim: int,
             seed: int = 0) -> np.ndarray:
    """Bits/dim of ``test_x`` under probabilistic PCA with ``latent_dim`` components
    (Tipping and Bishop's maximum-likelihood fit) on the dequantised ``train_x``, the test
    images dequantised likewise: a baseline beside ``gaussian_bpd``."""
    rng = np.random.default_rng(seed)
    step = 2.0 / (levels - 1)
    flat = lambda x: np.asarray(x, np.float64).reshape(len(x), -1)
    train = flat(train_x) + rng.random(flat(train_x).shape) * step
    test = flat(test_x) + rng.random(flat(test_x).shape) * step
    mean = train.mean(0)
    cov = np.cov(train, rowvar=False, bias=True)
    eig, vec = np.linalg.eigh(cov)
    eig, vec = eig[::-1], vec[:, ::-1]
    dim = train.shape[1]
    noise = eig[latent_dim:].mean() if latent_dim < dim else 0.0
    model_cov = (vec[:, :latent_dim] * (eig[:latent_dim] - noise)) @ vec[:, :latent_dim].T
    model_cov += noise * np.eye(dim)
    sign, log_det = np.linalg.slogdet(model_cov)
    diff = test - mean
    maha = np.sum(diff * np.linalg.solve(model_cov, diff.T).T, axis=1)
    log_p = -0.5 * (maha + log_det + dim * np.log(2 * np.pi))
    return np.asarray(bits_per_dim(log_p, dim, levels))
