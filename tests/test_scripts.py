"""The command-line scripts, run as a user runs them."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.test_validation import snapshot


def run(*args, returncode=0, cwd=ROOT):
    """Runs a script of the repository (``args[0]``, relative to it) from ``cwd``."""
    out = subprocess.run([sys.executable, os.path.join(ROOT, args[0]), *args[1:]], cwd=cwd,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == returncode, out.stderr[-3000:]
    return out


def command(name: str) -> list[str]:
    """The installed console script ``name`` (``pip install .`` puts it beside the Python that
    runs the tests); skips the test where the package is not installed."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    path = path if os.path.exists(path) else shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed here: `pip install -e .` installs it")
    return [path]


def run_command(argv: list[str], *args, returncode=0, cwd=ROOT):
    """Runs ``argv + args`` from ``cwd``, the package importable as an installed one is."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([*argv, *args], cwd=cwd, capture_output=True, text=True,
                         timeout=600, env=env)
    assert out.returncode == returncode, out.stderr[-3000:]
    return out


MODULES = {"train.py": [sys.executable, "-m", "ebm_jax.cli.train"],
           "evaluate.py": [sys.executable, "-m", "ebm_jax.cli.evaluate"]}
SCRIPTS = {"train.py": "ebm-jax-train", "evaluate.py": "ebm-jax-evaluate"}


@pytest.mark.parametrize("form", ["module", "console script"])
def test_the_installed_commands_are_the_scripts_from_any_directory(tmp_path, form):
    """``python -m ebm_jax.cli.train`` and ``ebm-jax-train`` (likewise for evaluate): the same
    help, the same one-paragraph errors, and a run trained by one evaluated by the other."""
    forms = {script: MODULES[script] if form == "module" else command(SCRIPTS[script])
             for script in SCRIPTS}
    for script, argv in forms.items():
        assert (run_command(argv, "--help", cwd=tmp_path).stdout
                == run(script, "--help", cwd=tmp_path).stdout)
    bad = ("--config=test", "--workdir=run", "--config.training.num_step=3")
    assert (run_command(forms["train.py"], *bad, returncode=1, cwd=tmp_path).stderr
            == run("train.py", *bad, returncode=1, cwd=tmp_path).stderr)
    assert not (tmp_path / "run").exists()
    run_command(forms["train.py"], "--config=test", "--workdir=run", "--noprogress",
                "--config.training.num_steps=2", cwd=tmp_path)
    out = run("evaluate.py", "--mode=samples", "--workdir=run", "--num_samples=4", cwd=tmp_path)
    assert "samples at step 2" in out.stdout
    args = ("--mode=reconstruction", "--workdir=run", "--num_images=0")
    assert (run_command(forms["evaluate.py"], *args, returncode=1, cwd=tmp_path).stderr
            == "error: --num_images must be positive, got 0\n")


def test_train_then_evaluate_from_the_command_line(tmp_path):
    workdir = str(tmp_path / "run")
    run("train.py", "--config=configs/test.py", f"--workdir={workdir}",
        "--config.training.num_steps=3", "--noprogress")
    rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
    assert [r["step"] for r in rows] == [1, 2, 3]
    out = run("evaluate.py", "--mode=samples", f"--workdir={workdir}", "--num_samples=5",
              "--seed=2", "--config.sampling.num_steps=7")
    assert "samples at step 3" in out.stdout
    saved = json.load(open(os.path.join(workdir, "eval", "samples.json")))
    assert saved["protocol"]["K"] == 7 and saved["protocol"]["seed"] == 2
    assert np.load(os.path.join(workdir, "eval", "samples.npy")).shape == (5, 8, 8, 1)


def test_help_lists_the_flags_and_exits_0():
    for flag in ("--help", "--helpshort", "-h"):
        out = run("train.py", flag)
        assert "--workdir" in out.stdout and "--allow_config_change" in out.stdout
        out = run("evaluate.py", flag)
        assert "--mode" in out.stdout and "--num_samples" in out.stdout


def test_help_into_a_closed_pipe_exits_0_without_a_traceback():
    """``evaluate.py --help | head -1``, made certain: the pipe's reader is gone before the
    help is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "evaluate.py", "--help"], cwd=ROOT,
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write_end)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr


def test_an_unprepared_tfds_data_set_is_a_clear_error_not_a_traceback(tmp_path):
    out = run("train.py", "--config=configs/cifar10.py", f"--workdir={tmp_path / 'run'}",
              f"--config.data.data_dir={tmp_path / 'empty'}", "--noprogress", returncode=1)
    assert "tfds build cifar10" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_config_by_name_from_another_directory_and_a_changed_setting_resume(tmp_path):
    """``--config=test`` and ``--config=configs/test.py`` work from any directory; resuming
    with another K is refused (exit 1, one paragraph, the workdir's files unchanged) unless
    ``--allow_config_change``, which keeps config.json and records the change."""
    run("train.py", "--config=test", "--workdir=run", "--config.training.num_steps=2",
        "--noprogress", cwd=tmp_path)
    workdir = str(tmp_path / "run")
    before = snapshot(workdir)
    out = run("train.py", "--config=configs/test.py", "--workdir=run", "--noprogress",
              "--config.sampling.num_steps=7", returncode=1, cwd=tmp_path)
    message = out.stderr.strip().splitlines()[-1]
    assert message.startswith("error: the workdir 'run' was trained with other settings")
    assert "sampling.num_steps is 5 there and 7 here" in message
    assert "training.num_steps" not in message  # 2 there, 4 here: no flag needed
    assert "pass --allow_config_change" in message and "Traceback" not in out.stderr
    assert snapshot(workdir) == before
    run("train.py", "--config=test", "--workdir=run", "--noprogress",
        "--config.sampling.num_steps=7", "--allow_config_change", cwd=tmp_path)
    assert json.load(open(os.path.join(workdir, "config.json")))["sampling"]["num_steps"] == 5
    [entry] = json.load(open(os.path.join(workdir, "config_history.json")))
    assert entry["step"] == 2 and entry["allowed_by"] == "--allow_config_change"
    assert [(c["field"], c["from"], c["to"]) for c in entry["changes"]] == [
        ("sampling.num_steps", 5, 7), ("training.num_steps", 2, 4)]


def test_readme_pictures_from_a_trained_run(tmp_path, tiny_workdir):
    import shutil

    from PIL import Image
    workdir = str(tmp_path / "run")
    shutil.copytree(tiny_workdir, workdir)
    out = run("scripts/readme_pictures.py", f"--workdir={workdir}", f"--out={tmp_path / 'docs'}",
              "--prefix=tiny")
    sizes = {name: Image.open(tmp_path / "docs" / f"tiny_{name}.png").size
             for name in ("samples", "transition", "interpolation")}
    # configs/test.py has K = 5: the strip reads 2 chains at K2 = 0, 2, 5, 10, 20, 40.
    assert "K2 = [0, 2, 5, 10, 20, 40]" in out.stdout
    width, height = sizes["transition"]
    assert width > 1.5 * height  # 6 columns, 2 rows (with column labels, axis names, a title)
    width, height = sizes["interpolation"]
    assert width > 4 * height  # one row of 10
