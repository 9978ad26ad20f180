"""CIFAR-10 32x32 with a GELU ConvNet: the paper's setting with a smooth energy, so that the
noise-free sampler is a differentiable flow and ``evaluate.py --mode=bpd`` is meaningful.

Needs the tfds ``cifar10`` data set (``tfds build cifar10``, see the README).

Run:    python train.py --config=configs/cifar10_gelu.py --workdir=runs/cifar10_gelu
        python evaluate.py --mode=bpd --workdir=runs/cifar10_gelu --num_images=16 --split=test
Expect: for the LeakyReLU model of the paper, about 4.12 bits/dim has been reported on 16
        images; not yet measured with this code (no GPU or data download was available).
"""
from ebm_jax.configs import cifar10


def get_config():
    config = cifar10.get_config()
    config.model.activation = "gelu"
    return config
