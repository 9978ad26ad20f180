"""A run's state, built on the mesh and restored from checkpoints, as the trainer (read-write)
and evaluation (read-only) restore it."""
import os

import jax
import numpy as np
import pytest

from ebm_jax.configs import test as test_config
from ebm_jax.families import ebm, run_state
from ebm_jax.runtime import checkpointing, parallel, validation
from ebm_jax.training import optim


@pytest.fixture
def built():
    config = test_config.get_config()
    family = ebm.EBM(config, (8, 8, 1))
    tx = optim.make_optimizer(config.optim)
    mesh = parallel.make_mesh(jax.devices()[:1])
    return family, tx, run_state.initializer(family, tx, mesh, {})


def saved_workdir(path, init, steps=(1, 2, 3)):
    """Checkpoints at ``steps``, each with every parameter shifted by its step."""
    ckpt = checkpointing.Checkpointer(str(path))
    state = init(jax.random.key(0))
    for step in steps:
        ckpt.save(state.replace(step=np.int32(step), params=jax.tree_util.tree_map(
            lambda p: p + step, state.params)))
    ckpt.close()
    return state


def spoil(path, step):
    for folder, _, files in os.walk(os.path.join(path, "checkpoints", str(step))):
        for name in files:
            if not name.startswith("_"):
                with open(os.path.join(folder, name), "r+b") as f:
                    f.truncate(4)


def test_the_initial_state_is_the_familys_placed_on_the_mesh(built):
    family, tx, init = built
    state = init(jax.random.key(3))
    plain = family.init_state(jax.random.key(3), tx)
    for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(plain)):
        np.testing.assert_array_equal(a, b)
    assert jax.tree_util.tree_leaves(state.params)[0].sharding.is_fully_replicated


def test_read_only_restore_skips_an_unreadable_checkpoint_and_moves_nothing(built, tmp_path):
    _, _, init = built
    fresh = saved_workdir(tmp_path, init)
    spoil(str(tmp_path), 3)
    ckpt = checkpointing.Checkpointer(str(tmp_path), cleanup=False)
    state, step = run_state.restore_state(ckpt, lambda s: init(jax.random.key(1)))
    assert step == 2 and int(state.step) == 2
    np.testing.assert_array_equal(state.params["head"]["bias"], fresh.params["head"]["bias"] + 2)
    assert run_state.restore_state(ckpt, lambda s: init(jax.random.key(1)), 1)[1] == 1
    with pytest.raises(validation.InputError, match=r"has no checkpoint at step 9; it has "
                                                    r"steps \[1, 2, 3\]"):
        run_state.restore_state(ckpt, lambda s: init(jax.random.key(1)), 9)
    ckpt.close()
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2", "3"]


def test_read_write_restore_sets_an_unreadable_checkpoint_aside(built, tmp_path):
    _, _, init = built
    saved_workdir(tmp_path, init)
    spoil(str(tmp_path), 3)
    ckpt = checkpointing.Checkpointer(str(tmp_path))
    state, step = run_state.restore_state(ckpt, lambda s: init(jax.random.key(1)))
    ckpt.close()
    assert step == 2 and int(state.step) == 2
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
    assert os.listdir(tmp_path / "unreadable_checkpoints") == ["3"]


def test_without_checkpoints_training_starts_fresh_and_evaluation_refuses(built, tmp_path):
    _, _, init = built
    ckpt = checkpointing.Checkpointer(str(tmp_path))
    state, step = run_state.restore_state(ckpt, lambda s: init(jax.random.key(1)))
    ckpt.close()
    assert step == 0 and int(state.step) == 0
    ckpt = checkpointing.Checkpointer(str(tmp_path), cleanup=False)
    with pytest.raises(validation.InputError, match="its checkpoints/ folder is empty"):
        run_state.restore_state(ckpt, lambda s: init(jax.random.key(1)))
    ckpt.close()
