"""Every bad input, run through ``commands.run_training`` (what train.py runs): exit status 1, one
paragraph naming the problem, no traceback, and the workdir left exactly as it was."""
import glob
import hashlib
import os
import re

import jax
import numpy as np
import pytest

from ebm_jax.cli import commands
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


def workdir_of_nf(nf, with_run_files, schedule="constant"):
    """A workdir whose checkpoint (step 2) is of the test model with ``nf`` filters."""
    def setup(config, workdir, tmp_path):
        other = test_config.get_config()
        other.model.nf, other.optim.schedule = nf, schedule
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
    return {"mesh": parallel.make_mesh(jax.devices()[:8])}


def workdir_is_a_file(config, workdir, tmp_path):
    with open(workdir, "w") as f:
        f.write("not a workdir")


UNWRITABLE = "/sys/ebm_jax_run"  # sysfs: no one, root included, may create a folder there


def unwritable_workdir(config, workdir, tmp_path):
    try:
        os.mkdir(UNWRITABLE)
        os.rmdir(UNWRITABLE)
    except OSError:
        return {"workdir": UNWRITABLE}
    pytest.skip(f"{UNWRITABLE} can be created on this machine")


def resumed_with(path, value, schedule="constant"):
    """A workdir trained (step 2) with the test config and the learning-rate ``schedule``,
    resumed with ``path`` set to ``value``."""
    def setup(config, workdir, tmp_path):
        workdir_of_nf(config.model.nf, True, schedule)(config, workdir, tmp_path)
        config.optim.schedule = schedule
        set_field(path, value)(config, workdir, tmp_path)
    return setup


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
        r"was trained with other settings, .*: model.nf is 16 there and 8 here\. Nothing was "
        r"changed in it\. .* pass --allow_config_change"),
    "checkpoint of another model, no config.json": (
        workdir_of_nf(16, with_run_files=False),
        r"holds checkpoints of a different model \(Requested shape: .* is not compatible "
        r"with the stored shape"),
    "no readable checkpoint": (corrupt_every_checkpoint, r"no checkpoint in .* can be read"),
    "tfds data set not prepared": (tfds_not_prepared, r"tfds build cifar10"),
    "batch not divisible by devices": (
        batch_of_12_on_8_devices, r"batch_size=12 is not divisible by the 8 devices"),
    "batch size zero": (set_field("training.batch_size", 0),
                        r"training.batch_size \(the batch size m\) is 0 but must be at least 1"),
    "negative batch size": (set_field("training.batch_size", -3),
                            r"training.batch_size \(the batch size m\) is -3"),
    "no updates": (set_field("training.num_steps", 0), r"training.num_steps .* is 0 but must"),
    "K zero": (set_field("sampling.num_steps", 0), r"sampling.num_steps \(K, .*\) is 0 but"),
    "K negative": (set_field("sampling.num_steps", -5), r"sampling.num_steps \(K, .*\) is -5"),
    "s zero": (set_field("sampling.step_size", 0.0),
               r"sampling.step_size \(s, .*\) is 0.0 but must be positive"),
    "s negative": (set_field("sampling.step_size", -1.0), r"sampling.step_size .* is -1.0"),
    "sigma negative": (set_field("sampling.noise_std", -0.01),
                       r"sampling.noise_std \(sigma, .*\) is -0.01 but must be non-negative"),
    "logging period zero": (set_field("training.log_every", 0), r"training.log_every .* is 0"),
    "workdir that is a file": (workdir_is_a_file, r"is a file, not a directory"),
    "unwritable workdir": (unwritable_workdir,
                           r"cannot be written: creating a file in '/sys' \(where it would go\) "
                           r"failed"),
    "resume with another K": (
        resumed_with("sampling.num_steps", 7),
        r"was trained with other settings, .*: sampling.num_steps is 5 there and 7 here\. "
        r"Nothing was changed in it\..* pass --allow_config_change"),
    "resume with another batch size and rate": (
        resumed_with("training.batch_size", 32),
        r"training.batch_size is 16 there and 32 here"),
    "resume longer, with a cosine rate until the end": (
        resumed_with("training.num_steps", 8, schedule="cosine"),
        r"training.num_steps is 4 there and 8 here"),
}


def snapshot(path):
    """What is at ``path``: None, a file's hash, or every file and folder under a folder
    with the hash of each file."""
    digest = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
    if not os.path.exists(path):
        return None
    if not os.path.isdir(path):
        return digest(path)
    entries = {}
    for root, folders, names in os.walk(path):
        for name in folders:
            entries[os.path.relpath(os.path.join(root, name), path) + "/"] = "folder"
        for name in names:
            entries[os.path.relpath(os.path.join(root, name), path)] = digest(
                os.path.join(root, name))
    return entries


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_paragraph_exit_1_and_the_workdir_is_untouched(case, tmp_path, capsys):
    setup, expected = BAD_INPUTS[case]
    config, workdir = test_config.get_config(), str(tmp_path / "run")
    given = setup(config, workdir, tmp_path) or {}
    workdir = given.get("workdir", workdir)
    before = snapshot(workdir)
    code = commands.run_training(config, workdir, reference=default.get_config(), progress=False,
                               mesh=given.get("mesh", parallel.make_mesh(jax.devices()[:1])))
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and "\n\n" not in err.strip(), err  # one paragraph
    assert "Traceback" not in err
    assert re.search(expected, err), err
    assert snapshot(workdir) == before  # None before: still nothing there


def test_override_names_and_config_fields():
    assert validation.override_names(
        ["--config=c.py", "--config.training.num_steps=3", "--workdir=w", "--noprogress"]) == [
        "training.num_steps"]
    fields = validation.config_fields(default.get_config())
    assert "guard.max_rollbacks" in fields and "model.hidden_dims" in fields
    validation.check_config(test_config.get_config(), default.get_config())
