"""CelebA 64x64, the paper's main setting: nf=64, K=100, s=1, sigma=0.01, m=64, Adam 1e-4.

Needs the tfds ``celeb_a`` data set (see the README: "Preparing CelebA and CIFAR-10").

Run:    python train.py --config=configs/celeba.py --workdir=runs/celeba
Expect: recognisable faces in runs/celeba/samples/ after some 10,000-20,000 updates; the paper
        trains 100,000 updates (16 h on 4 Titan Xp) and reports FID 23.02 on CelebA 64x64.
        Not yet measured with this code (no GPU or data download was available).
"""
from configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "celeb_a"
    config.data.image_size = 64
    config.model.nf = 64
    return config
