"""Pre-emption, with real signals sent to a trainer in a subprocess, and the resumed run
compared with an uninterrupted one."""
import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from ebm_jax.evaluation import loaded_run
from ebm_jax.runtime import checkpointing, parallel, preemption, workdir_files
from ebm_jax.training import trainer
from tests.conftest import PERSISTENT, ROOT, config_args, tiny_config


@pytest.fixture(scope="module")
def one_device():
    return parallel.make_mesh(jax.devices()[:1])


CONFIG_FILES = {"ebm": "test", "latent_ebm": "latent_ebm_digits",
                "generator": "generator_digits", PERSISTENT: "test"}


def train_args(workdir, num_steps, checkpoint_every, family="ebm"):
    name = CONFIG_FILES[family]
    shrink = [] if family == "ebm" else config_args(
        tiny_config(family), importlib.import_module(f"ebm_jax.configs.{name}").get_config())
    return ["train.py", f"--config=configs/{name}.py", f"--workdir={workdir}", "--noprogress",
            *shrink, f"--config.training.num_steps={num_steps}",
            f"--config.training.checkpoint_every={checkpoint_every}",
            f"--config.training.sample_every={num_steps}"]


def start(args):
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_rows(workdir, count, process, timeout=300):
    path = os.path.join(workdir, "metrics.jsonl")
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        if os.path.exists(path) and sum(1 for _ in open(path)) >= count:
            return
        time.sleep(0.05)
    process.kill()
    raise TimeoutError(f"no {count} metrics rows in {timeout} s")


def train_in_process(workdir, num_steps, mesh, family="ebm"):
    config = tiny_config(family)
    config.training.num_steps = num_steps
    config.training.sample_every = num_steps
    return trainer.train_and_evaluate(config, str(workdir), mesh=mesh, progress=False)


def assert_same_state(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_sigterm_checkpoints_and_exits_143_then_sigkill_loses_nothing(tmp_path, one_device):
    workdir = str(tmp_path / "run")
    big = 10 ** 6
    process = start(train_args(workdir, big, checkpoint_every=big))
    wait_for_rows(workdir, 3, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGTERM == 143, err[-3000:]
    assert "Traceback" not in err
    ckpt = checkpointing.Checkpointer(workdir)
    stopped = ckpt.latest_step()
    ckpt.close()
    assert stopped >= 3
    assert f"stopped by SIGTERM after saving a checkpoint at step {stopped}" in err
    rows = workdir_files.read_metrics(workdir)
    assert [r["step"] for r in rows] == list(range(1, stopped + 1))

    # The same command resumes; kill -9 it a few steps later, at whatever it is doing.
    process = start(train_args(workdir, big, checkpoint_every=2))
    wait_for_rows(workdir, stopped + 4, process)
    process.kill()
    process.wait(timeout=60)
    logged = len(workdir_files.read_metrics(workdir))
    final = logged + 2
    resumed = train_in_process(workdir, final, one_device)
    uninterrupted = train_in_process(tmp_path / "uninterrupted", final, one_device)
    assert int(resumed.step) == final
    assert_same_state(resumed, uninterrupted)
    rows = workdir_files.read_metrics(workdir)
    assert [r["step"] for r in rows] == list(range(1, final + 1))
    assert [r["loss"] for r in rows] == [
        r["loss"] for r in workdir_files.read_metrics(str(tmp_path / "uninterrupted"))]


KILL_WHILE_WRITING = textwrap.dedent("""
    import os, runpy, signal, sys
    from orbax.checkpoint._src.path import atomicity

    rename = atomicity.AtomicRenameTemporaryPath.finalize

    async def finalize(self):
        # Everything of this checkpoint is written; only the final rename is left.
        if self._final_path.name == "4":
            os.kill(os.getpid(), signal.SIGKILL)
        return await rename(self)

    atomicity.AtomicRenameTemporaryPath.finalize = finalize
    sys.argv = sys.argv[1:]
    runpy.run_path("train.py", run_name="__main__")
""")


def test_killed_while_writing_a_checkpoint_resumes_from_the_previous_one(tmp_path, one_device,
                                                                         caplog):
    workdir = str(tmp_path / "run")
    process = start(["-c", KILL_WHILE_WRITING, *train_args(workdir, 6, checkpoint_every=2)])
    _, err = process.communicate(timeout=600)
    assert process.returncode == -signal.SIGKILL, err[-3000:]
    left = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
    assert left[0] == "2" and left[1].startswith("4.orbax-checkpoint-tmp"), left
    with caplog.at_level("INFO"):
        resumed = train_in_process(workdir, 6, one_device)
    assert "a checkpoint whose writing never finished" in caplog.text
    assert "at step 2" in caplog.text
    uninterrupted = train_in_process(tmp_path / "uninterrupted", 6, one_device)
    assert_same_state(resumed, uninterrupted)
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4", "6"]


def test_stop_request_turns_a_signal_into_a_flag_and_restores_the_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with preemption.StopRequest() as stop:
        assert stop.signum is None
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        assert stop.signum == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is before  # a second signal acts at once
    assert signal.getsignal(signal.SIGTERM) is before
    error = preemption.Preempted(signal.SIGINT, 12)
    assert error.exit_code == 130 and "SIGINT" in str(error) and "step 12" in str(error)


@pytest.mark.parametrize("family", ["latent_ebm", "generator", PERSISTENT])
def test_a_run_with_a_bank_stops_on_sigterm_and_resumes_bit_for_bit(tmp_path, family):
    """The stopped run, resumed by the same command, ends where an uninterrupted run of that
    command ends: every run here is a ``train.py`` process, so all of them compile alike."""
    workdir = str(tmp_path / "run")
    big = 10 ** 6
    process = start(train_args(workdir, big, checkpoint_every=big, family=family))
    wait_for_rows(workdir, 3, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 143, err[-3000:]
    assert "Traceback" not in err and "stopped by SIGTERM after saving a checkpoint" in err
    final = len(workdir_files.read_metrics(workdir)) + 2
    for path in (workdir, str(tmp_path / "uninterrupted")):
        process = start(train_args(path, final, checkpoint_every=big, family=family))
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
    resumed = loaded_run.load_workdir(workdir, mesh=parallel.make_mesh(jax.devices()[:1]))
    uninterrupted = loaded_run.load_workdir(str(tmp_path / "uninterrupted"),
                                         mesh=parallel.make_mesh(jax.devices()[:1]))
    assert resumed.step == uninterrupted.step == final and resumed.bank is not None
    assert_same_state((resumed.params, resumed.bank), (uninterrupted.params, uninterrupted.bank))
    assert [r["loss"] for r in workdir_files.read_metrics(workdir)] == [
        r["loss"] for r in workdir_files.read_metrics(str(tmp_path / "uninterrupted"))]
