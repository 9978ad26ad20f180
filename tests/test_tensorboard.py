import os
import shutil
import sys

import jax
import numpy as np
import pytest

from ebm_jax.cli import commands
from ebm_jax.configs import default
from ebm_jax.configs import test as test_config
from ebm_jax.evaluation import runner
from ebm_jax.runtime import parallel, validation, workdir_files
from ebm_jax.runtime import tensorboard as event_log
from ebm_jax.training import trainer
from tests.test_guard import poison_params_at


@pytest.fixture(scope="module")
def one_device():
    return parallel.make_mesh(jax.devices()[:1])


@pytest.fixture
def needs_extra():
    pytest.importorskip("tensorboard")


@pytest.fixture
def without_extra(monkeypatch):
    """As if the tensorboard package were not installed: importing it, or any of its modules
    imported before, fails."""
    for name in list(sys.modules):
        if name == "tensorboard" or name.startswith("tensorboard."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tensorboard", None)


def accumulated(workdir):
    """Every event of ``workdir/tensorboard``, all files, as the tensorboard package reads them
    (no sampling, no purging of steps seen again)."""
    from tensorboard.backend.event_processing import event_accumulator
    acc = event_accumulator.EventAccumulator(
        os.path.join(workdir, "tensorboard"), purge_orphaned_data=False,
        size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0,
                       event_accumulator.TENSORS: 0})
    acc.Reload()
    return acc


def scalar_steps(acc) -> dict:
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def assert_scalars_equal_metrics(acc, workdir):
    rows = [r for r in workdir_files.read_metrics(workdir) if "event" not in r]
    for name in rows[0]:
        if name == "step":
            continue
        events = acc.Scalars(name)
        assert [e.step for e in events] == [r["step"] for r in rows], name
        np.testing.assert_allclose([e.value for e in events], [r[name] for r in rows],
                                   rtol=1e-6, err_msg=name)


def tiny_run(**training):
    config = test_config.get_config()
    config.training.update(training)
    return config


def test_training_writes_the_metrics_and_sample_grids(tiny_workdir, needs_extra):
    acc = accumulated(tiny_workdir)
    assert_scalars_equal_metrics(acc, tiny_workdir)
    assert set(scalar_steps(acc)) >= {"loss", "energy_gap", "grad_norm_x", "steps_per_sec"}
    assert [e.step for e in acc.Images("samples")] == [2, 4]
    grid = event_log.read_events(tiny_workdir)["samples"][0][1]
    assert grid.dtype == np.uint8 and grid.ndim == 3


def test_evaluation_adds_its_stats_at_the_checkpoint_step(tiny_workdir, needs_extra):
    result = runner.evaluate(tiny_workdir, "samples", num_samples=8, seed=1)
    scalars = event_log.read_scalars(tiny_workdir)
    for name, value in result["stats"].items():
        assert scalars[f"eval/samples/{name}"] == [(4, pytest.approx(value, rel=1e-6))]
    assert_scalars_equal_metrics(accumulated(tiny_workdir), tiny_workdir)


def test_evaluating_a_step_again_replaces_its_figures(tmp_path, needs_extra):
    log = event_log.EventLog(str(tmp_path), "true")
    log.scalars(4, {"loss": 1.0})
    log.evaluation(4, "samples", {"std": 0.5, "mean": 0.0})
    log.evaluation(2, "samples", {"std": 0.25})
    log.evaluation(4, "samples", {"std": 0.75, "mean": 0.0})
    assert event_log.read_scalars(str(tmp_path)) == {
        "loss": [(4, 1.0)], "eval/samples/std": [(2, 0.25), (4, 0.75)],
        "eval/samples/mean": [(4, 0.0)]}


