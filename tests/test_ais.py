import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax.core import ais
from ebm_jax.core.prior import Prior
from ebm_jax.evaluation import runner


def toy_energy():
    """A bumpy 2-D GELU energy whose exp has several modes in [-1, 1]^2."""
    k1, k2, k3 = jax.random.split(jax.random.key(11), 3)
    w1 = 3.0 * jax.random.normal(k1, (2, 32))
    b1 = jax.random.normal(k2, (32,))
    w2 = jax.random.normal(k3, (32,)) / 2
    return lambda x: jax.nn.gelu(x @ w1 + b1) @ w2


def quadrature(f, n=600):
    h = 2.0 / n
    g = -1 + h * (np.arange(n) + 0.5)
    grid = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    log_f = np.asarray(f(jnp.asarray(grid)), np.float64)
    return grid, log_f, np.logaddexp.reduce(log_f) + 2 * np.log(h), h


def test_chain_temperature_and_schedule():
    assert ais.chain_temperature(1.0, 0.01) == pytest.approx(5e-5)
    b = ais.betas(4, 2.0)
    np.testing.assert_allclose(b, [0, 1 / 16, 1 / 4, 9 / 16, 1], rtol=1e-6)


def test_ais_matches_quadrature_and_raise_stays_below_it():
    f = toy_energy()
    grid, log_f, log_z_quad, h = quadrature(f)
    assert np.exp(log_f).max() / np.exp(log_f).min() > 50   # far from uniform
    settings = dict(num_temps=200, mcmc_step_size=0.25, mcmc_steps=2)
    res = jax.jit(lambda key: ais.ais_log_z(f, key, (2,), num_chains=2000, **settings))(
        jax.random.key(0))
    assert abs(float(res.log_z) - log_z_quad) < 0.05, (float(res.log_z), log_z_quad)
    assert float(res.log_z_stderr) < 0.02

    # Points drawn from the density on the grid, jittered within their cells.
    rng = np.random.default_rng(0)
    p = np.exp(log_f - log_f.max())
    idx = rng.choice(len(grid), size=200, p=p / p.sum())
    x = jnp.asarray(grid[idx] + h * (rng.random((200, 2)) - 0.5), jnp.float32)
    true_mean = float(np.mean(np.asarray(f(x))) - log_z_quad)
    lower = jax.jit(lambda x: ais.raise_log_prob(f, x, jax.random.key(1), **settings))(x)
    raise_mean = float(jnp.mean(lower))
    assert raise_mean <= true_mean + 0.01, (raise_mean, true_mean)
    assert raise_mean > true_mean - 0.3, (raise_mean, true_mean)
    upper_mean = true_mean + log_z_quad - float(res.log_z)
    assert upper_mean >= raise_mean


def test_gaussian_prior_path_gives_the_gaussian_normaliser():
    # exp(-|x|^2 / 2) on R^3 has Z = (2 pi)^(3/2); start from N(0, 2^2).
    f = lambda x: -0.5 * jnp.sum(x * x, axis=1)
    res = ais.ais_log_z(f, jax.random.key(2), (3,), num_chains=500, num_temps=100,
                        mcmc_step_size=0.8, prior=Prior.gaussian(2.0))
    np.testing.assert_allclose(float(res.log_z), 1.5 * np.log(2 * np.pi), atol=0.03)


@pytest.mark.usefixtures("quick_compile")
def test_ais_mode_writes_log_z_and_both_estimates(gelu_workdir):
    import json
    import os
    result = runner.evaluate(gelu_workdir, "ais", seed=0, num_images=3, num_chains=8,
                                 num_temps=5, temperature="1.0")
    saved = json.load(open(os.path.join(gelu_workdir, "eval", "ais.json")))
    stats = saved["stats"]
    assert (stats["num_chains"], stats["num_temps"], stats["temperature"]) == (8, 5, 1.0)
    assert np.isfinite([stats["log_z"], stats["log_z_stderr"], stats["mean_log_p_lower"],
                        stats["mean_log_p_upper"]]).all()
    assert len(saved["per_image"]["log_p_lower"]) == 3
    assert result["stats"] == stats
