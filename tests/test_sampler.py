import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ebm_jax.core import sampler
from ebm_jax.core.prior import Prior


def quadratic(a, b):
    """f(x) = -a/2 |x|^2 + b . x, whose gradient is -a x + b."""
    return lambda x: -0.5 * a * jnp.sum(x * x, axis=1) + x @ b


def test_one_step_matches_the_hand_computed_update_on_a_quadratic():
    a, b = 0.5, jnp.array([1.0, -2.0, 0.25])
    x0 = jnp.array([[0.2, -0.4, 0.6], [1.0, 0.0, -1.0]])
    eps = jnp.array([[[0.3, -1.2, 0.7], [0.0, 2.0, -0.5]]])
    out = sampler.langevin(quadratic(a, b), x0, None, 1, step_size=0.8, noise_std=0.01, noise=eps)
    # x1 = x0 + s (-a x0 + b) + sigma eps, computed by hand for the first chain:
    # 0.2 + 0.8 (-0.1 + 1) + 0.003 = 0.923; -0.4 + 0.8 (0.2 - 2) - 0.012 = -1.852;
    # 0.6 + 0.8 (-0.3 + 0.25) + 0.007 = 0.567.
    np.testing.assert_allclose(out.x[0], [0.923, -1.852, 0.567], rtol=1e-6)
    np.testing.assert_allclose(out.x, x0 + 0.8 * (-a * x0 + b) + 0.01 * eps[0], rtol=1e-6)
    # grad_norm: mean over chains of |grad f(x0)|.
    g = -a * x0 + b
    np.testing.assert_allclose(out.grad_norm, jnp.mean(jnp.linalg.norm(g, axis=1)), rtol=1e-6)


def test_k_noise_free_steps_on_a_quadratic_have_the_closed_form():
    # x_K = c + (1 - s a)^K (x_0 - c) with c = b / a.
    a, s, k = 0.3, 0.5, 20
    b = jnp.array([0.3, -0.6])
    x0 = jax.random.uniform(jax.random.key(0), (7, 2), minval=-1, maxval=1)
    out = sampler.langevin(quadratic(a, b), x0, None, k, step_size=s, noise_std=0.0)
    c = b / a
    np.testing.assert_allclose(out.x, c + (1 - s * a) ** k * (x0 - c), rtol=1e-5, atol=1e-6)


def test_noisy_chain_matches_a_plain_python_loop_with_the_documented_keys():
    f = quadratic(1.0, jnp.zeros(4))
    key = jax.random.key(42)
    x0 = jnp.ones((3, 4))
    out = sampler.langevin(f, x0, key, 6, step_size=0.1, noise_std=0.05)
    x = x0
    for k in range(6):
        eps = jax.random.normal(jax.random.fold_in(key, k), x.shape)
        x = x + 0.1 * (-x) + 0.05 * eps
    np.testing.assert_allclose(out.x, x, rtol=1e-5, atol=1e-6)


def test_path_and_snapshots_agree():
    f = quadratic(1.0, jnp.array([0.5, 0.5]))
    x0 = jnp.zeros((2, 2))
    path = sampler.langevin(f, x0, jax.random.key(0), 10, 0.1, 0.01, return_path=True)
    snaps = sampler.langevin(f, x0, jax.random.key(0), 10, 0.1, 0.01, snapshot_steps=(0, 3, 10))
    assert path.snapshots.shape == (11, 2, 2)
    np.testing.assert_allclose(path.snapshots[0], x0)
    np.testing.assert_allclose(path.snapshots[-1], path.x)
    np.testing.assert_allclose(snaps.snapshots, path.snapshots[jnp.array([0, 3, 10])], rtol=1e-6)


