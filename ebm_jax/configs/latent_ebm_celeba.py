"""A latent EBM on CelebA 64x64: x | z ~ N(g(z), 0.3^2 I) with g transposed convs (nf=64) and
an EBM prior p(z) ∝ exp(u(z) - |z|^2 / 2) on z in R^64 (u an MLP of width 256); Monte Carlo EM
with K=30 inference steps on z (s=0.005, sigma=0.1) and K=60 prior steps for synthesis.

Needs the tfds ``celeb_a`` data set (see the README).

Run:    python train.py --config=configs/latent_ebm_celeba.py --workdir=runs/latent_ebm_celeba
        python evaluate.py --mode=samples --workdir=runs/latent_ebm_celeba
Expect: not measured (it needs a GPU and the prepared data set); the digits version
        (configs/latent_ebm_digits.py) gives the measured figures.
"""
from ebm_jax.configs import celeba


def get_config():
    config = celeba.get_config()
    config.model.family = "latent_ebm"
    config.model.latent_dim = 64
    config.model.latent_hidden = 256
    config.model.obs_std = 0.3
    config.sampling.num_steps = 60
    config.inference.num_steps = 30
    config.inference.step_size = 0.005
    config.inference.noise_std = 0.1
    config.training.data_noise_std = 0.0
    return config
