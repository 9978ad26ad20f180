"""Trains a digit feature network of ``ebm_jax.evaluation.digit_features`` and writes its weights.

  python scripts/train_digit_features.py --dataset=digits    # seconds
  python scripts/train_digit_features.py --dataset=mnist5k   # needs pip install -e '.[mnist5k]'

Training is deterministic (fixed seed, fixed split; see ``digit_features.SPECS``). The weights go
to ``ebm_jax/evaluation/weights/<name>_classifier.npz`` unless ``--out`` is given; the test
accuracy printed last is the one the module docstring states.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ebm_jax.evaluation import digit_features  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, choices=sorted(digit_features.NETWORK_OF_DATASET))
    parser.add_argument("--out", default=None, help="weights path (default: the shipped one)")
    args = parser.parse_args()
    name = digit_features.network_for(args.dataset)
    spec = digit_features.SPECS[name]
    start = time.perf_counter()
    params, accuracy = digit_features.train(name)
    path = digit_features.save(name, params, accuracy, args.out)
    print(f"split: {spec.split_text}")
    print(f"wrote {path}; {name} test accuracy {accuracy:.4f} (stated {spec.test_accuracy:.4f}); "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
