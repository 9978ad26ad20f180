"""The latent EBM of configs/latent_ebm_digits.py on the 5,000 MNIST digits of the
``mnist5k`` extra (28x28 padded to 32x32, ``pip install -e '.[mnist5k]'``), with three
stride-2 transposed convs in g, and warm-started inference: one z per training digit, refined
by the K=30 chain at each visit. Training uses the first 4,500 digits; the other 500 are the
``test`` split, encoded by the same chain from noise (the mean of 8 chains).

Run:    python train.py --config=configs/latent_ebm_mnist5k.py --workdir=runs/latent_ebm_mnist5k
        python evaluate.py --mode=reconstruction --workdir=runs/latent_ebm_mnist5k --split=test \
            --num_images=500
        python evaluate.py --mode=fid --workdir=runs/latent_ebm_mnist5k
Expect: 2,500 updates, no rollback (one seed, 2 cores of an AMD EPYC, family 25: the first
        1,000 took 34.4 minutes on one core, beside another run on the other; updates 1,000
        to 1,800 ran beside two or three other runs, and from 1,800 on about 1.0 s per update
        on both cores beside one other run). Digit FID on 500 fresh samples
        (held-out real digits 2.0, noise 549.5): 69.8 at update 500, 67.8 at 1,000, 52.3 at
        1,500, 53.7 at 2,000 and 37.1 at 2,500 (51% confident), all 10 classes from 750 on;
        most samples are clean digits, some empty or a few dots. On the 500 held-out digits
        at update 2,500 a reconstruction MSE of 0.0363 per pixel (PCA-16: 0.0859, the mean
        image 0.185); at update 1,250 a lower bound of 2.178 +- 0.015 bits/dim at S = 1,000
        (--mode=bpd --split=test --num_images=500; 27 minutes beside other runs). NOT the
        FID target (<= 30).
        Cold-started inference (--config.inference.start=cold), 1,000 updates: FID 86.9,
        held-out MSE 0.0488 (45 minutes beside one other run).
        benchmarks/MNIST_RESULTS.md (i) has the commands and the prior chain's K2.
"""
from ebm_jax.configs import generator_mnist5k, latent_ebm_digits


def get_config():
    config = generator_mnist5k.on_mnist5k(latent_ebm_digits.get_config())
    config.inference.start = "warm"
    config.training.num_steps = 2500
    return config
