import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ebm_jax.core.prior import Prior


def test_draws_follow_the_two_kinds():
    u = Prior().sample(jax.random.key(0), (20000, 2))
    assert float(u.min()) >= -1 and float(u.max()) <= 1
    np.testing.assert_allclose(u.mean(), 0, atol=0.01)
    np.testing.assert_allclose(u.var(), 1 / 3, rtol=0.02)
    u2 = Prior.uniform(-2, 2).sample(jax.random.key(0), (20000, 2))
    np.testing.assert_allclose(u2.var(), 16 / 12, rtol=0.02)
    g = Prior.gaussian(1.5).sample(jax.random.key(0), (20000, 2))
    np.testing.assert_allclose(g.std(), 1.5, rtol=0.02)
    with pytest.raises(ValueError, match="laplace"):
        Prior("laplace")
    with pytest.raises(ValueError, match="low < high"):
        Prior.uniform(1.0, -1.0)


def test_log_prob_closed_forms():
    x = jnp.array([[0.5, -0.5], [1.5, 0.0]])
    lp = Prior().log_prob(x)
    np.testing.assert_allclose(lp[0], -2 * np.log(2.0))
    assert lp[1] == -np.inf
    lg = Prior.gaussian(2.0).log_prob(jnp.zeros((1, 3)))
    np.testing.assert_allclose(lg, [-3 * (np.log(2.0) + 0.5 * np.log(2 * np.pi))], rtol=1e-6)


def test_projection_and_boundary_count():
    z = jnp.array([[-3.0, 0.2, 1.0], [0.0, 0.5, 2.0]])
    np.testing.assert_allclose(Prior().project(z), [[-1.0, 0.2, 1.0], [0.0, 0.5, 1.0]], rtol=1e-7)
    np.testing.assert_array_equal(Prior().boundary_count(Prior().project(z)), [2, 1])
    np.testing.assert_array_equal(Prior.gaussian().project(z), z)
    np.testing.assert_array_equal(Prior.gaussian().boundary_count(z), [0, 0])


def test_from_config_reads_the_sampling_fields():
    cfg = ml_collections.ConfigDict(dict(init="uniform", init_low=-2.0, init_high=3.0,
                                         init_std=0.5))
    assert Prior.from_config(cfg) == Prior("uniform", -2.0, 3.0, 0.5)
    assert Prior.from_config(ml_collections.ConfigDict()) == Prior()
    assert Prior.from_config(cfg).describe() == {"init": "uniform", "init_low": -2.0,
                                                 "init_high": 3.0, "init_std": 0.5}
