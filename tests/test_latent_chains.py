import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ebm_jax.configs import default
from ebm_jax.families import latent_chains, registry
from ebm_jax.models import latent_nets

# A linear-Gaussian model, x = A z + b + N(0, obs^2 I), z ~ N(0, I_2), x in R^3, whose
# posterior is N(mu, Sigma) with Sigma = (I + A^T A / obs^2)^-1, mu = Sigma A^T (x - b) / obs^2.
A = np.array([[1.0, 0.5], [0.0, 1.5], [0.5, -0.5]])
B = np.array([0.2, -0.1, 0.3])
OBS = 1.0
X = np.array([2.0, -2.5, 1.0])


def linear_gaussian_joint(x_B3, z_B2):
    residual = x_B3 - z_B2 @ jnp.asarray(A.T, jnp.float32) - jnp.asarray(B, jnp.float32)
    return (-0.5 * jnp.sum(residual ** 2, axis=1) / OBS ** 2
            - 0.5 * jnp.sum(z_B2 ** 2, axis=1))


def analytic_posterior():
    precision = np.eye(2) + A.T @ A / OBS ** 2
    cov = np.linalg.inv(precision)
    return cov @ A.T @ (X - B) / OBS ** 2, cov, precision


def chain_moments(num_steps, step_size, num_chains=8000):
    x_B3 = jnp.broadcast_to(jnp.asarray(X, jnp.float32), (num_chains, 3))
    z0 = latent_chains.init_latents(jax.random.key(0), num_chains, 2)
    run = jax.jit(lambda z: latent_chains.infer(linear_gaussian_joint, x_B3, z, jax.random.key(1),
                                         num_steps, step_size, np.sqrt(2 * step_size),
                                         unroll=1).x)
    z = np.asarray(run(z0), np.float64)
    return z.mean(0), np.cov(z.T)


def ula_moments(num_steps, step_size, mu, precision):
    """Exact mean and covariance after K steps of z <- z + s grad f + sqrt(2 s) eps from
    N(0, I) on a Gaussian target: M = I - s P, m_K = mu - M^K mu, C_K = M^K M^K' + 2 s sum_j
    M^j M^j'."""
    m = np.eye(2) - step_size * precision
    mk = np.linalg.matrix_power(m, num_steps)
    cov = mk @ mk.T + 2 * step_size * sum(
        np.linalg.matrix_power(m, j) @ np.linalg.matrix_power(m, j).T for j in range(num_steps))
    return mu - mk @ mu, cov


def test_long_short_run_inference_matches_the_analytic_posterior_and_short_k_is_biased():
    """Tolerances: with 8,000 chains the standard error of each mean is below 0.01 and of each
    covariance entry below 2% of the diagonal; s = 0.005 biases the stationary covariance by
    about s * lambda_max(P) / 2 = 1.5%. So 0.04 on the mean and 6% of the largest variance on
    the covariance.

    Measured here (K, |mean error|, max |cov error| / max var): K=5 1.00, 1.40; K=50 0.63,
    0.40; K=200 0.11, 0.02; K=1000 0.01, 0.02. Short chains stay near the N(0, I) start:
    shrunk towards 0 and too wide, exactly as the closed form of the chain's moments says.
    """
    mu, cov, precision = analytic_posterior()
    scale = np.abs(cov).max()
    errors = {}
    for k in (5, 50, 200, 1000):
        m_k, c_k = chain_moments(k, 0.005)
        errors[k] = (np.abs(m_k - mu).max(), np.abs(c_k - cov).max() / scale)
        # At every K the samples follow the chain's exact moments, bias included.
        m_exact, c_exact = ula_moments(k, 0.005, mu, precision)
        np.testing.assert_allclose(m_k, m_exact, atol=0.04)
        np.testing.assert_allclose(c_k, c_exact, atol=0.06 * np.abs(c_exact).max())
    print("K: (|mean err|, cov err / max var)",
          {k: (round(float(a), 3), round(float(b), 3)) for k, (a, b) in errors.items()})
    assert errors[1000][0] < 0.04 and errors[1000][1] < 0.06
    assert errors[5][0] > 0.8 and errors[5][1] > 0.5
    assert errors[5][0] > errors[50][0] > errors[200][0] > errors[1000][0]


def small_config(family):
    config = default.get_config()
    config.model.family, config.model.name = family, "mlp"
    config.model.hidden_dims = (16,)
    config.model.latent_dim, config.model.latent_hidden = 3, 8
    config.sampling.unroll, config.inference.unroll = 1, 1  # quick to compile
    return config


def zero_u(params):
    """The latent EBM's params with u(z) = 0 (its output layer zeroed)."""
    params = dict(params)
    params["z_out"] = jax.tree_util.tree_map(jnp.zeros_like, params["z_out"])
    return params


