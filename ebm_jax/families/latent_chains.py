"""Short-run Langevin for latent-variable models: inference and synthesis.

Both chains are ``sampler.langevin`` on a joint log-density ``joint_fn(x_B..., z_Bd) -> f_B``
(any callable; ``LatentModel.energy`` with its params closed over is one):

- inference, z ~ p(z | x): the chain runs over z with x held fixed, from z_0 ~ N(0, init_std^2)
  (cold start) or from a stored z (warm start); K, s, sigma from the ``inference`` block;
- synthesis, (x, z) ~ p(x, z): the chain runs over the pair, packed into one vector per
  example, from x_0 ~ p_0 (the ``sampling`` block's init) and z_0 ~ N(0, init_std^2), with the
  ``sampling`` block's K and its s and sigma for x and for z. The generator family needs no
  chain here: z ~ N(0, I), x = g(z).

The Langevin update is z <- z + s grad f + sigma eps; it targets exp(f) as s -> 0 when
sigma^2 = 2 s.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from ebm_jax.core import sampler
from ebm_jax.core.prior import Prior

Array = jax.Array
JointFn = Callable[[Array, Array], Array]


def inference_kwargs(inference_config) -> dict:
    """The ``langevin`` keyword arguments (s, sigma, unroll) of an ``inference`` block; its
    ``num_steps`` is K."""
    c = inference_config
    return dict(step_size=float(c.step_size), noise_std=float(c.noise_std),
                unroll=sampler.resolve_unroll(c.get("unroll", 0), sampler.default_unroll()))


def init_latents(key: Array, num: int, latent_dim: int, std: float = 1.0) -> Array:
    """z_0 ~ N(0, std^2 I), shaped (num, latent_dim)."""
    return std * jax.random.normal(key, (num, latent_dim), jnp.float32)


def infer(joint_fn: JointFn, x_B: Array, z0_Bd: Array, key: Array | None,
          num_steps: int, step_size: float, noise_std: float,
          **langevin_kwargs) -> sampler.ChainResult:
    """K Langevin steps on z targeting p(z | x) ∝ exp f(x, z), x fixed; the result's ``x``
    field holds the final z."""
    return sampler.langevin(lambda z: joint_fn(x_B, z), z0_Bd, key, num_steps, step_size,
                            noise_std, **langevin_kwargs)


def pack(x_B: Array, z_Bd: Array) -> Array:
    """One flat vector (x, z) per example, so one Langevin chain moves both."""
    return jnp.concatenate([x_B.reshape(x_B.shape[0], -1), z_Bd], axis=1)


def unpack(v_BN: Array, data_shape: Sequence[int]) -> tuple[Array, Array]:
    size = math.prod(data_shape)
    return v_BN[:, :size].reshape((v_BN.shape[0],) + tuple(data_shape)), v_BN[:, size:]


def synthesize(joint_fn: JointFn, key: Array, num: int, data_shape: Sequence[int],
               latent_dim: int, num_steps, *, step_size: float, noise_std: float,
               prior: Prior = Prior(), latent_init_std: float = 1.0,
               latent_step_size: float | None = None, latent_noise_std: float | None = None,
               **langevin_kwargs) -> tuple[Array, Array, sampler.ChainResult]:
    """K joint Langevin steps on (x, z) from fresh noise; returns (x, z, chain result).

    x moves with ``step_size`` and ``noise_std``, z with ``latent_step_size`` and
    ``latent_noise_std`` (default: the same as x). Keys: x_0 ``fold_in(key, 0)``, chain noise
    ``fold_in(key, 1)``, z_0 ``fold_in(key, 2)``."""
    shape = (num,) + tuple(data_shape)
    x_size = math.prod(shape[1:])

    def per_coordinate(for_x, for_z):
        for_z = for_x if for_z is None else for_z
        return jnp.concatenate([jnp.full((x_size,), for_x, jnp.float32),
                                jnp.full((latent_dim,), for_z, jnp.float32)])

    x0 = prior.sample(jax.random.fold_in(key, 0), shape)
    z0 = init_latents(jax.random.fold_in(key, 2), num, latent_dim, latent_init_std)
    out = sampler.langevin(lambda v: joint_fn(*unpack(v, data_shape)), pack(x0, z0),
                           jax.random.fold_in(key, 1), num_steps,
                           per_coordinate(step_size, latent_step_size),
                           per_coordinate(noise_std, latent_noise_std), **langevin_kwargs)
    x, z = unpack(out.x, data_shape)
    return x, z, out


def synthesis_kwargs(config) -> dict:
    """The keyword arguments of ``synthesize`` held in a config (the ``sampling`` block, and
    the ``inference`` block's z_0 scale)."""
    s_cfg = config.sampling
    return dict(sampler.sampling_kwargs(s_cfg), latent_init_std=float(config.inference.init_std),
                latent_step_size=float(s_cfg.latent_step_size),
                latent_noise_std=float(s_cfg.latent_noise_std))
