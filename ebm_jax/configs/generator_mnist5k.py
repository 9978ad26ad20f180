"""The generator of configs/generator_digits.py on the 5,000 MNIST digits of the ``mnist5k`` extra
(28x28 padded to 32x32, ``pip install -e '.[mnist5k]'``), with three stride-2 transposed
convs in g. Training uses the first 4,500 digits; the other 500 are the ``test`` split.

Run:    python train.py --config=configs/generator_mnist5k.py --workdir=runs/generator_mnist5k
        python evaluate.py --mode=reconstruction --workdir=runs/generator_mnist5k --split=test
Expect: see below.
"""
from ebm_jax.configs import generator_digits


def get_config():
    config = generator_digits.get_config()
    config.data.dataset = "mnist5k"
    config.data.image_size = 32
    config.data.max_examples = 4500
    config.model.nf = 16
    config.training.num_steps = 1000
    config.training.checkpoint_every = 250
    config.training.sample_every = 250
    return config
