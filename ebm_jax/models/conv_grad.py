"""The input gradient grad_x sum_B f(x) of ``ConvEnergy``, written as matrix products.

The Langevin sampler needs this gradient K times with the same parameters. ``jax.grad`` of the
energy gives convolutions whose kernels are flipped and transposed at every call, and on the
CPU a loop over them misses the fast convolution path. Here:

- the parameter-side transforms (kernel layouts) are done once, in ``prepare``, outside the
  sampler's loop;
- the 3x3 input convolution is one product of its 9 shifted copies of the input against a
  (9 C, nf) matrix; its input gradient is one product against the transpose followed by nine
  shifted additions;
- each 4x4 stride-2 convolution (padding 1) becomes a 2x2 stride-1 convolution over the
  space-to-depth (by 2) of its padded input: the sum of four products, one per shifted block,
  each against a (4 C, O) matrix; its input gradient is four products against the transposed
  blocks, shifted and added.

The products stay separate rather than one product over concatenated blocks: on the CPU the
concatenation is a copy, and the narrow products of the first layer's input gradient run closer
to the matmul ceiling when split (``benchmarks/FINDINGS.md``, 7% less time per Langevin step
at 32x32, nf=64, batch 64 on the AMD EPYC measured there).

``energy`` is the forward pass of the same products: the learning step's energy gap and its
parameter gradient use it, since on the CPU it also runs faster than the convolutions.

Everything is plain ``jax.numpy``: forward-mode (``jax.jvp``, ``jax.jacfwd``) and reverse-mode
differentiation through the gradient work as through ``jax.grad``.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Array = jax.Array
_SHIFTS = ((0, 0), (0, 1), (1, 0), (1, 1))  # the 2x2 blocks of a 4x4 stride-2 layer
_TAPS = tuple((u, v) for u in range(3) for v in range(3))  # the 3x3 input convolution's taps


def space_to_depth(x_BHWC: Array) -> Array:
    """(B, H, W, C) -> (B, H/2, W/2, 4C), channels ordered (row parity, column parity, c)."""
    b, h, w, c = x_BHWC.shape
    x = x_BHWC.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h // 2, w // 2, 4 * c)


def depth_to_space(x_BhwD: Array) -> Array:
    """The inverse of ``space_to_depth``."""
    b, h, w, d = x_BhwD.shape
    x = x_BhwD.reshape(b, h, w, 2, 2, d // 4).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, 2 * h, 2 * w, d // 4)


def down_matrix(kernel_44CO: Array) -> Array:
    """A 4x4 HWIO kernel as the (16 C, O) matrix acting on the four shifted space-to-depth
    blocks; rows ordered (block row a, block column b, row parity, column parity, c), kernel
    tap (2a + row parity, 2b + column parity)."""
    c, o = kernel_44CO.shape[2:]
    k = kernel_44CO.reshape(2, 2, 2, 2, c, o).transpose(0, 2, 1, 3, 4, 5)
    return k.reshape(16 * c, o)


def prepare(params, dtype=None) -> dict:
    """The parameter-side transforms of ``input_grad``; depends on the parameters only.

    ``dtype`` (e.g. ``jnp.bfloat16``) sets the operand type of the matrix products; they
    accumulate in float32 (float64 operands in float64) and everything else keeps the input's
    type.
    """
    cast = (lambda a: a) if dtype is None else (lambda a: a.astype(dtype))
    k_in = params["conv_in"]["kernel"]
    m_in = k_in.reshape(-1, k_in.shape[-1])  # (9 C, nf), rows ordered (tap row, tap column, c)
    weights = {"in": cast(m_in), "in_t": cast(m_in.T), "in_bias": params["conv_in"]["bias"],
               "head": params["head"]["kernel"][..., 0], "head_bias": params["head"]["bias"][0],
               "down": []}
    i = 0
    while f"down{i}" in params:
        m = down_matrix(params[f"down{i}"]["kernel"])
        blocks = jnp.split(m, 4)  # one (4 C, O) matrix per shifted block, in _SHIFTS order
        weights["down"].append((tuple(cast(b) for b in blocks), tuple(cast(b.T) for b in blocks),
                                params[f"down{i}"]["bias"]))
        i += 1
    return weights


def _accumulator(dtype) -> jnp.dtype:
    """float32 for float32 and narrower operands; float64 operands keep float64."""
    return jnp.promote_types(dtype, jnp.float32)


def _dot(a: Array, b: Array) -> Array:
    return jnp.matmul(a.astype(b.dtype), b, preferred_element_type=_accumulator(b.dtype))


def _pad1(x_BHWC: Array) -> Array:
    return jnp.pad(x_BHWC, ((0, 0), (1, 1), (1, 1), (0, 0)))


def _shifted(xp_BHWC: Array, offsets, h: int, w: int) -> list[Array]:
    """The h x w windows of a padded map at each (row, column) offset."""
    return [xp_BHWC[:, a:a + h, c:c + w] for a, c in offsets]


def _overlap_add(parts: list[Array], offsets, k: int) -> Array:
    """The transpose of ``_shifted`` for windows of k offsets a side: each part added into a map
    k - 1 rows and columns larger, at its offset."""
    return sum(jnp.pad(p, ((0, 0), (a, k - 1 - a), (c, k - 1 - c), (0, 0)))
               for p, (a, c) in zip(parts, offsets))


def _conv_in(x_BHWC: Array, matrix: Array) -> Array:
    """The 3x3, stride-1, padding-1 convolution as one product of the 9 shifted inputs."""
    _, h, w, _ = x_BHWC.shape
    return _dot(jnp.concatenate(_shifted(_pad1(x_BHWC), _TAPS, h, w), -1), matrix)


def _conv_in_input_grad(g_BHWF: Array, matrix_t: Array) -> Array:
    b, h, w, _ = g_BHWF.shape
    p = _dot(g_BHWF, matrix_t).reshape(b, h, w, len(_TAPS), -1)
    return _overlap_add([p[:, :, :, i] for i in range(len(_TAPS))], _TAPS, 3)[:, 1:-1, 1:-1]


def _down(h_BHWC: Array, blocks: tuple[Array, ...], bias: Array) -> Array:
    s = space_to_depth(_pad1(h_BHWC))
    views = _shifted(s, _SHIFTS, s.shape[1] - 1, s.shape[2] - 1)
    return sum(_dot(v, m) for v, m in zip(views, blocks)) + bias


def _down_input_grad(g_BhwO: Array, blocks_t: tuple[Array, ...]) -> Array:
    s = _overlap_add([_dot(g_BhwO, m) for m in blocks_t], _SHIFTS, 2)
    return depth_to_space(s)[:, 1:-1, 1:-1]


def preactivations(weights: dict, x_BHWC: Array, act: Callable[[Array], Array]) -> list[Array]:
    """The forward pass: the pre-activations of ``conv_in`` and of each 4x4 stride-2 layer."""
    z = _conv_in(x_BHWC, weights["in"]) + weights["in_bias"]
    pre = [z]
    for blocks, _, bias in weights["down"]:
        z = _down(act(z), blocks, bias)
        pre.append(z)
    return pre


def energy(weights: dict, x_BHWC: Array, act: Callable[[Array], Array]) -> Array:
    """f_B, the ConvEnergy's output, from the same products as ``input_grad``. Differentiable in
    the parameters through ``prepare``: the learning step's energy gap uses it."""
    h_BhwC = act(preactivations(weights, x_BHWC, act)[-1])
    return jnp.einsum("bhwc,hwc->b", h_BhwC, weights["head"]) + weights["head_bias"]


