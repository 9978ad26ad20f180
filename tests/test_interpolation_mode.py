import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax.core import interpolation, sampler
from ebm_jax.core.prior import Prior
from ebm_jax.evaluation import digit_features, loaded_run
from ebm_jax.evaluation import runner


def test_interpolate_endpoints_and_norm():
    z1, z2 = jnp.ones((2, 3)), -jnp.ones((2, 3))
    z = interpolation.interpolate(z1, z2, [0.0, 0.6, 1.0])
    np.testing.assert_array_equal(z[0], z2)
    np.testing.assert_array_equal(z[2], z1)
    np.testing.assert_allclose(z[1], 0.6 - 0.8)  # rho z1 + sqrt(1 - rho^2) z2


def test_rho_one_column_is_the_chain_of_z1_with_the_same_noise(tiny_workdir):
    result = runner.evaluate(tiny_workdir, "interpolation", seed=5, num_rows=3, num_cols=4)
    x = np.load(os.path.join(tiny_workdir, "eval", "interpolation.npy"))
    assert x.shape == (3, 4, 8, 8, 1)
    run = loaded_run.load_workdir(tiny_workdir)
    key = jax.random.key(5)
    kw = sampler.sampling_kwargs(run.config.sampling)
    z1 = Prior().sample(jax.random.fold_in(key, 0), (3, 8, 8, 1))
    z2 = Prior().sample(jax.random.fold_in(key, 1), (3, 8, 8, 1))
    eps = jax.random.normal(jax.random.fold_in(key, 2), (5, 3, 8, 8, 1))
    energy = lambda v: run.energy(run.params, v)
    for col, z in ((3, z1), (0, z2)):
        chain = sampler.langevin(energy, z, None, 5, kw["step_size"], kw["noise_std"],
                                 noise=eps).x
        np.testing.assert_allclose(x[:, col], chain, rtol=1e-5, atol=1e-6)
    saved = json.load(open(os.path.join(tiny_workdir, "eval", "interpolation.json")))
    assert saved["protocol"]["rho"] == [0.0, 1 / 3, 2 / 3, 1.0]
    assert saved["protocol"]["fixed_noise"] is True
    ends = np.sqrt(np.mean(np.square(x[:, -1] - x[:, 0]).reshape(3, -1), axis=1)).mean()
    np.testing.assert_allclose(result["stats"]["rms_distance_of_ends"], ends, rtol=1e-5)


def test_each_rho_gets_the_digit_fid_of_its_column(tiny_workdir):
    result = runner.evaluate(tiny_workdir, "interpolation", seed=2, num_rows=20, num_cols=3)
    x = np.load(os.path.join(tiny_workdir, "eval", "interpolation.npy"))
    spec, params = digit_features.SPECS["digits"], digit_features.load("digits")
    reference = digit_features.features(spec, params, digit_features.split("digits")[0])[0]
    for col, rho in enumerate(("0.00", "0.50", "1.00")):
        point = digit_features.compare(spec, params, x[:, col], reference, kid_subsets=10, seed=2)
        for m in ("fid", "kid", "confident_fraction"):
            np.testing.assert_allclose(result["stats"][f"{m}_rho{rho}"], point[m], rtol=1e-6)
    assert result["stats"]["fid_rho0.50"] > 0


def test_without_fixed_noise_columns_draw_their_own_noise():
    f = lambda v: -0.5 * jnp.sum(v ** 2, axis=1)
    rho = [1.0, 1.0]
    fixed = interpolation.interpolation_chains(f, jax.random.key(0), (4, 2), rho, 3,
                                               step_size=0.1, noise_std=0.5)[0]
    free = interpolation.interpolation_chains(f, jax.random.key(0), (4, 2), rho, 3,
                                              fixed_noise=False, step_size=0.1,
                                              noise_std=0.5)[0]
    np.testing.assert_allclose(fixed[0], fixed[1])
    assert np.abs(free[0] - free[1]).min() > 0
