"""Two-sample statistics that say whether short-run samples match a target distribution."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum(
        np.sum(a * a, 1)[:, None] + np.sum(b * b, 1)[None, :] - 2.0 * a @ b.T, 0.0)


def mmd2(x_ND: np.ndarray, y_MD: np.ndarray,
         bandwidths: Sequence[float] = (0.1, 0.2, 0.5, 1.0)) -> float:
    """Unbiased squared MMD with a sum of Gaussian kernels exp(-|a-b|^2 / (2 h^2)).

    Zero in expectation when both samples come from the same distribution. The kernel is fixed
    (not fitted to the data), so values are comparable across runs of the same data set.
    """
    x = np.asarray(x_ND, np.float64).reshape(len(x_ND), -1)
    y = np.asarray(y_MD, np.float64).reshape(len(y_MD), -1)
    n, m = len(x), len(y)
    dxx, dyy, dxy = _sq_dists(x, x), _sq_dists(y, y), _sq_dists(x, y)
    total = 0.0
    for h in bandwidths:
        kxx, kyy, kxy = (np.exp(-d / (2.0 * h * h)) for d in (dxx, dyy, dxy))
        total += ((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
                  + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2.0 * kxy.mean())
    return float(total)


def histogram_kl(p_samples_ND: np.ndarray, q_samples_ND: np.ndarray, bins: int = 30,
                 lim: float = 2.0, eps: float = 1e-6) -> float:
    """KL(p || q) between histograms on [-lim, lim]^D (D = 1 or 2), smoothed by ``eps``."""
    p = np.asarray(p_samples_ND, np.float64)
    q = np.asarray(q_samples_ND, np.float64)
    rng = [(-lim, lim)] * p.shape[1]
    hp, _ = np.histogramdd(p, bins=bins, range=rng)
    hq, _ = np.histogramdd(q, bins=bins, range=rng)
    hp = hp.ravel() / max(len(p), 1) + eps
    hq = hq.ravel() / max(len(q), 1) + eps
    hp, hq = hp / hp.sum(), hq / hq.sum()
    return float(np.sum(hp * np.log(hp / hq)))


def sample_summary(x: np.ndarray) -> dict:
    """Mean, standard deviation, the fraction beyond +-1 (over-saturation), the share of
    non-finite values, and the mean std across chains (near 0 means collapsed samples)."""
    x = np.asarray(x, np.float64)
    finite = np.isfinite(x)
    xf = np.where(finite, x, 0.0)
    flat = xf.reshape(len(x), -1)
    return {
        "mean": float(xf.mean()),
        "std": float(xf.std()),
        "abs_mean": float(np.abs(xf).mean()),
        "saturation": float(np.mean(np.abs(xf) > 1.0)),
        "nonfinite": float(1.0 - finite.mean()),
        "diversity": float(flat.std(axis=0).mean()),
    }


def discrete_kl(p: np.ndarray, q: np.ndarray, eps: float = 1e-12) -> float:
    """KL(p || q) of two probability vectors on the same cells (each normalised here);
    ``eps`` keeps cells where q vanishes finite."""
    p = np.asarray(p, np.float64).ravel()
    q = np.asarray(q, np.float64).ravel()
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(np.where(p > 0, p * (np.log(np.maximum(p, eps))
                                             - np.log(np.maximum(q, eps))), 0.0)))


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """sup_A |P(A) - Q(A)| = (1/2) sum |p - q| of two probability vectors (normalised here)."""
    p = np.asarray(p, np.float64).ravel()
    q = np.asarray(q, np.float64).ravel()
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def pca_basis(train_ND: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mean_D, basis_dD)``: the mean and the top ``d`` principal directions of the rows of
    ``train`` (flattened), for the linear baselines of the latent families."""
    train = np.asarray(train_ND, np.float64).reshape(len(train_ND), -1)
    mean = train.mean(0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    return mean, vt[:d]


def pca_codes(mean_D: np.ndarray, basis_dD: np.ndarray, x_ND: np.ndarray) -> np.ndarray:
    """The coordinates of the rows of ``x`` (flattened) in a ``pca_basis``."""
    return (np.asarray(x_ND, np.float64).reshape(len(x_ND), -1) - mean_D) @ basis_dD.T
