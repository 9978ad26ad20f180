"""The probe and the held-out reconstruction of the latent families, at a tiny size: they run
and their JSON holds the baselines. (Figures of full runs are not asserted here.)"""
import json
import os

import jax
import numpy as np
import pytest

from ebm_jax.evaluation import runner
from ebm_jax.evaluation.modes import probe
from ebm_jax.runtime import parallel, workdir_files
from ebm_jax.training import trainer
from tests.conftest import tiny_config


@pytest.fixture(scope="module", params=["latent_ebm", "generator"])
def held_out_workdir(request, tmp_path_factory):
    config = tiny_config(request.param, start="cold")
    config.data.max_examples = 1500
    config.training.num_steps = 2
    path = str(tmp_path_factory.mktemp(f"{request.param}_held_out"))
    trainer.train_and_evaluate(config, path, mesh=parallel.make_mesh(jax.devices()[:1]),
                               progress=False)
    return path


def test_probe_and_held_out_reconstruction_carry_their_baselines(held_out_workdir):
    result = runner.evaluate(held_out_workdir, "probe", seed=0)
    stats = result["stats"]
    assert set(stats) == {"probe_accuracy_z", "probe_accuracy_pca3", "probe_accuracy_pixels"}
    assert all(0.0 <= v <= 1.0 for v in stats.values())
    # Pixels of 8x8 digits are linearly separable enough: far above chance (0.1).
    assert stats["probe_accuracy_pixels"] > 0.8
    assert result["protocol"]["num_train"] == 1500 and result["protocol"]["num_test"] == 297
    codes = np.load(os.path.join(held_out_workdir, "eval", "probe_codes.npz"))
    assert codes["z_test"].shape == (297, 3) and codes["y_test"].shape == (297,)

    rec = runner.evaluate(held_out_workdir, "reconstruction", seed=0, split="test",
                          num_images=297)
    saved = json.load(open(os.path.join(held_out_workdir, "eval", "reconstruction.json")))
    assert saved["protocol"]["split"] == "test" and min(saved["protocol"]["indices"]) >= 1500
    # Both records name the inference chain that made z, not the synthesis chain.
    inference = workdir_files.read_config(held_out_workdir).inference
    for record in (result["protocol"], saved["protocol"]):
        assert (record["K"], record["step_size"], record["noise_std"], record["init_std"],
                record["num_chains"], record["start"]) == (
            inference.num_steps, pytest.approx(inference.step_size),
            pytest.approx(inference.noise_std), pytest.approx(inference.init_std),
            inference.get("num_chains", 1), "cold")
    assert len(saved["mse_per_example"]) == 297
    base = saved["baselines"]
    assert 0 < base["pca3_mse_per_pixel"] < base["mean_image_mse_per_pixel"]
    assert rec["stats"]["mse_per_pixel"] == pytest.approx(np.mean(saved["mse_per_example"]))


def test_the_probe_learns_a_separable_code():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    X = np.eye(3)[y] * 3 + 0.3 * rng.standard_normal((300, 3))
    assert probe.probe_accuracy(X[:200], y[:200], X[200:], y[200:]) > 0.95
    assert probe.probe_accuracy(rng.standard_normal((200, 3)), y[:200],
                                rng.standard_normal((100, 3)), y[200:]) < 0.6
