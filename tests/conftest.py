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
