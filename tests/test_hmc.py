import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax.core import hmc, sampler
from tests.test_mala import gaussian, quartic


def test_leapfrog_is_reversible_with_the_momentum_negated():
    grad = jax.grad(lambda v: jnp.sum(quartic(v)))
    x = jax.random.normal(jax.random.key(0), (16, 3))
    p = jax.random.normal(jax.random.key(1), (16, 3))
    x1, p1, _ = hmc.leapfrog(grad, x, p, 0.1, 7)
    assert float(jnp.max(jnp.abs(x1 - x))) > 0.2
    x2, p2, _ = hmc.leapfrog(grad, x1, -p1, 0.1, 7)
    np.testing.assert_allclose(x2, x, atol=2e-5)
    np.testing.assert_allclose(-p2, p, atol=2e-5)


def test_leapfrog_nearly_conserves_the_energy_for_a_small_step():
    log_p = lambda v: jnp.sum(quartic(v))
    x = jax.random.normal(jax.random.key(0), (1, 3))
    p = jax.random.normal(jax.random.key(1), (1, 3))
    h = lambda x, p: -log_p(x) + 0.5 * jnp.sum(p * p)
    errors = []
    for eps in (0.1, 0.05):
        x1, p1, _ = hmc.leapfrog(jax.grad(log_p), x, p, eps, int(round(0.5 / eps)))
        errors.append(abs(float(h(x1, p1) - h(x, p))))
    assert errors[0] < 0.05 and errors[1] < errors[0] / 2.5  # second order in eps


def test_one_leapfrog_step_is_mala():
    x0 = jax.random.normal(jax.random.key(0), (500, 2))
    a = sampler.run(quartic, x0, jax.random.key(3), 10, 0.2, 0.6, method="hmc", leapfrog_steps=1)
    b = sampler.run(quartic, x0, jax.random.key(3), 10, 0.2, 0.6, method="mala")
    # The two compute the same proposal in another order: float32 rounding reaches 1e-4 in 10
    # steps on some builds (jax 0.12), while one flipped accept/reject would move a chain by ~0.1.
    np.testing.assert_allclose(a.x, b.x, atol=1e-3)
    np.testing.assert_allclose(a.accept_rate, b.accept_rate, atol=0.01)
    assert float(b.accept_rate) < 0.95


def test_config_options_and_snapshots():
    import ml_collections
    cfg = ml_collections.ConfigDict(dict(leapfrog_steps=3))
    assert hmc.options(cfg) == {"leapfrog_steps": 3}
    x0 = jnp.zeros((4, 2))
    out = sampler.run(gaussian, x0, jax.random.key(0), 6, 0.1, np.sqrt(0.2), method="hmc",
                      snapshot_steps=(0, 6), leapfrog_steps=2)
    np.testing.assert_allclose(out.snapshots[0], x0)
    np.testing.assert_allclose(out.snapshots[1], out.x)
    assert int(out.num_steps) == 6