def test_latent_ebm_without_u_is_the_generator_and_its_prior_chain_reaches_n01():
    """With u = 0, f(x, z) = -|x - g(z)|^2 / (2 obs^2) - |z|^2 / 2 (the generator's log joint)
    and log p(z) = -|z|^2 / 2, so the prior chain's z follow the closed-form ULA moments on
    N(0, I): from N(0, 4 I), after K steps of s = 0.05 the variance is
    (1 - s)^(2K) 4 + 2 s (1 - (1 - s)^(2K)) / (1 - (1 - s)^2)."""
    config = small_config("latent_ebm")
    model = latent_nets.build_latent_energy(config.model, (2,))
    params = zero_u(model.init(jax.random.key(0)))
    z = jax.random.normal(jax.random.key(1), (5, 3))
    x = jax.random.normal(jax.random.key(2), (5, 2))
    g = model.generate(params, z)
    np.testing.assert_allclose(model.log_prior(params, z), -0.5 * np.sum(z ** 2, 1), rtol=1e-6)
    np.testing.assert_allclose(model.energy(params, x, z),
                               -0.5 * np.sum((x - g) ** 2, 1) / config.model.obs_std ** 2
                               - 0.5 * np.sum(z ** 2, 1), rtol=1e-5)
    s, k, n = 0.05, 20, 20000
    xs, zs, out = latent_chains.synthesize(
        lambda v: model.log_prior(params, v), lambda v: model.generate(params, v),
        jax.random.key(3), n, 3, k, step_size=s, noise_std=np.sqrt(2 * s), latent_init_std=2.0,
        unroll=1)
    m = (1 - s) ** (2 * k)
    var = m * 4 + 2 * s * (1 - m) / (1 - (1 - s) ** 2)
    np.testing.assert_allclose(np.var(np.asarray(zs), 0), var, rtol=0.05)
    np.testing.assert_allclose(np.mean(np.asarray(zs), 0), 0.0, atol=0.05)
    np.testing.assert_allclose(xs, model.generate(params, zs), rtol=1e-6)
    assert out.x.shape == (n, 3) and xs.shape == (n, 2)


def test_latent_ebm_gradient_of_g_is_the_generators_and_of_u_the_prior_gap():
    """At x' = g(z'), the M-step loss mean f(x', z') - mean f(x, z) has the generator's
    gradient in g's params (the negative phase adds nothing) and the EBM gap's in u's."""
    config = small_config("latent_ebm")
    config.training.data_noise_std = 0.0
    config.sampling.num_steps, config.inference.num_steps = 3, 3
    fam = registry.build_family(config, (2,))
    params = fam.init_params(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (6, 2))
    z = jax.random.normal(jax.random.key(2), (6, 3))
    loss_fn, _ = fam.objective(params, x, z, jax.random.key(3), lambda a: a, 0)
    grads = jax.grad(lambda p: loss_fn(p)[0])(params)
    model = fam.model
    recon = lambda p: jnp.mean(0.5 * jnp.sum((x - model.generate(p, z)) ** 2, 1)
                               / config.model.obs_std ** 2)
    expected = jax.grad(recon)(params)
    for a, b in zip(jax.tree_util.tree_leaves(grads["generator"]),
                    jax.tree_util.tree_leaves(expected["generator"])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    x_neg, z_neg, _ = fam._synthesize(params, jax.random.key(3), 6, num_steps=3)
    gap = lambda p: (jnp.mean(model.log_prior(p, z_neg)) - jnp.mean(model.log_prior(p, z)))
    expected_u = jax.grad(gap)(params)
    for name in ("z_hidden", "z_hidden2", "z_out"):
        for a, b in zip(jax.tree_util.tree_leaves(grads[name]),
                        jax.tree_util.tree_leaves(expected_u[name])):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_generator_energy_is_the_gaussian_log_joint():
    config = small_config("generator")
    model = latent_nets.build_generator(config.model, (2,))
    params = model.init(jax.random.key(0))
    z = jax.random.normal(jax.random.key(1), (5, 3))
    x = jax.random.normal(jax.random.key(2), (5, 2))
    g = model.generate(params, z)
    expected = (-0.5 * np.sum((x - g) ** 2, 1) / config.model.obs_std ** 2
                - 0.5 * np.sum(z ** 2, 1))
    np.testing.assert_allclose(model.energy(params, x, z), expected, rtol=1e-5)
    assert g.shape == (5, 2)


@pytest.mark.parametrize("family", ["latent_ebm", "generator"])
def test_sampler_and_reconstructor_give_images_of_the_data_shape(family):
    config = small_config(family)
    config.model.name, config.model.nf = "conv", 4
    config.sampling.num_steps, config.inference.num_steps = 3, 3
    fam = registry.build_family(config, (8, 8, 1))
    params = fam.init_params(jax.random.key(0))
    x = fam.make_sampler()(params, jax.random.key(1), 5).x
    assert x.shape == (5, 8, 8, 1) and np.isfinite(np.asarray(x)).all()
    rec = fam.make_reconstructor()(params, x, jax.random.key(2))
    assert rec.x.shape == x.shape and rec.z.shape == (5, 3)
    np.testing.assert_allclose(rec.x, fam.decode(params, rec.z), rtol=1e-5, atol=1e-6)
    if family == "generator":
        np.testing.assert_allclose(rec.x, fam.model.generate(params, rec.z), rtol=1e-6)


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="family"):
        registry.family_class(ml_collections.ConfigDict({"model": {"family": "vae"}}))
