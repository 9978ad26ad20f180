"""Test set-up: 8 fake CPU devices, so that data parallelism is tested without a GPU.

This must run before JAX touches a device, hence at import of the test session. Tests that
need speed more than parallelism pass a one-device mesh explicitly.
"""
import os
import sys

import jax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

jax.config.update("jax_num_cpu_devices", 8)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_workdir(tmp_path_factory):
    """A workdir of configs/test.py (8x8 digits, nf=8, K=5, four updates) on one device."""
    from configs import test as test_config
    from ebm_jax import parallel, trainer

    path = str(tmp_path_factory.mktemp("tiny_run"))
    trainer.train_and_evaluate(test_config.get_config(), path,
                               mesh=parallel.make_mesh(jax.devices()[:1]), progress=False)
    return path
