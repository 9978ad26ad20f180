"""Makes the README's pictures of a trained image EBM under docs/, with evaluate.py's modes.

  python scripts/readme_pictures.py --workdir=runs/mnist5k [--out=docs] [--prefix=mnist5k]

Writes ``<prefix>_samples.png`` (64 fresh short-run samples with the training K),
``<prefix>_transition.png`` (one chain per row at K2 = 0, K/2, K, 2K, 4K, 8K steps) and
``<prefix>_interpolation.png`` (one row of ten chains from z_rho = rho z1 + sqrt(1 - rho^2) z2,
rho from 0 to 1), each as evaluate.py writes it to ``workdir/eval/``, and prints the modes'
figures. The seed is ``eval.seed`` of the run's config.
"""
import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ebm_jax.evaluation import runner  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--out", default="docs")
    parser.add_argument("--prefix", default="mnist5k")
    parser.add_argument("--step", type=int, default=None, help="checkpoint (default: latest)")
    args = parser.parse_args()
    k = json.load(open(os.path.join(args.workdir, "config.json")))["sampling"]["num_steps"]
    k2 = ",".join(str(n) for n in sorted({0, k // 2, k, 2 * k, 4 * k, 8 * k}))
    jobs = [("samples", "samples.png", dict(num_samples=64)),
            ("transition", "transition.png", dict(num_samples=64, k2=k2, num_rows=2)),
            ("interpolation", "interpolation.png", dict(num_rows=1, num_cols=10))]
    os.makedirs(args.out, exist_ok=True)
    for mode, png, options in jobs:
        result = runner.evaluate(args.workdir, mode, step=args.step, **options)
        target = os.path.join(args.out, f"{args.prefix}_{png}")
        shutil.copyfile(os.path.join(args.workdir, "eval", png), target)
        k2_note = f"; K2 = {result['K2']}" if "K2" in result else ""
        print(f"{mode}: wrote {target}{k2_note}; {json.dumps(result.get('stats', {}))}")


if __name__ == "__main__":
    main()
