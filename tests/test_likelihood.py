import json
import math
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ebm_jax.configs import test as test_config
from ebm_jax.core import flow
from ebm_jax.evaluation import likelihood, runner


def gaussian_energy(a):
    return lambda x: -0.5 * a * jnp.sum(jnp.reshape(x * x, (x.shape[0], -1)), axis=1)


@pytest.mark.parametrize("levels", [17, 256])
def test_a_density_uniform_over_the_levels_scores_log2_levels(levels):
    # Uniform on the dequantised range [-1, 1 + 2/(L-1)]: width 2L/(L-1) per dimension.
    dim = 64
    log_p = -dim * np.log(2 * levels / (levels - 1))
    np.testing.assert_allclose(likelihood.bits_per_dim(jnp.array([log_p]), dim, levels),
                               [np.log2(levels)], rtol=1e-6)
    x = jnp.ones((3, dim))
    y = likelihood.dequantize(x, jax.random.key(0), levels)
    assert float(y.min()) >= 1 and float(y.max()) < 1 + 2 / (levels - 1)


@pytest.mark.usefixtures("quick_compile")
def test_bpd_of_the_linear_flow_has_the_closed_form():
    # M(z) = c z with c = (1 - s a)^K: p(y) = 2^-D c^-D on the image of [-1, 1]^D, so
    # bpd = 1 + K log2(1 - s a) + log2(8) for digits' 17 levels, whatever the image.
    a, s, k, levels = 0.2, 0.5, 3, 17
    v = jax.random.randint(jax.random.key(1), (2, 4, 4, 1), 4, 13)
    x = v / 8.0 - 1.0
    out = jax.jit(lambda x: likelihood.flow_bpd(
        gaussian_energy(a), x, jax.random.key(2), levels=levels, num_steps=k, step_size=s,
        logdet_kwargs=dict(chunk_size=16)))(x)
    expected = 1 + k * math.log2(1 - s * a) + 3
    np.testing.assert_allclose(out["bpd"], [expected] * 2, rtol=1e-4)
    np.testing.assert_allclose(out["logdet"], [16 * k * math.log(1 - s * a)] * 2, rtol=1e-5)
    np.testing.assert_allclose(out["log_p0"], [-16 * math.log(2)] * 2, rtol=1e-6)
    assert float(out["recon_mse"].max()) < 1e-7
    np.testing.assert_array_equal(out["at_boundary"], [0, 0])


def toy_gelu_energy():
    k1, k2, k3 = jax.random.split(jax.random.key(7), 3)
    w1 = 2.0 * jax.random.normal(k1, (2, 16))
    b1 = jax.random.normal(k2, (16,))
    w2 = jax.random.normal(k3, (16,)) / 8
    return lambda x: jax.nn.gelu(x @ w1 + b1) @ w2


def test_toy_gelu_flow_density_integrates_to_one_and_matches_a_histogram():
    f, k, s = toy_gelu_energy(), 6, 0.1
    x_samples = flow.flow_map(f, jax.random.uniform(jax.random.key(3), (1_000_000, 2),
                                                    minval=-1, maxval=1), num_steps=k,
                              step_size=s)
    lo, hi = np.asarray(x_samples.min(0)) - 0.04, np.asarray(x_samples.max(0)) + 0.04
    h = 0.02
    gx, gy = (np.arange(lo[i], hi[i], h) + h / 2 for i in range(2))
    grid = jnp.asarray(np.stack(np.meshgrid(gx, gy, indexing="ij"), -1).reshape(-1, 2))
    out = jax.jit(lambda x: likelihood.flow_log_prob(
        f, x, jax.random.key(4), num_steps=k, step_size=s, num_iters=500,
        learning_rate=0.1, logdet_kwargs=dict(examples_per_pass=1024)))(grid)
    inside = np.asarray(out["recon_mse"]) < 1e-7
    density = np.where(inside, np.exp(np.asarray(out["log_p"])), 0.0)
    # The flow really changes volume: the density is far from the prior's 1/4.
    assert density[inside].max() > 0.8 and density[inside].min() < 0.15
    total = density.sum() * h * h
    assert abs(total - 1) < 0.02, total
    # Histogram of M(z), z ~ p_0, on 0.1-wide bins against the density integrated over them.
    bins = 5
    nx, ny = len(gx) // bins, len(gy) // bins
    dens = density.reshape(len(gx), len(gy))[:nx * bins, :ny * bins]
    p_density = dens.reshape(nx, bins, ny, bins).sum((1, 3)) * h * h
    edges = [lo[i] + h * bins * np.arange(n + 1) for i, n in enumerate((nx, ny))]
    counts, _, _ = np.histogram2d(*np.asarray(x_samples).T, bins=edges)
    p_hist = counts / len(x_samples)
    tv = 0.5 * np.abs(p_hist - p_density).sum()
    assert tv < 0.03, tv


def test_piecewise_linear_energies_are_refused():
    with pytest.raises(ValueError, match="piecewise linear"):
        likelihood.check_smooth(ml_collections.ConfigDict({"activation": "leaky_relu"}))
    likelihood.check_smooth(ml_collections.ConfigDict({"activation": "gelu"}))


def test_levels_of_each_data_set():
    config = test_config.get_config()
    assert likelihood.num_levels(config.data) == 17
    config.data.dataset = "cifar10"
    assert likelihood.num_levels(config.data) == 256
    config.data.dataset, config.data.image_size = "digits", 16
    with pytest.raises(ValueError, match="17 levels"):
        likelihood.num_levels(config.data)


@pytest.mark.usefixtures("quick_compile")
def test_bpd_mode_writes_per_image_parts(gelu_workdir):
    result = runner.evaluate(gelu_workdir, "bpd", seed=0, num_images=2, split="test",
                                 logdet="per_step", inversion_iters=20)
    saved = json.load(open(os.path.join(gelu_workdir, "eval", "bpd.json")))
    assert saved["protocol"]["levels"] == 17 and saved["protocol"]["logdet"] == "per_step"
    parts = saved["per_image"]
    for name in ("bpd", "nll", "log_p0", "logdet", "recon_mse"):
        assert len(parts[name]) == 2 and np.isfinite(parts[name]).all()
    # bpd = nll / (D ln 2) + log2(8) and nll = logdet - log p0, image by image.
    np.testing.assert_allclose(parts["bpd"], np.array(parts["nll"]) / (64 * np.log(2)) + 3,
                               rtol=1e-5)
    np.testing.assert_allclose(parts["nll"],
                               np.array(parts["logdet"]) - np.array(parts["log_p0"]), rtol=1e-5)
    assert result["stats"]["out_of_support"] == sum(np.array(parts["at_boundary"]) > 0)
    assert result["stats"]["bpd"] == pytest.approx(np.mean(parts["bpd"]))


def test_gaussian_baseline_is_the_multivariate_normal_log_density():
    from scipy import stats
    rng = np.random.default_rng(0)
    levels = 17
    train = rng.integers(0, levels, (500, 5)) / 8.0 - 1
    test = rng.integers(0, levels, (7, 5)) / 8.0 - 1
    bpd = likelihood.gaussian_bpd(train, test, levels, seed=3)
    rng = np.random.default_rng(3)
    train_y = train + rng.random(train.shape) / 8
    test_y = test + rng.random(test.shape) / 8
    log_p = stats.multivariate_normal(train_y.mean(0), np.cov(train_y.T, bias=True)).logpdf(test_y)
    np.testing.assert_allclose(bpd, -log_p / (5 * np.log(2)) + 3, rtol=1e-6)
