"""Latent-variable networks: a pure joint ``energy(params, x_B..., z_Bd) -> f_B`` for each.

``f`` is log p(x, z) up to a constant (the negative joint energy). Two families share it:

- ``latent_ebm``: a deep continuous-latent Boltzmann machine,

      f(x, z) = <h(x), W z + b> + u(z) - |z|^2 / 2,

  with h(x) a ConvNet (images) or MLP (vectors) feature, u a small MLP on z alone. With u = 0,
  p(z | x) is exactly N(W^T h(x), I), as in a Gaussian RBM with a deep visible side.
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
    """f(x, z) = <h(x), W z + b> + u(z) - |z|^2 / 2, with ``feature`` computing h(x)."""
    feature: nn.Module
    hidden: int = 64
    activation: str = "leaky_relu"

    @nn.compact
    def __call__(self, x_B: Array, z_Bd: Array) -> Array:
        h_BH = self.feature(x_B)
        wz_BH = _dense(h_BH.shape[-1], "interaction")(z_Bd)
        act = nets.get_activation(self.activation)
        u_B1 = _dense(1, "z_out")(act(_dense(self.hidden, "z_hidden")(z_Bd)))
        return (jnp.sum(h_BH * wz_BH, axis=-1) + u_B1[:, 0]
                - 0.5 * jnp.sum(jnp.square(z_Bd), axis=-1))


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
    """``energy(params, x_B..., z_Bd) -> f_B`` = <h(x), W z + b> + u(z) - |z|^2 / 2."""
    module: nn.Module
    data_shape: tuple[int, ...]
    latent_dim: int

    def init(self, key: Array):
        x = jnp.zeros((1,) + self.data_shape, jnp.float32)
        z = jnp.zeros((1, self.latent_dim), jnp.float32)
        return self.module.init(key, x, z)["params"]

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
    """The latent EBM of ``model_config``: the ConvNet (images) or MLP (vectors) of
    ``model_config.name`` as the feature h(x) of size ``feature_dim``, meeting z in R^d."""
    data_shape = tuple(int(d) for d in data_shape)
    feature = nets.build_model(model_config, data_shape,
                               features=int(model_config.feature_dim)).module
    module = LatentEnergy(feature, hidden=int(model_config.latent_hidden),
                          activation=model_config.get("activation", "leaky_relu"))
    return LatentEnergyModel(module, data_shape, int(model_config.latent_dim))


def build_generator(model_config, data_shape: Sequence[int]) -> GeneratorModel:
    """The generator g(z) of ``model_config``: transposed convs for images (``name`` conv),
    an MLP for vectors."""
    data_shape = tuple(int(d) for d in data_shape)
    activation = model_config.get("activation", "leaky_relu")
    if model_config.get("name", "conv") == "conv":
        nets.build_model(model_config, data_shape)  # checks the image shape
        module = ConvGenerator(data_shape[0], data_shape[-1], int(model_config.nf), activation)
    else:
        module = MLPGenerator(data_shape[0], tuple(model_config.hidden_dims), activation)
    return GeneratorModel(module, data_shape, int(model_config.latent_dim),
                          float(model_config.get("obs_std", 1.0)))
