"""A latent EBM on scikit-learn's 8x8 digits: x | z ~ N(g(z), 0.3^2 I) and an EBM prior
p(z) ∝ exp(u(z) - |z|^2 / 2) on z in R^16, learned by Monte Carlo EM. Training uses the first
1,500 digits; the other 297 are the ``test`` split.

Inference: K=30 Langevin steps on z from N(0, I) with x fixed (s=0.01, sigma=sqrt(2s));
synthesis: K=60 steps on the prior from N(0, I) (s=0.05, sigma=sqrt(2s)), then x = g(z).
Warm start: ``--config.inference.start=warm`` keeps one z per training example.

Run:    python train.py --config=configs/latent_ebm_digits.py --workdir=runs/latent_ebm_digits
        python evaluate.py --mode=reconstruction --workdir=runs/latent_ebm_digits --split=test
Expect: see below.
"""
from ebm_jax.configs import generator_digits


def get_config():
    """The generator's config (the same g, inference chain length and training), with the EBM
    prior on z and its synthesis chain, and a narrower p(x | z)."""
    config = generator_digits.get_config()
    config.model.family = "latent_ebm"
    config.model.obs_std = 0.2
    config.inference.step_size = 0.005
    config.inference.noise_std = 0.1
    config.model.latent_hidden = 64
    config.sampling.num_steps = 60
    config.sampling.latent_step_size = 0.05
    config.sampling.latent_noise_std = 0.3162
    return config
