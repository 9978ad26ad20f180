"""Shared defaults: the paper's CelebA-style setting (64x64, nf=64, K=100, s=1, sigma=0.01).

Every other config imports this file and overrides a few fields; every field any config uses is
defined here, so that ``--config.a.b=value`` works on any of them.

Run:    python train.py --config=configs/default.py --workdir=runs/default
Expect: the same as configs/celeba.py (it needs the prepared tfds celeb_a data set).
"""
import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.seed = 0

    config.data = data = ml_collections.ConfigDict()
    data.dataset = "celeb_a"    # cifar10 | celeb_a | mnist | lsun/<category> | digits | mnist5k |
    #                             npy | 8gaussians | rings | checkerboard | 2spirals | pinwheel |
    #                             moons | 1d_mog
    data.path = ""              # the .npy file for dataset=npy: (N, D) floats or (N, H, W, C) uint8
    data.image_size = 64
    data.max_examples = 40000   # the paper's cap on each data set; 0 keeps all
    data.split = "train"
    data.data_dir = ""          # tfds data directory; empty means tfds's default
    data.celeba_crop = 140
    data.cache = True           # tfds sets: decode once into a uint8 memmap (see data/cache.py)
    data.cache_dir = ""         # where that cache lives; empty: <data_dir or tfds's>/ebm_jax_cache
    data.num_examples = 50000   # size of a generated toy data set

    config.model = model = ml_collections.ConfigDict()
    model.name = "conv"         # conv | mlp
    model.nf = 64
    model.activation = "leaky_relu"  # leaky_relu | gelu | swish | softplus | elu | tanh
    model.leaky_slope = 0.2
    model.hidden_dims = (128, 128, 128)  # mlp only
    model.family = "ebm"        # ebm f(x) | latent_ebm f(x, z) | generator x = g(z) + eps
    model.latent_dim = 16       # d, latent families only
    model.latent_hidden = 64    # latent_ebm: width of the MLP u(z) of its prior on z
    model.obs_std = 0.3         # generator, latent_ebm: std of x around g(z)

    config.sampling = sampling = ml_collections.ConfigDict()
    sampling.method = "langevin"  # langevin | mala | hmc (core/sampler.py METHODS)
    sampling.leapfrog_steps = 5   # hmc: leapfrog steps L per transition (each a gradient)
    sampling.num_steps = 100    # K
    sampling.num_steps_max = 0  # > num_steps: dynamic K ~ U{num_steps..num_steps_max} per update
    sampling.step_size = 1.0    # s, the gradient coefficient
    sampling.noise_std = 0.01   # sigma
    sampling.init = "uniform"   # uniform | gaussian
    sampling.init_low = -1.0
    sampling.init_high = 1.0
    sampling.init_std = 1.0
    sampling.unroll = 0         # scan unrolling: 0 auto (sampler.default_unroll), 1 rolled
    # The chains' input gradient, and the form of the loss's energy: auto (fastest measured:
    # models/input_grad.py), matmul (the ConvNet as matrix products), autodiff (jax.grad, Flax).
    sampling.grad_impl = "auto"
    sampling.latent_step_size = 0.05   # latent_ebm: s and sigma of its prior chain on z
    sampling.latent_noise_std = 0.3162

    # Posterior chain z ~ p(z | x) of the latent families (``sampling`` holds the latent EBM's
    # prior chain).
    config.inference = inference = ml_collections.ConfigDict()
    inference.start = "cold"    # cold: z_0 ~ N(0, init_std^2) each time | warm: a z per example
    inference.num_steps = 30    # K
    inference.step_size = 0.05  # s
    inference.noise_std = 0.3162  # sigma; sqrt(2 s) makes it a Langevin sampler of p(z | x)
    inference.init_std = 1.0    # z_0 ~ N(0, init_std^2), also for the latent EBM's prior chain
    inference.num_chains = 1    # codes of reconstruction and probe: the mean of this many chains,
    #                             an estimate of E[z | x] (training uses one)
    inference.unroll = 0        # as sampling.unroll

    config.training = training = ml_collections.ConfigDict()
    training.num_steps = 100000
    training.batch_size = 64    # m, global: split across all devices
    training.chains = "short_run"  # short_run: fresh chains from p_0 | persistent: a replay buffer
    training.buffer_size = 10000   # persistent: chains in the buffer
    training.reinit_prob = 0.05    # persistent: each chain restarts from p_0 with this probability
    training.data_noise_std = 0.03      # sigma_data at the start
    training.data_noise_schedule = "constant"  # constant | cosine | linear, like optim.schedule
    training.data_noise_decay_start = 0
    training.data_noise_decay_steps = 0    # 0: decay until training.num_steps
    training.data_noise_final_factor = 0.0
    training.checkpoint_every = 1000
    training.keep_checkpoints = 3
    training.log_every = 50
    training.sample_every = 1000   # PNG of fresh short-run samples
    training.num_plot_samples = 64
    training.tensorboard = "auto"  # auto | true | false: event files in workdir/tensorboard/
    #                                (auto: when the tensorboard extra is installed)

    config.optim = optim = ml_collections.ConfigDict()
    optim.optimizer = "adam"    # any optax optimizer; the fields below that it takes are passed
    optim.learning_rate = 1e-4
    optim.schedule = "constant"  # constant | cosine | linear (see core/schedules.py)
    optim.warmup_steps = 0
    optim.decay_start = 0
    optim.decay_steps = 0       # 0: decay until training.num_steps
    optim.final_lr_factor = 0.0
    optim.b1 = 0.9
    optim.b2 = 0.999
    optim.eps = 1e-8
    optim.weight_decay = 0.0
    optim.momentum = 0.0
    optim.grad_clip_norm = 0.0  # 0: no clipping

    config.guard = guard = ml_collections.ConfigDict()
    guard.max_rollbacks = 3     # rollbacks to the last good checkpoint before training stops
    guard.lr_factor = 0.5       # each rollback multiplies the learning rate by this
    guard.max_energy_gap = 0.0  # |energy_gap| above this counts as divergence; 0: no bound
    guard.max_grad_norm = 0.0   # parameter-gradient norm above this counts as divergence; 0: none
    # A divergence that stays finite (see training/guard.py and the README's guard section):
    guard.max_saturation = 0.9  # ebm: the samples' fraction beyond +-1 above this; 0: no bound
    guard.max_growth = 100.0    # ebm: |energy_gap| above this many times its recent scale; 0: off
    guard.growth_window = 500   # updates whose median |energy_gap| is that scale
    guard.growth_min_updates = 20  # updates seen (since the start or a restart) before checking
    guard.growth_floor = 1.0    # the least scale: a gap near 0 has no meaningful ratio
    guard.collapse_std = 1e-3   # warn when the samples' std across chains falls below this

    config.eval = ev = ml_collections.ConfigDict()
    ev.num_samples = 64
    ev.fid_num_samples = 40000  # --mode=fid, as in the paper
    ev.digit_fid_num_samples = 0  # --mode=fid on digits, mnist, mnist5k (digit feature network):
    #                               0 is the held-out split's size (297 digits, 500 MNIST), the
    #                               most for which the real-digit floor has as many samples
    ev.seed = 1234
    return config


PAPER_UPDATES = 200_000
PAPER_DECAY_UPDATES = 50_000
PAPER_DECAY_FACTOR = 0.1


def paper_protocol(config):
    """The paper's training length and annealing, applied to ``config`` in place.

    The paper trains for 200,000 updates and then gradually lowers the learning rate and the
    data noise; it gives neither the length nor the end point of that decay. Here both decay
    linearly over 50,000 more updates to a tenth of their values (our choice).
    """
    config.training.num_steps = PAPER_UPDATES + PAPER_DECAY_UPDATES
    config.optim.schedule = "linear"
    config.optim.decay_start = PAPER_UPDATES
    config.optim.decay_steps = PAPER_DECAY_UPDATES
    config.optim.final_lr_factor = PAPER_DECAY_FACTOR
    config.training.data_noise_schedule = "linear"
    config.training.data_noise_decay_start = PAPER_UPDATES
    config.training.data_noise_decay_steps = PAPER_DECAY_UPDATES
    config.training.data_noise_final_factor = PAPER_DECAY_FACTOR
    return config
