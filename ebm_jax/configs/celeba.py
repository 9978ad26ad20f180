"""CelebA 64x64, the paper's main setting (Sec. 5, Table 1): nf=64, K=100, s=1, sigma=0.01,
m=64, Adam 1e-4 (beta 0.9, 0.999), sigma_data=0.03, the first 40,000 training images, 200,000
updates and then the learning rate and data noise lowered (``default.paper_protocol``).

Needs the tfds ``celeb_a`` data set (see the README: "Preparing CelebA and CIFAR-10").

Run:    python train.py --config=configs/celeba.py --workdir=runs/celeba
Expect: recognisable faces in runs/celeba/samples/ after some 10,000-20,000 updates; the paper
        reports FID 23.02 on CelebA 64x64 and 100,000 updates in 16 h on 4 Titan Xp.
        Not measured with this code: it needs a GPU and the data set download.
"""
from ebm_jax.configs import default


def get_config():
    config = default.paper_protocol(default.get_config())
    config.data.dataset = "celeb_a"
    config.data.image_size = 64
    config.model.nf = 64
    return config
