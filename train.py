"""``ebm-jax-train`` run from a repository checkout: ``python train.py --help``, and the
docstring of ``ebm_jax/cli/train.py``."""
from ebm_jax.cli import train

if __name__ == "__main__":
    train.run()
