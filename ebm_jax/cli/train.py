"""``ebm-jax-train``: trains a short-run MCMC energy-based model.

  ebm-jax-train --config=toy2d --workdir=runs/toy2d [--config.training.num_steps=N]

The same program runs as ``python train.py ...`` in a repository checkout, and as
``python -m ebm_jax.cli.train ...``. ``--config`` takes a packaged config by name (toy2d,
digits, ...: ``ebm_jax/configs/``, also the repository's ``configs/``), from any directory,
or the path of a config file.

The work is done by ``ebm_jax.training.trainer.train_and_evaluate``; this command only parses
flags, so that everything stays importable and testable. A run resumes from the latest
checkpoint in ``--workdir``, with the config it was trained with: one that would change what
is learned or how it is sampled (the model, data, chains, optimizer, schedules, batch size,
seed or guard) is refused, unless ``--allow_config_change``; the workdir's ``config.json``
stays as it was started, and ``config_history.json`` records every change with the step from
which it holds (another ``training.num_steps``, unless a schedule decays until it, or another
logging, checkpoint or sample cadence needs no flag). Logs: ``metrics.jsonl`` (and
TensorBoard event files in ``tensorboard/`` with the tensorboard extra); pictures:
``samples/step_*.png``.

Exit codes (see ``ebm_jax/cli/commands.py``): 0 done; 1 bad input, explained in one paragraph
(add ``--verbose`` for the traceback); 3 diverged despite ``guard.max_rollbacks`` rollbacks;
143 or 130 stopped by SIGTERM or SIGINT after saving a checkpoint (run it again to resume).
"""
import functools
import sys

from absl import app, flags
from ml_collections import config_flags

from ebm_jax.cli import commands, script_flags
from ebm_jax.configs import default
from ebm_jax.training import trainer

COMMAND = "ebm-jax-train"
FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS) -> None:
    """The command's flags, each a key flag of ``COMMAND`` (what ``--help`` lists)."""
    config_flags.DEFINE_config_file("config", None, "A packaged config's name (toy2d, digits, "
                                    "...) or a config file's path.", flag_values=flag_values,
                                    lock_config=True)
    flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and samples.",
                        flag_values=flag_values)
    flags.DEFINE_bool("progress", True, "Show a progress bar.", flag_values=flag_values)
    flags.DEFINE_bool("allow_config_change", False, "Resume a workdir with a config that "
                      "changes what is learned or how it is sampled; the change is recorded in "
                      "its config_history.json with the step from which it holds.",
                      flag_values=flag_values)
    flags.DEFINE_bool("verbose", False, "Print tracebacks with errors.", flag_values=flag_values)
    names = ("config", "workdir", "progress", "allow_config_change", "verbose")
    for name in names:
        flag_values.register_key_flag_for_module(COMMAND, flag_values[name])
    flags.mark_flags_as_required(["config", "workdir"], flag_values=flag_values)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    trainer.quiet_library_logs()
    script_flags.start_distributed_runtime()
    sys.exit(commands.run_training(FLAGS.config, FLAGS.workdir, reference=default.get_config(),
                                   progress=FLAGS.progress, verbose=FLAGS.verbose,
                                   allow_config_change=FLAGS.allow_config_change))


def run() -> None:
    """The console script ``ebm-jax-train``."""
    define_flags()
    app.run(main, flags_parser=functools.partial(
        commands.parse_flags, flag_values=FLAGS, reference=default.get_config(),
        help_text=commands.help_text(__doc__, FLAGS, [COMMAND])))


if __name__ == "__main__":
    run()
