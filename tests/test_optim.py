import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax.configs import default
from ebm_jax.configs import test as test_config
from ebm_jax.training import optim


def test_optimizer_settings_come_from_the_config():
    config = test_config.get_config()
    config.optim.optimizer = "sgd"
    config.optim.learning_rate = 0.5
    tx = optim.make_optimizer(config.optim)
    params = {"w": jnp.ones(3)}
    updates, _ = tx.update({"w": jnp.full(3, 2.0)}, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -1.0)

    config.optim.optimizer, config.optim.schedule, config.optim.warmup_steps = "sgd", "linear", 4
    tx = optim.make_optimizer(config.optim, total_steps=110)
    state = tx.init(params)
    for _ in range(2):  # the second update runs at step 1 of the 4-step warm-up: 0.125
        updates, state = tx.update({"w": jnp.full(3, 2.0)}, state, params)
    np.testing.assert_allclose(updates["w"], -2.0 * 0.125)
    with pytest.raises(ValueError, match="optax"):
        config.optim.optimizer = "adamx"
        optim.make_optimizer(config.optim)


def test_scaled_optim_multiplies_only_the_rate():
    config = default.get_config().optim
    scaled = optim.scaled_optim(config, 0.0625)
    assert scaled.learning_rate == config.learning_rate * 0.0625
    assert config.learning_rate == 1e-4 and scaled.b1 == config.b1
