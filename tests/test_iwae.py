import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from jax.scipy.stats import norm

from ebm_jax.core import flow, iwae
from ebm_jax.core.prior import Prior
from ebm_jax.evaluation import likelihood, noisy_models

pytestmark = pytest.mark.usefixtures("quick_compile")


def sampling_config(**fields):
    c = ml_collections.ConfigDict(dict(num_steps=3, step_size=0.5, init="uniform",
                                       init_low=-1.0, init_high=1.0, init_std=1.0, unroll=1))
    c.update(fields)
    return c


def run_bound(model, x, tau, *, num_samples=1000, levels=None, u0=None, key=3, **kwargs):
    params = None
    if u0 is None:
        u0 = jax.jit(model.init)(params, x, jax.random.key(key))[0]
    fn = jax.jit(likelihood.make_bound_fn(model, levels=levels, num_samples=num_samples,
                                          **kwargs))
    log_w, _, q = fn(params, x, u0, jax.random.key(key + 1), tau)
    return likelihood.bounds_by_size(log_w), log_w, q


def test_binned_gaussian_is_a_distribution_over_the_levels_and_tau_matters():
    levels = 17
    grid = jnp.arange(levels) / 8.0 - 1.0
    for mean, tau in ((0.13, 0.05), (-0.9, 0.3), (2.5, 0.2)):
        p = jnp.exp(iwae.obs_log_prob(grid[:, None], jnp.full((levels, 1), mean), tau, levels))
        assert float(jnp.sum(p)) == pytest.approx(1.0, abs=1e-5)
    # An inner bin: Phi((x + h - m) / tau) - Phi((x - h - m) / tau), h = half a bin.
    x, m, tau = jnp.array([[0.25]]), jnp.array([[0.2]]), 0.1
    expected = norm.cdf((0.25 + 1 / 16 - 0.2) / tau) - norm.cdf((0.25 - 1 / 16 - 0.2) / tau)
    got = float(jnp.exp(iwae.obs_log_prob(x, m, tau, levels))[0])
    assert got == pytest.approx(float(expected), rel=1e-5)
    assert float(jnp.exp(iwae.obs_log_prob(x, m, 0.3, levels))[0]) < got - 0.1
    # Far in a tail the log-probability stays finite.
    assert np.isfinite(float(iwae.obs_log_prob(jnp.array([[0.0]]), jnp.array([[5.0]]), 0.05,
                                               levels)[0]))


def test_quadratic_energy_with_a_gaussian_p0_is_a_gaussian_model_in_closed_form():
    # f(x) = -sum_i a_i x_i^2 / 2 makes M(z) = c * z with c_i = (1 - s a_i)^K, so under
    # z ~ N(0, sd^2 I) and x = M(z) + tau eps, x_i ~ N(0, c_i^2 sd^2 + tau^2) independently.
    a = jnp.array([0.2, 0.5, 1.0, 0.1, 0.7, 0.3])
    energy = lambda params, x: -0.5 * jnp.sum(a * x * x, axis=1)
    s, k, sd, tau = 0.5, 3, 1.5, 0.2
    model = noisy_models.ebm_model(energy, sampling_config(init="gaussian", init_std=sd,
                                                           num_steps=k, step_size=s),
                                   inversion_iters=50, logdet_method=None)
    c = (1 - s * a) ** k
    x = jax.random.normal(jax.random.key(0), (5, 6)) * jnp.sqrt(c ** 2 * sd ** 2 + tau ** 2)
    exact = np.sum(norm.logpdf(x, 0.0, np.sqrt(c ** 2 * sd ** 2 + tau ** 2)), axis=1)
    bounds, log_w, _ = run_bound(model, x, tau)
    stderr = np.std(np.asarray(log_w), axis=0) / math.sqrt(log_w.shape[0]) + 1e-3
    assert np.all(np.abs(bounds[1000] - exact) <= stderr), (bounds[1000], exact)
    # The Laplace proposal is the posterior here: every weight is p(x).
    np.testing.assert_allclose(bounds[1], exact, atol=1e-3)


