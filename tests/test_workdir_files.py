"""The record of a run: config.json stays as started, every later change goes to
config_history.json with its step, and evaluation reads the config in force at a checkpoint."""
import json
import os
import shutil

import jax
import pytest

from ebm_jax.configs import test as test_config
from ebm_jax.evaluation import loaded_run
from ebm_jax.evaluation import runner
from ebm_jax.runtime import config_changes, parallel, validation, workdir_files
from ebm_jax.training import guard, trainer


def test_history_gives_the_config_in_force_at_each_step(tmp_path):
    workdir = str(tmp_path)
    config = test_config.get_config()
    workdir_files.write_run_files(workdir, config, (8, 8, 1), True)
    later = test_config.get_config()
    later.sampling.num_steps = 7
    workdir_files.record_changes(workdir, 4, config_changes.differences(config, later))
    latest = test_config.get_config()
    latest.sampling.num_steps, latest.training.log_every = 9, 3
    workdir_files.record_changes(workdir, 6, config_changes.differences(later, latest))
    # Checkpoint 4 was made by updates run with K = 5; 5 and 6 with K = 7; after 6, K = 9.
    assert [workdir_files.read_config(workdir, s).sampling.num_steps
            for s in (2, 4, 5, 6, 7, None)] == [5, 5, 7, 7, 9, 9]
    assert workdir_files.read_config(workdir, 7).training.log_every == 3
    history = workdir_files.read_history(workdir)
    assert [e["step"] for e in history] == [4, 6]
    assert history[0]["allowed_by"] == workdir_files.ALLOW_FLAG
    assert history[1]["changes"][0] == {"field": "sampling.num_steps", "from": 7, "to": 9,
                                        "protocol": True}
    # A second write of the run files leaves config.json as the run was started.
    workdir_files.write_run_files(workdir, latest, (8, 8, 1), True)
    assert json.load(open(tmp_path / "config.json"))["sampling"]["num_steps"] == 5


def test_every_write_is_atomic_and_leaves_no_temporary_file(tmp_path):
    workdir = str(tmp_path)
    guard.Record(rollbacks=2, lr_scale=0.25).save(workdir)
    assert guard.Record.load(workdir) == guard.Record(2, 0.25)
    assert workdir_files.read_guard(workdir) == {"rollbacks": 2, "lr_scale": 0.25}
    path = workdir_files.write_sample_png(workdir, 3, lambda p: open(p, "wb").write(b"png"))
    assert path == str(tmp_path / "samples" / "step_0000003.png")
    with pytest.raises(RuntimeError):
        workdir_files.write_sample_png(workdir, 3, half_written)
    assert open(path, "rb").read() == b"png"  # the failed write left the old file
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "samples.json").write_text("{}")
    assert workdir_files.publish_eval(str(scratch), workdir) == str(tmp_path / "eval")
    everything = sorted(os.path.relpath(os.path.join(r, n), workdir)
                        for r, _, names in os.walk(workdir) for n in names)
    assert everything == ["eval/samples.json", "guard.json", "samples/step_0000003.png",
                          "scratch/samples.json"]


def half_written(path):
    with open(path, "wb") as f:
        f.write(b"half")
    raise RuntimeError("drawing failed")


@pytest.fixture(scope="module")
def changed_run(tiny_workdir, tmp_path_factory):
    """The tiny run (K = 5, checkpoints 2 and 4) resumed to step 6 with K = 7, allowed."""
    workdir = str(tmp_path_factory.mktemp("changed") / "run")
    shutil.copytree(tiny_workdir, workdir)
    shutil.rmtree(os.path.join(workdir, "eval"), ignore_errors=True)
    config = test_config.get_config()
    config.sampling.num_steps, config.training.num_steps = 7, 6
    one_device = parallel.make_mesh(jax.devices()[:1])
    with pytest.raises(validation.InputError, match="sampling.num_steps is 5 there and 7 here"):
        trainer.train_and_evaluate(config, workdir, mesh=one_device, progress=False)
    trainer.train_and_evaluate(config, workdir, mesh=one_device, progress=False,
                               allow_config_change=True)
    return workdir


def test_an_allowed_change_keeps_config_json_and_is_recorded_with_its_step(changed_run):
    assert json.load(open(os.path.join(changed_run, "config.json")))["sampling"][
        "num_steps"] == 5
    [entry] = workdir_files.read_history(changed_run)
    assert entry["step"] == 4 and entry["allowed_by"] == "--allow_config_change"
    assert {(c["field"], c["from"], c["to"], c["protocol"]) for c in entry["changes"]} == {
        ("sampling.num_steps", 5, 7, True), ("training.num_steps", 4, 6, False)}
    rows = workdir_files.read_metrics(changed_run)
    assert [r["num_langevin_steps"] for r in rows if "event" not in r] == [5, 5, 5, 5, 7, 7]


def test_evaluation_at_an_earlier_checkpoint_uses_the_earlier_protocol(changed_run):
    mesh = parallel.make_mesh(jax.devices()[:1])
    assert loaded_run.load_workdir(changed_run, 4, mesh).config.sampling.num_steps == 5
    assert loaded_run.load_workdir(changed_run, mesh=mesh).config.sampling.num_steps == 7
    for step, k in ((4, 5), (6, 7)):
        result = runner.evaluate(changed_run, "samples", num_samples=4, step=step)
        protocol = json.load(open(os.path.join(changed_run, "eval", "samples.json")))[
            "protocol"]
        assert protocol["K"] == result["protocol"]["K"] == k
        assert protocol["checkpoint_step"] == step
        assert len(protocol["config_changes_applied"]) == (step > 4)
    # evaluate.py's own overrides go into the mode's protocol, never into the record.
    runner.evaluate(changed_run, "samples", num_samples=4, step=4,
                    overrides={"sampling.num_steps": 3})
    protocol = json.load(open(os.path.join(changed_run, "eval", "samples.json")))["protocol"]
    assert protocol["K"] == 3 and protocol["config_overrides"] == {"sampling.num_steps": 3}
    assert workdir_files.read_config(changed_run, 4).sampling.num_steps == 5
    assert len(workdir_files.read_history(changed_run)) == 1
