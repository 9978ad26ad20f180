"""Every Python snippet of the README runs as written, in order, from a directory other than
the repository's (with fewer updates, and the notebook example's workdir under it)."""
import os
import re

import numpy as np

from tests.conftest import ROOT


def snippets() -> list[str]:
    readme = open(os.path.join(ROOT, "README.md")).read()
    return re.findall(r"```python\n(.*?)```", readme, re.S)


def test_every_python_snippet_runs_as_written_from_another_directory(tmp_path, monkeypatch):
    code = snippets()
    assert len(code) == 2  # the notebook example, then the likelihood one, which uses its run
    assert "config.training.num_steps = 500" in code[0]
    code[0] = code[0].replace("config.training.num_steps = 500", "config.training.num_steps = 20")
    monkeypatch.chdir(tmp_path)
    scope = {}
    for i, snippet in enumerate(code):
        exec(compile(snippet, f"README.md snippet {i + 1}", "exec"), scope)
    assert os.path.isdir(tmp_path / "runs" / "nb_toy" / "checkpoints")
    assert scope["x_final"].shape == (1000, 2)
    assert scope["x_snapshots"].shape == (3, 1000, 2)
    assert int(scope["state"].step) == 20 and scope["run"].step == 20
    # The Gaussian example: 20 steps of x <- x - x + 0.01 eps leave only the last noise.
    assert np.abs(np.asarray(scope["out"].x)).max() < 0.06
    # The likelihood example: four points, their inversion and a finite log-determinant.
    assert scope["x"].shape == scope["inv"].x.shape == (4, 2)
    assert np.isfinite(np.asarray(scope["ld"].logdet_B)).all()
