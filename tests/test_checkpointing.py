import jax
import numpy as np
import pytest

from configs import test as test_config
from ebm_jax import checkpointing, models, train_step


def make_state(seed):
    config = test_config.get_config()
    model = models.build_model(config.model, (8, 8, 1))
    tx = train_step.make_optimizer(config.optim)
    return config, model, train_step.init_state(model.init(jax.random.key(seed)), tx)


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
    checkpointing.write_run_files(str(tmp_path), config, (8, 8, 1), True)
    ckpt = checkpointing.Checkpointer(str(tmp_path))
    ckpt.save(state.replace(step=np.int32(7)))
    ckpt.close()
    run = checkpointing.load_workdir(str(tmp_path))
    assert run.step == 7 and run.is_image and run.data_shape == (8, 8, 1)
    assert run.config.model.nf == config.model.nf
    x = np.zeros((2, 8, 8, 1), np.float32)
    np.testing.assert_allclose(run.energy(run.params, x), model.energy(state.params, x),
                               rtol=1e-6)


def test_missing_workdir_says_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a workdir written by train.py"):
        checkpointing.load_workdir(str(tmp_path / "nothing"))
