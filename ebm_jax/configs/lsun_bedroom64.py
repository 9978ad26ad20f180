"""LSUN bedroom 64x64 (paper, Sec. 5, sample figures): nf=64, K=100, s=1, sigma=0.01, m=64,
Adam 1e-4, sigma_data=0.03, the first 40,000 images, the paper's 200,000 updates and annealing
(``default.paper_protocol``). Images are centre-cropped to a square and resized to 64x64.

Needs the tfds ``lsun/bedroom`` data set (``tfds build lsun/bedroom``; its manual download is
about 43 GB).

Run:    python train.py --config=configs/lsun_bedroom64.py --workdir=runs/lsun_bedroom64
Expect: bedroom-like 64x64 samples; the paper shows samples only (no FID for LSUN).
        Not measured with this code: it needs a GPU and the data set download.
"""
from ebm_jax.configs import default


def get_config():
    config = default.paper_protocol(default.get_config())
    config.data.dataset = "lsun/bedroom"
    config.data.image_size = 64
    config.model.nf = 64
    return config
