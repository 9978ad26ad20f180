"""CelebA 128x128, which the paper's authors trained on 8 GPUs: nf=64, K=100, s=1, sigma=0.01,
Adam 1e-4, sigma_data=0.03, 40,000 images, the paper's 200,000 updates and annealing
(``default.paper_protocol``). The net follows the 32/64 pattern with one more 4x4 stride-2
convolution (widths 64, 128, 256, 512, 1024, 2048), an extrapolation: the paper does not give
the 128x128 architecture. The global batch of 64 is split over the devices (8 GPUs: 8 each).

Run:    python train.py --config=configs/celeba128.py --workdir=runs/celeba128
Expect: 128x128 face samples; the paper shows samples only at this size.
        Not measured with this code: it needs GPUs and the data set download.
"""
from ebm_jax.configs import celeba


def get_config():
    config = celeba.get_config()
    config.data.image_size = 128
    return config
