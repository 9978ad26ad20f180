"""``ebm-jax-evaluate`` run from a repository checkout: ``python evaluate.py --help``, and the
docstring of ``ebm_jax/cli/evaluate.py``."""
from ebm_jax.cli import evaluate

if __name__ == "__main__":
    evaluate.run()
