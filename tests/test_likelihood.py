import json
import math
import os

import jax
import jax.numpy as jnp
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


def test_levels_of_each_data_set():
    config = test_config.get_config()
    assert likelihood.num_levels(config.data) == 17
    config.data.dataset = "cifar10"
    assert likelihood.num_levels(config.data) == 256
    config.data.dataset, config.data.image_size = "digits", 16
    with pytest.raises(ValueError, match="17 levels"):
        likelihood.num_levels(config.data)


FIELDS = ("log_likelihood", "log_likelihood_stderr", "log_likelihood_S1",
          "log_likelihood_S10")


def check_bound_json(workdir, num):
    saved = json.load(open(os.path.join(workdir, "eval", "bpd.json")))
    stats, per, protocol = saved["stats"], saved["per_example"], saved["protocol"]
    for name in FIELDS:
        assert np.isfinite(stats[name]), name
    assert protocol["num_importance_samples"] == 10 and protocol["obs_std"] > 0
    assert "importance-weighted" in protocol["estimator"]
    best = np.array(per["log_likelihood"])
    assert len(best) == num and stats["log_likelihood"] == pytest.approx(best.mean())
    # L_1 <= L_10 point by point: the mean of log w is below the log of the mean weight.
    assert np.all(np.array(per["log_likelihood_S1"]) <= best + 1e-5)
    points = np.load(os.path.join(workdir, "eval", "bpd_points.npy"))
    assert len(points) == num
    return saved, points


@pytest.mark.usefixtures("quick_compile")
def test_bpd_mode_on_a_gelu_ebm_writes_the_bound_and_the_review_diagnostic(gelu_workdir):
    runner.evaluate(gelu_workdir, "bpd", seed=0, num_images=2, split="test",
                    num_importance_samples=10, ais_images=1, num_chains=4, num_temps=5,
                    fit_images=2, inversion_iters=5)
    saved, points = check_bound_json(gelu_workdir, 2)
    stats, protocol = saved["stats"], saved["protocol"]
    assert protocol["obs_std_source"].startswith("fitted on the training split")
    assert float(protocol["obs_std"]) in [float(t) for t in protocol["obs_std_grid_bound"]]
    grid = [float(t) for t in protocol["obs_std_grid_bound"]]
    assert protocol["obs_std_at_grid_end"] == (float(protocol["obs_std"]) in (min(grid),
                                                                           max(grid)))
    assert "integrated over each value's bin" in protocol["discretisation"]
    # The saved points are the digits themselves, on their 17 levels.
    np.testing.assert_allclose(points * 8 + 8, np.round(points * 8 + 8), atol=1e-5)
    assert stats["bpd"] == pytest.approx(-stats["log_likelihood"] / (64 * np.log(2)))
    for name in ("review_log_density", "review_bpd", "review_recon_mse", "ais_log_likelihood"):
        assert np.isfinite(stats[name]), name


@pytest.mark.usefixtures("quick_compile")
@pytest.mark.parametrize("family", ["generator", "latent_ebm"])
def test_bpd_mode_on_the_latent_families_uses_their_obs_std(family_workdir, family):
    path = family_workdir(family)
    runner.evaluate(path, "bpd", seed=0, num_images=3, split="test",
                    num_importance_samples=10, ais_images=0)
    saved, _ = check_bound_json(path, 3)
    assert saved["protocol"]["obs_std_source"] == "the model's obs_std"
    assert saved["protocol"]["obs_std"] == pytest.approx(0.3 if family == "generator" else 0.2)
    if family == "latent_ebm":
        assert np.isfinite(saved["stats"]["prior_log_z"])


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


def test_ppca_baseline_with_every_component_is_the_full_gaussian():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 17, (400, 6)) / 8.0 - 1
    test = rng.integers(0, 17, (9, 6)) / 8.0 - 1
    np.testing.assert_allclose(likelihood.ppca_bpd(train, test, 17, 6, seed=1),
                               likelihood.gaussian_bpd(train, test, 17, seed=1), rtol=1e-6)