def input_grad(weights: dict, x_BHWC: Array, act: Callable[[Array], Array]) -> Array:
    """grad_x sum_B f(x) for the ConvEnergy whose ``prepare``d weights are given.

    It equals ``jax.grad`` of the energy up to float rounding, with one exception inherent to a
    piecewise-linear activation: where a pre-activation is within rounding of LeakyReLU's kink,
    the two programs' different summation orders can put it on different sides, and that
    unit's gradient takes the other slope. In float32 (32x32, nf 64, uniform noise) this touched
    3 of 192 images over three batches of 64, by up to 2.4e-2 of max |g|, each one with a
    pre-activation of opposite sign in the two programs; in float64 the two agreed to 2e-15
    everywhere (tests/test_conv_grad.py).
    """
    pre = preactivations(weights, x_BHWC, act)
    # The head is a 4x4 valid convolution over the 4x4 map: f is linear in its input.
    g = jnp.broadcast_to(weights["head"], pre[-1].shape)
    for (_, blocks_t, _), z in zip(weights["down"][::-1], pre[:0:-1]):
        g = _down_input_grad(jax.vjp(act, z)[1](g)[0], blocks_t)
    return _conv_in_input_grad(jax.vjp(act, pre[0])[1](g)[0], weights["in_t"]).astype(x_BHWC.dtype)


def make_input_grad(act: Callable[[Array], Array], dtype=None):
    """Returns ``input_grad_for(params) -> (x_BHWC -> grad_x sum_B f(params, x))``; the weight
    transforms run when ``input_grad_for`` is called, so call it outside the sampler's loop."""

    def input_grad_for(params) -> Callable[[Array], Array]:
        weights = prepare(params, dtype)
        return lambda x_BHWC: input_grad(weights, x_BHWC, act)

    return input_grad_for
