import warnings

import numpy as np
import pytest
from scipy import linalg

from ebm_jax.evaluation import fid


def _random_gaussian(rng, d):
    a = rng.normal(size=(d, d))
    return rng.normal(size=d), a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_matches_scipy_on_random_gaussians():
    rng = np.random.default_rng(0)
    mu1, s1 = _random_gaussian(rng, 6)
    mu2, s2 = _random_gaussian(rng, 6)
    root1 = linalg.sqrtm(s1)
    # The symmetric form Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2) equals the one we compute.
    expected = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
                - 2 * np.trace(np.real(linalg.sqrtm(root1 @ s2 @ root1))))
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert fid.frechet_distance(mu1, s1, mu2, s2) > 0.5


def test_identical_statistics_give_zero_and_a_shifted_mean_gives_its_squared_norm():
    rng = np.random.default_rng(1)
    mu, sigma = _random_gaussian(rng, 5)
    assert abs(fid.frechet_distance(mu, sigma, mu, sigma)) < 1e-9
    shift = np.array([0.5, -1.0, 2.0, 0.0, 0.25])
    assert fid.frechet_distance(mu + shift, sigma, mu, sigma) == pytest.approx(
        shift @ shift, rel=1e-8)


def test_frechet_distance_of_one_dimensional_gaussians_is_closed_form():
    # (m1 - m2)^2 + (s1 - s2)^2 for N(m1, s1^2) and N(m2, s2^2).
    assert fid.frechet_distance([1.0], [[4.0]], [-1.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


def test_singular_covariances_from_few_samples_stay_finite_without_a_warning():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(5, 20)), rng.normal(size=(5, 20)) + 1.0
    a[:, :4] = b[:, :4] = 0.0  # dead features: S1 S2 is singular, as on the digit network
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = fid.frechet_distance(*fid.feature_stats(a), *fid.feature_stats(b))
        same = fid.frechet_distance(*fid.feature_stats(a), *fid.feature_stats(a))
    assert np.isfinite(value) and value > 16 * 0.5
    assert abs(same) < 1e-5  # square roots of eigenvalues that rounding left near 0


def test_inception_score_bounds():
    # Confident, evenly spread predictions over C classes score C; one class for all scores 1.
    c = 10
    confident = np.tile(100.0 * np.eye(c), (5, 1))
    assert fid.inception_score(confident, num_splits=5)[0] == pytest.approx(c, rel=1e-6)
    assert fid.inception_score(np.zeros((50, c)), num_splits=5) == pytest.approx((1.0, 0.0))


def test_kid_is_near_zero_for_one_distribution_and_large_for_two():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    same, _ = fid.kernel_inception_distance(x, y, num_subsets=10, subset_size=200)
    apart, _ = fid.kernel_inception_distance(x, y + 1.0, num_subsets=10, subset_size=200)
    assert abs(same) < 0.05 and apart > 1.0


def test_stats_round_trip(tmp_path):
    mu, sigma = np.arange(3.0), np.eye(3)
    fid.save_stats(str(tmp_path / "s" / "ref.npz"), mu, sigma, num_examples=7)
    mu2, sigma2 = fid.load_stats(str(tmp_path / "s" / "ref.npz"))
    np.testing.assert_array_equal(mu2, mu)
    np.testing.assert_array_equal(sigma2, sigma)
