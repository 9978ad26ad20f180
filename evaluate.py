"""Evaluates a trained model from its workdir.

  python evaluate.py --mode=samples --workdir=runs/toy2d [--num_samples=N] [--seed=S]
                     [--config.sampling.num_steps=K2]
  python evaluate.py --mode=bpd --workdir=runs/digits [--num_images=N] [--split=test]
                     [--num_importance_samples=1000] [--obs_std=fit|model|TAU]
  python evaluate.py --mode=ais --workdir=runs/toy2d [--num_chains=256] [--num_temps=1000]
                     [--temperature=chain|1.0] [--mcmc_step_size=0.1] [--num_images=16]
  python evaluate.py --mode=transition --workdir=runs/digits [--k2=0,50,100,200]
  python evaluate.py --mode=reconstruction --workdir=runs/generator_digits --split=test
  python evaluate.py --mode=all --workdir=runs/digits

The model's own config is read from the workdir, as it was in force at the checkpoint's step
(``config.json`` with the changes that ``config_history.json`` records before that step);
``--config.a.b=value`` overrides its fields (for instance sampling with a K2 other than the
training K), and goes into each mode's protocol (``config_overrides``), never into the
workdir's config. Each mode writes
``WORKDIR/eval/<mode>.json`` with its figures, and its pictures beside it; with the tensorboard
extra its figures also go to the run's TensorBoard event files, as ``eval/<mode>/<stat>``. The
work is done by ``ebm_jax.evaluation.runner.evaluate``; this script only parses flags.

Exit codes (see ``ebm_jax/cli/errors.py``): 0 done; 1 bad input (a missing workdir, one with no
readable checkpoint, an unknown override, a mode that does not apply to the run's family or
data, ...), explained in one paragraph, with nothing in the workdir overwritten (add
``--verbose`` for the traceback).
"""
import functools
import os
import sys

from absl import app, flags
from ml_collections import config_flags

from ebm_jax.cli import errors, script_flags
from ebm_jax.configs import default
from ebm_jax.evaluation import runner
from ebm_jax.training import trainer

FLAGS = flags.FLAGS
if __name__ == "__main__":
    errors.check_overrides(sys.argv, default.get_config())
_DEFAULT_CONFIG = os.path.abspath(default.__file__)
config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG,
    "Only its overrides are used: --config.a.b=value replaces a.b in the workdir's config.")
flags.DEFINE_string("workdir", None, "A workdir written by train.py.")
flags.DEFINE_enum("mode", "samples", runner.mode_names(), "What to evaluate; 'all' runs every "
                  "mode that applies to the run.")
flags.DEFINE_integer("num_samples", None, "Number of samples (default: config.eval.num_samples).")
flags.DEFINE_integer("seed", None, "Sampling seed (default: config.eval.seed).")
flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
flags.DEFINE_integer("num_images", None, "bpd, ais, reconstruction: number of data points or "
                     "images (default 16; bpd: the whole split, or 1,000 fresh toy points).")
flags.DEFINE_string("split", None, "bpd, ais: data split, train or test (default test); "
                    "reconstruction: the targets' split (default train).")
flags.DEFINE_enum("logdet", None, ["exact", "per_step", "stochastic", "none"],
                  "bpd: log-determinant method of the EBM's review diagnostic, the density of "
                  "M(z*) (default exact; none skips it).")
flags.DEFINE_string("obs_std", None, "bpd: the observation noise tau: 'fit' (the grid's best "
                    "on the training split), 'model' (the latent families' obs_std; the EBM "
                    "fits), or a number (default model).")
flags.DEFINE_integer("num_importance_samples", None, "bpd: importance samples S per point "
                     "(1000); the bounds at S = 1, 10, 100 come from the same draws.")
flags.DEFINE_enum("proposal", None, ["dense", "diag"], "bpd: the Laplace proposal's precision, "
                  "full (d x d, from the D x d Jacobian) or diagonal (from vector-Jacobian "
                  "probes, no Jacobian; default dense up to d = 1024).")
