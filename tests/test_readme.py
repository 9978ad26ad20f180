"""The README's notebook example runs as written (with fewer updates and a temporary workdir)."""
import os
import re

import numpy as np

from tests.conftest import ROOT


def test_notebook_example_runs(tmp_path, monkeypatch):
    readme = open(os.path.join(ROOT, "README.md")).read()
    section = readme.split("## In a notebook", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "config.training.num_steps = 500" in code
    code = code.replace("config.training.num_steps = 500", "config.training.num_steps = 20")
    code = code.replace('"runs/nb_toy"', repr(str(tmp_path / "nb_toy")))
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["x_final"].shape == (1000, 2)
    assert scope["x_snapshots"].shape == (3, 1000, 2)
    assert int(scope["state"].step) == 20 and scope["run"].step == 20
    # The Gaussian example: 20 steps of x <- x - x + 0.01 eps leave only the last noise.
    assert np.abs(np.asarray(scope["out"].x)).max() < 0.06
