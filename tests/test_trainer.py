import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax import data
from ebm_jax.configs import test as test_config
from ebm_jax.configs import toy2d
from ebm_jax.evaluation import loaded_run
from ebm_jax.evaluation import stats
from ebm_jax.runtime import parallel, workdir_files
from ebm_jax.training import trainer
from tests.conftest import FAMILIES, tiny_config


@pytest.fixture(scope="module")
def one_device():
    return parallel.make_mesh(jax.devices()[:1])


def test_test_config_trains_and_writes_its_files(tmp_path, one_device):
    config = test_config.get_config()
    state = trainer.train_and_evaluate(config, str(tmp_path), mesh=one_device, progress=False)
    assert int(state.step) == 4
    rows = workdir_files.read_metrics(str(tmp_path))
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for key in ("loss", "energy_gap", "grad_norm_x", "num_langevin_steps", "steps_per_sec"):
        assert all(np.isfinite(r[key]) for r in rows)
    assert rows[0]["num_langevin_steps"] == 5
    np.testing.assert_allclose(rows[0]["energy_gap"], -rows[0]["loss"], rtol=1e-6)
    assert sorted(os.listdir(tmp_path / "samples")) == ["step_0000002.png", "step_0000004.png"]
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2", "4"]
    saved = json.load(open(tmp_path / "config.json"))
    assert saved["model"]["nf"] == 8


@pytest.mark.parametrize("family", FAMILIES)
def test_resumed_run_equals_uninterrupted_run(tmp_path, one_device, family):
    config = tiny_config(family)
    full = trainer.train_and_evaluate(config, str(tmp_path / "full"), mesh=one_device,
                                      progress=False)
    config.training.num_steps = 2
    trainer.train_and_evaluate(config, str(tmp_path / "split"), mesh=one_device, progress=False)
    config.training.num_steps = 4
    resumed = trainer.train_and_evaluate(config, str(tmp_path / "split"), mesh=one_device,
                                         progress=False)
    assert int(resumed.step) == 4
    assert (full.bank is None) == (family == "ebm")
    if full.bank is not None:
        assert full.bank.shape == (1500, 3)  # the digits configs train on 1,500
        np.testing.assert_array_equal(loaded_run.load_workdir(str(tmp_path / "full")).bank,
                                      np.asarray(full.bank))
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    if family != "ebm":
        return
    # A run killed after logging past its last checkpoint logs those steps once on resume.
    config.training.num_steps = 3
    trainer.train_and_evaluate(config, str(tmp_path / "killed"), mesh=one_device,
                               progress=False)
    shutil.rmtree(tmp_path / "killed" / "checkpoints" / "3")  # as if killed before saving 3
    config.training.num_steps = 4
    trainer.train_and_evaluate(config, str(tmp_path / "killed"), mesh=one_device,
                               progress=False)
    killed_rows = workdir_files.read_metrics(str(tmp_path / "killed"))
    assert [r["step"] for r in killed_rows] == [1, 2, 3, 4]
    full_rows = workdir_files.read_metrics(str(tmp_path / "full"))
    assert [r["loss"] for r in killed_rows] == [r["loss"] for r in full_rows]
    split_rows = workdir_files.read_metrics(str(tmp_path / "split"))
    for r1, r2 in zip(full_rows, split_rows):
        assert r1["step"] == r2["step"] and r1["loss"] == r2["loss"]


