"""scikit-learn's 8x8 digits with a GELU ConvNet, so that the noise-free sampler is a smooth
flow whose log-likelihood can be computed (``evaluate.py --mode=bpd``).

With LeakyReLU the energy is piecewise linear, its Hessian is zero almost everywhere, and the
flow's log-determinant is trivially 0; GELU makes the map differentiable. Training uses the
first 1,500 digits; the remaining 297 are the ``test`` split of ``--mode=bpd``.

Run:    python train.py --config=configs/digits_gelu.py --workdir=runs/digits_gelu
        python evaluate.py --mode=bpd --workdir=runs/digits_gelu --num_images=16 --split=test
Expect: see the bits/dim figures in the README's likelihood section (digits hold 17 levels,
        so bits/dim are counted on that grid; log2(17) = 4.09 is the uniform model's value).
"""
from configs import digits


def get_config():
    config = digits.get_config()
    config.data.max_examples = 1500
    config.model.activation = "gelu"
    return config
