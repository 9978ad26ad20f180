"""Latent-variable networks: a pure joint ``energy(params, x_B..., z_Bd) -> f_B`` for each.

``f`` is log p(x, z) up to a constant (the negative joint energy). Two families share it:

- ``latent_ebm``: a continuous-latent Boltzmann machine with Gaussian visible units,

      f(x, z) = -|x - g(z)|^2 / (2 obs_std^2) + u(z) - |z|^2 / 2,

  with g a top-down network (as in the generator) and u an MLP on z. Expanding the square gives
  the Gaussian RBM's form -|x|^2 / (2 obs_std^2) + <x, g(z)> / obs_std^2 + c(z): a Boltzmann
  machine whose visible-hidden coupling <x, g(z)> is deep on the hidden side. Integrating x out
  leaves the marginal log p(z) = u(z) - |z|^2 / 2 + const, an EBM on z (``log_prior``), and
  p(x | z) = N(g(z), obs_std^2 I). With u = 0 it is exactly the generator below;
  ``families/latent_ebm.py`` records why the earlier coupling <h(x), W z + b> with a deep
  feature h(x) of x learned codes that carried nothing.
- ``generator``: the top-down model x = g(z) + eps, z ~ N(0, I), eps ~ N(0, obs_std^2 I):

      f(x, z) = -|x - g(z)|^2 / (2 obs_std^2) - |z|^2 / 2.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ebm_jax.models import nets

Array = jax.Array


def _dense(features: int, name: str):
    return nn.Dense(features, kernel_init=nets._torch_kernel_init, name=name)


class LatentEnergy(nn.Module):
    """f(x, z) = -|x - g(z)|^2 / (2 obs_std^2) + u(z) - |z|^2 / 2 with g = ``generator`` and u
    an MLP of width ``hidden``."""
    generator: nn.Module
    obs_std: float = 0.3
    hidden: int = 64
    activation: str = "leaky_relu"

    def setup(self):
        self.z_hidden = _dense(self.hidden, "z_hidden")
        self.z_hidden2 = _dense(self.hidden, "z_hidden2")
        self.z_out = _dense(1, "z_out")

    def generate(self, z_Bd: Array) -> Array:
        return self.generator(z_Bd)

    def log_prior(self, z_Bd: Array) -> Array:
        """log p(z) + const = u(z) - |z|^2 / 2."""
        act = nets.get_activation(self.activation)
        u_B = self.z_out(act(self.z_hidden2(act(self.z_hidden(z_Bd)))))[:, 0]
        return u_B - 0.5 * jnp.sum(jnp.square(z_Bd), axis=-1)

    def __call__(self, x_B: Array, z_Bd: Array) -> Array:
        residual = x_B.reshape(x_B.shape[0], -1) - self.generator(z_Bd).reshape(x_B.shape[0], -1)
        return (self.log_prior(z_Bd)
                - 0.5 * jnp.sum(jnp.square(residual), axis=-1) / self.obs_std ** 2)


class ConvGenerator(nn.Module):
    """g(z): a dense layer to 4x4, then 4x4 stride-2 transposed convs halving the width up to
    ``image_size``, a 3x3 conv to ``channels`` and tanh (images in [-1, 1])."""
    image_size: int
    channels: int
    nf: int = 64
    activation: str = "leaky_relu"

    @nn.compact
    def __call__(self, z_Bd: Array) -> Array:
        act = nets.get_activation(self.activation)
        depth = nets.conv_depth(self.image_size)
        width = self.nf * 2 ** depth
        h = act(_dense(16 * width, "dense_in")(z_Bd)).reshape(-1, 4, 4, width)
        for i in range(depth):
            width //= 2
            h = act(nn.ConvTranspose(width, (4, 4), strides=(2, 2), padding="SAME",
                                     name=f"up{i}")(h))
        return jnp.tanh(nn.Conv(self.channels, (3, 3), padding="SAME", name="conv_out")(h))


class MLPGenerator(nn.Module):
    """g(z) for vector data: an MLP with a linear output."""
    out_dim: int
    hidden_dims: Sequence[int] = (128, 128)
    activation: str = "leaky_relu"

    @nn.compact
    def __call__(self, z_Bd: Array) -> Array:
        act = nets.get_activation(self.activation)
        h = z_Bd
        for i, width in enumerate(self.hidden_dims):
            h = act(_dense(width, f"dense{i}")(h))
        return _dense(self.out_dim, "out")(h)


@dataclasses.dataclass(frozen=True)
class LatentEnergyModel:
    """``energy(params, x_B..., z_Bd) -> f_B`` of ``LatentEnergy``; ``generate(params, z)`` is
    g(z), the mode of p(x | z); ``log_prior(params, z)`` is log p(z) up to a constant."""
    module: nn.Module
    data_shape: tuple[int, ...]
    latent_dim: int

    def init(self, key: Array):
        x = jnp.zeros((1,) + self.data_shape, jnp.float32)
        z = jnp.zeros((1, self.latent_dim), jnp.float32)
        return self.module.init(key, x, z)["params"]

    def generate(self, params, z_Bd: Array) -> Array:
        x = self.module.apply({"params": params}, z_Bd, method=LatentEnergy.generate)
        return x.reshape((z_Bd.shape[0],) + self.data_shape)

    def log_prior(self, params, z_Bd: Array) -> Array:
        return self.module.apply({"params": params}, z_Bd, method=LatentEnergy.log_prior)

    @functools.cached_property
    def energy(self):
        module = self.module
        return lambda params, x_B, z_Bd: module.apply({"params": params}, x_B, z_Bd)


@dataclasses.dataclass(frozen=True)
class GeneratorModel:
    """x = g(z) + eps: ``generate(params, z)`` is g(z), and ``energy(params, x, z)`` is
    log p(x, z) up to a constant, -|x - g(z)|^2 / (2 obs_std^2) - |z|^2 / 2."""
    module: nn.Module
    data_shape: tuple[int, ...]
    latent_dim: int
    obs_std: float = 1.0

    def init(self, key: Array):
        return self.module.init(key, jnp.zeros((1, self.latent_dim), jnp.float32))["params"]

    def generate(self, params, z_Bd: Array) -> Array:
        x = self.module.apply({"params": params}, z_Bd)
        return x.reshape((z_Bd.shape[0],) + self.data_shape)

    @functools.cached_property
    def energy(self):
        var = self.obs_std ** 2

        def energy(params, x_B, z_Bd):
            residual = x_B - self.generate(params, z_Bd)
            return (-0.5 * jnp.sum(jnp.square(z_Bd), axis=-1)
                    - 0.5 * jnp.sum(jnp.square(residual), axis=tuple(range(1, x_B.ndim))) / var)

        return energy


def build_latent_energy(model_config, data_shape: Sequence[int]) -> LatentEnergyModel:
    """The latent EBM of ``model_config``: g(z) as in ``build_generator`` with std
    ``obs_std``, and u(z) an MLP of width ``latent_hidden``."""
    data_shape = tuple(int(d) for d in data_shape)
    module = LatentEnergy(_generator_module(model_config, data_shape),
                          obs_std=float(model_config.get("obs_std", 0.3)),
                          hidden=int(model_config.latent_hidden),
                          activation=model_config.get("activation", "leaky_relu"))
    return LatentEnergyModel(module, data_shape, int(model_config.latent_dim))


def _generator_module(model_config, data_shape: tuple[int, ...]) -> nn.Module:
    """g(z): transposed convs for images (``name`` conv), an MLP for vectors."""
    activation = model_config.get("activation", "leaky_relu")
    if model_config.get("name", "conv") == "conv":
        nets.build_model(model_config, data_shape)  # checks the image shape
        return ConvGenerator(data_shape[0], data_shape[-1], int(model_config.nf), activation)
    return MLPGenerator(data_shape[0], tuple(model_config.hidden_dims), activation)


def build_generator(model_config, data_shape: Sequence[int]) -> GeneratorModel:
    """The generator g(z) of ``model_config`` with std ``obs_std``."""
    data_shape = tuple(int(d) for d in data_shape)
    return GeneratorModel(_generator_module(model_config, data_shape), data_shape,
                          int(model_config.latent_dim), float(model_config.get("obs_std", 1.0)))
