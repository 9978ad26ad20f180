import numpy as np
import pytest

from ebm_jax.evaluation import stats


def test_mmd_is_near_zero_for_the_same_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1000, 2)), rng.normal(size=(1000, 2))
    same = stats.mmd2(a, b)
    shifted = stats.mmd2(a, b + np.array([0.5, 0.0]))
    far = stats.mmd2(a, b + np.array([2.0, 0.0]))
    assert abs(same) < 5e-3
    assert shifted > 10 * abs(same)
    assert far > shifted


def test_mmd_closed_form_for_two_point_masses():
    # Unbiased MMD^2 of point masses at 0 and d with one kernel of bandwidth h:
    # k(x,x') = 1 within a sample, exp(-d^2 / 2h^2) across, so MMD^2 = 2 - 2 exp(-d^2 / 2h^2).
    x, y = np.zeros((10, 1)), np.full((10, 1), 0.7)
    np.testing.assert_allclose(stats.mmd2(x, y, bandwidths=(0.5,)),
                               2 - 2 * np.exp(-0.49 / 0.5), rtol=1e-12)


def test_histogram_kl():
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, size=(20000, 2))
    assert stats.histogram_kl(a, a) == 0.0
    assert stats.histogram_kl(a, rng.uniform(-1, 1, size=(20000, 2)), bins=10) < 0.01
    # Half the mass of q on the support of p: KL(p || q) = log 2 for uniform p on a subset.
    q = rng.uniform(-1, 1, size=(200000, 1))
    p = rng.uniform(-1, 0, size=(200000, 1))
    np.testing.assert_allclose(stats.histogram_kl(p, q, bins=20, lim=1.0), np.log(2), atol=0.01)


def test_sample_summary():
    x = np.array([[[0.5, -2.0]], [[np.nan, 1.0]]])
    s = stats.sample_summary(x)
    assert s["saturation"] == 0.25
    assert s["nonfinite"] == 0.25
    collapsed = stats.sample_summary(np.ones((8, 3)))
    assert collapsed["diversity"] == 0.0


def test_discrete_kl_and_total_variation_closed_forms():
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    assert stats.discrete_kl(p, q) == pytest.approx(0.5 * np.log(0.5 / 0.9)
                                                    + 0.5 * np.log(0.5 / 0.1))
    assert stats.discrete_kl(p, 3 * p) == pytest.approx(0.0)
    assert stats.total_variation(p, q) == pytest.approx(0.4)
    assert stats.total_variation([1, 0], [0, 2]) == pytest.approx(1.0)


def test_pca_basis_finds_the_directions_of_largest_variance():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 3)) * np.array([5.0, 1.0, 0.1]) + np.array([1.0, 2.0, 3.0])
    mean, basis = stats.pca_basis(x, 2)
    np.testing.assert_allclose(mean, x.mean(0))
    np.testing.assert_allclose(np.abs(basis), [[1, 0, 0], [0, 1, 0]], atol=0.05)
    codes = stats.pca_codes(mean, basis, x)
    assert codes.shape == (500, 2)
    np.testing.assert_allclose(codes.var(0), [25.0, 1.0], rtol=0.15)
    # Reconstructing from 2 of 3 directions leaves the smallest variance, 0.1^2, per row.
    left = np.mean(np.sum(np.square(codes @ basis + mean - x), axis=1))
    np.testing.assert_allclose(left, 0.01, rtol=0.2)