flags.DEFINE_integer("ais_images", None, "bpd: points also scored by AIS over z (16; 0: none).")
flags.DEFINE_integer("fit_images", None, "bpd: training points for the fit of tau (64).")
flags.DEFINE_integer("chunk_size", None, "bpd: Jacobian columns per forward-mode pass (64).")
flags.DEFINE_integer("inversion_iters", None, "bpd: Adam iterations of the inversion (200).")
flags.DEFINE_integer("num_chains", None, "ais: number of AIS chains (256; bpd: per point, 16).")
flags.DEFINE_integer("num_temps", None, "ais: number of temperatures (1000; bpd: 200).")
flags.DEFINE_string("temperature", None,
                    "ais: T of exp(f/T): 'chain' for sigma^2/(2s) (default), or a number.")
flags.DEFINE_float("mcmc_step_size", None, "ais: MALA step size (0.1; bpd: 0.5, in the "
                   "proposal's whitened coordinates).")
flags.DEFINE_list("k2", None, "transition: the K2 values (default 0,20,...,200).")
flags.DEFINE_integer("num_rows", None, "transition, interpolation: chains shown as rows.")
flags.DEFINE_integer("num_cols", None, "interpolation: values of rho in [0, 1] (default 10).")
flags.DEFINE_boolean("fixed_noise", None, "interpolation: the same Langevin noise for every "
                     "rho (default true).")
flags.DEFINE_string("inception_weights", None, "fid, fid_stats: the converted Inception .npz "
                    "(default $EBM_JAX_INCEPTION or ~/.cache/ebm_jax/fid_inception_v3.npz).")
flags.DEFINE_enum("feature_network", None, ["auto", "inception"], "fid: 'auto' scores digits, "
                  "mnist and mnist5k with a digit classifier, others with Inception (default); "
                  "'inception' always uses Inception.")
flags.DEFINE_string("cache_dir", None, "fid, fid_stats: where reference statistics are cached "
                    "(default ~/.cache/ebm_jax).")
flags.DEFINE_integer("num_reference", None, "fid, fid_stats: data examples for the reference "
                     "statistics (default all).")
flags.DEFINE_integer("batch_size", None, "fid, fid_stats: images per compiled batch (400).")
flags.DEFINE_integer("num_iters", None, "reconstruction: gradient steps on z (200).")
flags.DEFINE_enum("targets", None, ["data", "model"], "reconstruction: data examples (default) "
                  "or images the model produced.")
flags.DEFINE_integer("num_batches", None, "diagnostics: fresh batches for the moment-matching "
                     "residual (4).")
flags.DEFINE_bool("verbose", False, "Print tracebacks with errors.")
flags.mark_flags_as_required(["workdir"])

_MODE_FLAGS = ("k2", "num_rows", "num_cols", "fixed_noise", "inception_weights",
               "feature_network", "cache_dir", "num_reference", "batch_size", "num_images",
               "num_iters", "targets", "num_batches", "split", "logdet", "chunk_size",
               "inversion_iters", "num_chains", "num_temps", "temperature", "mcmc_step_size",
               "obs_std", "num_importance_samples", "proposal", "ais_images", "fit_images")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    trainer.quiet_library_logs()
    script_flags.start_distributed_runtime()
    overrides = config_flags.get_override_values(FLAGS["config"])
    options = {name: FLAGS[name].value for name in _MODE_FLAGS}
    sys.exit(errors.run_evaluation(FLAGS.workdir, FLAGS.mode, verbose=FLAGS.verbose,
                                   num_samples=FLAGS.num_samples, seed=FLAGS.seed,
                                   step=FLAGS.step, overrides=overrides, **options))


if __name__ == "__main__":
    app.run(main, flags_parser=functools.partial(errors.parse_flags, flag_values=FLAGS,
                                                 reference=default.get_config()))
