import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax import data
from ebm_jax.evaluation import loaded_run
from ebm_jax.evaluation import runner
from ebm_jax.evaluation.modes import diagnostics
from ebm_jax.runtime import workdir_files


def test_residual_is_zero_when_chains_equal_the_data_and_the_gap_gradient_otherwise():
    energy = lambda p, x: x @ p["w"]  # f = w.x, so df/dw = x and the residual is |mean a - b|
    params = {"w": jnp.ones(3)}
    a = jnp.asarray([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    b = jnp.asarray([[0.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    diff, g_a, g_b = diagnostics.moment_residual(energy, params, a, a)
    assert float(diff) == 0.0 and float(g_a) == pytest.approx(np.sqrt(0.25 + 1.0))
    diff, _, g_b = diagnostics.moment_residual(energy, params, a, b)
    assert float(diff) == pytest.approx(np.linalg.norm([0.5, 1.0, -1.0]))
    assert float(g_b) == pytest.approx(1.0)


def test_diagnostics_of_a_run(tiny_workdir):
    result = runner.evaluate(tiny_workdir, "diagnostics", seed=3, num_batches=1)
    rows = workdir_files.read_metrics(tiny_workdir)
    stats = result["stats"]
    assert stats["num_logged_updates"] == len(rows) == 4
    assert stats["energy_gap_last_tenth"] == pytest.approx(rows[-1]["energy_gap"])
    run = loaded_run.load_workdir(tiny_workdir)
    x_data = data.get_dataset(run.config.data, seed=run.config.seed).batch(0, 16, 3)
    x_chain = run.make_sampler()(run.params, jax.random.fold_in(jax.random.key(3), 0), 16).x
    gap = lambda p: jnp.mean(run.energy(p, x_data)) - jnp.mean(run.energy(p, x_chain))
    g = jax.grad(gap)(run.params)
    expected = np.sqrt(sum(float(jnp.sum(v ** 2)) for v in jax.tree_util.tree_leaves(g)))
    assert stats["moment_residual"] == pytest.approx(expected, rel=1e-4)
    out = os.path.join(tiny_workdir, "eval")
    assert os.path.getsize(os.path.join(out, "diagnostics.png")) > 0
    saved = json.load(open(os.path.join(out, "diagnostics.json")))
    assert len(saved["sample_grids"]) >= 1
