"""scikit-learn's bundled 8x8 digits (1,797 real images, no download) with the paper's ConvNet.

The default of the README: it learns recognisable digits on a laptop CPU.

Run:    python train.py --config=configs/digits.py --workdir=runs/digits
        python evaluate.py --mode=samples --workdir=runs/digits
Expect: 8.5 minutes for the 2,000 updates on a 2-core CPU (measured, jax 0.10.2); from
        about update 1,000, samples/step_*.png shows recognisable digits (0, 1, 2, 4, 5, 6,
        7, 9 among them) drawn from fresh noise by K=100 short-run steps.
"""
from ebm_jax.configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "digits"
    config.data.image_size = 8
    config.data.max_examples = 0
    config.model.nf = 32
    config.sampling.num_steps = 100
    config.training.num_steps = 2000
    config.training.batch_size = 64
    config.training.checkpoint_every = 500
    config.training.log_every = 50
    config.training.sample_every = 500
    config.training.num_plot_samples = 64
    config.optim.learning_rate = 3e-4
    config.optim.schedule = "cosine"
    return config
