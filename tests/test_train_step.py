import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ebm_jax.configs import test as test_config
from ebm_jax import data
from ebm_jax.models import nets
from ebm_jax.core import sampler
from ebm_jax.training import train_step

SHAPE = (8, 8, 1)


def setup(config=None):
    config = config or test_config.get_config()
    model = nets.build_model(config.model, SHAPE)
    tx = train_step.make_optimizer(config.optim, config.training.num_steps)
    state = train_step.init_state(model.init(train_step.init_key(config.seed)), tx)
    batch = data.get_dataset(config.data, seed=config.seed).batch(0, config.training.batch_size,
                                                                   config.seed)
    return config, model, tx, state, jnp.asarray(batch)


# Golden values of one update of configs/test.py on the first digits batch (jax 0.10, CPU,
# float32). If a deliberate change of the model, the sampler, the key derivation or the data
# order moves them, check the change is intended and replace them with the new printout of
# `pytest tests/test_train_step.py -k golden -s`.
GOLDEN = {
    "loss": 0.0802699401974678,
    "grad_norm_params": 1.1691292524337769,
    "grad_norm_x": 0.06559818983078003,
    "params_sum": -2.395873785018921,
    "params_abs_sum": 111.15837097167969,
}


@pytest.mark.parametrize("fast_grad", [False, True])
def test_golden_values_after_one_train_step(fast_grad):
    config, model, tx, state, batch = setup()
    update = train_step.make_train_step(model.energy, tx, config, SHAPE,
                                        input_grad=model.input_grad if fast_grad else None)
    new_state, metrics = update(state, batch)
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
    config, model, tx, state, batch = setup()
    # The same update by hand: chains and data noise from the documented keys.
    key = train_step.step_key(config.seed, 0)
    chains = sampler.short_run(lambda x: model.energy(state.params, x), jax.random.fold_in(key, 0),
                               batch.shape, config.sampling.num_steps,
                               **sampler.sampling_kwargs(config.sampling))
    x = batch + config.training.data_noise_std * jax.random.normal(jax.random.fold_in(key, 1),
                                                                   batch.shape)
    y = chains.x
    loss_fn = lambda p: jnp.mean(model.energy(p, y)) - jnp.mean(model.energy(p, x))
    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    adam = optax.adam(1e-4, b1=0.9, b2=0.999, eps=1e-8)
    updates, _ = adam.update(grads, adam.init(state.params), state.params)
    expected = optax.apply_updates(state.params, updates)
    old_params = jax.tree_util.tree_map(jnp.copy, state.params)

    update = train_step.make_train_step(model.energy, tx, config, SHAPE)
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


def test_keys_are_derived_from_seed_and_step():
    k0, k1 = train_step.step_key(0, 0), train_step.step_key(0, 1)
    assert not np.array_equal(jax.random.key_data(k0), jax.random.key_data(k1))
    np.testing.assert_array_equal(jax.random.key_data(train_step.step_key(0, 5)),
                                  jax.random.key_data(train_step.step_key(0, 5)))
    assert not np.array_equal(jax.random.key_data(train_step.init_key(0)),
                              jax.random.key_data(k0))


def test_dynamic_k_is_drawn_per_update_within_its_range():
    config = test_config.get_config()
    config.sampling.num_steps = 3
    config.sampling.num_steps_max = 9
    config, model, tx, state, batch = setup(config)
    update = train_step.make_train_step(model.energy, tx, config, SHAPE)
    ks = []
    for _ in range(12):
        state, metrics = update(state, batch)
        ks.append(int(metrics["num_langevin_steps"]))
    assert min(ks) >= 3 and max(ks) <= 9 and len(set(ks)) > 2
    assert update._cache_size() == 1  # one compilation for all K


def test_optimizer_settings_and_schedules_come_from_the_config():
    config = test_config.get_config()
    config.optim.optimizer = "sgd"
    config.optim.learning_rate = 0.5
    tx = train_step.make_optimizer(config.optim)
    params = {"w": jnp.ones(3)}
    updates, _ = tx.update({"w": jnp.full(3, 2.0)}, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -1.0)

    config.optim.schedule = "cosine"
    config.optim.decay_start = 10
    config.optim.final_lr_factor = 0.1
    sched = train_step.make_schedule(config.optim, total_steps=110)
    np.testing.assert_allclose([sched(0), sched(10), sched(60), sched(110)],
                               [0.5, 0.5, 0.5 * (0.1 + 0.9 * 0.5), 0.05], rtol=1e-5)
    config.optim.schedule = "linear"
    config.optim.warmup_steps = 4
    sched = train_step.make_schedule(config.optim, total_steps=110)
    np.testing.assert_allclose([sched(2), sched(4)], [0.25, 0.5], rtol=1e-5)
    config.training.data_noise_std = 0.04
    config.training.data_noise_schedule = "cosine"
    config.training.data_noise_decay_start = 2
    config.training.data_noise_final_factor = 0.5
    sigma = train_step.make_data_noise_schedule(config.training)  # 4 updates: decay over 2..4
    np.testing.assert_allclose([sigma(0), sigma(2), sigma(3), sigma(4)],
                               [0.04, 0.04, 0.04 * (0.5 + 0.5 * 0.5), 0.02], rtol=1e-5)
    with pytest.raises(ValueError, match="optax"):
        config.optim.optimizer = "adamx"
        train_step.make_optimizer(config.optim)
