import jax
import numpy as np
import pytest

from ebm_jax.configs import test as test_config
from ebm_jax.core import keys
from ebm_jax.families import base, ebm
from ebm_jax.runtime import parallel
from ebm_jax.training import optim


def run_steps(mesh, num_steps=2):
    config = test_config.get_config()
    shape = (8, 8, 1)
    family = ebm.EBM(config, shape)
    tx = optim.make_optimizer(config.optim)
    state = parallel.replicate(family.init_state(keys.init_key(config.seed), tx), mesh)
    update = family.make_update(tx, mesh)
    rng = np.random.default_rng(0)
    m = config.training.batch_size
    for _ in range(num_steps):
        batch = rng.uniform(-1, 1, (m,) + shape).astype(np.float32)
        state, metrics = update(state, base.Batch(
            parallel.shard_batch(batch, mesh), parallel.shard_batch(np.arange(m, dtype=np.int32),
                                                                    mesh)))
    return jax.device_get(state.params), jax.device_get(metrics)


def test_there_are_eight_fake_devices():
    assert len(jax.devices()) == 8


def test_eight_devices_give_the_parameters_of_one_device():
    params8, metrics8 = run_steps(parallel.make_mesh())
    params1, metrics1 = run_steps(parallel.make_mesh(jax.devices()[:1]))
    for a, b in zip(jax.tree_util.tree_leaves(params8), jax.tree_util.tree_leaves(params1)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(metrics8["energy_gap"], metrics1["energy_gap"], rtol=1e-4,
                               atol=1e-6)
    # The updates did move the parameters (the test is not comparing two initialisations).
    config = test_config.get_config()
    init = ebm.EBM(config, (8, 8, 1)).init_params(keys.init_key(config.seed))
    moved = [np.abs(a - b).max() for a, b in zip(jax.tree_util.tree_leaves(params8),
                                                 jax.tree_util.tree_leaves(init))]
    assert max(moved) > 1e-5


def test_batches_are_split_across_devices():
    mesh = parallel.make_mesh()
    x = parallel.shard_batch(np.arange(16 * 3, dtype=np.float32).reshape(16, 3), mesh)
    shards = x.addressable_shards
    assert len(shards) == 8 and all(s.data.shape == (2, 3) for s in shards)
    np.testing.assert_array_equal(np.asarray(shards[1].data), np.arange(6, 12).reshape(2, 3))


def test_batch_size_must_divide_over_the_devices():
    with pytest.raises(ValueError, match="not divisible by the 8 devices"):
        parallel.check_batch_size(12, parallel.make_mesh())
    parallel.check_batch_size(16, parallel.make_mesh())


def test_each_device_draws_its_own_chains_and_they_do_not_depend_on_the_device_count():
    from ebm_jax.core import sampler

    def chains(mesh):
        sharding = parallel.data_sharded(mesh)
        constrain = lambda x: jax.lax.with_sharding_constraint(x, sharding)
        run = jax.jit(lambda key: sampler.short_run(
            lambda x: -0.5 * (x ** 2).sum(axis=(1, 2, 3)), key, (16, 4, 4, 1), 3,
            constrain=constrain).x)
        return run(jax.random.key(0))

    x8 = chains(parallel.make_mesh())
    assert len(x8.addressable_shards) == 8
    flat = np.asarray(x8).reshape(16, -1)
    # No two chains, on the same device or on different ones, start or end alike.
    assert len({tuple(np.round(row, 6)) for row in flat}) == 16
    np.testing.assert_allclose(np.asarray(chains(parallel.make_mesh(jax.devices()[:1]))),
                               np.asarray(x8), rtol=1e-6)


def test_shard_rows_pads_to_the_devices_and_keeps_the_rows():
    mesh = parallel.make_mesh()
    x = np.arange(10.0).reshape(5, 2)
    x_dev = parallel.shard_rows(x, mesh)
    assert x_dev.shape == (8, 2) and x_dev.sharding == parallel.data_sharded(mesh)
    np.testing.assert_array_equal(np.asarray(x_dev)[:5], x)
    np.testing.assert_array_equal(np.asarray(x_dev)[5:], np.repeat(x[-1:], 3, axis=0))
