import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ebm_jax import data
from ebm_jax.configs import test as test_config
from ebm_jax.core import keys, sampler
from ebm_jax.families import base, ebm
from ebm_jax.training import optim

SHAPE = (8, 8, 1)


def setup(config=None):
    config = config or test_config.get_config()
    family = ebm.EBM(config, SHAPE)
    tx = optim.make_optimizer(config.optim, config.training.num_steps)
    state = family.init_state(keys.init_key(config.seed), tx)
    ds = data.get_dataset(config.data, seed=config.seed)
    index = data.batch_indices(len(ds), config.training.batch_size, 0, config.seed)
    batch = base.Batch(jnp.asarray(ds.get(index)), jnp.asarray(index, jnp.int32))
    return config, family, tx, state, batch


# Golden values of one update of configs/test.py on the first digits batch (jax 0.10, CPU,
# float32). If a deliberate change of the model, the sampler, the key derivation or the data
# order moves them, check the change is intended and replace them with the new printout of
# `pytest tests/test_ebm.py -k golden -s`.
GOLDEN = {
    "loss": 0.0802699401974678,
    "grad_norm_params": 1.1691292524337769,
    "grad_norm_x": 0.06559818983078003,
    "params_sum": -2.395873785018921,
    "params_abs_sum": 111.15837097167969,
}


@pytest.mark.parametrize("grad_impl", ["autodiff", "auto"])
def test_golden_values_after_one_train_step(grad_impl):
    config = test_config.get_config()
    config.sampling.grad_impl = grad_impl
    config, family, tx, state, batch = setup(config)
    new_state, metrics = family.make_update(tx)(state, batch)
    leaves = jax.tree_util.tree_leaves(new_state.params)
    got = {
        "loss": float(metrics["loss"]),
        "grad_norm_params": float(metrics["grad_norm_params"]),
        "grad_norm_x": float(metrics["grad_norm_x"]),
        "params_sum": float(sum(jnp.sum(p) for p in leaves)),
        "params_abs_sum": float(sum(jnp.sum(jnp.abs(p)) for p in leaves)),
    }
    print("golden:", got)
    assert int(new_state.step) == 1
    for k, v in GOLDEN.items():
        np.testing.assert_allclose(got[k], v, rtol=2e-4, err_msg=k)


def test_update_is_adam_on_the_energy_gap_with_the_chains_held_fixed():
    config, family, tx, state, batch = setup()
    model, data_x = family.model, batch.x
    # The same update by hand: chains and data noise from the documented keys.
    key = keys.step_key(config.seed, 0)
    chains = sampler.short_run(lambda x: model.energy(state.params, x), jax.random.fold_in(key, 0),
                               data_x.shape, config.sampling.num_steps,
                               **sampler.sampling_kwargs(config.sampling))
    x = data_x + config.training.data_noise_std * jax.random.normal(jax.random.fold_in(key, 1),
                                                                    data_x.shape)
    y = chains.x
    loss_fn = lambda p: jnp.mean(model.energy(p, y)) - jnp.mean(model.energy(p, x))
    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    adam = optax.adam(1e-4, b1=0.9, b2=0.999, eps=1e-8)
    updates, _ = adam.update(grads, adam.init(state.params), state.params)
    expected = optax.apply_updates(state.params, updates)
    old_params = jax.tree_util.tree_map(jnp.copy, state.params)

    update = family.make_update(tx)
    new_state, metrics = update(state, batch)  # donates state
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["data_noise_std"], config.training.data_noise_std)
    np.testing.assert_allclose(metrics["energy_gap"], -loss, rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(new_state.params),
                    jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # Adam's first step moves every weight by about lr.
    delta = jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda a, b: jnp.abs(a - b),
                                                             new_state.params, old_params))
    assert 0.5e-4 < float(max(jnp.max(d) for d in delta)) <= 1.0001e-4


def test_dynamic_k_is_drawn_per_update_within_its_range():
    config = test_config.get_config()
    config.sampling.num_steps = 3
    config.sampling.num_steps_max = 9
    config, family, tx, state, batch = setup(config)
    update = family.make_update(tx)
    ks = []
    for _ in range(12):
        state, metrics = update(state, batch)
        ks.append(int(metrics["num_langevin_steps"]))
    assert min(ks) >= 3 and max(ks) <= 9 and len(set(ks)) > 2
    assert update._cache_size() == 1  # one compilation for all K


