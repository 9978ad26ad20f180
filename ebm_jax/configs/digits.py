"""scikit-learn's bundled 8x8 digits (1,797 real images, no download) with the paper's ConvNet.

The default of the README: it learns recognisable digits on a laptop CPU. K = 25 short-run
steps: with the digit FID (benchmarks/DIGIT_FID_RESULTS.md) K = 25, 50 and 100 reach the same
quality after 2,000 updates, and K = 25 does so in a quarter of the time; 1,000 updates fall
short for every K measured.

Run:    python train.py --config=configs/digits.py --workdir=runs/digits
        python evaluate.py --mode=fid --workdir=runs/digits
Expect: 93.7 s for the 2,000 updates on 2 quiet CPU cores of an AMD EPYC (measured with
        `python benchmarks/run.py --cases demos`, jax 0.10.2; 5.3 minutes earlier on a shared
        machine), 1 min 49 s with the evaluation, then a digit FID of 15.8 on 297 fresh
        samples (16.5 before the stride-2 layers' products followed Winograd's form, 16.2
        before the loss was computed with matrix products, 16.1 before the input gradient's
        products were regrouped: rounding moves it by that much; K = 100: 17.0 after 20.6
        minutes of shared cores; held-out real digits 23.5, uniform noise 318.7), 56% of the
        samples classified with probability >= 0.9, all 10 classes.
        Figures measured before with this config (README: transition, reconstruction,
        --mode=all) used K = 100; add --config.sampling.num_steps=100 to reproduce them.

Held-out likelihood (README, Likelihood): train with --config.data.max_examples=1500 so that
the last 297 digits form the test split, then
        python evaluate.py --mode=bpd --workdir=runs/digits
Expect: a lower bound of 2.566 +- 0.012 bits/dim at S = 1,000 (2.766, 2.630, 2.586 at S = 1,
        10, 100; tau = 1.0 fitted on 64 training digits, the end of the grid: 0.5 scores
        within 0.06 nats of it; a full-covariance Gaussian scores 2.955), AIS 0.7 nats above
        the bound on the first 16 digits; 5 min 7 s wall, 535 s of CPU time, on 2 quiet cores
        of an AMD EPYC (family 25, model 17): tau's fit 56 s, inversion 20 s, the bound on
        the 297 digits 113 s, AIS on 16 digits 107 s (wall).
"""
from ebm_jax.configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "digits"
    config.data.image_size = 8
    config.data.max_examples = 0
    config.model.nf = 32
    config.sampling.num_steps = 25
    config.training.num_steps = 2000
    config.training.batch_size = 64
    config.training.checkpoint_every = 500
    config.training.log_every = 50
    config.training.sample_every = 500
    config.training.num_plot_samples = 64
    config.optim.learning_rate = 3e-4
    config.optim.schedule = "cosine"
    return config
