"""``--mode=interpolation``: short-run chains from z_rho = rho z1 + sqrt(1 - rho^2) z2.

Each row draws z1, z2 ~ p_0; each column is one rho in [0, 1]. With ``fixed_noise`` (the
default) every column replays the same Langevin noise eps, so a row shows how M_theta moves
with its initial state alone, and the column rho = 1 is exactly the chain of z1.

Keys: z1 ``fold_in(key(seed), 0)``, z2 ``fold_in(key(seed), 1)``, the noise
``fold_in(key(seed), 2)`` (drawn as one array of shape (K, rows, ...)); without fixed noise,
column j uses ``fold_in(fold_in(key(seed), 3), j)`` as ``langevin``'s key.
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax.evaluation import evaluation, stats
from ebm_jax import plotting
from ebm_jax.core import sampler


def interpolate(z1, z2, rho_R):
    """z_rho for every rho: shape (R, *z1.shape)."""
    rho = jnp.asarray(rho_R, z1.dtype).reshape((-1,) + (1,) * z1.ndim)
    return rho * z1[None] + jnp.sqrt(jnp.maximum(1.0 - rho * rho, 0.0)) * z2[None]


def interpolation_chains(energy_fn, key, shape, rho_R, num_steps: int, *, fixed_noise=True,
                         **sampling_kwargs):
    """Returns ``(x_RB..., z1_B..., z2_B..., eps)`` (``eps`` None without fixed noise): the
    final states of the chains from each z_rho, with the keys of the module docstring."""
    kw = dict(sampling_kwargs)
    init = {k: kw.pop(k) for k in ("init", "init_low", "init_high", "init_std") if k in kw}
    p0 = dict(kind=init.get("init", "uniform"), low=init.get("init_low", -1.0),
              high=init.get("init_high", 1.0), std=init.get("init_std", 1.0))
    z1 = sampler.init_chains(jax.random.fold_in(key, 0), shape, **p0)
    z2 = sampler.init_chains(jax.random.fold_in(key, 1), shape, **p0)
    z_RB = interpolate(z1, z2, rho_R)
    eps = None
    if fixed_noise:
        eps = jax.random.normal(jax.random.fold_in(key, 2), (num_steps,) + tuple(shape))
        run = lambda z, k: sampler.langevin(energy_fn, z, None, num_steps, noise=eps, **kw).x
    else:
        run = lambda z, k: sampler.langevin(energy_fn, z, k, num_steps, **kw).x
    keys = jax.vmap(lambda j: jax.random.fold_in(jax.random.fold_in(key, 3), j))(
        jnp.arange(len(rho_R)))
    return jax.lax.map(lambda zk: run(*zk), (z_RB, keys)), z1, z2, eps


def evaluate_interpolation(run, config, out_dir: str, request: evaluation.Request) -> dict:
    num_rows = int(request.option("num_rows", min(request.num_samples, 8)))
    num_cols = int(request.option("num_cols", 10))
    fixed_noise = bool(request.option("fixed_noise", True))
    rho = np.linspace(0.0, 1.0, num_cols)
    kw = sampler.sampling_kwargs(config.sampling)
    num_steps = int(config.sampling.num_steps)
    shape = (num_rows,) + tuple(run.data_shape)

    @jax.jit
    def chains(params, key):
        return interpolation_chains(lambda x: run.energy(params, x), key, shape, rho, num_steps,
                                    fixed_noise=fixed_noise, **kw)[0]

    x_RB = np.asarray(chains(run.params, jax.random.key(request.seed)))
    x_BR = np.swapaxes(x_RB, 0, 1)
    np.save(os.path.join(out_dir, "interpolation.npy"), x_BR)
    if run.is_image:
        plotting.save_image_grid(x_BR.reshape((-1,) + x_BR.shape[2:]),
                                 os.path.join(out_dir, "interpolation.png"), ncol=num_cols)
    step_B = np.sqrt(np.mean(np.square(np.diff(x_BR, axis=1)).reshape(num_rows, num_cols - 1, -1),
                             axis=-1))
    ends = np.sqrt(np.mean(np.square(x_BR[:, -1] - x_BR[:, 0]).reshape(num_rows, -1), axis=-1))
    protocol = evaluation.protocol(config, num_rows * num_cols, request.seed, run.step)
    protocol.update(num_rows=num_rows, rho=[float(r) for r in rho], fixed_noise=fixed_noise)
    summary = stats.sample_summary(x_RB.reshape((-1,) + x_RB.shape[2:]))
    return {"mode": "interpolation", "protocol": protocol,
            "stats": {"rms_step_between_columns": float(step_B.mean()),
                      "max_rms_step_between_columns": float(step_B.max()),
                      "rms_distance_of_ends": float(ends.mean()),
                      "saturation": summary["saturation"]}}
