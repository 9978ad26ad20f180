"""A latent EBM f(x, z) on scikit-learn's 8x8 digits, learned by Monte Carlo EM.

Inference: K=30 Langevin steps on z (d=16) from N(0, I) with x fixed (s=0.05, sigma=sqrt(2s));
synthesis: K=60 joint steps on (x, z) from noise (x: s=1, sigma=0.01; z: s=0.05,
sigma=sqrt(2s)). Warm start: ``--config.inference.start=warm`` keeps one z per training example.

Run:    python train.py --config=configs/latent_ebm_digits.py --workdir=runs/latent_ebm_digits
        python evaluate.py --mode=samples --workdir=runs/latent_ebm_digits
Expect: 1,000 updates in about 20 minutes on a 2-core CPU shared with other jobs (1,188 s
        cold, measured, 2.6 minutes of it compiling); samples/step_0001000.png shows rough
        digit-like strokes drawn from noise. Reconstruction through p(x | z) does not work yet
        at this length of training (MSE 0.70 on training digits; the mean image scores 0.29).
        With --config.inference.start=warm this setting diverges after about 500 updates
        (the banked z grow, samples saturate; 795 s measured); with
        --config.optim.learning_rate=1e-4 it stayed stable for the 700 updates we ran.
"""
from ebm_jax.configs import digits


def get_config():
    config = digits.get_config()
    config.model.family = "latent_ebm"
    config.model.nf = 16
    config.model.latent_dim = 16
    config.model.feature_dim = 32
    config.sampling.num_steps = 60
    config.inference.num_steps = 30
    config.training.num_steps = 1000
    config.training.checkpoint_every = 250
    config.training.sample_every = 250
    return config
