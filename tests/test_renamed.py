"""The old module names: they warn and still give the renamed modules."""
import importlib
import sys

import pytest

from ebm_jax.cli import commands
from ebm_jax.evaluation import loaded_run
from ebm_jax.runtime import validation

RENAMED = [("ebm_jax.cli.errors", commands), ("ebm_jax.evaluation.run", loaded_run)]


@pytest.mark.parametrize("old, new", RENAMED, ids=[r[0] for r in RENAMED])
def test_an_old_name_warns_and_is_the_new_module(old, new, monkeypatch):
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=f"{old} was renamed {new.__name__}"):
        module = importlib.import_module(old)
    assert module is new


def test_old_imports_still_work(monkeypatch):
    for old, _ in RENAMED:
        monkeypatch.delitem(sys.modules, old, raising=False)
        package, name = old.rsplit(".", 1)
        monkeypatch.delattr(sys.modules[package], name, raising=False)
    with pytest.warns(DeprecationWarning):
        from ebm_jax.cli import errors
        from ebm_jax.evaluation import run as run_lib
    assert errors.report(lambda: None) == 0
    assert errors.EXIT_BAD_INPUT == 1
    assert run_lib.load_workdir is loaded_run.load_workdir
    with pytest.raises(validation.InputError, match="no workdir at"):
        run_lib.load_workdir("/nonexistent/workdir")
