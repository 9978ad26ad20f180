import json
import os

import numpy as np

from ebm_jax.evaluation import runner


def test_an_image_the_model_produced_is_reconstructed_with_small_error(tiny_workdir):
    result = runner.evaluate(tiny_workdir, "reconstruction", seed=0, num_images=4,
                                 num_iters=120, snapshot_every=60, targets="model",
                                 learning_rate=0.05)
    stats = result["stats"]
    assert stats["mse_per_pixel"] < 0.01 * stats["mse_per_pixel_at_start"]
    assert stats["mse_per_pixel"] < 1e-3, stats
    out = os.path.join(tiny_workdir, "eval")
    saved = np.load(os.path.join(out, "reconstruction.npz"))
    assert saved["snapshots"].shape == (3, 4, 8, 8, 1)
    np.testing.assert_allclose(np.mean((saved["x"] - saved["target"]) ** 2),
                               stats["mse_per_pixel"], rtol=1e-4)
    protocol = json.load(open(os.path.join(out, "reconstruction.json")))["protocol"]
    assert protocol["snapshot_iters"] == [0, 60, 120] and protocol["targets"] == "model"
    assert os.path.getsize(os.path.join(out, "reconstruction.png")) > 0


def test_data_targets_are_examples_of_the_data_set(tiny_workdir):
    result = runner.evaluate(tiny_workdir, "reconstruction", seed=1, num_images=3,
                                 num_iters=2, snapshot_every=1)
    assert len(result["protocol"]["indices"]) == 3
    assert len(result["mse_per_pixel_by_iter"]) == 3
    assert result["stats"]["mse_per_pixel"] > 0
