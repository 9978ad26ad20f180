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
  space-to-depth (by 2) of its padded input, computed with Winograd's minimal filtering
  F(2x2, 2x2) (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
  The output is cut into 2x2 tiles. Each tile's 3x3 input window is transformed (sums and
  differences of its rows, then of its columns: ``_WINO_IN``), and each of the 9 transformed
  positions is one product, over all tiles, against a (4 C, O) matrix: the kernel's 2x2 blocks
  transformed once in ``prepare`` (``_WINO_KERNEL``). Adding neighbouring products
  (``_WINO_OUT``) gives the tile. That is 9 products per 4 outputs where the direct form takes
  16, so 9/16 of the multiply-adds. The transforms have coefficients 0 and +-1 only, so they
  add no rounding beyond a reordering of the sums. The input gradient runs the same steps
  transposed: 9 products against the transposed matrices.

The products stay separate rather than one batched product over stacked positions: on the CPU
the stacking is a copy, and separate products measured faster (``benchmarks/FINDINGS.md``).

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
# Winograd's F(2, 2) along one axis, for a 2-tap correlation y_i = d_i g_0 + d_{i+1} g_1 of a
# 3-entry window d into 2 outputs: y = _WINO_OUT @ ((_WINO_KERNEL @ g) * (_WINO_IN @ d)), with
# 3 multiplications where the direct form takes 4. Each row lists (coefficient, index) pairs.
_WINO_IN = (((1, 0), (-1, 1)), ((1, 1),), ((1, 2), (-1, 1)))  # d0 - d1, d1, d2 - d1
_WINO_KERNEL = (((1, 0),), ((1, 0), (1, 1)), ((1, 1),))  # g0, g0 + g1, g1
_WINO_OUT = (((1, 0), (1, 1)), ((1, 1), (1, 2)))  # m0 + m1, m1 + m2
# Multiply-adds of a stride-2 layer here per those of its direct form: 3 x 3 per 2 x 2 x 4.
STRIDE2_MULTIPLY_ADDS = 9 / 16
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
    """A 4x4 HWIO kernel as a (16 C, O) matrix: split in four, the (4 C, O) blocks (a, b) of the
    2x2 stride-1 convolution over the space-to-depth map; rows ordered (block row a, block
    column b, row parity, column parity, c), kernel tap (2a + row parity, 2b + column parity)."""
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
    i = 0  # weights["down"][i]: (3x3 transformed kernels, their transposes, bias)
    while f"down{i}" in params:
        weights["down"].append(down_weights(params[f"down{i}"]["kernel"],
                                            params[f"down{i}"]["bias"], cast))
        i += 1
    return weights


def down_weights(kernel_44CO: Array, bias_O: Array, cast=lambda a: a) -> tuple:
    """A 4x4 stride-2 layer's ``prepare``d weights: its 3x3 Winograd-transformed (4 C, O)
    kernels, their transposes (for the input gradient), and the bias."""
    b00, b01, b10, b11 = jnp.split(down_matrix(kernel_44CO), 4)  # 2x2 blocks (row, column)
    kernel = _winograd_kernel(((b00, b01), (b10, b11)))
    return (tuple(tuple(cast(k) for k in row) for row in kernel),
            tuple(tuple(cast(k.T) for k in row) for row in kernel), bias_O)


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


def _combine(rows, parts: list) -> list:
    """Linear combinations of ``parts`` (arrays, or equal nested lists of them, combined
    entry by entry): one per row of (coefficient +-1, index) pairs."""
    def one(row):
        def combination(*xs):
            terms = [xs[i] if c == 1 else -xs[i] for c, i in row]
            return sum(terms[1:], terms[0])
        return jax.tree.map(combination, *parts)
    return [one(row) for row in rows]


def _transpose(rows, n: int) -> tuple:
    """The (coefficient, index) rows of the transpose of a matrix with ``n`` columns."""
    return tuple(tuple((c, j) for j, row in enumerate(rows) for c, i in row if i == k)
                 for k in range(n))


# The input gradient's tables: the transposes of the output and input transforms.
_WINO_OUT_T = _transpose(_WINO_OUT, 3)  # dy0, dy0 + dy1, dy1
_WINO_IN_T = _transpose(_WINO_IN, 3)  # dt0, -dt0 + dt1 - dt2, dt2


def _winograd_kernel(blocks) -> list:
    """The 3x3 transformed kernels G g G^T from the 2x2 grid of (4 C, O) blocks g."""
    rows = _combine(_WINO_KERNEL, [list(b) for b in blocks])  # 3 rows of 2 blocks
    return [_combine(_WINO_KERNEL, row) for row in rows]


