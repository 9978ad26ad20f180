import signal

import pytest

from ebm_jax.cli import commands
from ebm_jax.runtime import preemption, validation
from ebm_jax.training import guard
from tests.test_scripts import run


def raising(error):
    def fn():
        raise error
    return fn


@pytest.mark.parametrize("error, code, text", [
    (validation.InputError("bad npy"), 1, "error: bad npy"),
    (guard.DivergenceError("diverged between step 2 and step 4"), 3,
     "error: diverged between step 2 and step 4"),
    (preemption.Preempted(signal.SIGTERM, 7), 143,
     "stopped by SIGTERM after saving a checkpoint at step 7"),
])
def test_each_outcome_has_its_exit_code_and_a_traceback_only_when_verbose(error, code, text,
                                                                         capsys):
    assert commands.report(raising(error)) == code
    err = capsys.readouterr().err
    assert err.strip().startswith(text) and "Traceback" not in err
    assert commands.report(raising(error), verbose=True) == code
    err = capsys.readouterr().err
    assert "Traceback" in err and text in err
    assert commands.report(lambda: None) == 0


def test_other_errors_are_not_hidden():
    with pytest.raises(ZeroDivisionError):
        commands.report(lambda: 1 / 0)


def test_an_unknown_config_override_is_exit_1_without_traceback(tmp_path):
    out = run("train.py", "--config=configs/test.py", f"--workdir={tmp_path / 'run'}",
              "--config.training.num_step=3", returncode=1)
    assert out.stderr.strip() == (
        "error: unknown config field 'training.num_step' (did you mean "
        "'training.num_steps'?): every field a run takes is defined, with its default, in "
        "configs/default.py.")
    assert not (tmp_path / "run").exists()