def test_resume_and_rollback_write_each_step_once(tmp_path, one_device, monkeypatch,
                                                  needs_extra, quick_compile):
    """A run killed after logging step 3 but before checkpointing it resumes from step 2; then
    NaN parameters after update 3 trip the guard at step 4, which rolls back to step 2 again."""
    workdir = str(tmp_path)
    trainer.train_and_evaluate(tiny_run(num_steps=3), workdir, mesh=one_device, progress=False)
    shutil.rmtree(tmp_path / "checkpoints" / "3")
    poison_params_at(monkeypatch, step=3, times=1)
    trainer.train_and_evaluate(tiny_run(num_steps=4), workdir, mesh=one_device, progress=False)
    acc = accumulated(workdir)
    assert all(steps == [1, 2, 3, 4] for steps in scalar_steps(acc).values())
    assert [e.step for e in acc.Images("samples")] == [2, 4]
    assert_scalars_equal_metrics(acc, workdir)
    (rollback,) = event_log.read_events(workdir)["events"]
    assert rollback[0] == 4 and '"restored_step": 2' in rollback[1]
    assert os.listdir(tmp_path / "tensorboard") == ["events.out.tfevents.00000003.ebm_jax"]


def test_false_writes_no_event_files(tmp_path, one_device, needs_extra, quick_compile):
    config = tiny_run(num_steps=1, sample_every=1, tensorboard="false")
    trainer.train_and_evaluate(config, str(tmp_path), mesh=one_device, progress=False)
    runner.evaluate(str(tmp_path), "samples", num_samples=4)
    assert not os.path.exists(tmp_path / "tensorboard")


def test_auto_without_the_extra_writes_no_event_files(tmp_path, one_device, without_extra,
                                                      quick_compile):
    config = tiny_run(num_steps=1, sample_every=1)
    assert config.training.tensorboard == "auto"
    trainer.train_and_evaluate(config, str(tmp_path), mesh=one_device, progress=False)
    runner.evaluate(str(tmp_path), "samples", num_samples=4)
    assert sorted(os.listdir(tmp_path)) == ["checkpoints", "config.json", "eval", "meta.json",
                                            "metrics.jsonl", "samples"]
    assert [r["step"] for r in workdir_files.read_metrics(str(tmp_path))] == [1]


def test_true_without_the_extra_fails_before_writing(tmp_path, one_device, without_extra,
                                                     capsys):
    workdir = str(tmp_path / "run")
    code = commands.run_training(tiny_run(tensorboard="true"), workdir,
                               reference=default.get_config(), mesh=one_device, progress=False)
    assert code == commands.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "pip install -e '.[tensorboard]'" in err and "Traceback" not in err
    assert not os.path.exists(workdir)


def test_a_bad_setting_is_an_input_error(tmp_path):
    with pytest.raises(validation.InputError, match="choose 'auto'"):
        event_log.EventLog(str(tmp_path), "yes")


def test_a_torn_last_record_is_dropped_at_the_next_truncate(tmp_path, needs_extra):
    log = event_log.EventLog(str(tmp_path), "true")
    log.scalars(1, {"loss": 1.0})
    log.scalars(2, {"loss": 2.0})
    (path,) = [os.path.join(log.directory, n) for n in os.listdir(log.directory)]
    with open(path, "ab") as f:
        f.write(b"\x20\x00\x00")  # killed while writing the next record
    log.truncate(5)
    log.scalars(3, {"loss": 3.0})
    assert event_log.read_scalars(str(tmp_path)) == {"loss": [(1, 1.0), (2, 2.0), (3, 3.0)]}


def test_an_image_array_and_a_text_read_back_as_written(tmp_path, needs_extra):
    log = event_log.EventLog(str(tmp_path), "true")
    grid = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    log.image(2, "grid", grid)
    log.image(2, "gray", grid[..., :1])
    log.text(3, "events", '{"event": "rollback"}')
    events = event_log.read_events(str(tmp_path))
    np.testing.assert_array_equal(events["grid"][0][1], grid)
    np.testing.assert_array_equal(events["gray"][0][1], grid[..., :1])
    assert events["events"] == [(3, '{"event": "rollback"}')]
