"""scikit-learn's 8x8 digits with a GELU ConvNet, so that the noise-free sampler is a smooth
flow, whose density at M(z*) ``evaluate.py --mode=bpd`` reports as its review diagnostic
beside the held-out likelihood bound (every activation has the bound).

With LeakyReLU the energy is piecewise linear, its Hessian is zero almost everywhere, and the
flow's log-determinant is trivially 0; GELU makes the map differentiable. Training uses the
first 1,500 digits; the remaining 297 are the ``test`` split of ``--mode=bpd``.

Run:    python train.py --config=configs/digits_gelu.py --workdir=runs/digits_gelu
        python evaluate.py --mode=bpd --workdir=runs/digits_gelu --num_images=16 --split=test
Expect: after the 2,000 updates (40 minutes on 2 CPU cores shared with other jobs, 11
        minutes of CPU time, measured; 26 minutes in a later run), a review figure
        (stats.review_bpd, measured before the bound existed) of 1.65 bits/dim on 16 test digits with the exact log-det
        (66 s), but with a reconstruction error of 0.0134 per pixel and all 16 latents pinned
        on the prior's boundary: that is the likelihood of M(z), not of the digits (see the
        README's Likelihood section). After 200 updates: 3.10 bits/dim, error 0.005. A
        full-covariance Gaussian scores 2.86; digits hold 17 levels, and log2(17) = 4.09 is the
        uniform model's value.
        Held-out bound (README, Likelihood), on the 297 test digits:
        python evaluate.py --mode=bpd --workdir=runs/digits_gelu --fit_images=32 \
            --ais_images=4
        gives 2.541 +- 0.013 bits/dim at S = 1,000 (3.770 at S = 1; tau = 0.3 fitted), the
        review figure 1.590 with all 297 latents pinned; 3,331 s of CPU time, 48.2 min wall
        on 2 cores of an AMD EPYC (family 25, model 17) shared with a CI run; each
        importance draw takes K = 100 steps against digits.py's 25.
"""
from ebm_jax.configs import digits


def get_config():
    config = digits.get_config()
    config.data.max_examples = 1500
    config.model.activation = "gelu"
    config.sampling.num_steps = 100  # as measured above; configs/digits.py now uses K = 25
    return config
