"""CIFAR-10 32x32 (paper, Sec. 5 and Table 1): nf=128, K=100, s=1, sigma=0.01, m=64, Adam 1e-4
(beta 0.9, 0.999), sigma_data=0.03, the first 40,000 training images, 200,000 updates and
then the learning rate and data noise lowered (``default.paper_protocol``).

Needs the tfds ``cifar10`` data set (``tfds build cifar10``, see the README).

Run:    python train.py --config=configs/cifar10.py --workdir=runs/cifar10
Expect: the paper reports IS 6.21 and FID 44.16 on CIFAR-10 with this setting.
        Not measured with this code: it needs a GPU and the data set download.
"""
from ebm_jax.configs import default


def get_config():
    config = default.paper_protocol(default.get_config())
    config.data.dataset = "cifar10"
    config.data.image_size = 32
    config.model.nf = 128
    return config