def test_persistent_update_runs_the_buffer_rows_and_writes_them_back():
    from ebm_jax.core import replay
    from ebm_jax.runtime import parallel
    config = test_config.get_config()
    config.training.chains = "persistent"
    config.training.buffer_size, config.training.reinit_prob = 100, 0.5
    family = ebm.EBM(config, SHAPE)
    meta = family.state_meta(1500, parallel.make_mesh(jax.devices()[:1]))
    assert meta == {"bank_size": 100}
    _, _, tx, _, batch = setup()
    state = family.init_state(keys.init_key(config.seed), tx, meta)
    bank0 = np.asarray(state.bank)
    assert bank0.shape == (100,) + SHAPE and np.abs(bank0).max() <= 1.0
    params = state.params
    key = keys.step_key(config.seed, 0)
    kw = sampler.sampling_kwargs(config.sampling)
    start = replay.draw(jax.random.fold_in(key, 3), state.bank, batch.x.shape[0], kw.pop("prior"),
                        0.5)
    chains = sampler.run(lambda x: family.energy(params, x), start.x0,
                         jax.random.fold_in(jax.random.fold_in(key, 0), 1),
                         config.sampling.num_steps, **kw)
    index = np.asarray(start.index)
    new_state, metrics = family.make_update(tx, meta=meta)(state, batch)
    bank1 = np.asarray(new_state.bank)
    np.testing.assert_allclose(bank1[index], chains.x, rtol=1e-5, atol=1e-6)
    rest = np.setdiff1d(np.arange(100), index)
    np.testing.assert_array_equal(bank1[rest], bank0[rest])
    np.testing.assert_allclose(metrics["buffer_restarted"], np.mean(start.restarted))
    assert 0 < float(metrics["buffer_restarted"]) < 1


@pytest.mark.parametrize("method", ["mala", "hmc"])
def test_a_corrected_method_trains_and_reports_its_acceptance(method):
    config = test_config.get_config()
    config.sampling.method = method
    config.sampling.leapfrog_steps = 2
    config, family, tx, state, batch = setup(config)
    new_state, metrics = family.make_update(tx)(state, batch)
    assert 0.0 <= float(metrics["accept_rate"]) <= 1.0 and np.isfinite(float(metrics["loss"]))
    out = family.make_sampler()(new_state.params, jax.random.key(0), 4)
    assert out.x.shape == (4,) + SHAPE and out.accept_rate is not None


def test_an_unknown_method_or_chain_kind_is_refused():
    config = test_config.get_config()
    config.sampling.method = "gibbs"
    with pytest.raises(ValueError, match="langevin, mala, hmc"):
        ebm.EBM(config, SHAPE)
    config = test_config.get_config()
    config.training.chains = "replay"
    with pytest.raises(ValueError, match="short_run or persistent"):
        ebm.EBM(config, SHAPE)


def run_by_grad_impl(monkeypatch, module, name, call):
    """``call(family, state, batch)`` under grad_impl matmul, then autodiff, with ``module.name``
    spied on: (the grad_fn of each call to it, {impl: the result as numpy})."""
    seen, original = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **kw: seen.append(kw["grad_fn"]) or original(
        *a, **kw))
    out = {}
    for impl in ("matmul", "autodiff"):
        config = test_config.get_config()
        config.sampling.grad_impl = impl
        config, family, _, state, batch = setup(config)
        out[impl] = np.asarray(call(family, state, batch))
    return seen, out


def test_the_reconstructor_inverts_with_the_chains_gradient_and_agrees_with_jax_grad(
        monkeypatch):
    """make_reconstructor hands flow.invert the chains' matrix-product gradient (as --mode=bpd
    does); its reconstruction matches the one through jax.grad to float rounding."""
    from ebm_jax.core import flow
    seen, out = run_by_grad_impl(monkeypatch, flow, "invert", lambda family, state, batch: (
        family.make_reconstructor(num_iters=20, snapshot_every=None)(
            state.params, batch.x[:4], jax.random.key(3)).x))
    x = np.asarray(setup()[4].x[:4])
    assert seen[0] is not None and seen[1] is None
    assert out["matmul"].shape == (4,) + SHAPE
    np.testing.assert_allclose(out["matmul"], out["autodiff"], atol=2e-4)
    assert np.abs(out["matmul"] - x).mean() < np.abs(x).mean()


def test_interpolation_chains_run_with_the_chains_gradient_and_agree_with_jax_grad(
        monkeypatch):
    """EBM.interpolate gives the chains the matrix-product gradient, as make_sampler does; the
    rows match those through jax.grad to float rounding."""
    seen, out = run_by_grad_impl(monkeypatch, sampler, "run", lambda family, state, _: (
        family.interpolate(state.params, jax.random.key(5), 3, jnp.array([0.0, 0.5, 1.0]))))
    assert seen[0] is not None and seen[-1] is None
    assert out["matmul"].shape == (3, 3) + SHAPE
    np.testing.assert_allclose(out["matmul"], out["autodiff"], atol=2e-4)
    assert np.abs(out["matmul"][0] - out["matmul"][2]).mean() > 1e-2
