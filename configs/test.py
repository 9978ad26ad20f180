"""Tiny setting for CPU tests: scikit-learn's 8x8 digits, nf=8, K=5, a handful of updates.

Run:    python train.py --config=configs/test.py --workdir=/tmp/ebm_test
Expect: finishes in seconds; writes checkpoints, metrics.jsonl and samples/step_*.png. The
        samples are noise: it is for checking the plumbing, not for learning.
"""
from configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "digits"
    config.data.image_size = 8
    config.data.max_examples = 0
    config.model.nf = 8
    config.sampling.num_steps = 5
    config.training.num_steps = 4
    config.training.batch_size = 16
    config.training.checkpoint_every = 2
    config.training.log_every = 1
    config.training.sample_every = 2
    config.training.num_plot_samples = 16
    config.eval.num_samples = 16
    return config
