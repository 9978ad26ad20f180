import json
import os

import numpy as np
import pytest

from ebm_jax.evaluation import common, runner
from ebm_jax.evaluation import loaded_run
from ebm_jax.evaluation.modes import transition


def test_k2_zero_is_the_uniform_noise_and_later_columns_continue_the_same_chains(tiny_workdir):
    result = runner.evaluate(tiny_workdir, "transition", num_samples=16, seed=2,
                                 k2="0,3,5", num_rows=4)
    out = os.path.join(tiny_workdir, "eval")
    snaps = np.load(os.path.join(out, "transition.npy"))
    assert snaps.shape == (3, 4, 8, 8, 1)
    x0 = snaps[0]
    # K2 = 0: x_0 ~ U[-1, 1]^D, so no value is beyond +-1 and the mean |x| is near 1/2.
    assert x0.min() >= -1 and x0.max() <= 1
    assert result["stats"]["saturation_K0"] == 0.0
    assert result["stats"]["abs_mean_K0"] == pytest.approx(0.5, abs=0.05)
    # Digits also get the digit network's FID per K2; K2 = 0 is noise, far from the digits.
    assert result["stats"]["fid_K0"] > 100 and np.isfinite(result["stats"]["fid_K5"])
    # Column K2 = 5 is what the sampler gives with K = 5 from the same seed (batch 0 key).
    run = loaded_run.load_workdir(tiny_workdir)
    k5 = common.draw_samples(run, run.config, 16, 2)
    np.testing.assert_allclose(snaps[2], k5[:4], rtol=1e-5, atol=1e-6)
    saved = json.load(open(os.path.join(out, "transition.json")))
    assert saved["protocol"]["K"] == [0, 3, 5] and saved["protocol"]["K1"] == 5
    assert saved["protocol"]["num_samples"] == 16 and saved["protocol"]["seed"] == 2
    np.testing.assert_allclose(saved["curves"]["abs_mean"][2],
                               np.abs(k5).mean(), rtol=1e-5)
    for name in ("transition.png", "transition_saturation.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0


def test_parse_k2():
    assert transition.parse_k2("40, 0,20,20") == (0, 20, 40)
    assert transition.parse_k2([5]) == (5,)
    with pytest.raises(ValueError):
        transition.parse_k2("-1,3")
