"""Energy networks: a pure ``energy(params, x_B...) -> f_B`` for each architecture.

``f`` is the negative energy: the model density is proportional to ``exp f(x)``.

Initialisation follows PyTorch's defaults (``nn.Conv2d`` / ``nn.Linear``): weights and biases
are drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)). The reference implementation of the method
trains with exactly this initialisation and no normalisation layers; the learning dynamics of
short-run MCMC (step size 1, noise 0.01) depend on the scale of the initial gradient field, so
we keep it rather than Flax's lecun-normal default with zero biases.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ebm_jax.models import conv_grad
from ebm_jax.models import input_grad as input_grad_lib

Array = jax.Array
EnergyFn = Callable[..., Array]

ACTIVATIONS = ("leaky_relu", "gelu", "swish", "softplus", "elu", "tanh")


def get_activation(name: str, leaky_slope: float = 0.2) -> Callable[[Array], Array]:
    """Returns the activation called ``name``; ``gelu`` or ``swish`` make the net smooth."""
    if name == "leaky_relu":
        return functools.partial(nn.leaky_relu, negative_slope=leaky_slope)
    if name == "gelu":
        return functools.partial(nn.gelu, approximate=False)
    if name in ("swish", "silu"):
        return nn.swish
    if name == "softplus":
        return nn.softplus
    if name == "elu":
        return nn.elu
    if name == "tanh":
        return jnp.tanh
    raise ValueError(f"unknown activation {name!r}; choose one of {ACTIVATIONS}")


_torch_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _torch_bias_init(fan_in: int):
    bound = 1.0 / math.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _conv(features: int, kernel: int, stride: int, padding, in_features: int, name: str):
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=padding,
                   kernel_init=_torch_kernel_init,
                   bias_init=_torch_bias_init(in_features * kernel * kernel), name=name)


def conv_depth(image_size: int) -> int:
    """Number of 4x4 stride-2 convolutions that take ``image_size`` down to 4."""
    depth = int(round(math.log2(image_size / 4))) if image_size >= 4 else -1
    if depth < 0 or 4 * 2**depth != image_size:
        raise ValueError(f"image_size must be 4 times a power of two (8, 16, 32, 64, 128, ...), "
                         f"got {image_size}")
    return depth


class ConvEnergy(nn.Module):
    """The paper's ConvNet: conv3x3 s1 (C->nf), 4x4 s2 convs doubling the width down to 4x4,
    then a 4x4 valid conv to one number. No normalisation. Input NHWC in [-1, 1].

    ``features`` > 0 makes the head give that many numbers per image (a feature vector, for
    latent-variable energies) instead of one."""
    nf: int = 64
    activation: str = "leaky_relu"
    leaky_slope: float = 0.2
    features: int = 0

    @nn.compact
    def __call__(self, x_BHWC: Array) -> Array:
        act = get_activation(self.activation, self.leaky_slope)
        size, channels = x_BHWC.shape[1], x_BHWC.shape[-1]
        h = act(_conv(self.nf, 3, 1, ((1, 1), (1, 1)), channels, "conv_in")(x_BHWC))
        width = self.nf
        for i in range(conv_depth(size)):
            h = act(_conv(2 * width, 4, 2, ((1, 1), (1, 1)), width, f"down{i}")(h))
            width *= 2
        f_B11F = _conv(max(self.features, 1), 4, 1, "VALID", width, "head")(h)
        if self.features:
            return f_B11F.reshape(x_BHWC.shape[0], self.features)
        return f_B11F.reshape(x_BHWC.shape[0])


class MLPEnergy(nn.Module):
    """A fully connected energy for vector data (1-D and 2-D toy densities); ``features`` > 0
    gives a feature vector per example instead of one number."""
    hidden_dims: Sequence[int] = (128, 128, 128)
    activation: str = "swish"
    leaky_slope: float = 0.2
    features: int = 0

    @nn.compact
    def __call__(self, x_BD: Array) -> Array:
        act = get_activation(self.activation, self.leaky_slope)
        h, fan_in = x_BD, x_BD.shape[-1]
        for i, width in enumerate(self.hidden_dims):
            h = act(nn.Dense(width, kernel_init=_torch_kernel_init,
                             bias_init=_torch_bias_init(fan_in), name=f"dense{i}")(h))
            fan_in = width
        f_BF = nn.Dense(max(self.features, 1), kernel_init=_torch_kernel_init,
                        bias_init=_torch_bias_init(fan_in), name="head")(h)
        return f_BF if self.features else f_BF[:, 0]


@dataclasses.dataclass(frozen=True)
class EnergyModel:
    """A Flax module with the example shape it was built for.

    ``energy`` is a pure function ``energy(params, x_B...) -> f_B``; ``init(key)`` returns params.
    """
    module: nn.Module
    data_shape: tuple[int, ...]

    def init(self, key: Array):
        dummy = jnp.zeros((1,) + tuple(self.data_shape), jnp.float32)
        return self.module.init(key, dummy)["params"]

    @functools.cached_property
    def energy(self) -> EnergyFn:
        module = self.module

        def energy(params, x):
            return module.apply({"params": params}, x)

        return energy

    def _matmul_activation(self, impl: str) -> Callable[[Array], Array] | None:
        """The activation when ``impl`` resolves to ``conv_grad``'s matrix-product form for this
        model (a ``ConvEnergy`` giving one number per image), else None."""
        module = self.module
        if (isinstance(module, ConvEnergy) and not module.features
                and input_grad_lib.resolve_grad_impl(impl) == "matmul"):
            return get_activation(module.activation, module.leaky_slope)
        return None

    def energy_with(self, impl: str = "auto") -> EnergyFn:
        """``energy`` in the form ``impl`` names (``input_grad.resolve_grad_impl``): for a
        ``ConvEnergy`` under ``matmul``, ``conv_grad.energy``, the same function written with
        matrix products, which the CPU runs faster, and differentiable in the parameters alike;
        otherwise ``energy`` itself. The learning step's energy gap uses it."""
        act = self._matmul_activation(impl)
        if act is None:
            return self.energy
        return lambda params, x: conv_grad.energy(conv_grad.prepare(params), x, act)

    def input_grad(self, params, dtype=None, impl: str = "auto") -> Callable[[Array], Array]:
        """``x_B... -> grad_x sum_B f(params, x)``, the sampler's gradient.

        For a ``ConvEnergy`` giving one number per image, with ``impl`` resolving to ``matmul``
        (``input_grad.resolve_grad_impl``), it is ``conv_grad``'s matrix-product form, whose
        weight transforms run here, once: call this outside the sampler's loop. ``dtype`` (e.g.
        bfloat16) is the operand type of its products. Otherwise it is ``jax.grad`` of the
        energy (with ``dtype``: of the energy on parameters and input cast to ``dtype``, the
        gradient returned in the input's type).
        """
        act = self._matmul_activation(impl)
        if act is not None:
            return conv_grad.make_input_grad(act, dtype)(params)
        energy = self.energy
        if dtype is not None:
            params = jax.tree_util.tree_map(lambda p: p.astype(dtype), params)
            return lambda x: jax.grad(
                lambda v: jnp.sum(energy(params, v.astype(dtype)).astype(jnp.float32)))(x)
        return jax.grad(lambda x: jnp.sum(energy(params, x)))


