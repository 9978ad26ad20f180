"""The latent EBM of configs/latent_ebm_digits.py on the 5,000 MNIST digits of the
``mnist5k`` extra (28x28 padded to 32x32, ``pip install -e '.[mnist5k]'``), with three
stride-2 transposed convs in g, and warm-started inference: one z per training digit, refined
by the K=30 chain at each visit. Training uses the first 4,500 digits; the other 500 are the
``test`` split, encoded by the same chain from noise (the mean of 8 chains).

Run:    python train.py --config=configs/latent_ebm_mnist5k.py --workdir=runs/latent_ebm_mnist5k
        python evaluate.py --mode=reconstruction --workdir=runs/latent_ebm_mnist5k --split=test \
            --num_images=500
        python evaluate.py --mode=fid --workdir=runs/latent_ebm_mnist5k
Expect: NOT the FID target (<= 30). One seed, 2 cores of an AMD EPYC, family 25, no rollback.
        A single run of this config (4,000 updates, Adam 1e-3 with a cosine decay over them)
        has not been measured. The measured run resumed with larger training.num_steps at
        updates 1,294 and 1,800, which restarted the cosine (1,500, then 2,000, then 4,000
        updates; from update 1,800 on it is this config's schedule). Its digit FID on 500
        fresh samples (held-out real digits 2.0, noise 549.5): 69.8 at update 500, 67.8 at
        1,000, 52.3 at 1,500, 53.7 at 2,000, 37.1 at 2,500 (all 10 classes), 38.7 at 3,000 and
        31.9 at 4,000 (54% confident, 9 classes); most samples are clean digits, some empty
        or a few dots. The first 1,000 updates took 34.4 minutes on one core beside another
        run; updates 2,800 to 4,000 took 41 minutes on one core beside another run.
        On the 500 held-out digits a reconstruction MSE of 0.0363 per pixel at update 2,500
        and 0.0425 at 4,000 (PCA-16: 0.0859, the mean image 0.185); at update 1,250 a lower
        bound of 2.178 +- 0.015 bits/dim at S = 1,000 (--mode=bpd --split=test
        --num_images=500; 27 minutes beside other runs).
        Cold-started inference (--config.inference.start=cold), 1,000 updates: FID 86.9,
        held-out MSE 0.0488 (45 minutes beside one other run).
        benchmarks/MNIST_RESULTS.md (i) has the commands, the learning rate's path and the
        prior chain's K2.
"""
from ebm_jax.configs import generator_mnist5k, latent_ebm_digits


def get_config():
    config = generator_mnist5k.on_mnist5k(latent_ebm_digits.get_config())
    config.inference.start = "warm"
    config.training.num_steps = 4000
    return config