def test_toy2d_defaults_learn_the_eight_gaussians(tmp_path, one_device):
    """The toy2d config, trained with its defaults, gives short-run samples close to the truth.

    Squared MMD (fixed Gaussian kernels, 2,000 samples each) of the short-run samples against
    fresh samples of the true density must be below 0.005. Fresh U[-2, 2]^2 noise, the chains'
    starting point, scores about 0.24; an untrained model's chains score about the same; two
    samples of the truth score about 0.001.
    """
    config = toy2d.get_config()
    config.training.sample_every = config.training.num_steps
    state = trainer.train_and_evaluate(config, str(tmp_path), mesh=one_device, progress=False)
    run = loaded_run.load_workdir(str(tmp_path), mesh=one_device)
    samples = run.make_sampler()
    x = np.asarray(samples(state.params, jax.random.key(123), 2000).x)
    truth = data.TOY_DENSITIES["8gaussians"].sample(np.random.default_rng(7), 2000)
    x0 = np.asarray(samples(run.family.init_params(jax.random.key(5)), jax.random.key(123),
                            2000).x)
    mmd_trained, mmd_untrained = stats.mmd2(x, truth), stats.mmd2(x0, truth)
    print(f"toy2d 8gaussians: MMD^2 trained {mmd_trained:.5f}, untrained {mmd_untrained:.5f}")
    assert mmd_untrained > 0.05
    assert mmd_trained < 0.005
    # Every one of the 8 modes holds a fair share of the samples.
    angles = np.arctan2(x[:, 1], x[:, 0])
    nearest = np.round(angles / (np.pi / 4)).astype(int) % 8
    counts = np.bincount(nearest, minlength=8)
    assert counts.min() > 0.5 * len(x) / 8, counts


def test_metrics_survive_a_kill_in_the_middle_of_a_row(tmp_path):
    writer = workdir_files.MetricsWriter(str(tmp_path))
    for step in (1, 2, 3):
        writer.write(step, {"loss": float(step)})
    writer.event(3, {"event": "rollback", "restored_step": 2})
    with open(writer.path, "a") as f:
        f.write('{"step": 4, "lo')  # the process died here
    rows = workdir_files.read_metrics(str(tmp_path))
    assert [r["step"] for r in rows] == [1, 2, 3, 3]
    writer.truncate(2)  # as on resume from step 2: the event row stays, the torn row goes
    assert [(r["step"], "event" in r) for r in workdir_files.read_metrics(str(tmp_path))] == [
        (1, False), (2, False), (3, True)]
    assert open(writer.path).read().endswith("\n")


@pytest.mark.parametrize("family", ["latent_ebm", "generator"])
def test_a_latent_run_writes_the_files_of_any_run(tmp_path, one_device, family):
    config = tiny_config(family, start="cold")
    config.training.num_steps = 2
    state = trainer.train_and_evaluate(config, str(tmp_path), mesh=one_device, progress=False)
    assert state.bank is None and int(state.step) == 2
    assert loaded_run.load_workdir(str(tmp_path)).bank is None
    rows = workdir_files.read_metrics(str(tmp_path))
    assert [r["step"] for r in rows] == [1, 2] and all(np.isfinite(r["loss"]) for r in rows)
    assert all(np.isfinite(r["grad_norm_z"]) and r["data_noise_std"] >= 0 for r in rows)
    assert sorted(os.listdir(tmp_path / "samples")) == ["step_0000002.png"]
    assert json.load(open(tmp_path / "config.json"))["model"]["family"] == family


def slow_chain(num: int, size: int = 256, repeats: int = 100):
    """``num`` dispatches of a jitted step that depends on the last: ``repeats`` products of
    (size, size) matrices, tens of milliseconds on a CPU core."""
    @jax.jit
    def step(x_NN):
        return jax.lax.fori_loop(0, repeats, lambda _, y: jnp.tanh(y @ y), x_NN)

    x_NN = jnp.eye(size) * 0.5
    for i in range(num):
        x_NN = step(x_NN)
        yield i, x_NN


def unfinished(pending) -> int:
    return sum(not metrics.is_ready() for _, metrics in pending)


def test_the_host_runs_at_most_in_flight_updates_ahead_of_the_device():
    unbounded = list(slow_chain(8))
    assert unfinished(unbounded) > trainer.IN_FLIGHT    # dispatch is asynchronous
    jax.block_until_ready(unbounded[-1][1])
    pending = []
    for entry in slow_chain(8):
        pending.append(entry)
        trainer.limit_in_flight(pending)
        assert unfinished(pending) <= trainer.IN_FLIGHT
    assert all(metrics.is_ready() for _, metrics in pending[:-trainer.IN_FLIGHT])