def test_linear_generator_is_probabilistic_pca_and_the_bound_rises_to_it():
    d, dim, tau = 3, 8, 0.25
    w = jax.random.normal(jax.random.key(1), (dim, d))
    mu = jnp.linspace(-0.5, 0.5, dim)
    model = noisy_models.NoisyModel(lambda p, u: u @ w.T + mu,
                                    lambda p, u: iwae.std_normal_log_prob(u), None, (d,), tau)
    cov = w @ w.T + tau ** 2 * jnp.eye(dim)
    x = jax.random.multivariate_normal(jax.random.key(2), mu, cov, (40,))
    exact = np.asarray(jax.scipy.stats.multivariate_normal.logpdf(x, mu, cov))
    # A defensive share of N(0, I) makes q worse than the posterior: L_1 is far below, and S
    # draws bring the bound back.
    bounds, log_w, _ = run_bound(model, x, tau, u0=jnp.zeros((40, d)), defensive=0.3)
    assert np.mean(bounds[1] - exact) < -0.3
    assert np.all(np.diff([np.mean(bounds[s]) for s in (1, 10, 100, 1000)]) > 0)
    gap = bounds[1000] - exact
    assert abs(np.mean(gap)) < 3 * np.std(gap) / math.sqrt(len(gap)) + 0.01, np.mean(gap)
    # The diagonal proposal (no Jacobian formed) reaches the same value at large S.
    bounds_diag, _, _ = run_bound(model, x, tau, u0=jnp.zeros((40, d)), proposal="diag",
                                  map_iters=500, num_probes=64)
    assert np.mean(bounds_diag[1]) < np.mean(exact) - 0.1
    assert abs(np.mean(bounds_diag[1000] - exact)) < 0.05


def gelu_energy_2d():
    k1, k2, k3 = jax.random.split(jax.random.key(7), 3)
    w1 = 2.0 * jax.random.normal(k1, (2, 16))
    b1 = jax.random.normal(k2, (16,))
    w2 = jax.random.normal(k3, (16,)) / 8
    return lambda params, x: jax.nn.gelu(x @ w1 + b1) @ w2


def test_two_dim_uniform_p0_bound_matches_quadrature_over_z():
    energy, k, s, tau = gelu_energy_2d(), 6, 0.1, 0.1
    model = noisy_models.ebm_model(energy, sampling_config(num_steps=k, step_size=s),
                                   logdet_method=None)
    f = lambda x: energy(None, x)
    z = jax.random.uniform(jax.random.key(0), (6, 2), minval=-1, maxval=1)
    x = (flow.flow_map(f, z, num_steps=k, step_size=s)
         + tau * jax.random.normal(jax.random.key(1), (6, 2)))
    # p(x) = integral over the box of p_0(z) N(x; M(z), tau^2 I) dz, midpoint rule.
    n = 600
    g = (jnp.arange(n) + 0.5) / n * 2 - 1
    grid = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    m = flow.flow_map(f, grid, num_steps=k, step_size=s)
    log_n = jax.vmap(lambda xi: iwae.obs_log_prob(jnp.broadcast_to(xi, m.shape), m, tau))(x)
    quad = np.asarray(jax.nn.logsumexp(log_n, axis=1) + math.log((2 / n) ** 2 / 4))
    # The toy data's proposal: Laplace at the exact Hessian, Student t tails, 8 starts.
    bounds, _, _ = run_bound(model, x, tau, defensive=0.1, num_starts=8, hessian=True, dof=4.0)
    gap = bounds[1000] - quad
    # The posteriors of this flow are far from Gaussian (log-weight std up to 3 nats), so one
    # point's bound moves by a few hundredths from draw to draw; their mean does not.
    assert abs(np.mean(gap)) < 0.02 and np.all(np.abs(gap) < 0.06), gap
    assert np.all(bounds[1] < bounds[1000])


def test_latent_prior_log_z_by_ais():
    d = 16
    # u = 0: p(z) = N(0, I) exactly, log Z = 0 (every weight is 1).
    res = noisy_models.latent_log_z(lambda z: -0.5 * jnp.sum(z * z, 1), d, jax.random.key(0),
                                    num_chains=64, num_temps=50)
    assert abs(float(res.log_z)) < 1e-4
    # u(z) = -a |z|^2 / 2: E_N exp(u) = (1 + a)^(-d/2).
    a = 0.5
    res = noisy_models.latent_log_z(lambda z: -0.5 * (1 + a) * jnp.sum(z * z, 1), d,
                                    jax.random.key(1), num_chains=256, num_temps=200)
    assert float(res.log_z) == pytest.approx(-0.5 * d * math.log(1 + a), abs=0.05)


