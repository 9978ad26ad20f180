import os

import jax
import numpy as np
import pytest

from ebm_jax import data
from ebm_jax.evaluation import common, fid, inception, runner
from ebm_jax.evaluation import loaded_run
from ebm_jax.runtime import validation

# feature_network: the tiny workdir holds digits, which fid would otherwise score with the
# digit network.
TINY = dict(inception_width=1 / 16, inception_size=75, feature_network="inception")


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("inception") / "tiny.npz")
    np.savez(path, **inception.flatten(inception.init_variables(0, TINY["inception_width"],
                                                                TINY["inception_size"])))
    return path


def test_fid_is_and_kid_of_fresh_samples_with_a_tiny_inception(tiny_workdir, tiny_weights,
                                                               tmp_path):
    options = dict(inception_weights=tiny_weights, cache_dir=str(tmp_path), num_reference=24,
                   batch_size=8, kid_subsets=5, kid_subset_size=8, **TINY)
    ref = runner.evaluate(tiny_workdir, "fid_stats", **options)
    assert ref["stats"]["num_examples"] == 24 and os.path.exists(ref["path"])
    result = runner.evaluate(tiny_workdir, "fid", num_samples=16, seed=4, **options)

    # The same figures, computed here without the mode: samples from the documented keys
    # (batches of 8 over 8 devices in the mode, unsharded here), the tiny net, the metric math.
    run = loaded_run.load_workdir(tiny_workdir)
    apply = jax.jit(inception.make_apply(TINY["inception_width"], TINY["inception_size"]))
    variables = inception.load_params(tiny_weights, TINY["inception_width"])
    x = common.draw_samples(run, run.config, 16, 4, batch_size=8)
    pool, logits = (np.asarray(a, np.float64) for a in apply(variables, x))
    real = data.get_dataset(run.config.data).get(np.arange(24))
    pool_ref = np.asarray(apply(variables, real)[0], np.float64)
    expected = fid.frechet_distance(*fid.feature_stats(pool), *fid.feature_stats(pool_ref))
    stats = result["stats"]
    assert stats["fid"] == pytest.approx(expected, rel=1e-3)
    assert stats["inception_score"] == pytest.approx(fid.inception_score(logits)[0], rel=1e-4)
    assert stats["kid"] == pytest.approx(fid.kernel_inception_distance(
        pool, pool_ref, 5, 8, seed=4)[0], rel=1e-3, abs=1e-6)
    assert result["protocol"]["num_samples"] == 16 and result["protocol"]["K"] == 5
    assert result["protocol"]["reference_examples"] == 24


def test_fid_without_weights_says_what_to_fetch(tiny_workdir, tmp_path):
    with pytest.raises(validation.InputError, match="pt_inception-2015-12-05"):
        runner.evaluate(tiny_workdir, "fid", num_samples=8, feature_network="inception",
                            inception_weights=str(tmp_path / "none.npz"))


def test_fid_defaults_to_the_papers_40000_samples():
    from ebm_jax.configs import default
    assert common.default_num_samples(default.get_config(), "fid") == 40000
    assert common.default_num_samples(default.get_config(), "samples") == 64


def test_digit_fid_of_a_persistent_run_also_scores_its_buffer(family_workdir):
    from ebm_jax.evaluation import digit_features
    from tests.conftest import PERSISTENT
    workdir = family_workdir(PERSISTENT)
    result = runner.evaluate(workdir, "fid", num_samples=297, seed=5, kid_subsets=10)
    stats, protocol = result["stats"], result["protocol"]
    assert protocol["buffer_num_samples"] == 100  # the whole buffer, fewer than asked
    run = loaded_run.load_workdir(workdir)
    spec = digit_features.SPECS["digits"]
    params = digit_features.load("digits", spec.weights_path)
    points = digit_features.reference_points(spec, params, 297, 5, kid_subsets=10,
                                             kid_subset_size=1000)
    expected = digit_features.compare(spec, params, common.buffer_samples(run, 297, 5),
                                      points["reference"], seed=5, kid_subsets=10,
                                      kid_subset_size=1000)
    np.testing.assert_allclose(stats["buffer_fid"], expected["fid"], rtol=1e-6)
    assert stats["buffer_fid"] != stats["fid"] and stats["floor_fid"] < stats["buffer_fid"]