def build_model(model_config, data_shape: Sequence[int], features: int = 0) -> EnergyModel:
    """Builds the energy model named by ``model_config.name`` ('conv' or 'mlp'); with
    ``features`` > 0 its output is a feature vector of that size per example."""
    name = model_config.get("name", "conv")
    activation = model_config.get("activation", "leaky_relu")
    slope = model_config.get("leaky_slope", 0.2)
    if name == "conv":
        if len(data_shape) != 3:
            raise ValueError(f"the conv energy needs images (H, W, C), got example shape {data_shape}")
        if data_shape[0] != data_shape[1]:
            raise ValueError(f"the conv energy needs square images, got {data_shape}")
        conv_depth(data_shape[0])
        module = ConvEnergy(nf=model_config.get("nf", 64), activation=activation, leaky_slope=slope,
                            features=features)
    elif name == "mlp":
        if len(data_shape) != 1:
            raise ValueError(f"the mlp energy needs vectors (D,), got example shape {data_shape}")
        module = MLPEnergy(hidden_dims=tuple(model_config.get("hidden_dims", (128, 128, 128))),
                           activation=activation, leaky_slope=slope, features=features)
    else:
        raise ValueError(f"unknown model.name {name!r}; choose 'conv' or 'mlp'")
    return EnergyModel(module, tuple(int(d) for d in data_shape))


def count_params(params) -> int:
    return int(sum(p.size for p in jax.tree_util.tree_leaves(params)))