def test_ais_over_z_reaches_the_closed_form_from_a_poor_start():
    d, dim, tau = 3, 6, 0.3
    w = jax.random.normal(jax.random.key(1), (dim, d))
    cov = w @ w.T + tau ** 2 * jnp.eye(dim)
    x = jax.random.multivariate_normal(jax.random.key(2), jnp.zeros(dim), cov, (4,))
    exact = np.asarray(jax.scipy.stats.multivariate_normal.logpdf(x, jnp.zeros(dim), cov))
    decode = lambda u: u @ w.T
    lam = jnp.eye(d) + w.T @ w / tau ** 2
    mode = jnp.linalg.solve(lam, w.T @ x.T / tau ** 2).T
    # The start: the posterior moved by about one standard deviation and 1.5 times too narrow,
    # so that its own S = 1 bound is well below.
    q = iwae.laplace_dense(decode, mode + 1 / jnp.sqrt(jnp.diag(lam)), tau)
    q = q._replace(chol_MBdd=1.5 * q.chol_MBdd)
    log_joint = lambda x1, u: (iwae.std_normal_log_prob(u) + iwae.obs_log_prob(
        jnp.broadcast_to(x1, (u.shape[0], dim)), decode(u), tau))
    start = jax.vmap(lambda xi, ui: log_joint(xi[None], ui[None])[0])(
        x, iwae.sample_proposal(q, jax.random.key(4))[0]) - iwae.sample_proposal(
        q, jax.random.key(4))[1]
    assert np.all(np.asarray(start) < exact - 0.5)
    got = jax.jit(lambda x: iwae.ais_log_marginal(log_joint, x, q, jax.random.key(5),
                                                  num_chains=256, num_temps=1000))(x)
    np.testing.assert_allclose(got, exact, atol=0.05)
    # The examples run 16 at a time by default: one at a time gives the same numbers.
    one_by_one = jax.jit(lambda x: iwae.ais_log_marginal(
        log_joint, x, q, jax.random.key(5), num_chains=256, num_temps=1000,
        examples_per_pass=1))(x)
    np.testing.assert_allclose(one_by_one, got, rtol=1e-5, atol=1e-4)


def test_ebm_flow_with_the_chains_input_gradient_gives_the_same_bound():
    # The matrix-product input gradient (conv_grad) in the flow: same inversion, same mode,
    # same weights, same bound as jax.grad, to float rounding.
    from ebm_jax.models import nets
    mc = ml_collections.ConfigDict(dict(name="conv", nf=4, activation="gelu"))
    net = nets.build_model(mc, (8, 8, 1))
    params = net.init(jax.random.key(0))
    x = jnp.round(jax.random.uniform(jax.random.key(1), (3, 8, 8, 1), minval=-1, maxval=1)
                  * 8) / 8
    sc = sampling_config(num_steps=4, step_size=1.0)
    out, calls = {}, []

    def matmul(p):
        grad = net.input_grad(p, impl="matmul")
        return lambda v: (calls.append(1), grad(v))[1]   # counts the flow's traces

    for name, grad in (("autodiff", None), ("matmul", matmul)):
        model = noisy_models.ebm_model(net.energy, sc, inversion_iters=10,
                                       logdet_method=None, input_grad=grad)
        model = model._replace(latent_shape=(8, 8, 1))
        u0 = jax.jit(model.init)(params, x, jax.random.key(2))[0]
        fn = jax.jit(likelihood.make_bound_fn(model, levels=17, num_samples=10, map_iters=10,
                                              newton_steps=0))
        log_w, _, _ = fn(params, x, u0, jax.random.key(3), 0.1)
        out[name] = np.asarray(likelihood.bounds_by_size(log_w)[10])
    assert calls and np.all(np.isfinite(out["autodiff"]))
    np.testing.assert_allclose(out["matmul"], out["autodiff"], rtol=1e-4, atol=1e-3)


def test_unconstrained_map_covers_the_box():
    to_z, to_u = iwae.unconstrained(Prior.uniform(-2.0, 2.0))
    z = to_z(jax.random.normal(jax.random.key(0), (100_000, 1)))
    assert float(z.min()) > -2 and float(z.max()) < 2
    assert float(jnp.std(z)) == pytest.approx(4 / math.sqrt(12), rel=0.01)
    np.testing.assert_allclose(to_z(to_u(jnp.array([-1.5, 0.0, 1.9]))), [-1.5, 0.0, 1.9],
                               rtol=1e-5)