def _windows(x: Array, axis: int, tiles: int) -> list[Array]:
    """Entry k (k = 0, 1, 2) of each tile's 3-wide window along ``axis``: tiles start 2 apart."""
    return [jax.lax.slice_in_dim(x, k, k + 2 * tiles - 1, 2, axis) for k in range(3)]


def _overlap_windows(parts: list[Array], axis: int) -> Array:
    """The transpose of ``_windows``: entry k of tile t added at 2 t + k; 2 tiles + 1 long."""
    p0, p1, p2 = parts
    width = [(0, 0)] * p0.ndim
    right, left = list(width), list(width)
    right[axis], left[axis] = (0, 1), (1, 0)
    even = jnp.pad(p0, right) + jnp.pad(p2, left)  # positions 0, 2, ..., 2 tiles
    odd = jnp.pad(p1, right)  # positions 1, 3, ..., and one past the end
    both = jnp.stack([even, odd], axis + 1)
    shape = list(even.shape)
    shape[axis] *= 2
    return jax.lax.slice_in_dim(both.reshape(shape), 0, shape[axis] - 1, 1, axis)


def _down(h_BHWC: Array, kernel, bias: Array) -> Array:
    """The 4x4 stride-2 layer, Winograd F(2x2, 2x2) over the space-to-depth of its padded input."""
    s = space_to_depth(_pad1(h_BHWC))  # (B, h + 1, w + 1, 4 C) for an h x w output
    b, th, tw = s.shape[0], (s.shape[1] - 1) // 2, (s.shape[2] - 1) // 2
    t = [_combine(_WINO_IN, _windows(r, 2, tw)) for r in _combine(_WINO_IN, _windows(s, 1, th))]
    m = [[_dot(t[u][v], kernel[u][v]) for v in range(3)] for u in range(3)]
    y = [_combine(_WINO_OUT, row) for row in _combine(_WINO_OUT, m)]  # y[i][j]: tile entry (i, j)
    y_BtitjO = jnp.stack([jnp.stack(row, 3) for row in y], 2)  # (B, th, 2, tw, 2, O)
    return y_BtitjO.reshape(b, 2 * th, 2 * tw, -1) + bias


def _down_input_grad(g_BhwO: Array, kernel_t) -> Array:
    b, h, w, o = g_BhwO.shape
    g = g_BhwO.reshape(b, h // 2, 2, w // 2, 2, o)
    dm = _combine(_WINO_OUT_T, [_combine(_WINO_OUT_T, [g[:, :, i, :, j] for j in range(2)])
                                for i in range(2)])
    dt = [[_dot(dm[u][v], kernel_t[u][v]) for v in range(3)] for u in range(3)]
    cols = [_overlap_windows(_combine(_WINO_IN_T, row), 2) for row in dt]
    return depth_to_space(_overlap_windows(_combine(_WINO_IN_T, cols), 1))[:, 1:-1, 1:-1]


def preactivations(weights: dict, x_BHWC: Array, act: Callable[[Array], Array]) -> list[Array]:
    """The forward pass: the pre-activations of ``conv_in`` and of each 4x4 stride-2 layer."""
    z = _conv_in(x_BHWC, weights["in"]) + weights["in_bias"]
    pre = [z]
    for kernel, _, bias in weights["down"]:
        z = _down(act(z), kernel, bias)
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
    1 of 192 images over three batches of 64, by 1.9e-2 of max |g| (the others within 1.3e-6),
    and the tests check that each such image has a pre-activation of opposite sign in the two
    programs; in float64 the two agreed to 1e-15 everywhere (tests/test_conv_grad.py).
    """
    pre = preactivations(weights, x_BHWC, act)
    # The head is a 4x4 valid convolution over the 4x4 map: f is linear in its input.
    g = jnp.broadcast_to(weights["head"], pre[-1].shape)
    for (_, kernel_t, _), z in zip(weights["down"][::-1], pre[:0:-1]):
        g = _down_input_grad(jax.vjp(act, z)[1](g)[0], kernel_t)
    return _conv_in_input_grad(jax.vjp(act, pre[0])[1](g)[0], weights["in_t"]).astype(x_BHWC.dtype)


def make_input_grad(act: Callable[[Array], Array], dtype=None):
    """Returns ``input_grad_for(params) -> (x_BHWC -> grad_x sum_B f(params, x))``; the weight
    transforms run when ``input_grad_for`` is called, so call it outside the sampler's loop."""

    def input_grad_for(params) -> Callable[[Array], Array]:
        weights = prepare(params, dtype)
        return lambda x_BHWC: input_grad(weights, x_BHWC, act)

    return input_grad_for
