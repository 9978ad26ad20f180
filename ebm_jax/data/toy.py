"""Low-dimensional toy densities with samplers and (log-)densities for evaluation.

Every density samples with numpy from a given `np.random.Generator` and evaluates its
log-density in jax.numpy, so the log-density accepts numpy or jax arrays and traces under jit.
All log-densities are exact (up to quadrature error below 1e-6 in log-density) except
'pinwheel', whose density has no tractable form and is approximated by a kernel density
estimate; `ToyDensity.exact` says which.
"""
from __future__ import annotations

import abc
import functools
import math
import zlib

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, logsumexp

from ebm_jax.data.base import Dataset

CHECKERBOARD_OUTSIDE_LOG_DENSITY = -1e4
"""Log-density reported outside the checkerboard's support, finite so that sums and
gradients of log-densities stay free of inf and NaN; exp() of it is 0 in float32."""

_LOG_2PI = math.log(2.0 * math.pi)


def _as_points(x_ND, dim: int) -> jax.Array:
    x_ND = jnp.asarray(x_ND)
    if not jnp.issubdtype(x_ND.dtype, jnp.floating):
        x_ND = x_ND.astype(jnp.float32)
    if x_ND.ndim != 2 or x_ND.shape[1] != dim:
        raise ValueError(f"Expected points of shape (N, {dim}), got {x_ND.shape}.")
    return x_ND


