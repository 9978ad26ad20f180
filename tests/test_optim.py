import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax.configs import default
from ebm_jax.configs import test as test_config
from ebm_jax.training import optim


def test_optimizer_settings_and_schedules_come_from_the_config():
    config = test_config.get_config()
    config.optim.optimizer = "sgd"
    config.optim.learning_rate = 0.5
    tx = optim.make_optimizer(config.optim)
    params = {"w": jnp.ones(3)}
    updates, _ = tx.update({"w": jnp.full(3, 2.0)}, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -1.0)

    config.optim.schedule = "cosine"
    config.optim.decay_start = 10
    config.optim.final_lr_factor = 0.1
    sched = optim.make_schedule(config.optim, total_steps=110)
    np.testing.assert_allclose([sched(0), sched(10), sched(60), sched(110)],
                               [0.5, 0.5, 0.5 * (0.1 + 0.9 * 0.5), 0.05], rtol=1e-5)
    config.optim.schedule = "linear"
    config.optim.warmup_steps = 4
    sched = optim.make_schedule(config.optim, total_steps=110)
    np.testing.assert_allclose([sched(2), sched(4)], [0.25, 0.5], rtol=1e-5)
    config.training.data_noise_std = 0.04
    config.training.data_noise_schedule = "cosine"
    config.training.data_noise_decay_start = 2
    config.training.data_noise_final_factor = 0.5
    sigma = optim.make_data_noise_schedule(config.training)  # 4 updates: decay over 2..4
    np.testing.assert_allclose([sigma(0), sigma(2), sigma(3), sigma(4)],
                               [0.04, 0.04, 0.04 * (0.5 + 0.5 * 0.5), 0.02], rtol=1e-5)
    with pytest.raises(ValueError, match="optax"):
        config.optim.optimizer = "adamx"
        optim.make_optimizer(config.optim)


def test_scaled_optim_multiplies_only_the_rate():
    config = default.get_config().optim
    scaled = optim.scaled_optim(config, 0.0625)
    assert scaled.learning_rate == config.learning_rate * 0.0625
    assert config.learning_rate == 1e-4 and scaled.b1 == config.b1