def test_dynamic_k_equals_static_k_and_does_not_recompile():
    f = quadratic(0.5, jnp.array([1.0, 1.0]))
    x0 = jnp.zeros((4, 2))
    key = jax.random.key(3)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(k):
        return sampler.langevin(f, x0, key, k, 0.2, 0.01, num_steps_max=12)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run_with_head(k):
        return sampler.langevin(f, x0, key, k, 0.2, 0.01, num_steps_max=12, num_steps_min=5,
                                snapshot_steps=(0, 4, 7), return_path=False)

    for k in (5, 9, 12):
        ref = sampler.langevin(f, x0, key, k, 0.2, 0.01)
        for dyn in (run(k), run_with_head(k)):
            np.testing.assert_allclose(dyn.x, ref.x, rtol=1e-6)
            assert int(dyn.num_steps) == k
            np.testing.assert_allclose(dyn.grad_norm, ref.grad_norm, rtol=1e-5)
    # Snapshots taken on both sides of the unconditional head agree with a full path.
    path = sampler.langevin(f, x0, key, 9, 0.2, 0.01, return_path=True).snapshots
    np.testing.assert_allclose(run_with_head(9).snapshots, path[jnp.array([0, 4, 7])], rtol=1e-6)
    full = sampler.langevin(f, x0, key, 9, 0.2, 0.01, num_steps_max=12, num_steps_min=5,
                            return_path=True).snapshots
    assert full.shape == (13, 4, 2)
    np.testing.assert_allclose(full[:10], path, rtol=1e-6)
    np.testing.assert_allclose(full[10:], jnp.broadcast_to(path[-1], (3, 4, 2)), rtol=1e-6)


def test_no_gradient_reaches_params_through_the_chain_when_they_are_stopped():
    def energy(w, x):
        return -0.5 * w * jnp.sum(x * x, axis=1)

    def chain_loss(w):
        frozen = jax.lax.stop_gradient(w)
        out = sampler.short_run(lambda x: energy(frozen, x), jax.random.key(0), (5, 2), 10,
                                0.1, 0.01)
        return jnp.mean(out.x)

    assert float(jax.grad(chain_loss)(1.0)) == 0.0


def test_make_sampler_uses_the_config():
    cfg = ml_collections.ConfigDict(dict(num_steps=30, step_size=0.5, noise_std=0.0,
                                         init="uniform", init_low=-1.0, init_high=1.0))
    f = lambda params, x: -0.5 * params * jnp.sum(x * x, axis=1)
    run = sampler.make_sampler(f, cfg, (3,))
    out = run(1.0, jax.random.key(0), 6)
    x0 = Prior().sample(jax.random.fold_in(jax.random.key(0), 0), (6, 3))
    np.testing.assert_allclose(out.x, 0.5 ** 30 * x0, atol=1e-7)


def test_explicit_noise_must_match_the_loop():
    with pytest.raises(ValueError, match="noise"):
        sampler.langevin(quadratic(1.0, jnp.zeros(2)), jnp.zeros((3, 2)), None, 4,
                         noise=jnp.zeros((3, 3, 2)))


@pytest.mark.parametrize("activation", ["leaky_relu", "gelu"])
def test_the_conv_energy_fast_gradient_chain_equals_a_plain_autodiff_loop(activation):
    from ebm_jax.models import nets
    config = ml_collections.ConfigDict(dict(name="conv", nf=8, activation=activation))
    model = nets.build_model(config, (8, 8, 1))
    params = model.init(jax.random.key(0))
    energy_fn = lambda x: model.energy(params, x)
    key, s, sigma = jax.random.key(5), 0.5, 0.01
    x0 = Prior().sample(jax.random.key(1), (4, 8, 8, 1))
    out = jax.jit(lambda x0: sampler.langevin(energy_fn, x0, key, 6, s, sigma, unroll=1,
                                              grad_fn=model.input_grad(params)))(x0)
    grad = jax.grad(lambda x: jnp.sum(energy_fn(x)))
    x, norms = x0, []
    for k in range(6):
        g = grad(x)
        norms.append(jnp.mean(jnp.linalg.norm(g.reshape(4, -1), axis=1)))
        x = x + s * g + sigma * jax.random.normal(jax.random.fold_in(key, k), x.shape)
    assert float(jnp.max(jnp.abs(x - x0))) > 0.02
    np.testing.assert_allclose(out.x, x, rtol=0, atol=1e-5)
    np.testing.assert_allclose(out.grad_norm, jnp.mean(jnp.stack(norms)), rtol=1e-4)


