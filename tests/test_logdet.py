import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax.core import logdet
from ebm_jax.models import nets

pytestmark = pytest.mark.usefixtures("quick_compile")


def gaussian_energy(a):
    return lambda x: -0.5 * a * jnp.sum(jnp.reshape(x * x, (x.shape[0], -1)), axis=1)


def all_three(f, z, k, s, key=jax.random.key(0), **stochastic):
    exact = jax.jit(lambda z: logdet.exact_logdet(f, z, num_steps=k, step_size=s,
                                                  chunk_size=5))(z)
    per_step = jax.jit(lambda z: logdet.per_step_logdet(f, z, num_steps=k, step_size=s,
                                                        chunk_size=7))(z)
    stoch = jax.jit(lambda z: logdet.stochastic_logdet(f, z, key, num_steps=k, step_size=s,
                                                       **stochastic))(z)
    return exact, per_step, stoch


def test_closed_form_quadratic_all_three_methods():
    a, s, k = 0.5, 0.2, 6
    z = jax.random.uniform(jax.random.key(1), (2, 3, 3, 1), minval=-1, maxval=1)
    expected = 9 * k * np.log(abs(1 - s * a))
    exact, per_step, stoch = all_three(gaussian_energy(a), z, k, s, num_probes=8)
    np.testing.assert_allclose(exact.logdet_B, [expected] * 2, rtol=1e-5)
    np.testing.assert_allclose(per_step.logdet_B, [expected] * 2, rtol=1e-5)
    np.testing.assert_allclose(per_step.per_step_BK, np.full((2, k), expected / k), rtol=1e-5)
    err = np.abs(np.asarray(stoch.logdet_B) - expected)
    assert np.all(err <= 3 * np.asarray(stoch.stderr_B) + 1e-4), (stoch, expected)
    np.testing.assert_allclose(stoch.spectral_radius_B, [s * a] * 2, rtol=1e-4)


def test_roulette_is_unbiased_where_the_truncated_series_is_not():
    # rho = s a = 0.6: cut after 2 terms, the series misses a visible part of log(0.4).
    a, s, k = 1.2, 0.5, 1
    z = jnp.zeros((1, 4))
    expected = 4 * np.log(1 - s * a)
    run = lambda roulette: logdet.stochastic_logdet(
        gaussian_energy(a), z, jax.random.key(2), num_steps=k, step_size=s, num_terms=2,
        num_probes=2000, roulette=roulette, max_terms=200)
    cut, rr = run(False), run(True)
    truncated = 4 * (-0.6 - 0.36 / 2)
    np.testing.assert_allclose(cut.logdet_B, [truncated], rtol=1e-5)
    assert abs(float(rr.logdet_B[0]) - expected) <= 3 * float(rr.stderr_B[0])
    assert abs(truncated - expected) > 10 * float(rr.stderr_B[0])


def test_digits_sized_gelu_convnet_three_methods_agree():
    model = nets.build_model(models_config("gelu"), (8, 8, 1))
    params = model.init(jax.random.key(3))
    f = lambda x: model.energy(params, x)
    z = jax.random.uniform(jax.random.key(4), (2, 8, 8, 1), minval=-1, maxval=1)
    k, s = 4, 1.0
    exact, per_step, stoch = all_three(f, z, k, s, key=jax.random.key(5), num_probes=16)
    np.testing.assert_allclose(per_step.logdet_B, exact.logdet_B, rtol=1e-3, atol=1e-3)
    assert float(jnp.abs(exact.logdet_B).min()) > 0.05   # GELU: a real change of volume
    assert float(stoch.spectral_radius_B.max()) < 1
    err = np.abs(np.asarray(stoch.logdet_B - exact.logdet_B))
    assert np.all(err <= 3 * np.asarray(stoch.stderr_B)), (stoch, exact)


def test_chunked_jacobian_of_a_rectangular_map_equals_jacfwd():
    # D_in = 7 in chunks of 3 (the last chunk padded), D_out = 5.
    w = jax.random.normal(jax.random.key(0), (5, 7))
    fn = lambda v: jnp.tanh(w @ v) * jnp.sum(v ** 2)
    v = jax.random.normal(jax.random.key(1), (7,))
    jac = logdet.chunked_jacobian(fn, v, 3)
    assert jac.shape == (5, 7)
    np.testing.assert_allclose(jac, jax.jacfwd(fn)(v), rtol=1e-5, atol=1e-6)


def models_config(activation):
    import ml_collections
    return ml_collections.ConfigDict(dict(name="conv", nf=4, activation=activation))


def test_leaky_relu_flow_has_zero_log_determinant():
    model = nets.build_model(models_config("leaky_relu"), (8, 8, 1))
    params = model.init(jax.random.key(3))
    z = jax.random.uniform(jax.random.key(4), (1, 8, 8, 1), minval=-1, maxval=1)
    out = logdet.per_step_logdet(lambda x: model.energy(params, x), z, num_steps=3,
                                 step_size=1.0, chunk_size=64)
    np.testing.assert_allclose(out.logdet_B, [0.0], atol=1e-5)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="per_step"):
        logdet.logdet("jacobi", gaussian_energy(1.0), jnp.zeros((1, 2)), num_steps=1,
                      step_size=0.1)
