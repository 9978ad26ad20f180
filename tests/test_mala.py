import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax.core import mala, sampler

MU = jnp.array([0.5, -1.0])
COV = jnp.array([[1.0, 0.6], [0.6, 0.5]])
PRECISION = jnp.linalg.inv(COV)


def gaussian(x):
    """log N(x; MU, COV) up to a constant, per row."""
    d = x - MU
    return -0.5 * jnp.einsum("bi,ij,bj->b", d, PRECISION, d)


def exact(key, n):
    return MU + jax.random.normal(key, (n, 2)) @ jnp.linalg.cholesky(COV).T


def moments(x):
    x = np.asarray(x, np.float64)
    return x.mean(0), np.cov(x.T)


@pytest.mark.parametrize("method, s", [("mala", 0.25), ("hmc", 0.05)])
def test_corrected_chains_leave_a_gaussian_invariant(method, s):
    # sigma^2 = 2 s makes the target exp(f) itself (T = 1). The precision's largest eigenvalue
    # is about 5.4; unadjusted Langevin at s = 0.25 inflates the variance along it by
    # 1 / (1 - s lambda / 2), about 3x. HMC's 5 leapfrog steps of sigma = 0.32 travel as far.
    n, k = 20000, 40
    x0 = exact(jax.random.key(0), n)
    run = jax.jit(lambda x: sampler.run(gaussian, x, jax.random.key(1), k, s, np.sqrt(2 * s),
                                        method=method))
    out = run(x0)
    mean, cov = moments(out.x)
    # The Monte Carlo error of n independent chains: about 0.01 on the mean, 1% on the
    # covariance entries.
    np.testing.assert_allclose(mean, MU, atol=0.03)
    np.testing.assert_allclose(cov, COV, atol=0.04)
    assert 0.2 < float(out.accept_rate) < 1.0  # the test is not trivial: moves are rejected
    assert float(jnp.mean(jnp.abs(out.x - x0))) > 0.3  # and the chains moved
    if method == "mala":  # the same proposals without the accept test drift away
        biased = sampler.run(gaussian, x0, jax.random.key(1), k, s, np.sqrt(2 * s))
        assert biased.accept_rate is None
        assert np.max(np.abs(moments(biased.x)[1] - COV)) > 0.2


def quartic(x):
    return -jnp.sum(x ** 4, axis=1) / 4 + jnp.sum(jnp.sin(3 * x), axis=1)


def test_acceptance_goes_to_one_as_the_step_goes_to_zero():
    x0 = jax.random.normal(jax.random.key(0), (2000, 3))
    rates = []
    for s in (0.3, 0.03, 0.003, 0.0003):
        out = sampler.run(quartic, x0, jax.random.key(2), 5, s, np.sqrt(2 * s), method="mala")
        rates.append(float(out.accept_rate))
    assert rates == sorted(rates) and rates[0] < 0.9
    assert rates[-1] > 0.995
    # 1 - acceptance shrinks like s^(3/2) for MALA: two decades of s give about three of it.
    assert (1 - rates[1]) / max(1 - rates[3], 1e-9) > 30


def test_one_step_is_the_langevin_proposal_with_the_metropolis_hastings_test():
    s, sigma = 0.2, 0.5
    t = mala.temperature(s, sigma)
    x = jnp.array([[0.3, -0.2], [1.5, 2.0]])
    key = jax.random.key(7)
    log_p, grad_log_p, eps = mala.tempered(gaussian, None, s, sigma)
    current = mala.Point(x, log_p(x), grad_log_p(x))
    new, ok = mala.step(lambda v: (log_p(v), grad_log_p(v)), current, key, eps)
    n = jax.random.normal(jax.random.fold_in(key, 0), x.shape)
    g = jax.grad(lambda v: jnp.sum(gaussian(v)))
    prop = x + s * g(x) + sigma * n  # the Langevin chain's own step
    # log q(x'|x) and log q(x|x') by hand, Gaussians of variance sigma^2:
    lq = lambda a, b: -jnp.sum((a - b - s * g(b)) ** 2, axis=1) / (2 * sigma ** 2)
    ratio = (gaussian(prop) - gaussian(x)) / t + lq(x, prop) - lq(prop, x)
    u = jax.random.uniform(jax.random.fold_in(key, 1), (2,))
    np.testing.assert_array_equal(ok, jnp.log(u) < ratio)
    np.testing.assert_allclose(new.x, jnp.where(ok[:, None], prop, x), rtol=1e-5)
    np.testing.assert_allclose(new.log_p, gaussian(new.x) / t, rtol=1e-5)


def test_a_chain_without_noise_is_refused():
    with pytest.raises(ValueError, match="noise_std"):
        sampler.run(gaussian, jnp.zeros((2, 2)), jax.random.key(0), 3, 0.1, 0.0, method="mala")
