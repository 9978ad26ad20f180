"""Every bad input, run through ``errors.run_training`` (what train.py runs): exit status 1, one
paragraph naming the problem, no traceback, and the workdir left exactly as it was."""
import glob
import os
import re

import jax
import numpy as np
import pytest

from ebm_jax.cli import errors
from ebm_jax.configs import default
from ebm_jax.configs import test as test_config
from ebm_jax.families import ebm
from ebm_jax.runtime import checkpointing, parallel, validation, workdir_files
from ebm_jax.training import optim


def save_npy(array):
    def setup(config, workdir, tmp_path):
        np.save(tmp_path / "x.npy", array)
        config.data.dataset, config.data.path = "npy", str(tmp_path / "x.npy")
    return setup


def set_field(path, value):
    def setup(config, workdir, tmp_path):
        block, name = path.split(".")
        config[block][name] = value
    return setup


def workdir_of_nf(nf, with_run_files):
    """A workdir whose checkpoint (step 2) is of the test model with ``nf`` filters."""
    def setup(config, workdir, tmp_path):
        other = test_config.get_config()
        other.model.nf = nf
        tx = optim.make_optimizer(other.optim)
        state = ebm.EBM(other, (8, 8, 1)).init_state(jax.random.key(0), tx)
        ckpt = checkpointing.Checkpointer(workdir)
        ckpt.save(state.replace(step=np.int32(2)))
        ckpt.close()
        if with_run_files:
            workdir_files.write_run_files(workdir, other, (8, 8, 1), True)
    return setup


def corrupt_every_checkpoint(config, workdir, tmp_path):
    workdir_of_nf(config.model.nf, with_run_files=True)(config, workdir, tmp_path)
    for path in glob.glob(os.path.join(workdir, "checkpoints", "2", "default", "*", "d", "*")):
        with open(path, "r+b") as f:
            f.truncate(8)


def tfds_not_prepared(config, workdir, tmp_path):
    config.data.dataset, config.data.data_dir = "cifar10", str(tmp_path / "empty")


def batch_of_12_on_8_devices(config, workdir, tmp_path):
    config.training.batch_size = 12
    return parallel.make_mesh(jax.devices()[:8])


BAD_INPUTS = {
    "unknown config field": (
        set_field("training.num_step", 10),
        r"unknown config field 'training.num_step' \(did you mean 'training.num_steps'\?\)"),
    "unknown data set": (set_field("data.dataset", "cifar11"), r"Unknown dataset 'cifar11'"),
    "npy of wrong shape": (
        save_npy(np.zeros((5, 3, 3))), r"holds an array of dtype float64 and shape \(5, 3, 3\)"),
    "npy of wrong dtype": (
        save_npy(np.zeros((5, 4), np.int32)), r"holds an array of dtype int32 and shape"),
    "npy holding NaNs": (save_npy(np.array([[0.0, np.nan]] * 4)), r"holds NaN or infinite"),
    "images out of range": (
        save_npy(np.full((5, 8, 8, 1), 255.0, np.float32)),
        r"float images with values in \[255, 255\], outside \[-1, 1\]"),
    "workdir of another model": (
        workdir_of_nf(16, with_run_files=True),
        r"holds checkpoints of a different model: model.nf is 16 there and 8 here"),
    "checkpoint of another model, no config.json": (
        workdir_of_nf(16, with_run_files=False),
        r"holds checkpoints of a different model \(Requested shape: .* is not compatible "
        r"with the stored shape"),
    "no readable checkpoint": (corrupt_every_checkpoint, r"no checkpoint in .* can be read"),
    "tfds data set not prepared": (tfds_not_prepared, r"tfds build cifar10"),
    "batch not divisible by devices": (
        batch_of_12_on_8_devices, r"batch_size=12 is not divisible by the 8 devices"),
}


def snapshot(directory):
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, directory)] = f.read()
    return files


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_paragraph_exit_1_and_the_workdir_is_untouched(case, tmp_path, capsys):
    setup, expected = BAD_INPUTS[case]
    config, workdir = test_config.get_config(), str(tmp_path / "run")
    mesh = setup(config, workdir, tmp_path) or parallel.make_mesh(jax.devices()[:1])
    before = snapshot(workdir)
    code = errors.run_training(config, workdir, reference=default.get_config(), progress=False,
                            mesh=mesh)
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and "\n\n" not in err.strip(), err  # one paragraph
    assert "Traceback" not in err
    assert re.search(expected, err), err
    assert snapshot(workdir) == before


def test_override_names_and_config_fields():
    assert validation.override_names(
        ["--config=c.py", "--config.training.num_steps=3", "--workdir=w", "--noprogress"]) == [
        "training.num_steps"]
    fields = validation.config_fields(default.get_config())
    assert "guard.max_rollbacks" in fields and "model.hidden_dims" in fields
    validation.check_config(test_config.get_config(), default.get_config())