def _scan_logsumexp(
    log_kernel_fn, x_ND: jax.Array, nodes_MD: np.ndarray, log_weights_M: np.ndarray, chunk: int
) -> jax.Array:
    """log sum_m exp(log_weights_M[m] + log_kernel_fn(x_ND, nodes_MD[m])), `chunk` nodes at a time.

    Chunking bounds memory at (N, chunk, D), so a dense plotting grid fits on any device.
    """
    num_nodes, dim = nodes_MD.shape
    assert num_nodes % chunk == 0 and log_weights_M.shape == (num_nodes,), (num_nodes, chunk)
    nodes_CKD = jnp.asarray(nodes_MD, dtype=x_ND.dtype).reshape(num_nodes // chunk, chunk, dim)
    log_weights_CK = jnp.asarray(log_weights_M, dtype=x_ND.dtype).reshape(num_nodes // chunk, chunk)

    def body(acc_N, nodes_and_log_weights):
        nodes_KD, log_weights_K = nodes_and_log_weights
        log_terms_NK = log_kernel_fn(x_ND, nodes_KD) + log_weights_K[None, :]
        return jnp.logaddexp(acc_N, logsumexp(log_terms_NK, axis=1)), None

    init_N = jnp.full(x_ND.shape[:1], -jnp.inf, dtype=x_ND.dtype)
    acc_N, _ = jax.lax.scan(body, init_N, (nodes_CKD, log_weights_CK))
    return acc_N


def _gauss_legendre(low: float, high: float, num_panels: int, order: int = 8):
    """Composite Gauss-Legendre rule on [low, high]: nodes (M,) and weights (M,) summing to high - low.

    Unlike the midpoint rule it stays accurate where an integrand stops abruptly at the
    interval's ends (the tips of a spiral or a moon).
    """
    unit_nodes_K, unit_weights_K = np.polynomial.legendre.leggauss(order)
    edges_P = np.linspace(low, high, num_panels + 1)
    half_width_P1 = 0.5 * np.diff(edges_P)[:, None]
    nodes_PK = 0.5 * (edges_P[:-1] + edges_P[1:])[:, None] + half_width_P1 * unit_nodes_K[None, :]
    return nodes_PK.ravel(), (half_width_P1 * unit_weights_K[None, :]).ravel()


def _log_gaussian_kernel(std: float):
    """Isotropic Gaussian log-density, (N, D) points x (K, D) centres -> (N, K)."""

    def log_kernel(x_ND, centres_KD):
        sq_dist_NK = jnp.sum((x_ND[:, None, :] - centres_KD[None, :, :]) ** 2, axis=-1)
        dim = x_ND.shape[1]
        return -0.5 * sq_dist_NK / std**2 - 0.5 * dim * (_LOG_2PI + 2.0 * math.log(std))

    return log_kernel


def _log_ndtr_diff(hi, lo):
    """log(Phi(hi) - Phi(lo)) for hi > lo, without cancellation in either tail."""
    # Phi(hi) - Phi(lo) == Phi(-lo) - Phi(-hi): evaluate on the side where both CDFs are small.
    flip = (hi + lo) > 0
    upper = jnp.where(flip, -lo, hi)
    lower = jnp.where(flip, -hi, lo)
    log_upper = log_ndtr(upper)
    return log_upper + jnp.log1p(-jnp.exp(log_ndtr(lower) - log_upper))


class ToyDensity(abc.ABC):
    """A toy distribution: a numpy sampler and a jax.numpy log-density.

    Attributes:
      dim: dimension D of a sample.
      exact: whether `log_density` is the true normalised log-density (True) or an
        approximation of it (False).
    """

    dim: int = 2
    exact: bool = True

    @abc.abstractmethod
    def _sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draws (n, dim) samples."""

    @abc.abstractmethod
    def _log_density(self, x_ND: jax.Array) -> jax.Array:
        """Log-density of validated points (N, dim) -> (N,)."""

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draws n samples from `rng`; returns float32 of shape (n, dim)."""
        return np.asarray(self._sample(rng, int(n)), dtype=np.float32).reshape(int(n), self.dim)

    def log_density(self, x_ND) -> jax.Array:
        """Normalised log-density at the points x_ND (N, dim), numpy or jax -> (N,)."""
        return self._log_density(_as_points(x_ND, self.dim))


class EightGaussians(ToyDensity):
    """Equal mixture of 8 isotropic Gaussians (sd 0.15) centred on the unit circle at k*pi/4."""

    def __init__(self, radius: float = 1.0, std: float = 0.15):
        self.std = std
        angles_K = np.arange(8) * np.pi / 4
        self.centres_K2 = radius * np.stack([np.cos(angles_K), np.sin(angles_K)], axis=1)

    def _sample(self, rng, n):
        component_N = rng.integers(len(self.centres_K2), size=n)
        return self.centres_K2[component_N] + self.std * rng.standard_normal((n, 2))

    def _log_density(self, x_ND):
        centres_K2 = jnp.asarray(self.centres_K2, dtype=x_ND.dtype)
        log_kernel_NK = _log_gaussian_kernel(self.std)(x_ND, centres_K2)
        return logsumexp(log_kernel_NK, axis=1) - math.log(len(self.centres_K2))


class Rings(ToyDensity):
    """Concentric rings of radii 1, 2, 3, 4 with equal weight, uniform angle, radial sd 0.15.

    The radius is N(r, 0.15^2) given the ring r, so the 2-D density at radius rho is
    p(rho) / (2 pi rho) with p the 1-D radial mixture. p is normalised as if untruncated:
    the mass it puts on rho < 0 is below 1e-10 for these radii. For the same reason the radius
    is clamped at 1e-6 before 1/rho, which changes the density only on a disc of mass ~1e-16.
    """

    def __init__(self, radii=(1.0, 2.0, 3.0, 4.0), std: float = 0.15):
        self.radii_K = np.asarray(radii, dtype=np.float64)
        self.std = std

    def _sample(self, rng, n):
        radius_N = self.radii_K[rng.integers(len(self.radii_K), size=n)]
        radius_N = radius_N + self.std * rng.standard_normal(n)
        angle_N = rng.uniform(0.0, 2.0 * np.pi, size=n)
        return radius_N[:, None] * np.stack([np.cos(angle_N), np.sin(angle_N)], axis=1)

    def _log_density(self, x_ND):
        rho_N = jnp.sqrt(jnp.maximum(jnp.sum(x_ND**2, axis=1), 1e-12))
        radii_K = jnp.asarray(self.radii_K, dtype=x_ND.dtype)
        log_radial_NK = -0.5 * ((rho_N[:, None] - radii_K[None, :]) / self.std) ** 2
        log_radial_N = (
            logsumexp(log_radial_NK, axis=1)
            - math.log(len(self.radii_K))
            - 0.5 * _LOG_2PI
            - math.log(self.std)
        )
        return log_radial_N - _LOG_2PI - jnp.log(rho_N)


class Checkerboard(ToyDensity):
    """FFJORD's checkerboard, unscaled: uniform on the 8 unit squares of [-2, 2]^2 whose
    integer corners (floor(x1), floor(x2)) have an even sum.

    Inside the support the log-density is log(1/8); outside it is
    CHECKERBOARD_OUTSIDE_LOG_DENSITY (-1e4) rather than -inf, so that it never produces NaN.
    """

    def _sample(self, rng, n):
        x1_N = rng.uniform(-2.0, 2.0, size=n)
        x2_N = rng.uniform(0.0, 1.0, size=n) - 2.0 * rng.integers(0, 2, size=n)
        x2_N = x2_N + np.mod(np.floor(x1_N), 2)
        return np.stack([x1_N, x2_N], axis=1)

    def _log_density(self, x_ND):
        cell_ND = jnp.floor(x_ND)
        in_box_N = jnp.all((x_ND >= -2.0) & (x_ND < 2.0), axis=1)
        on_white_N = jnp.mod(jnp.sum(cell_ND, axis=1), 2) == 0
        inside_N = in_box_N & on_white_N
        return jnp.where(inside_N, -math.log(8.0), CHECKERBOARD_OUTSIDE_LOG_DENSITY).astype(x_ND.dtype)


class TwoSpirals(ToyDensity):
    """FFJORD's two spirals, with the spiral of each point drawn independently (p = 1/2).

    A point is s * (-n cos n + a, n sin n + b) / 3 + eps with s = +-1, n = 3 pi sqrt(u),
    u ~ U[0, 1], a, b ~ U[0, 0.5] and eps ~ N(0, 0.1^2 I). Given n, the box-uniform offset
    convolved with the Gaussian has a closed form (differences of normal CDFs); the density
    integrates that over n, whose density is 2n / (3 pi)^2 on [0, 3 pi], with a 512-node
    composite Gauss-Legendre rule per spiral. Against a 16,384-node rule its log-density
    differs by under 1e-6 on samples, so it is exact for all practical purposes.
    """

    def __init__(self, noise_std: float = 0.1, num_panels: int = 64):
        self.noise_std = noise_std
        self.box_width = 0.5 / 3.0
        n_max = 3.0 * np.pi
        n_Q, weights_Q = _gauss_legendre(0.0, n_max, num_panels)
        weights_Q = weights_Q * 2.0 * n_Q / n_max**2
        corner_Q2 = np.stack([-np.cos(n_Q) * n_Q, np.sin(n_Q) * n_Q], axis=1) / 3.0
        # The mirrored spiral's box is [-corner - width, -corner]: store lower corners of both.
        self.lower_corners_M2 = np.concatenate([corner_Q2, -corner_Q2 - self.box_width])
        self.log_weights_M = np.log(np.concatenate([weights_Q, weights_Q]) / 2.0)

    def _sample(self, rng, n):
        n_N = 3.0 * np.pi * np.sqrt(rng.uniform(size=n))
        offset_N2 = 0.5 * rng.uniform(size=(n, 2))
        curve_N2 = np.stack([-np.cos(n_N) * n_N, np.sin(n_N) * n_N], axis=1)
        sign_N = rng.choice([-1.0, 1.0], size=n)
        noise_N2 = self.noise_std * rng.standard_normal((n, 2))
        return sign_N[:, None] * (curve_N2 + offset_N2) / 3.0 + noise_N2

    def _log_density(self, x_ND):
        std, width = self.noise_std, self.box_width

        def log_kernel(x_ND, lower_KD):
            diff_NKD = x_ND[:, None, :] - lower_KD[None, :, :]
            log_box_NKD = _log_ndtr_diff(diff_NKD / std, (diff_NKD - width) / std)
            return jnp.sum(log_box_NKD, axis=-1) - 2.0 * math.log(width)

        return _scan_logsumexp(log_kernel, x_ND, self.lower_corners_M2, self.log_weights_M, chunk=256)


class Moons(ToyDensity):
    """Two interleaved half-moons, as sklearn's make_moons(noise=0.1) scaled by 2 and shifted by
    (-1, -0.2) (the FFJORD convention), with the position along each moon drawn uniformly.

    Centre curves: 2 (cos t, sin t) + (-1, -0.2) and 2 (1 - cos t, 0.5 - sin t) + (-1, -0.2),
    t ~ U[0, pi], each moon with probability 1/2, plus N(0, 0.2^2 I) noise. The density
    integrates the Gaussian over t with a 256-node composite Gauss-Legendre rule per moon,
    exact for all practical purposes (under 1e-6 in log-density on samples).
    """

    def __init__(self, noise_std: float = 0.2, num_panels: int = 32):
        self.noise_std = noise_std
        t_Q, weights_Q = _gauss_legendre(0.0, np.pi, num_panels)
        self.nodes_M2 = np.concatenate([self._curve(0, t_Q), self._curve(1, t_Q)])
        self.log_weights_M = np.log(np.concatenate([weights_Q, weights_Q]) / (2.0 * np.pi))

    @staticmethod
    def _curve(moon: int, t_N: np.ndarray) -> np.ndarray:
        if moon == 0:
            curve_N2 = np.stack([np.cos(t_N), np.sin(t_N)], axis=1)
        else:
            curve_N2 = np.stack([1.0 - np.cos(t_N), 0.5 - np.sin(t_N)], axis=1)
        return 2.0 * curve_N2 + np.array([-1.0, -0.2])

    def _sample(self, rng, n):
        moon_N = rng.integers(0, 2, size=n)
        t_N = rng.uniform(0.0, np.pi, size=n)
        centre_N2 = np.where(moon_N[:, None] == 0, self._curve(0, t_N), self._curve(1, t_N))
        return centre_N2 + self.noise_std * rng.standard_normal((n, 2))

    def _log_density(self, x_ND):
        log_kernel = _log_gaussian_kernel(self.noise_std)
        return _scan_logsumexp(log_kernel, x_ND, self.nodes_M2, self.log_weights_M, chunk=256)


class Pinwheel(ToyDensity):
    """FFJORD's pinwheel: 5 arms, radial sd 0.3, tangential sd 0.1, rate 0.25, scaled by 2,
    with the arm of each point drawn uniformly.

    The exact density has no closed form (the twist depends on the radial feature, so
    inverting the map to the Gaussian features needs a root search), so `log_density` is an
    APPROXIMATION: the log of a Gaussian
    kernel density estimate with bandwidth 0.1 over 20,000 reference samples drawn with seed 0.
    It is normalised, but smoother than the truth by the bandwidth.
    """

    exact = False

    def __init__(self, bandwidth: float = 0.1, num_reference: int = 20_000, reference_seed: int = 0):
        self.bandwidth = bandwidth
        self.num_reference = num_reference
        self.reference_seed = reference_seed

    def _sample(self, rng, n):
        num_arms, radial_std, tangential_std, rate = 5, 0.3, 0.1, 0.25
        arm_N = rng.integers(num_arms, size=n)
        features_N2 = rng.standard_normal((n, 2)) * np.array([radial_std, tangential_std])
        features_N2[:, 0] += 1.0
        angle_N = 2.0 * np.pi * arm_N / num_arms + rate * np.exp(features_N2[:, 0])
        cos_N, sin_N = np.cos(angle_N), np.sin(angle_N)
        f0_N, f1_N = features_N2[:, 0], features_N2[:, 1]
        return 2.0 * np.stack([f0_N * cos_N + f1_N * sin_N, -f0_N * sin_N + f1_N * cos_N], axis=1)

    @functools.cached_property
    def reference_M2(self) -> np.ndarray:
        """The fixed reference sample under the kernel density estimate."""
        return self.sample(np.random.default_rng(self.reference_seed), self.num_reference)

    def _log_density(self, x_ND):
        log_kernel = _log_gaussian_kernel(self.bandwidth)
        log_weights_M = np.full(self.num_reference, -math.log(self.num_reference))
        return _scan_logsumexp(log_kernel, x_ND, self.reference_M2, log_weights_M, chunk=250)


class GaussianMixture1D(ToyDensity):
    """A 1-D mixture of Gaussians with the given weights, means and standard deviations."""

    dim = 1

    def __init__(self, weights, means, stds):
        self.weights_K = np.asarray(weights, dtype=np.float64)
        self.means_K = np.asarray(means, dtype=np.float64)
        self.stds_K = np.asarray(stds, dtype=np.float64)
        if not np.isclose(self.weights_K.sum(), 1.0):
            raise ValueError(f"Mixture weights must sum to 1, got {weights}.")

    def _sample(self, rng, n):
        component_N = rng.choice(len(self.weights_K), size=n, p=self.weights_K)
        return self.means_K[component_N] + self.stds_K[component_N] * rng.standard_normal(n)

    def _log_density(self, x_ND):
        dtype = x_ND.dtype
        means_K = jnp.asarray(self.means_K, dtype=dtype)
        stds_K = jnp.asarray(self.stds_K, dtype=dtype)
        log_weights_K = jnp.asarray(np.log(self.weights_K), dtype=dtype)
        z_NK = (x_ND - means_K[None, :]) / stds_K[None, :]
        log_component_NK = -0.5 * z_NK**2 - jnp.log(stds_K) - 0.5 * _LOG_2PI
        return logsumexp(log_component_NK + log_weights_K, axis=1)


TOY_DENSITIES: dict[str, ToyDensity] = {
    "8gaussians": EightGaussians(),
    "rings": Rings(),
    "checkerboard": Checkerboard(),
    "2spirals": TwoSpirals(),
    "pinwheel": Pinwheel(),
    "moons": Moons(),
    "1d_mog": GaussianMixture1D(weights=(0.5, 0.5), means=(-1.5, 1.5), stds=(0.3, 0.3)),
    "1d_mog3": GaussianMixture1D(
        weights=(0.25, 0.5, 0.25), means=(-2.0, 0.0, 2.0), stds=(0.3, 0.3, 0.3)
    ),
}


def split_seed(seed: int, split: str) -> list[int]:
    """The numpy seed sequence of a generated split: distinct splits get independent draws."""
    return [int(seed), zlib.crc32(split.encode("utf-8"))]


def make_toy_dataset(name: str, num_examples: int, seed: int, split: str = "train") -> Dataset:
    """Generates `num_examples` samples of the toy density `name` as an in-memory Dataset.

    The sample is a deterministic function of (seed, split); `log_density` is the density's.
    """
    density = TOY_DENSITIES[name]
    if num_examples <= 0:
        raise ValueError(f"num_examples must be positive for toy data, got {num_examples}.")
    x_ND = density.sample(np.random.default_rng(split_seed(seed, split)), num_examples)
    return Dataset.from_array(name, x_ND, is_image=False, log_density=density.log_density)
