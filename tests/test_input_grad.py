import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ebm_jax.configs import default
from ebm_jax.core import sampler
from ebm_jax.families import ebm
from ebm_jax.models import input_grad, nets


def test_explicit_choices_are_kept_whatever_the_machine():
    for backend, cpu in (("cpu", "amd-avx2"), ("gpu", None), ("tpu", None)):
        assert input_grad.resolve_grad_impl("matmul", backend, cpu) == "matmul"
        assert input_grad.resolve_grad_impl("autodiff", backend, cpu) == "autodiff"


def test_auto_follows_the_measured_table():
    assert input_grad.resolve_grad_impl("auto", "cpu", "amd-avx2") == "matmul"
    assert input_grad.resolve_grad_impl("auto", "cpu", "amd-avx512") == "matmul"
    assert input_grad.resolve_grad_impl("auto", "gpu") == "autodiff"
    assert input_grad.resolve_grad_impl("auto", "tpu") == "autodiff"
    # A CPU kind nobody measured gets the CPU fallback.
    assert input_grad.resolve_grad_impl("auto", "cpu", "other-base") == "matmul"


def test_auto_defaults_to_this_backend_and_cpu():
    want = input_grad.resolve_grad_impl("auto", jax.default_backend(), input_grad.cpu_kind())
    assert input_grad.resolve_grad_impl() == want
    assert input_grad.cpu_kind().split("-")[0] in ("amd", "intel", "other", "unknown")


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="grad_impl"):
        input_grad.resolve_grad_impl("fast")


def test_for_sampling_hands_over_the_given_gradient_only_for_matmul():
    given = object()
    cfg = ml_collections.ConfigDict(dict(grad_impl="matmul"))
    assert input_grad.for_sampling(given, cfg) is given
    cfg.grad_impl = "autodiff"
    assert input_grad.for_sampling(given, cfg) is None
    assert input_grad.for_sampling(None, ml_collections.ConfigDict()) is None


def test_grad_fn_for_binds_the_params_or_leaves_the_sampler_its_own_grad():
    bound = input_grad.grad_fn_for(lambda params: ("grad at", params), 3)
    assert bound == ("grad at", 3)
    assert input_grad.grad_fn_for(None, 3) is None


def build(size, nf, activation, batch=2):
    config = ml_collections.ConfigDict(dict(name="conv", nf=nf, activation=activation))
    model = nets.build_model(config, (size, size, 3))
    params = model.init(jax.random.key(size + nf))
    x = jax.random.uniform(jax.random.key(7), (batch, size, size, 3), minval=-1, maxval=1)
    want = jax.grad(lambda x: jnp.sum(model.energy(params, x)))(x)
    return model, params, x, want


@pytest.mark.parametrize("impl", ["auto", "matmul", "autodiff"])
@pytest.mark.parametrize("activation", ["leaky_relu", "gelu"])
def test_every_impl_equals_autodiff(impl, activation):
    model, params, x, want = build(16, 8, activation)
    got = jax.jit(lambda p, x: model.input_grad(p, impl=impl)(x))(params, x)
    scale = float(jnp.max(jnp.abs(want)))
    assert scale > 0 and got.dtype == jnp.float32
    np.testing.assert_allclose(got, want, atol=1e-5 * scale, rtol=0)


def test_the_benchmark_size_matches_autodiff_with_a_smooth_activation():
    # 32x32, nf=16, batch 64: the shapes of the benchmark but for the width. GELU, because
    # with LeakyReLU a pre-activation within rounding of 0 may take the other slope in one of
    # the two programs (measured: 2 of 64 images at nf=64).
    model, params, x, want = build(32, 16, "gelu", batch=64)
    got = jax.jit(lambda p, x: model.input_grad(p, impl="matmul")(x))(params, x)
    np.testing.assert_allclose(got, want, atol=1e-5 * float(jnp.max(jnp.abs(want))), rtol=0)


def test_bfloat16_autodiff_keeps_a_float32_gradient_close_to_float32():
    model, params, x, want = build(16, 8, "gelu")
    got = model.input_grad(params, jnp.bfloat16, impl="autodiff")(x)
    assert got.dtype == jnp.float32
    cos = jnp.sum(got * want) / (jnp.linalg.norm(got) * jnp.linalg.norm(want))
    assert 0.99 < float(cos) < 1.0


@pytest.mark.parametrize("impl", ["matmul", "autodiff"])
def test_the_ebm_family_samples_the_same_chain_with_either_impl(impl):
    config = default.get_config()
    config.model.nf, config.model.activation = 8, "gelu"
    config.sampling.num_steps, config.sampling.grad_impl = 3, impl
    family = ebm.EBM(config, (8, 8, 3))
    assert (family.input_grad() is None) == (impl == "autodiff")
    params = family.init_params(jax.random.key(0))
    plain = sampler.make_sampler(family.energy, config.sampling, (8, 8, 3))
    got = family.make_sampler()(params, jax.random.key(0), 4)
    want = plain(params, jax.random.key(0), 4)
    np.testing.assert_allclose(got.x, want.x, atol=1e-5, rtol=0)
