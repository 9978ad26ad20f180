import numpy as np
import pytest

from ebm_jax.configs import test as test_config
from ebm_jax.core import schedules


def test_the_learning_rate_decays_and_warms_up_as_the_optim_config_says():
    config = test_config.get_config()
    config.optim.learning_rate = 0.5
    config.optim.schedule = "cosine"
    config.optim.decay_start = 10
    config.optim.final_lr_factor = 0.1
    lr = schedules.learning_rate(config.optim, total_steps=110)
    np.testing.assert_allclose([lr(0), lr(10), lr(60), lr(110)],
                               [0.5, 0.5, 0.5 * (0.1 + 0.9 * 0.5), 0.05], rtol=1e-5)
    config.optim.schedule = "linear"
    config.optim.warmup_steps = 4
    lr = schedules.learning_rate(config.optim, total_steps=110)
    np.testing.assert_allclose([lr(2), lr(4)], [0.25, 0.5], rtol=1e-5)


def test_the_data_noise_decays_as_the_training_config_says():
    config = test_config.get_config()
    config.training.data_noise_std = 0.04
    config.training.data_noise_schedule = "cosine"
    config.training.data_noise_decay_start = 2
    config.training.data_noise_final_factor = 0.5
    sigma = schedules.data_noise(config.training)  # 4 updates: decay over 2..4
    np.testing.assert_allclose([sigma(0), sigma(2), sigma(3), sigma(4)],
                               [0.04, 0.04, 0.04 * (0.5 + 0.5 * 0.5), 0.02], rtol=1e-5)
    config.training.data_noise_schedule = "constant"
    np.testing.assert_allclose(schedules.data_noise(config.training)(3), 0.04)


def test_decay_over_given_steps_then_flat_and_unknown_kinds_refused():
    linear = schedules.decay(1.0, "linear", decay_start=2, decay_steps=4, final_factor=0.25)
    np.testing.assert_allclose([linear(0), linear(2), linear(4), linear(6), linear(100)],
                               [1.0, 1.0, 0.625, 0.25, 0.25], rtol=1e-6)
    with pytest.raises(ValueError, match="constant, cosine or linear"):
        schedules.decay(1.0, "exponential")
