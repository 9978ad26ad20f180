import os

import jax
import numpy as np
import pytest

from ebm_jax import data
from ebm_jax.configs import toy2d
from ebm_jax.evaluation import common, runner
from ebm_jax.evaluation import loaded_run
from ebm_jax.evaluation.modes import density
from ebm_jax.families import ebm
from ebm_jax.runtime import parallel


def test_an_ebm_equal_to_the_true_log_density_scores_zero_at_t1_and_is_colder_at_langevin_t(
        tmp_path):
    config = toy2d.get_config()
    config.sampling.num_steps = 20
    toy = data.TOY_DENSITIES[config.data.dataset]


    class TrueDensity(ebm.EBM):
        """An EBM whose f is the true log-density."""
        energy = property(lambda self: lambda params, x: toy.log_density(x))

        def input_grad(self, sampling_config=None):
            return None  # the sampler's jax.grad of the true log-density

    run = loaded_run.LoadedRun(TrueDensity(config, (2,)), None, config, 0, False,
                            parallel.make_mesh(jax.devices()[:1]), str(tmp_path))
    request = common.Request(500, 0, {"grid_size": 60})
    result = density.evaluate_density(run, config, str(tmp_path), request)
    stats = result["stats"]
    assert stats["temperature"] == pytest.approx(0.01 ** 2 / (2 * 0.1))
    assert stats["kl_true_vs_ebm_T1"] == pytest.approx(0.0, abs=1e-9)
    assert stats["tv_true_vs_ebm_T1"] == pytest.approx(0.0, abs=1e-9)
    assert stats["entropy_ebm_T"] < stats["entropy_true"] - 1.0
    assert stats["tv_true_vs_ebm_T"] > 0.3
    assert 0 < stats["tv_true_vs_kde"] < 1 and stats["kl_true_vs_kde"] > 0
    assert 0 < stats["tv_true_vs_kde_of_true_samples"] < 1
    assert os.path.getsize(tmp_path / "density.png") > 0


def test_normalise_log_sums_to_one_and_keeps_ratios():
    p = density.normalise_log(np.log([1.0, 3.0]) + 700.0)
    np.testing.assert_allclose(p, [0.25, 0.75])


def test_density_needs_a_toy_model(tiny_workdir):
    with pytest.raises(ValueError, match="toy density"):
        runner.evaluate(tiny_workdir, "density")
