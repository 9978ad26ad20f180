"""What the two commands share (``ebm-jax-train``, ``ebm-jax-evaluate``: ``cli/train.py``,
``cli/evaluate.py``): reading the command line, their help, running training or evaluation,
and turning the outcome into a one-paragraph error and an exit code.

Exit codes:

  0    training or evaluation finished;
  1    bad input (a config field, data set, npy file, workdir, batch size, or an evaluation
       mode that does not apply; validation.py);
  3    training diverged more often than ``guard.max_rollbacks`` allows (guard.py);
  128 + signal number (143 for SIGTERM, 130 for SIGINT): stopped by the signal after saving a
       checkpoint (preemption.py); the same command resumes the run.

Errors are printed without a traceback unless ``verbose``.
"""
from __future__ import annotations

import os
import sys
import traceback

from ebm_jax import configs
from ebm_jax.evaluation import runner
from ebm_jax.runtime import preemption, validation
from ebm_jax.training import guard, trainer

EXIT_BAD_INPUT = 1
EXIT_DIVERGED = 3


def report(fn, *, verbose: bool = False) -> int:
    """Runs ``fn()`` and returns the exit code of its outcome, printing why it stopped."""
    try:
        fn()
        return 0
    except validation.InputError as error:
        code, text, raised = EXIT_BAD_INPUT, f"error: {error}", error
    except guard.DivergenceError as error:
        code, text, raised = EXIT_DIVERGED, f"error: {error}", error
    except preemption.Preempted as error:
        code, text, raised = error.exit_code, str(error), error
    if verbose:
        traceback.print_exception(raised)
    print(text, file=sys.stderr)
    return code


def check_overrides(argv: list[str], reference) -> None:
    """Exits with status 1 and one paragraph if a ``--config.a.b`` override in ``argv`` is not
    a field of ``reference``. For a config flag with a default file, which reads the overrides
    as soon as it is defined: call this before defining it."""
    try:
        validation.check_field_names(validation.override_names(argv[1:]), reference)
    except validation.InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


HELP_FLAGS = ("--help", "-help", "-?", "--helpshort", "--helpfull", "--helpxml")
SHORT_HELP_FLAGS = HELP_FLAGS[:4]


def help_text(doc: str, flag_values, groups) -> str:
    """What ``--help`` prints: the command's docstring, then the key flags of each group
    (``flag_values.register_key_flag_for_module``), whichever file or script runs it."""
    sections = [flag_values.module_help(group).strip("\n") for group in groups]
    return "\n".join([doc.rstrip(), "", "flags:", "", "\n\n".join(s for s in sections if s), "",
                      "Try --helpfull to get a list of all flags."])


def resolve_config_names(argv: list[str]) -> list[str]:
    """``argv`` with the value of ``--config`` resolved by ``configs.resolve`` (a packaged
    config's name, from any directory), and ``-h`` read as ``--help``."""
    out = []
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            arg = "--config=" + configs.resolve(arg[len("--config="):])
        elif i and argv[i - 1] == "--config":
            arg = configs.resolve(arg)
        out.append("--help" if arg == "-h" else arg)
    return out


def parse_flags(argv: list[str], flag_values, reference, help_text: str | None = None
                ) -> list[str]:
    """Parses the command line into ``flag_values``; a ``--config.a.b`` override that is not a
    field of ``reference``, or a config file that cannot be loaded, exits with status 1 and a
    one-paragraph error (a traceback too with ``--verbose``). ``--config`` takes a packaged
    config by name (``--config=digits``) or a path; ``--help`` prints the usage and exits
    with status 0 (absl's own exits with 1): ``help_text``, where given."""
    argv = resolve_config_names(argv)
    if help_text is not None and any(arg.split("=")[0] in SHORT_HELP_FLAGS for arg in argv[1:]):
        try:
            print(help_text, flush=True)
        except BrokenPipeError:  # `--help | head`: the reader left; no traceback
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    try:
        validation.check_field_names(validation.override_names(argv[1:]), reference)
        try:
            args = flag_values(argv)
        except SystemExit:
            if any(arg.split("=")[0] in HELP_FLAGS for arg in argv[1:]):
                sys.exit(0)
            raise
        if flag_values["config"].value is not None:
            flag_values.config.keys()  # a config file that failed to load raises only when read
        return args
    except Exception as error:  # absl and ml_collections raise many kinds for a bad --config.
        if "--verbose" in argv:
            traceback.print_exc()
        text = str(error) if isinstance(error, validation.InputError) else (
            f"the command line could not be read ({type(error).__name__}: {error}); check that "
            "--config names an existing config file or a packaged config "
            f"({', '.join(configs.names())}) and that each --config.a.b=value fits the "
            "field's type. Run with --verbose for the traceback.")
        print(f"error: {text}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def run_training(config, workdir: str, *, reference, progress: bool = True,
                 verbose: bool = False, mesh=None, allow_config_change: bool = False) -> int:
    """What ``ebm-jax-train`` runs: checks ``config`` against ``reference`` (the defaults), trains,
    and returns the exit code."""
    def train():
        validation.check_config(config, reference)
        trainer.train_and_evaluate(config, workdir, mesh=mesh, progress=progress,
                                   allow_config_change=allow_config_change)
    return report(train, verbose=verbose)


def run_evaluation(workdir: str, mode: str, *, verbose: bool = False, **kwargs) -> int:
    """What ``ebm-jax-evaluate`` runs: ``runner.evaluate``, printing its summary line; returns the
    exit code."""
    def evaluate():
        print(runner.evaluate(workdir, mode, **kwargs)["summary_line"])
    return report(evaluate, verbose=verbose)
