"""Tiny setting for CPU tests: configs/digits.py with nf=8, K=5 and four updates of 16.

Run:    python train.py --config=configs/test.py --workdir=/tmp/ebm_test
Expect: finishes in seconds; writes checkpoints, metrics.jsonl and samples/step_*.png. The
        samples are noise: it is for checking the plumbing, not for learning.
"""
from ebm_jax.configs import digits


def get_config():
    config = digits.get_config()
    config.model.nf = 8
    config.sampling.num_steps = 5
    config.training.num_steps = 4
    config.training.batch_size = 16
    config.training.checkpoint_every = 2
    config.training.log_every = 1
    config.training.sample_every = 2
    config.training.num_plot_samples = 16
    config.optim.learning_rate = 1e-4
    config.optim.schedule = "constant"
    config.eval.num_samples = 16
    return config
