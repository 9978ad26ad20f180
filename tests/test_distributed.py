"""Two processes on localhost, joined by JAX's distributed runtime over gloo CPU collectives.

They run ``train.py`` and ``evaluate.py`` as a cluster would, and the results are compared with
one process on the same global batch and the same chains.
"""
import importlib
import json
import os
import shutil
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from ebm_jax import data
from ebm_jax.configs import test as test_config
from ebm_jax.evaluation import common
from ebm_jax.evaluation import loaded_run
from ebm_jax.runtime import distributed, parallel, tensorboard, workdir_files
from ebm_jax.training import trainer
from tests.conftest import PERSISTENT, ROOT, config_args, tiny_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def run_two_processes(script: str, *args: str) -> list[subprocess.CompletedProcess]:
    port = free_port()
    procs = [subprocess.Popen(
        [sys.executable, script, *args, f"--coordinator_address=localhost:{port}",
         "--num_processes=2", f"--process_id={i}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)]
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        outs.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    for out in outs:
        assert out.returncode == 0, out.stderr[-3000:]
    return outs


def train_one_process(workdir, num_steps: int, family: str = "ebm"):
    config = tiny_config(family)
    config.training.num_steps = num_steps
    return trainer.train_and_evaluate(config, str(workdir),
                                      mesh=parallel.make_mesh(jax.devices()[:2]), progress=False)


def assert_same_params(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)


def test_batch_rows_of_the_processes_make_up_the_global_batch():
    ds = data.get_dataset(test_config.get_config().data, seed=0)
    whole = ds.batch(7, 16, seed=3)
    parts = [ds.batch(7, 16, 3, process_index=p, process_count=4) for p in range(4)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert data.process_slice(16, 1, 4) == slice(4, 8)


def test_gather_returns_the_whole_sharded_array():
    mesh = parallel.make_mesh()
    x = parallel.shard_batch(np.arange(16.0).reshape(8, 2), mesh)
    np.testing.assert_array_equal(distributed.gather(x), np.arange(16.0).reshape(8, 2))


def test_two_process_training_equals_one_process_and_checkpoints_move_between_them(tmp_path):
    two = tmp_path / "two"
    outs = run_two_processes("train.py", "--config=configs/test.py", f"--workdir={two}",
                             "--noprogress")
    assert "2 global devices" in outs[0].stderr
    # Process 0 alone wrote the log: one row per step, none duplicated.
    rows = workdir_files.read_metrics(str(two))
    assert [r["step"] for r in rows] == [1, 2, 3, 4]

    # A 1-process run on the same global batch and chains ends at the same parameters, and it
    # restores the 2-process checkpoint.
    one = tmp_path / "one"
    state = train_one_process(one, 4)
    restored = loaded_run.load_workdir(str(two), mesh=parallel.make_mesh(jax.devices()[:1]))
    assert restored.step == 4
    assert_same_params(restored.params, state.params)

    # Two processes resume the 1-process checkpoint and reach what one process reaches.
    resumed = tmp_path / "resumed"
    shutil.copytree(one, resumed)
    run_two_processes("train.py", "--config=configs/test.py", f"--workdir={resumed}",
                      "--config.training.num_steps=6", "--noprogress")
    continued = train_one_process(one, 6)
    after = loaded_run.load_workdir(str(resumed))
    assert after.step == 6
    assert_same_params(after.params, continued.params)

    # Evaluation: 2 processes write exactly the requested samples, each drawn once, and they
    # are the samples one process draws.
    run_two_processes("evaluate.py", "--mode=samples", f"--workdir={two}", "--num_samples=9",
                      "--seed=5")
    x = np.load(os.path.join(two, "eval", "samples.npy"))
    assert x.shape == (9, 8, 8, 1)
    assert len(np.unique(x.reshape(9, -1), axis=0)) == 9
    saved = json.load(open(os.path.join(two, "eval", "samples.json")))
    assert saved["protocol"]["num_samples"] == 9
    single = common.draw_samples(restored, restored.config, 9, 5)
    np.testing.assert_allclose(x, single, rtol=1e-5, atol=1e-6)

    if tensorboard.EventLog(str(two)).enabled:  # the tensorboard extra is installed
        # Process 0 alone wrote the event file: each step once, the evaluation once.
        scalars = tensorboard.read_scalars(str(two))
        assert [step for step, _ in scalars["loss"]] == [1, 2, 3, 4]
        assert [step for step, _ in scalars["eval/samples/std"]] == [4]


@pytest.mark.parametrize("family, name", [("latent_ebm", "latent_ebm_digits"),
                                          ("generator", "generator_digits"),
                                          (PERSISTENT, "test")])
def test_two_process_training_with_a_bank_equals_one_process(tmp_path, family, name):
    """Each process reads its own rows of every batch and holds its half of the bank (the
    warm-start codes, or the replay buffer of persistent chains); the result is one
    process's on the same two devices."""
    two = tmp_path / "two"
    reference = importlib.import_module(f"ebm_jax.configs.{name}").get_config()
    run_two_processes("train.py", f"--config=configs/{name}.py", f"--workdir={two}",
                      "--noprogress", *config_args(tiny_config(family), reference))
    rows = workdir_files.read_metrics(str(two))
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    state = train_one_process(tmp_path / "one", 4, family)
    restored = loaded_run.load_workdir(str(two), mesh=parallel.make_mesh(jax.devices()[:2]))
    rows = (100, 8, 8, 1) if family == PERSISTENT else (1500, 3)  # split in two
    assert restored.step == 4 and restored.bank.shape == rows
    assert_same_params(restored.params, state.params)
    np.testing.assert_allclose(restored.bank, np.asarray(state.bank), rtol=1e-5, atol=1e-6)
