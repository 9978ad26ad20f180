"""``ebm-jax-evaluate``: evaluates a trained model from its workdir.

  ebm-jax-evaluate --mode=samples --workdir=runs/toy2d [--num_samples=N] [--seed=S]
                   [--config.sampling.num_steps=K2]
  ebm-jax-evaluate --mode=bpd --workdir=runs/digits [--num_images=N] [--split=test]
                   [--num_importance_samples=1000] [--obs_std=fit|model|TAU]
  ebm-jax-evaluate --mode=ais --workdir=runs/toy2d [--num_chains=256] [--num_temps=1000]
                   [--temperature=chain|1.0] [--mcmc_step_size=0.1] [--num_images=16]
  ebm-jax-evaluate --mode=transition --workdir=runs/digits [--k2=0,50,100,200]
  ebm-jax-evaluate --mode=reconstruction --workdir=runs/generator_digits --split=test
  ebm-jax-evaluate --mode=all --workdir=runs/digits

The same program runs as ``python evaluate.py ...`` in a repository checkout, and as
``python -m ebm_jax.cli.evaluate ...``. The model's own config is read from the workdir, as it
was in force at the checkpoint's step (``config.json`` with the changes that
``config_history.json`` records before that step); ``--config.a.b=value`` overrides its fields
(for instance sampling with a K2 other than the training K), and goes into each mode's
protocol (``config_overrides``), never into the workdir's config. Each mode writes
``WORKDIR/eval/<mode>.json`` with its figures, and its pictures beside it; with the
tensorboard extra its figures also go to the run's TensorBoard event files, as
``eval/<mode>/<stat>``. The work is done by ``ebm_jax.evaluation.runner.evaluate``; this
command only parses flags, built from the options each mode declares
(``ebm_jax/evaluation/options.py``).

Exit codes (see ``ebm_jax/cli/commands.py``): 0 done; 1 bad input (a missing workdir, one with
no readable checkpoint, an unknown override, a mode that does not apply to the run's family or
data, ...), explained in one paragraph, with nothing in the workdir overwritten (add
``--verbose`` for the traceback).
"""
import functools
import os
import sys

from absl import app, flags
from ml_collections import config_flags

from ebm_jax.cli import commands, script_flags
from ebm_jax.configs import default
from ebm_jax.evaluation import options, runner
from ebm_jax.training import trainer

COMMAND = "ebm-jax-evaluate"
FLAGS = flags.FLAGS
_DEFINE = {"integer": flags.DEFINE_integer, "float": flags.DEFINE_float,
           "string": flags.DEFINE_string, "list": flags.DEFINE_list,
           "bool": flags.DEFINE_bool}


def define_option(option: options.Option, help_text: str, flag_values) -> None:
    """The flag of a declared option; its default is None, so that each mode's applies."""
    if option.kind == "enum":
        flags.DEFINE_enum(option.name, None, option.choices, help_text, flag_values=flag_values)
    else:
        _DEFINE[option.kind](option.name, None, help_text, flag_values=flag_values)


def define_flags(flag_values=FLAGS) -> list[str]:
    """The command's flags: its own (key flags of ``COMMAND``) and one per option the modes
    declare (key flags of each mode that takes it, ``--mode=<name>``). Returns the options'
    names."""
    config_flags.DEFINE_config_file(
        "config", os.path.abspath(default.__file__), "Only its overrides are used: "
        "--config.a.b=value replaces a.b in the workdir's config.", flag_values=flag_values)
    flags.DEFINE_string("workdir", None, "A workdir written by ebm-jax-train (train.py).",
                        flag_values=flag_values)
    flags.DEFINE_enum("mode", "samples", runner.mode_names(), "What to evaluate; 'all' runs "
                      "every mode that applies to the run.", flag_values=flag_values)
    for option in options.COMMON:
        define_option(option, option.help, flag_values)
    flags.DEFINE_bool("verbose", False, "Print tracebacks with errors.", flag_values=flag_values)
    own = ["config", "workdir", "mode", *(o.name for o in options.COMMON), "verbose"]
    for name in own:
        flag_values.register_key_flag_for_module(COMMAND, flag_values[name])
    declared = runner.declared_options()
    for name, by_mode in declared.items():
        define_option(by_mode[0][1], options.flag_help(by_mode), flag_values)
        for mode, _ in by_mode:
            flag_values.register_key_flag_for_module(f"--mode={mode}", flag_values[name])
    flags.mark_flags_as_required(["workdir"], flag_values=flag_values)
    return list(declared)


def main(argv, option_names=()):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    trainer.quiet_library_logs()
    script_flags.start_distributed_runtime()
    overrides = config_flags.get_override_values(FLAGS["config"])
    given = {name: FLAGS[name].value for name in option_names}
    sys.exit(commands.run_evaluation(FLAGS.workdir, FLAGS.mode, verbose=FLAGS.verbose,
                                     num_samples=FLAGS.num_samples, seed=FLAGS.seed,
                                     step=FLAGS.step, overrides=overrides, **given))


def run() -> None:
    """The console script ``ebm-jax-evaluate``."""
    # The config flag has a default file, so it reads its overrides as soon as it is defined.
    commands.check_overrides(sys.argv, default.get_config())
    names = define_flags()
    groups = [COMMAND] + [f"--mode={mode}" for mode in runner.mode_names()]
    app.run(functools.partial(main, option_names=names), flags_parser=functools.partial(
        commands.parse_flags, flag_values=FLAGS, reference=default.get_config(),
        help_text=commands.help_text(__doc__, FLAGS, groups)))


if __name__ == "__main__":
    run()
