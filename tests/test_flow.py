import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax.core import flow, sampler
from ebm_jax.core.prior import Prior


def gaussian_energy(a):
    return lambda x: -0.5 * a * jnp.sum(jnp.reshape(x * x, (x.shape[0], -1)), axis=1)


def tiny_mlp_energy(key, dim, width=16):
    k1, k2 = jax.random.split(key)
    w1 = jax.random.normal(k1, (dim, width)) / np.sqrt(dim)
    w2 = jax.random.normal(k2, (width,)) / np.sqrt(width)
    return lambda x: jax.nn.gelu(x @ w1) @ w2 - 0.5 * jnp.sum(x * x, axis=1)


def test_flow_map_on_a_quadratic_is_the_linear_closed_form():
    a, s, k = 0.5, 0.2, 10
    z = jax.random.uniform(jax.random.key(0), (3, 4, 4, 1), minval=-1, maxval=1)
    x = flow.flow_map(gaussian_energy(a), z, num_steps=k, step_size=s)
    np.testing.assert_allclose(x, (1 - s * a) ** k * z, rtol=1e-5)


def test_flow_map_is_the_sampler_without_noise_and_remat_changes_no_gradient():
    f = tiny_mlp_energy(jax.random.key(1), 3)
    z = jax.random.uniform(jax.random.key(2), (5, 3), minval=-1, maxval=1)
    x = flow.flow_map(f, z, num_steps=7, step_size=0.3)
    ref = sampler.langevin(f, z, None, 7, step_size=0.3, noise_std=0.0).x
    np.testing.assert_allclose(x, ref, rtol=1e-5, atol=1e-6)

    def loss(z, remat):
        return jnp.sum(jnp.sin(flow.flow_map(f, z, num_steps=7, step_size=0.3, remat=remat)))

    np.testing.assert_allclose(jax.grad(loss)(z, True), jax.grad(loss)(z, False), rtol=1e-5,
                               atol=1e-6)


def test_inversion_recovers_z_of_the_linear_map_and_keeps_snapshots():
    a, s, k = 0.5, 0.2, 10
    z_true = jax.random.uniform(jax.random.key(3), (4, 6), minval=-0.9, maxval=0.9)
    f = gaussian_energy(a)
    x = flow.flow_map(f, z_true, num_steps=k, step_size=s)
    inv = jax.jit(lambda x, key: flow.invert(f, x, key, num_steps=k, step_size=s,
                                             num_iters=200, snapshot_every=25))(
        x, jax.random.key(4))
    np.testing.assert_allclose(inv.z, z_true, atol=2e-3)
    assert float(inv.mse_B.max()) < 1e-6
    assert [int(t) for t in inv.snapshot_iters] == list(range(0, 201, 25))
    assert inv.snapshots.shape == (9, 4, 6)
    np.testing.assert_allclose(inv.snapshots[-1], inv.x)
    # t = 0 is M(z_0) for z_0 ~ p_0 drawn with the key; the error then falls to ~0.
    z0 = Prior().sample(jax.random.key(4), (4, 6))
    np.testing.assert_allclose(inv.snapshots[0], (1 - s * a) ** k * z0, rtol=1e-5)
    err = jnp.mean(jnp.square(inv.snapshots - x), axis=(1, 2))
    assert float(err[0]) > 1e-3 and float(err[-1]) < 1e-6
    assert int(inv.at_boundary_B.sum()) == 0


def test_inversion_projects_onto_the_prior_box_when_the_target_is_outside_the_image():
    a, s, k = 0.5, 0.2, 10
    c = (1 - s * a) ** k
    z_out = jnp.array([[0.5, 1.5], [-2.0, 0.0]])   # two coordinates outside [-1, 1]
    f = gaussian_energy(a)
    inv = flow.invert(f, c * z_out, jax.random.key(5), num_steps=k, step_size=s, num_iters=150)
    assert float(inv.z.min()) >= -1 and float(inv.z.max()) <= 1
    np.testing.assert_allclose(inv.z, jnp.clip(z_out, -1, 1), atol=2e-3)
    np.testing.assert_array_equal(inv.at_boundary_B, [1, 1])
    # The error left is that of the clipped coordinate: c^2 (0.5^2, 1^2) / 2.
    np.testing.assert_allclose(inv.mse_B, c ** 2 * np.array([0.25, 1.0]) / 2, rtol=1e-2)


def test_flow_kwargs_come_from_the_sampling_config():
    from ebm_jax.configs import toy2d
    cfg = toy2d.get_config().sampling
    kw = flow.flow_kwargs(cfg)
    assert kw["num_steps"] == cfg.num_steps and kw["step_size"] == cfg.step_size
    assert kw["prior"] == Prior.uniform(cfg.init_low, cfg.init_high)
    assert "noise_std" not in kw
    assert kw["unroll"] == 1   # rolled: the inversion loops over it again
