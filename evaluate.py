"""Evaluates a trained model from its workdir.

  python evaluate.py --mode=samples --workdir=runs/toy2d [--num_samples=N] [--seed=S]
                     [--config.sampling.num_steps=K2]
  python evaluate.py --mode=bpd --workdir=runs/digits_gelu [--num_images=16] [--split=test]
                     [--logdet=exact|per_step|stochastic]
  python evaluate.py --mode=ais --workdir=runs/toy2d [--num_chains=256] [--num_temps=1000]
                     [--temperature=chain|1.0] [--mcmc_step_size=0.1] [--num_images=16]

The model's own config is read from the workdir; ``--config.a.b=value`` overrides its fields
(for instance sampling with a K2 other than the training K). Each mode writes
``WORKDIR/eval/<mode>.json`` with its figures, and its pictures beside it.
"""
import os

from absl import app, flags
from ml_collections import config_flags

from ebm_jax import evaluation, script_flags, trainer

FLAGS = flags.FLAGS
_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "default.py")
config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG,
    "Only its overrides are used: --config.a.b=value replaces a.b in the workdir's config.")
flags.DEFINE_string("workdir", None, "A workdir written by train.py.")
flags.DEFINE_enum("mode", "samples", list(evaluation.MODES), "What to evaluate.")
flags.DEFINE_integer("num_samples", None, "Number of samples (default: config.eval.num_samples).")
flags.DEFINE_integer("seed", None, "Sampling seed (default: config.eval.seed).")
flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
flags.DEFINE_integer("num_images", None, "bpd, ais: number of data points (default 16).")
flags.DEFINE_string("split", None, "bpd, ais: data split, train or test (default test).")
flags.DEFINE_enum("logdet", None, ["exact", "per_step", "stochastic"],
                  "bpd: log-determinant method (default exact).")
flags.DEFINE_integer("chunk_size", None, "bpd: Jacobian columns per forward-mode pass (64).")
flags.DEFINE_integer("inversion_iters", None, "bpd: Adam iterations of the inversion (200).")
flags.DEFINE_integer("num_chains", None, "ais: number of AIS chains (256).")
flags.DEFINE_integer("num_temps", None, "ais: number of temperatures (1000).")
flags.DEFINE_string("temperature", None,
                    "ais: T of exp(f/T): 'chain' for sigma^2/(2s) (default), or a number.")
flags.DEFINE_float("mcmc_step_size", None, "ais: MALA step size (0.1).")
flags.mark_flags_as_required(["workdir"])
MODE_FLAGS = ("num_images", "split", "logdet", "chunk_size", "inversion_iters", "num_chains",
              "num_temps", "temperature", "mcmc_step_size")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    trainer.quiet_library_logs()
    script_flags.start_distributed_runtime()
    overrides = config_flags.get_override_values(FLAGS["config"])
    result = evaluation.evaluate(FLAGS.workdir, FLAGS.mode, num_samples=FLAGS.num_samples,
                                 seed=FLAGS.seed, step=FLAGS.step, overrides=overrides,
                                 **{name: FLAGS[name].value for name in MODE_FLAGS})
    print(result["summary_line"])


if __name__ == "__main__":
    app.run(main)
