"""Test set-up: 8 fake CPU devices, so that data parallelism is tested without a GPU.

This must run before JAX touches a device, hence at import of the test session. Tests that
need speed more than parallelism pass a one-device mesh explicitly.
"""
import os
import sys
import tempfile

# Compiled programs are kept on disk for every process of the test run: the test workers and
# the train.py / evaluate.py processes they start, which inherit the variables. Many tests
# compile the same tiny programs, and compiling is most of their time. The cache is keyed by
# each program, the jax version and the flags, so a stale entry is never used.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"ebm_jax_tests_xla_{os.getuid()}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import jax  # noqa: E402
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

jax.config.update("jax_num_cpu_devices", 8)


@pytest.fixture
def quick_compile():
    """Switches off most XLA optimisations for a test that compiles many small programs and runs
    them briefly, where compiling would dominate its time."""
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


@pytest.fixture(scope="module")
def gelu_workdir(tmp_path_factory):
    """An untrained digits workdir with a GELU energy (nf=8, K=3) whose training keeps the
    digits after the first 1,500 out; likelihoods need only some smooth energy."""
    from ebm_jax.configs import test as test_config
    from ebm_jax.families import ebm
    from ebm_jax.runtime import checkpointing, workdir_files
    from ebm_jax.training import optim

    path = str(tmp_path_factory.mktemp("gelu_run"))
    config = test_config.get_config()
    config.model.activation = "gelu"
    config.data.max_examples = 1500
    config.sampling.num_steps = 3
    tx = optim.make_optimizer(config.optim, config.training.num_steps)
    workdir_files.write_run_files(path, config, (8, 8, 1), True)
    ckpt = checkpointing.Checkpointer(path)
    ckpt.save(ebm.EBM(config, (8, 8, 1)).init_state(jax.random.key(0), tx))
    ckpt.close()
    return path


@pytest.fixture(scope="session")
def tiny_workdir(tmp_path_factory):
    """A workdir of configs/test.py (8x8 digits, nf=8, K=5, four updates) on one device."""
    from ebm_jax.configs import test as test_config
    from ebm_jax.runtime import parallel
    from ebm_jax.training import trainer

    path = str(tmp_path_factory.mktemp("tiny_run"))
    trainer.train_and_evaluate(test_config.get_config(), path,
                               mesh=parallel.make_mesh(jax.devices()[:1]), progress=False)
    return path


FAMILIES = ("ebm", "latent_ebm", "generator")
PERSISTENT = "ebm_persistent"  # the EBM learned with persistent chains: its buffer is the bank


def family_of(name: str) -> str:
    """The ``model.family`` of a ``tiny_config`` name."""
    return "ebm" if name == PERSISTENT else name


def tiny_config(family: str = "ebm", start: str = "warm"):
    """configs/test.py for the EBM (with a replay buffer of 100 persistent chains for
    ``PERSISTENT``); for the latent families, their digits configs at a tiny size (nf 4, d 3,
    K 2, four updates of 16), warm-started by default so the bank is in play."""
    from ebm_jax.configs import generator_digits, latent_ebm_digits
    from ebm_jax.configs import test as test_config
    if family_of(family) == "ebm":
        config = test_config.get_config()
        if family == PERSISTENT:
            config.training.chains, config.training.buffer_size = "persistent", 100
        return config
    config = (latent_ebm_digits if family == "latent_ebm" else generator_digits).get_config()
    config.inference.start = start
    config.model.nf, config.model.latent_dim = 4, 3
    config.model.latent_hidden = 8
    config.sampling.num_steps, config.inference.num_steps = 2, 2
    config.inference.num_chains = 1  # the R-chain encoder has its own test (test_latent)
    config.sampling.unroll, config.inference.unroll = 1, 1
    config.training.num_steps, config.training.batch_size = 4, 16
    config.training.checkpoint_every = config.training.sample_every = 2
    config.training.log_every, config.training.num_plot_samples = 1, 4
    config.optim.schedule = "constant"  # a decay would depend on num_steps, which resume changes
    config.eval.num_samples = 8
    return config


def config_args(config, reference=None) -> list[str]:
    """``--config.a.b=value`` for every field where ``config`` differs from ``reference``
    (configs/test.py by default), for running ``train.py`` on a tiny latent config."""
    import json as json_lib

    from ebm_jax.configs import test as test_config
    reference = reference or test_config.get_config()
    args = []
    for block, fields in json_lib.loads(config.to_json()).items():
        if not isinstance(fields, dict):
            continue
        for name, value in fields.items():
            if value != reference[block][name]:
                if isinstance(value, list):
                    value = "(" + ",".join(str(v) for v in value) + ",)"
                args.append(f"--config.{block}.{name}={value}")
    return args


@pytest.fixture(scope="session")
def family_workdir(tmp_path_factory):
    """``family -> workdir`` of ``tiny_config(family)`` trained on one device (cached)."""
    from ebm_jax.runtime import parallel
    from ebm_jax.training import trainer
    made = {}

    def get(family: str) -> str:
        if family not in made:
            path = str(tmp_path_factory.mktemp(f"{family}_run"))
            trainer.train_and_evaluate(tiny_config(family), path,
                                       mesh=parallel.make_mesh(jax.devices()[:1]),
                                       progress=False)
            made[family] = path
        return made[family]

    return get
