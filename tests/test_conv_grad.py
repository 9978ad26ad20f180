import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ebm_jax.models import conv_grad, nets


def build(size, nf, channels, activation):
    config = ml_collections.ConfigDict(dict(name="conv", nf=nf, activation=activation))
    model = nets.build_model(config, (size, size, channels))
    params = model.init(jax.random.key(size + nf))
    x = jax.random.uniform(jax.random.key(7), (2, size, size, channels), minval=-1, maxval=1)
    return model, params, x


def autodiff_grad(model, params, x):
    return jax.grad(lambda x: jnp.sum(model.energy(params, x)))(x)


def test_space_to_depth_layout_and_inverse():
    x = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3)
    s = conv_grad.space_to_depth(x)
    assert s.shape == (2, 2, 2, 12)
    # Block (1, 0), row parity 1, column parity 0, channel 2 is pixel (3, 0), channel 2.
    assert s[1, 1, 0, 2 * 3 + 0 * 3 + 2] == x[1, 3, 0, 2]
    np.testing.assert_array_equal(conv_grad.depth_to_space(s), x)


@pytest.mark.parametrize("h,w", [(8, 8), (16, 8), (8, 32)])
def test_winograd_stride2_layer_and_its_input_gradient_equal_the_convolution(h, w):
    # One, two or eight 2x2 output tiles a side, rows and columns unequal.
    k1, k2, k3, k4 = jax.random.split(jax.random.key(h * w), 4)
    x = jax.random.normal(k1, (2, h, w, 5))
    kernel, bias = jax.random.normal(k2, (4, 4, 5, 6)), jax.random.normal(k3, (6,))
    conv = lambda x: jax.lax.conv_general_dilated(
        x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias
    want, vjp = jax.vjp(conv, x)
    kernels, kernels_t, b = conv_grad.down_weights(kernel, bias)
    assert len(kernels) == 3 and all(k.shape == (20, 6) for row in kernels for k in row)
    got = conv_grad._down(x, kernels, b)
    assert got.shape == (2, h // 2, w // 2, 6)
    np.testing.assert_allclose(got, want, atol=1e-5 * float(jnp.max(jnp.abs(want))), rtol=0)
    g = jax.random.normal(k4, want.shape)
    grad_want, = vjp(g)
    grad_got = conv_grad._down_input_grad(g, kernels_t)
    assert grad_got.shape == x.shape
    np.testing.assert_allclose(grad_got, grad_want,
                               atol=1e-5 * float(jnp.max(jnp.abs(grad_want))), rtol=0)


@pytest.mark.parametrize("size,nf,channels", [(8, 8, 1), (32, 8, 3), (64, 4, 3)])
@pytest.mark.parametrize("activation", ["leaky_relu", "gelu"])
def test_matrix_product_gradient_equals_autodiff(size, nf, channels, activation):
    model, params, x = build(size, nf, channels, activation)
    want = autodiff_grad(model, params, x)
    got = jax.jit(lambda p, x: model.input_grad(p)(x))(params, x)
    assert got.shape == x.shape and got.dtype == jnp.float32
    scale = float(jnp.max(jnp.abs(want)))
    assert scale > 0
    np.testing.assert_allclose(got, want, atol=1e-5 * scale, rtol=0)


@pytest.mark.parametrize("size,nf,channels", [(8, 8, 1), (32, 8, 3)])
@pytest.mark.parametrize("activation", ["leaky_relu", "gelu"])
def test_matrix_product_energy_and_its_parameter_gradient_equal_the_flax_net(size, nf, channels,
                                                                           activation):
    model, params, x = build(size, nf, channels, activation)
    products = model.energy_with("matmul")
    assert products is not model.energy and model.energy_with("autodiff") is model.energy
    f_B = jax.jit(products)(params, x)
    assert f_B.shape == (2,) and f_B.dtype == jnp.float32
    np.testing.assert_allclose(f_B, model.energy(params, x), rtol=1e-5, atol=1e-6)
    # An energy gap, differentiated in the parameters (weights unequal, so the head's bias
    # gradient is not 0).
    gap = lambda energy: lambda p: energy(p, x[:1]).sum() - 0.5 * energy(p, x[1:]).sum()
    want = jax.grad(gap(model.energy))(params)
    got = jax.jit(jax.grad(gap(products)))(params)
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for (path, w), g in zip(jax.tree_util.tree_leaves_with_path(want),
                            jax.tree_util.tree_leaves(got)):
        scale = float(jnp.max(jnp.abs(w)))
        assert scale > 0, path
        np.testing.assert_allclose(g, w, atol=1e-5 * scale, rtol=0, err_msg=str(path))


def test_forward_mode_through_the_gradient_gives_the_hessian_vector_product():
    model, params, x = build(8, 8, 1, "gelu")
    v = jax.random.normal(jax.random.key(3), x.shape)
    _, want = jax.jvp(lambda x: autodiff_grad(model, params, x), (x,), (v,))
    _, got = jax.jvp(model.input_grad(params), (x,), (v,))
    scale = float(jnp.max(jnp.abs(want)))
    assert scale > 0
    np.testing.assert_allclose(got, want, atol=1e-5 * scale, rtol=0)


def test_bfloat16_products_keep_a_float32_gradient_close_to_autodiff():
    model, params, x = build(32, 8, 3, "leaky_relu")
    want = autodiff_grad(model, params, x)
    got = model.input_grad(params, jnp.bfloat16)(x)
    assert got.dtype == jnp.float32
    cos = jnp.sum(got * want) / (jnp.linalg.norm(got) * jnp.linalg.norm(want))
    assert 0.99 < float(cos) < 1.0


def test_other_energies_get_autodiff():
    config = ml_collections.ConfigDict(dict(name="mlp", hidden_dims=(16,), activation="swish"))
    model = nets.build_model(config, (3,))
    params = model.init(jax.random.key(0))
    x = jnp.array([[0.1, -0.2, 0.3], [1.0, 0.5, -1.0]])
    np.testing.assert_array_equal(model.input_grad(params)(x), autodiff_grad(model, params, x))


def test_float32_differences_from_autodiff_are_only_at_the_leaky_relu_kink():
    # Batch 64 at nf 64: enough pre-activations that some land within rounding of 0.
    config = ml_collections.ConfigDict(dict(name="conv", nf=64, activation="leaky_relu"))
    model = nets.build_model(config, (32, 32, 3))
    params = model.init(jax.random.key(0))
    x = jax.random.uniform(jax.random.key(1), (64, 32, 32, 3), minval=-1, maxval=1)
    want = jax.jit(lambda p, x: autodiff_grad(model, p, x))(params, x)
    got = jax.jit(lambda p, x: model.input_grad(p, impl="matmul")(x))(params, x)
    error_B = np.max(np.abs(np.asarray(got - want)), axis=(1, 2, 3)) / float(jnp.max(jnp.abs(want)))
    # The two programs' pre-activations; an image may differ only where a sign differs.
    act = nets.get_activation("leaky_relu", 0.2)
    ours = conv_grad.preactivations(conv_grad.prepare(params), x, act)
    _, state = model.module.apply({"params": params}, x, capture_intermediates=True,
                                  mutable=["intermediates"])
    names = ["conv_in"] + [f"down{i}" for i in range(len(ours) - 1)]
    flipped_B = np.zeros(64, bool)
    for name, z in zip(names, ours):
        z_flax = state["intermediates"][name]["__call__"][0]
        assert z_flax.shape == z.shape
        np.testing.assert_allclose(z, z_flax, atol=1e-5, rtol=0)
        flipped_B |= np.asarray((jnp.sign(z) != jnp.sign(z_flax)).reshape(64, -1).any(axis=1))
    assert np.all(error_B[~flipped_B] < 1e-5), error_B[~flipped_B].max()
    assert flipped_B.sum() <= 4


def test_float64_gradient_equals_autodiff_to_rounding():
    # Without float32 rounding no pre-activation sits on the kink: exact agreement everywhere.
    # A process of its own, since x64 is a process-wide switch.
    script = """
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp, ml_collections
from ebm_jax.models import nets
model = nets.build_model(ml_collections.ConfigDict(dict(name="conv", nf=8)), (32, 32, 3))
params = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64),
                                jax.jit(model.init)(jax.random.key(0)))
x = jax.random.uniform(jax.random.key(1), (32, 32, 32, 3), jnp.float64, -1, 1)
want = jax.jit(jax.grad(lambda x: jnp.sum(model.energy(params, x))))(x)
got = jax.jit(lambda p, x: model.input_grad(p, impl="matmul")(x))(params, x)
assert got.dtype == jnp.float64, got.dtype
print(float(jnp.max(jnp.abs(got - want)) / jnp.max(jnp.abs(want))))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert float(out.stdout.split()[-1]) < 1e-12
