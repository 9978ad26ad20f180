import glob
import logging
import os

import jax
import numpy as np
import pytest

from ebm_jax.configs import test as test_config
from ebm_jax.evaluation import loaded_run
from ebm_jax.families import ebm
from ebm_jax.runtime import checkpointing, validation, workdir_files
from ebm_jax.training import optim


def make_state(seed):
    config = test_config.get_config()
    family = ebm.EBM(config, (8, 8, 1))
    tx = optim.make_optimizer(config.optim)
    return config, family.model, family.init_state(jax.random.key(seed), tx)


def test_save_restore_roundtrip_keeps_the_last_checkpoints(tmp_path):
    config, model, state = make_state(0)
    ckpt = checkpointing.Checkpointer(str(tmp_path), max_to_keep=2)
    saved = {}
    for step in (1, 2, 3):
        state = state.replace(step=np.int32(step),
                              params=jax.tree_util.tree_map(lambda p: p + 1.0, state.params))
        ckpt.save(state)
        saved[step] = state
    ckpt.wait()
    assert ckpt.all_steps() == [2, 3]
    _, _, target = make_state(1)
    restored = ckpt.restore(target)
    assert int(restored.step) == 3
    for a, b in zip(jax.tree_util.tree_leaves(restored), jax.tree_util.tree_leaves(saved[3])):
        np.testing.assert_array_equal(a, b)
    older = ckpt.restore(target, step=2)
    np.testing.assert_array_equal(older.params["head"]["bias"], saved[2].params["head"]["bias"])
    ckpt.close()


def test_load_workdir_returns_model_params_and_config(tmp_path):
    config, model, state = make_state(0)
    workdir_files.write_run_files(str(tmp_path), config, (8, 8, 1), True)
    ckpt = checkpointing.Checkpointer(str(tmp_path))
    ckpt.save(state.replace(step=np.int32(7)))
    ckpt.close()
    run = loaded_run.load_workdir(str(tmp_path))
    assert run.step == 7 and run.is_image and run.data_shape == (8, 8, 1)
    assert run.config.model.nf == config.model.nf
    x = np.zeros((2, 8, 8, 1), np.float32)
    np.testing.assert_allclose(run.energy(run.params, x), model.energy(state.params, x),
                               rtol=1e-6)


def test_missing_workdir_says_what_is_wrong(tmp_path):
    with pytest.raises(validation.InputError, match="no workdir at"):
        loaded_run.load_workdir(str(tmp_path / "nothing"))
    with pytest.raises(validation.InputError, match="not a workdir written by train.py"):
        loaded_run.load_workdir(str(tmp_path))


def test_an_unreadable_checkpoint_falls_back_to_the_previous_one_and_says_so(tmp_path, caplog):
    _, _, state = make_state(0)
    ckpt = checkpointing.Checkpointer(str(tmp_path))
    for step in (2, 4):
        ckpt.save(state.replace(step=np.int32(step)))
    ckpt.close()
    for path in glob.glob(str(tmp_path / "checkpoints" / "4" / "default" / "*" / "d" / "*")):
        with open(path, "r+b") as f:
            f.truncate(8)
    # As a kill during the writing of step 6 leaves it.
    os.makedirs(tmp_path / "checkpoints" / "6.orbax-checkpoint-tmp-1234" / "default")
    with caplog.at_level(logging.WARNING):
        ckpt = checkpointing.Checkpointer(str(tmp_path))
        assert ckpt.all_steps() == [2, 4]
        restored = ckpt.restore_readable(make_state(1)[2])
    assert int(restored.step) == 2
    for a, b in zip(jax.tree_util.tree_leaves(restored.params),
                    jax.tree_util.tree_leaves(state.params)):
        np.testing.assert_array_equal(a, b)
    assert "checkpoint 4 is unreadable" in caplog.text
    assert "resuming from the previous one, at step 2" in caplog.text
    assert "6.orbax-checkpoint-tmp-1234, a checkpoint whose writing never finished" in caplog.text
    assert ckpt.all_steps() == [2]
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2"]
    assert os.listdir(tmp_path / checkpointing.UNREADABLE_DIR) == ["4"]
    ckpt.save(state.replace(step=np.int32(4)))  # the step can be saved again
    ckpt.close()
    assert checkpointing.Checkpointer(str(tmp_path)).all_steps() == [2, 4]


def test_an_empty_workdir_restores_the_target(tmp_path):
    _, _, state = make_state(0)
    ckpt = checkpointing.Checkpointer(str(tmp_path))
    assert ckpt.restore_readable(state) is state
    ckpt.close()
