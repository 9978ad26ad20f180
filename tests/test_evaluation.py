import json
import os

import jax
import ml_collections
import numpy as np
import pytest

from ebm_jax.evaluation import common, runner
from ebm_jax.evaluation import loaded_run
from ebm_jax.runtime import parallel, validation
from ebm_jax.training import trainer


@pytest.fixture(scope="module")
def workdir(tiny_workdir):
    return tiny_workdir


def test_samples_mode_writes_npy_png_and_json_with_its_protocol(workdir):
    result = runner.evaluate(workdir, "samples", num_samples=10, seed=3)
    x = np.load(os.path.join(workdir, "eval", "samples.npy"))
    assert x.shape == (10, 8, 8, 1) and np.isfinite(x).all()
    assert os.path.getsize(os.path.join(workdir, "eval", "samples.png")) > 0
    saved = json.load(open(os.path.join(workdir, "eval", "samples.json")))
    assert saved["protocol"] == {"K": 5, "step_size": 1.0, "noise_std": 0.01, "method": "langevin",
                                 "init": "uniform",
                                 "init_low": -1.0, "init_high": 1.0, "init_std": 1.0,
                                 "num_samples": 10, "seed": 3, "checkpoint_step": 4,
                                 "config_overrides": {}, "config_changes_applied": []}
    np.testing.assert_allclose(saved["stats"]["mean"], x.mean(), rtol=1e-5)
    assert result["stats"] == saved["stats"]


def test_samples_are_fresh_short_run_chains_with_a_fixed_seed(workdir):
    runner.evaluate(workdir, "samples", num_samples=6, seed=11)
    a = np.load(os.path.join(workdir, "eval", "samples.npy"))
    runner.evaluate(workdir, "samples", num_samples=6, seed=11)
    b = np.load(os.path.join(workdir, "eval", "samples.npy"))
    np.testing.assert_array_equal(a, b)
    # They are exactly what the public sampler gives from that seed (batch 0 key).
    run = loaded_run.load_workdir(workdir)
    from ebm_jax.core import sampler
    ref = sampler.make_sampler(run.energy, run.config.sampling, run.data_shape,
                               input_grad=run.model.input_grad)(
        run.params, jax.random.fold_in(jax.random.key(11), 0), 6).x
    np.testing.assert_allclose(a, ref, rtol=1e-6)


def test_overrides_change_the_sampling_k(workdir):
    result = runner.evaluate(workdir, "samples", num_samples=4, seed=0,
                                 overrides={"sampling.num_steps": 0})
    assert result["protocol"]["K"] == 0
    x = np.load(os.path.join(workdir, "eval", "samples.npy"))
    # K2 = 0 returns the initial uniform noise.
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.5


def test_apply_overrides_rejects_unknown_fields():
    config = ml_collections.ConfigDict({"sampling": {"num_steps": 100}})
    assert common.apply_overrides(config, {"sampling.num_steps": 7}).sampling.num_steps == 7
    assert config.sampling.num_steps == 100
    with pytest.raises(validation.InputError, match="no field"):
        common.apply_overrides(config, {"sampling.k": 7})


def test_toy_samples_are_scored_against_the_true_density(tmp_path):
    from ebm_jax.configs import toy2d
    config = toy2d.get_config()
    config.training.num_steps = 2
    config.training.batch_size = 32
    config.model.hidden_dims = (16,)
    trainer.train_and_evaluate(config, str(tmp_path), mesh=parallel.make_mesh(jax.devices()[:1]),
                               progress=False)
    result = runner.evaluate(str(tmp_path), "samples", num_samples=300, seed=0)
    x = np.load(tmp_path / "eval" / "samples.npy")
    assert x.shape == (300, 2)
    # Two updates teach nothing: the chains are still near their U[-2, 2]^2 start, far from
    # the 8 Gaussians.
    assert result["stats"]["mmd2_vs_truth"] > 0.1
    assert np.isfinite(result["stats"]["mean_true_log_density"])


def test_a_persistent_run_is_sampled_from_noise_and_from_its_saved_buffer(family_workdir):
    from tests.conftest import PERSISTENT
    workdir = family_workdir(PERSISTENT)
    result = runner.evaluate(workdir, "samples", num_samples=10, seed=3)
    fresh = np.load(os.path.join(workdir, "eval", "samples.npy"))
    buffer = np.load(os.path.join(workdir, "eval", "buffer_samples.npy"))
    run = loaded_run.load_workdir(workdir, mesh=parallel.make_mesh(jax.devices()[:1]))
    bank = np.asarray(run.bank).reshape(100, -1)
    # Every buffer sample is a distinct row of the saved buffer; the fresh ones are not.
    rows = [np.flatnonzero((bank == b.ravel()).all(axis=1)) for b in buffer]
    assert all(len(r) == 1 for r in rows) and len({int(r[0]) for r in rows}) == 10
    assert not any((bank == f.ravel()).all(axis=1).any() for f in fresh)
    np.testing.assert_allclose(fresh, common.draw_samples(run, run.config, 10, 3), rtol=1e-6)
    stats = result["stats"]
    np.testing.assert_allclose(stats["buffer_mean"], buffer.mean(), rtol=1e-5)
    np.testing.assert_allclose(stats["mean"], fresh.mean(), rtol=1e-5)
    assert set(result["protocol"]["sources"]) == {"", "buffer_"}
    short = runner.evaluate(family_workdir("ebm"), "samples", num_samples=10, seed=3)
    assert "buffer_mean" not in short["stats"] and "sources" not in short["protocol"]
