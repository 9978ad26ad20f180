import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ebm_jax.configs import test as test_config
from ebm_jax.core import keys
from ebm_jax.families import base, update
from ebm_jax.runtime import parallel


class Mean(base.Family):
    """w learned by SGD on mean_i |x_i - w|^2 / 2, whose gradient is w - mean_i x_i; the bank
    keeps the last x_i of each example."""
    name = "mean"
    guard_spec = base.GuardSpec(finite=("loss",))

    def init_params(self, key):
        return {"w": jnp.zeros(3)}

    def state_shardings(self, mesh, meta=None):
        rep = parallel.replicated(mesh)
        return base.TrainState(rep, rep, rep, parallel.data_sharded(mesh))

    def make_update(self, tx, mesh=None, meta=None):
        seen = self.seen = []

        def objective(state, batch, x, frozen, key, constrain):
            seen.append((frozen, key))

            def loss_fn(params):
                loss = jnp.mean(jnp.sum(jnp.square(x - params["w"]), -1)) / 2
                return loss, dict(twice_loss=2 * loss)

            return update.Objective(loss_fn, dict(x_mean=jnp.mean(x)),
                                    state.bank.at[batch.index].set(x))

        return update.make_update(self, objective, tx, mesh, meta)

    def make_sampler(self, config=None, *, mesh=None, snapshot_steps=()):
        raise NotImplementedError


def setup(sigma=0.5, schedule="constant"):
    config = test_config.get_config()
    config.training.data_noise_std = sigma
    config.training.data_noise_schedule = schedule
    family = Mean(config, (3,))
    tx = optax.sgd(1.0)
    params = family.init_params(None)
    state = base.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), jnp.zeros((8, 3)))
    x = jnp.arange(24.0).reshape(8, 3) / 10
    return config, family, tx, state, base.Batch(x, jnp.arange(8, dtype=jnp.int32))


def noisy(config, x, step, sigma):
    key = jax.random.fold_in(keys.step_key(config.seed, step), 1)
    return x + sigma * jax.random.normal(key, x.shape, x.dtype)


@pytest.mark.parametrize("with_mesh", [False, True])
def test_one_sgd_step_on_the_noisy_data_with_the_documented_key(with_mesh):
    config, family, tx, state, batch = setup()
    mesh = parallel.make_mesh() if with_mesh else None
    if mesh is not None:
        batch = base.Batch(parallel.shard_batch(np.asarray(batch.x), mesh),
                           parallel.shard_batch(np.asarray(batch.index), mesh))
    x = noisy(config, batch.x, 0, 0.5)
    new, metrics = family.make_update(tx, mesh)(state, batch)
    # SGD with rate 1 on |x - w|^2 / 2 from w = 0 lands on the mean of the noisy data.
    np.testing.assert_allclose(new.params["w"], jnp.mean(x, 0), rtol=1e-6)
    np.testing.assert_allclose(new.bank, x, rtol=1e-6)
    assert int(new.step) == 1
    loss = float(jnp.mean(jnp.sum(jnp.square(x), -1)) / 2)
    np.testing.assert_allclose(
        [metrics[k] for k in ("loss", "twice_loss", "x_mean", "grad_norm_params", "param_norm",
                              "data_noise_std")],
        [loss, 2 * loss, jnp.mean(x), jnp.linalg.norm(jnp.mean(x, 0)),
         jnp.linalg.norm(jnp.mean(x, 0)), 0.5], rtol=1e-5)
    # The objective saw the update's key and params held constant (a tracer, under jit).
    (frozen, key), = family.seen
    assert isinstance(frozen["w"], jax.core.Tracer) and key.shape == ()
    if mesh is not None:
        assert new.bank.sharding.is_equivalent_to(parallel.data_sharded(mesh), 2)


def test_the_data_noise_follows_its_schedule_from_update_to_update():
    config, family, tx, state, batch = setup(sigma=0.4, schedule="linear")
    step = family.make_update(tx)
    sigmas = []
    for _ in range(config.training.num_steps + 1):
        state, metrics = step(state, batch)
        sigmas.append(float(metrics["data_noise_std"]))
    # Linear decay to 0 over the run's 4 updates, then 0.
    np.testing.assert_allclose(sigmas, [0.4, 0.3, 0.2, 0.1, 0.0], atol=1e-7)
    # The last update has no noise: the bank holds the data as they are.
    np.testing.assert_allclose(state.bank, batch.x, rtol=1e-6)
    config, family, tx, state, batch = setup(sigma=0.0)
    new, _ = family.make_update(tx)(state, batch)
    np.testing.assert_allclose(new.params["w"], jnp.mean(batch.x, 0), rtol=1e-6)
