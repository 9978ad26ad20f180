"""``evaluate.py``'s layer: bad input is one paragraph and exit code 1, with nothing in the
workdir overwritten; ``--mode=all`` runs what applies to a run's family and lists the rest."""
import hashlib
import json
import os
import shutil

import pytest

from ebm_jax.cli import commands
from ebm_jax.evaluation import runner
from ebm_jax.evaluation.modes import MODES
from tests.test_scripts import run as run_script


def snapshot(workdir: str) -> dict:
    """Every file under the workdir and a hash of its bytes."""
    out = {}
    for folder, _, files in os.walk(workdir):
        for name in files:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, workdir)] = hashlib.sha1(open(path, "rb").read()).digest()
    return out


@pytest.fixture(scope="module")
def workdirs(tiny_workdir, family_workdir, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_input")
    broken = str(root / "no_checkpoint")
    shutil.copytree(tiny_workdir, broken)
    shutil.rmtree(os.path.join(broken, "checkpoints"))
    os.makedirs(os.path.join(broken, "checkpoints"))
    corrupt = str(root / "corrupt")
    shutil.copytree(tiny_workdir, corrupt)
    for folder, _, files in os.walk(os.path.join(corrupt, "checkpoints")):
        for name in files:
            if not name.startswith("_"):
                with open(os.path.join(folder, name), "r+b") as f:
                    f.truncate(4)
    return {"ebm": tiny_workdir, "generator": family_workdir("generator"),
            "no_checkpoint": broken, "corrupt": corrupt, "missing": str(root / "nothing")}


BAD_INPUT = [
    ("missing workdir", "missing", "samples", {}, "no workdir at"),
    ("no checkpoint", "no_checkpoint", "samples", {}, "holds no readable checkpoint"),
    ("unreadable checkpoints", "corrupt", "samples", {}, "holds no readable checkpoint"),
    ("unknown override", "ebm", "samples", {"overrides": {"sampling.k": 3}},
     "the run's config has no field 'sampling.k'"),
    ("non-positive num_samples", "ebm", "samples", {"num_samples": -5},
     "--num_samples must be positive, got -5"),
    ("non-positive num_images", "ebm", "reconstruction", {"num_images": 0},
     "--num_images must be positive"),
    ("bpd with no held-out split", "ebm", "bpd", {}, "has no held-out examples"),
    ("fid without weights", "ebm", "fid", {"inception_weights": "/nonexistent/w.npz",
                                           "feature_network": "inception"},
     "pt_inception-2015-12-05"),
    ("a mode that does not apply to the family", "generator", "transition", {},
     "--mode=transition does not apply: a generator run has no snapshots"),
    ("no held-out split", "ebm", "ais", {"split": "test"}, "has no held-out examples"),
    ("unknown mode", "ebm", "everything", {}, "unknown mode 'everything'"),
]


@pytest.mark.parametrize("case, workdir, mode, kwargs, message", BAD_INPUT,
                         ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_one_paragraph_exit_1_and_writes_nothing(workdirs, capsys, case, workdir,
                                                              mode, kwargs, message):
    path = workdirs[workdir]
    before = snapshot(path) if os.path.exists(path) else None
    assert commands.run_evaluation(path, mode, **kwargs) == 1
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err and err.startswith("error: ")
    assert err.strip().count("\n\n") == 0  # one paragraph
    if before is not None:
        assert snapshot(path) == before
    assert commands.run_evaluation(path, mode, verbose=True, **kwargs) == 1
    assert "Traceback" in capsys.readouterr().err


def test_the_script_prints_the_paragraph_without_a_traceback(workdirs):
    out = run_script("evaluate.py", "--mode=samples", f"--workdir={workdirs['missing']}",
                     returncode=1)
    assert out.stderr.startswith("error: no workdir at") and "Traceback" not in out.stderr
    out = run_script("evaluate.py", "--mode=samples", f"--workdir={workdirs['ebm']}",
                     "--config.sampling.num_step=3", returncode=1)
    assert "unknown config field 'sampling.num_step'" in out.stderr
    assert "Traceback" not in out.stderr


# fid applies: digits are scored by the shipped digit network, which needs no download; probe
# applies: the digits configs hold 297 digits out.
EXPECTED = {
    "latent_ebm": {"samples", "transition", "reconstruction", "diagnostics", "fid", "probe"},
    "generator": {"samples", "interpolation", "reconstruction", "diagnostics", "fid", "probe"},
}


@pytest.mark.parametrize("family", ["latent_ebm", "generator"])
def test_all_runs_what_applies_to_a_latent_family_and_lists_the_rest(family_workdir, family,
                                                                     tmp_path):
    workdir = family_workdir(family)
    result = runner.evaluate(workdir, "all", seed=0, k2="0,2,4", num_images=4,
                             inception_weights=str(tmp_path / "none.npz"))
    assert set(result["modes"]) == EXPECTED[family]
    assert set(result["skipped"]) == set(MODES) - EXPECTED[family]
    for name, reason in result["skipped"].items():
        assert "\n" not in reason and reason, name
    assert "does not apply" in result["skipped"]["density"]
    assert "Inception weights not found" in result["skipped"]["fid_stats"]
    assert result["skipped"]["fid_stats"].endswith("to its path or to its folder.")  # whole
    out = os.path.join(workdir, "eval")
    for name in EXPECTED[family]:
        saved = json.load(open(os.path.join(out, f"{name}.json")))
        assert saved["mode"] == name and saved["stats"], name
    report = open(os.path.join(out, "report.md")).read()
    assert "## Not run" in report and f"Family `{family}`" in report
    rec = json.load(open(os.path.join(out, "reconstruction.json")))
    assert rec["stats"]["pca3_mse_per_pixel"] > 0 and rec["protocol"]["family"] == family
    assert len(rec["mse_per_example"]) == 4
