"""CIFAR-10 32x32, as in the paper: nf=128, K=100, s=1, sigma=0.01, sigma_data=0.03, m=64.

Needs the tfds ``cifar10`` data set (``tfds build cifar10``, see the README).

Run:    python train.py --config=configs/cifar10.py --workdir=runs/cifar10
Expect: the paper reports IS 6.21 and FID 44.16 on CIFAR-10 with this setting.
        Not yet measured with this code (no GPU or data download was available).
"""
from configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "cifar10"
    config.data.image_size = 32
    config.model.nf = 128
    return config
