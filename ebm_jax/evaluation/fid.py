"""Sample-quality metrics on Inception features: FID, Inception Score and KID.

The math only, in float64 NumPy: features in, numbers out. Features come from
``ebm_jax.evaluation.inception`` (pool3, 2048-d; logits over the 2015 graph's 1008 classes).
"""
from __future__ import annotations

import os

import numpy as np


def feature_stats(features_ND: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, ``np.cov``) of the rows."""
    f = np.asarray(features_ND, np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _psd_sqrt(s_DD: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance, its (rounding-)negative eigenvalues as 0."""
    w, v = np.linalg.eigh((s_DD + s_DD.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1_D, sigma1_DD, mu2_D, sigma2_DD) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), the Frechet distance of two Gaussians.

    Tr (S1 S2)^(1/2) is computed as Tr (S1^(1/2) S2 S1^(1/2))^(1/2), the sum of the square
    roots of the eigenvalues of a symmetric positive semi-definite matrix (the same eigenvalues
    as S1 S2). It stays exact where S1 S2 is singular (fewer samples than dimensions, or dead
    features), where ``scipy.linalg.sqrtm`` warns and the reference implementation adds 1e-6 to
    both diagonals; on the digit network the two agree to 6e-6."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1_D, np.float64)), np.atleast_1d(
        np.asarray(mu2_D, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1_DD, np.float64)), np.atleast_2d(
        np.asarray(sigma2_DD, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"statistics disagree in shape: {mu1.shape}/{s1.shape} against "
                         f"{mu2.shape}/{s2.shape}")
    diff = mu1 - mu2
    root1 = _psd_sqrt(s1)
    inner = root1 @ s2 @ root1
    trace_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0.0, None)).sum()
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_covmean)


def inception_score(logits_NC: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))), its mean and standard deviation over ``num_splits`` equal
    parts of the samples, as in the original Inception Score code."""
    logits = np.asarray(logits_NC, np.float64)
    logp = logits - logits.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    scores = []
    for part in np.array_split(logp, num_splits):
        p = np.exp(part)
        log_marginal = np.log(p.mean(0, keepdims=True))
        scores.append(np.exp(np.mean(np.sum(p * (part - log_marginal), axis=1))))
    return float(np.mean(scores)), float(np.std(scores))


def kernel_inception_distance(feat1_ND, feat2_MD, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID: the unbiased squared MMD with the cubic kernel (x.y / d + 1)^3, mean and standard
    deviation over random subsets of ``subset_size`` rows of each set (Binkowski et al., 2018)."""
    x = np.asarray(feat1_ND, np.float64)
    y = np.asarray(feat2_MD, np.float64)
    d = x.shape[1]
    m = min(subset_size, len(x), len(y))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx, kyy, kxy = ((u @ v.T / d + 1.0) ** 3 for u, v in ((a, a), (b, b), (a, b)))
        values.append((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                      - 2.0 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def save_stats(path: str, mu_D: np.ndarray, sigma_DD: np.ndarray, **meta) -> None:
    """Writes reference statistics as ``.npz`` (``mu``, ``sigma`` and scalar metadata)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.savez(path, mu=mu_D, sigma=sigma_DD, **{k: np.asarray(v) for k, v in meta.items()})


def load_stats(path: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as f:
        return f["mu"], f["sigma"]
