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
