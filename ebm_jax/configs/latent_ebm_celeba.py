"""A latent EBM f(x, z) on CelebA 64x64: the paper's ConvNet (nf=64) as the feature h(x) of
size 256, meeting z in R^64; Monte Carlo EM with K=30 inference steps on z (s=0.05,
sigma=sqrt(2s)) and K=100 joint synthesis steps (s=1, sigma=0.01 on x).

Needs the tfds ``celeb_a`` data set (see the README).

Run:    python train.py --config=configs/latent_ebm_celeba.py --workdir=runs/latent_ebm_celeba
        python evaluate.py --mode=samples --workdir=runs/latent_ebm_celeba
Expect: not yet measured (it needs a GPU and the prepared data set); samples/step_*.png should
        show face-like images from noise after some 10,000 updates, as the plain EBM does.
"""
from ebm_jax.configs import celeba


def get_config():
    config = celeba.get_config()
    config.model.family = "latent_ebm"
    config.model.latent_dim = 64
    config.model.feature_dim = 256
    config.model.latent_hidden = 256
    config.inference.num_steps = 30
    return config