def test_default_unroll_keeps_the_loop_rolled_for_a_given_gradient_and_off_the_cpu():
    assert sampler.default_unroll("cpu") is True
    assert sampler.default_unroll("cpu", grad_given=True) == 1
    assert sampler.default_unroll("gpu") == 1
    cfg = ml_collections.ConfigDict(dict(step_size=1.0, noise_std=0.01, unroll=0))
    assert sampler.sampling_kwargs(cfg, grad_given=True)["unroll"] == 1
    cfg.unroll = 5
    assert sampler.sampling_kwargs(cfg, grad_given=True)["unroll"] == 5
    assert sampler.resolve_unroll(0, True) is True and sampler.resolve_unroll(3, 1) == 3


def test_chain_length_is_fixed_or_drawn_per_key():
    cfg = ml_collections.ConfigDict(dict(num_steps=7, num_steps_max=0))
    assert sampler.chain_length(cfg)(jax.random.key(0)) == {"num_steps": 7}
    cfg.num_steps_max = 12
    draws = [sampler.chain_length(cfg)(jax.random.key(i)) for i in range(40)]
    ks = {int(d["num_steps"]) for d in draws}
    assert min(ks) >= 7 and max(ks) <= 12 and len(ks) > 3
    assert draws[0]["num_steps_max"] == 12 and draws[0]["num_steps_min"] == 7


def reference_langevin(energy_fn, x0, key, num_steps, step_size, noise_std, grad_fn=None,
                       unroll=1):
    """The Langevin loop as it was written before the sampling methods shared one loop."""
    grad_fn = grad_fn or jax.grad(lambda x: jnp.sum(energy_fn(x)))
    axes = tuple(range(1, x0.ndim))

    def body(carry, inputs):
        x, grad_sum, snaps = carry
        k, eps = inputs
        g = grad_fn(x)
        eps = jax.random.normal(jax.random.fold_in(key, k), x.shape, x.dtype)
        x = x + step_size * g + noise_std * eps
        return (x, grad_sum + jnp.mean(jnp.sqrt(jnp.sum(jnp.square(g), axis=axes))), snaps), None

    (x, grad_sum, _), _ = jax.lax.scan(body, (x0, jnp.zeros((), x0.dtype), None),
                                       (jnp.arange(num_steps), None), unroll=unroll)
    return x, grad_sum / num_steps


@pytest.mark.parametrize("fast_grad", [False, True])
def test_the_langevin_method_is_bit_identical_to_the_reference_loop(fast_grad):
    from ebm_jax.models import nets
    model = nets.build_model(ml_collections.ConfigDict(dict(name="conv", nf=8)), (8, 8, 1))
    params = model.init(jax.random.key(0))
    energy_fn = lambda x: model.energy(params, x)
    grad_fn = model.input_grad(params) if fast_grad else None
    x0 = Prior().sample(jax.random.key(1), (4, 8, 8, 1))
    key = jax.random.key(2)
    ours = jax.jit(lambda x: sampler.run(energy_fn, x, key, 5, 1.0, 0.01, method="langevin",
                                         grad_fn=grad_fn))(x0)
    ref_x, ref_norm = jax.jit(lambda x: reference_langevin(energy_fn, x, key, 5, 1.0, 0.01,
                                                           grad_fn))(x0)
    np.testing.assert_array_equal(ours.x, ref_x)
    np.testing.assert_array_equal(ours.grad_norm, ref_norm)
    assert ours.accept_rate is None


def test_every_method_runs_from_the_registry_with_its_config_options():
    cfg = ml_collections.ConfigDict(dict(num_steps=4, step_size=0.1, noise_std=0.3,
                                         method="hmc", leapfrog_steps=3))
    kw = sampler.sampling_kwargs(cfg)
    assert kw["method"] == "hmc" and kw["leapfrog_steps"] == 3
    assert set(sampler.METHODS) == {"langevin", "mala", "hmc"}
    cfg.method = "nuts"
    with pytest.raises(ValueError, match="sampling.method='nuts'"):
        sampler.sampling_kwargs(cfg)
    assert sampler.num_steps(ml_collections.ConfigDict(dict(num_steps=7, num_steps_max=12))) == 7
