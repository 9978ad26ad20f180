"""Test set-up: 8 fake CPU devices, so that data parallelism is tested without a GPU.

This must run before JAX touches a device, hence at import of the test session. Tests that
need speed more than parallelism pass a one-device mesh explicitly.
"""
import os
import sys

import jax
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
    from ebm_jax.runtime import checkpointing
    from ebm_jax.models import nets
    from ebm_jax.training import train_step

    path = str(tmp_path_factory.mktemp("gelu_run"))
    config = test_config.get_config()
    config.model.activation = "gelu"
    config.data.max_examples = 1500
    config.sampling.num_steps = 3
    model = nets.build_model(config.model, (8, 8, 1))
    tx = train_step.make_optimizer(config.optim, config.training.num_steps)
    checkpointing.write_run_files(path, config, (8, 8, 1), True)
    ckpt = checkpointing.Checkpointer(path)
    ckpt.save(train_step.init_state(model.init(jax.random.key(0)), tx))
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
