"""``ebm-jax-evaluate``'s flags, built from the options the modes declare."""
import json
import os
import shutil

import pytest
from absl import flags

from ebm_jax.cli import commands
from ebm_jax.cli import evaluate as command
from ebm_jax.evaluation import common, options, runner
from ebm_jax.evaluation.modes import MODES
from ebm_jax.runtime import validation


def built(argv=("evaluate", "--workdir=w")):
    flag_values = flags.FlagValues()
    names = command.define_flags(flag_values)
    flag_values(list(argv))
    return flag_values, names


def section(text: str, group: str) -> str:
    """The lines ``--help`` prints under ``group:``."""
    return text.split(f"\n{group}:\n", 1)[1].split("\n\n", 1)[0]


def test_each_declared_option_is_a_flag_of_its_type_with_no_default():
    flag_values, names = built(["evaluate", "--workdir=w", "--num_chains=5", "--k2=0,2",
                                "--nofixed_noise", "--logdet=per_step", "--obs_std=fit",
                                "--mcmc_step_size=0.25"])
    assert set(names) == set(runner.declared_options())
    assert (flag_values.num_chains, flag_values.k2, flag_values.fixed_noise) == (5, ["0", "2"],
                                                                                 False)
    assert (flag_values.logdet, flag_values.obs_std) == ("per_step", "fit")
    assert flag_values.mcmc_step_size == 0.25
    assert flag_values["logdet"].parser.enum_values == ["exact", "per_step", "stochastic", "none"]
    untouched = built()[0]
    assert {name: untouched[name].value for name in names} == {name: None for name in names}
    with pytest.raises(flags.IllegalFlagValueError):
        built(["evaluate", "--workdir=w", "--logdet=bogus"])


def test_help_lists_every_option_under_each_mode_that_takes_it():
    flag_values, _ = built()
    groups = [command.COMMAND] + [f"--mode={m}" for m in MODES]
    text = commands.help_text("Evaluates.", flag_values, groups)
    assert text.startswith("Evaluates.\n\nflags:\n\nebm-jax-evaluate:\n")
    for name, mode in MODES.items():
        for option in mode.options:
            assert f"{option.name}: " in section(text, f"--mode={name}"), (name, option.name)
    assert "--obs_std" in section(text, "--mode=bpd") and "--obs_std" not in section(
        text, "--mode=ais")
    assert "ais: number of AIS chains (default 256)" in " ".join(
        section(text, "--mode=ais").split())
    own = section(text, command.COMMAND)
    assert all(f"--{name}" in own for name in ("workdir", "mode", "num_samples", "seed", "step"))


REPEAT = options.Option("repeat", "integer", "times the sample count is reported", default=2,
                        positive=True)


def evaluate_echo(run, config, out_dir, request):
    return {"mode": "echo", "stats": {"reported": request.num_samples * request.option(REPEAT)}}


def test_a_new_mode_with_an_option_is_its_module_and_its_registry_line(monkeypatch, tmp_path,
                                                                      tiny_workdir):
    """Its flag, its help and its check come from its declaration alone."""
    monkeypatch.setitem(MODES, "echo", common.Mode("echo", evaluate_echo, "echoes",
                                                   options=(REPEAT,)))
    flag_values, names = built(["evaluate", "--workdir=w", "--mode=echo", "--repeat=3"])
    assert "repeat" in names and flag_values.repeat == 3 and flag_values.mode == "echo"
    text = commands.help_text("", flag_values, ["--mode=echo"])
    assert "echo: times the sample count is reported (default 2)." in " ".join(text.split())
    with pytest.raises(validation.InputError, match=r"^--repeat must be positive, got 0$"):
        runner.evaluate(str(tmp_path / "not_read"), "echo", repeat=0)
    workdir = str(tmp_path / "run")
    shutil.copytree(tiny_workdir, workdir)
    assert runner.evaluate(workdir, "echo", num_samples=5)["stats"] == {"reported": 10}
    saved = json.load(open(os.path.join(workdir, "eval", "echo.json")))
    assert saved["stats"] == {"reported": 10}
