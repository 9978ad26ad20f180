import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ebm_jax.models import nets


def conv_config(**kw):
    return ml_collections.ConfigDict(dict(dict(name="conv", nf=64, activation="leaky_relu"), **kw))


def test_paper_convnet_has_2763393_parameters_at_32px_nf64():
    model = nets.build_model(conv_config(), (32, 32, 3))
    params = model.init(jax.random.key(0))
    assert nets.count_params(params) == 2_763_393
    # Layer widths of the paper's net: 3 -> 64 -> 128 -> 256 -> 512 -> 1.
    assert params["conv_in"]["kernel"].shape == (3, 3, 3, 64)
    assert params["down2"]["kernel"].shape == (4, 4, 256, 512)
    assert params["head"]["kernel"].shape == (4, 4, 512, 1)


@pytest.mark.parametrize("size,nf,channels", [(32, 16, 3), (64, 8, 3), (128, 4, 1), (8, 8, 1)])
def test_conv_energy_gives_one_number_per_image(size, nf, channels):
    model = nets.build_model(conv_config(nf=nf), (size, size, channels))
    params = model.init(jax.random.key(1))
    x = jax.random.uniform(jax.random.key(2), (3, size, size, channels), minval=-1, maxval=1)
    f = model.energy(params, x)
    assert f.shape == (3,)
    assert np.all(np.isfinite(f))
    # One example's energy does not depend on the others (no normalisation across the batch).
    np.testing.assert_allclose(model.energy(params, x[:1]), f[:1], rtol=1e-5, atol=1e-6)


def test_parameter_count_follows_the_closed_form_for_any_size_and_width():
    for size, nf, c in [(64, 64, 3), (16, 5, 1)]:
        n, width, count = size, nf, c * nf * 9 + nf
        while n > 4:
            count += width * 2 * width * 16 + 2 * width
            n, width = n // 2, width * 2
        count += width * 16 + 1
        params = nets.build_model(conv_config(nf=nf), (size, size, c)).init(jax.random.key(0))
        assert nets.count_params(params) == count


def test_init_is_pytorch_default_uniform_with_bound_one_over_sqrt_fan_in():
    params = nets.build_model(conv_config(), (32, 32, 3)).init(jax.random.key(3))
    for name, fan_in in [("conv_in", 27), ("down0", 64 * 16), ("down2", 256 * 16),
                         ("head", 512 * 16)]:
        bound = 1 / np.sqrt(fan_in)
        w, b = np.asarray(params[name]["kernel"]), np.asarray(params[name]["bias"])
        assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
        if w.size > 1000:  # uniform on [-b, b] has std b / sqrt(3)
            assert abs(w.std() - bound / np.sqrt(3)) < 0.03 * bound
        assert np.abs(b).max() > 0  # biases are not zero-initialised


@pytest.mark.parametrize("activation", ["gelu", "swish", "leaky_relu"])
def test_activation_is_selectable_and_changes_the_function(activation):
    model = nets.build_model(conv_config(nf=4, activation=activation), (8, 8, 1))
    params = model.init(jax.random.key(0))
    x = jnp.linspace(-1, 1, 2 * 64).reshape(2, 8, 8, 1)
    ref = nets.build_model(conv_config(nf=4, activation="tanh"), (8, 8, 1))
    assert not np.allclose(model.energy(params, x), ref.energy(params, x))


def test_gelu_energy_is_smooth_leaky_relu_is_not():
    # The flow view needs a differentiable gradient map. A GELU net's gradient is continuous:
    # its largest step between grid points shrinks with the spacing. A LeakyReLU net's
    # gradient jumps at the kinks, whatever the spacing, and its Hessian is 0 elsewhere.
    def model_of(activation):
        model = nets.build_model(
            ml_collections.ConfigDict(dict(name="mlp", hidden_dims=(16,), activation=activation)),
            (1,))
        return model, model.init(jax.random.key(0))

    def largest_gradient_step(activation, num):
        model, params = model_of(activation)
        g = jax.vmap(jax.grad(lambda t: model.energy(params, t.reshape(1, 1))[0]))
        return float(jnp.max(jnp.abs(jnp.diff(g(jnp.linspace(-1, 1, num))))))

    gelu_coarse, gelu_fine = largest_gradient_step("gelu", 401), largest_gradient_step("gelu", 4001)
    leaky_coarse = largest_gradient_step("leaky_relu", 401)
    leaky_fine = largest_gradient_step("leaky_relu", 4001)
    assert gelu_fine < 0.2 * gelu_coarse          # about 10x smaller on a 10x finer grid
    assert leaky_fine > 0.5 * leaky_coarse > 0    # a jump stays a jump
    assert leaky_fine > 10 * gelu_fine
    model, params = model_of("leaky_relu")
    h = jax.vmap(jax.grad(jax.grad(lambda t: model.energy(params, t.reshape(1, 1))[0])))
    assert float(jnp.max(jnp.abs(h(jnp.linspace(-1, 1, 101))))) == 0.0


def test_mlp_energy_for_vectors():
    model = nets.build_model(
        ml_collections.ConfigDict(dict(name="mlp", hidden_dims=(32, 32), activation="swish")), (2,))
    params = model.init(jax.random.key(0))
    assert nets.count_params(params) == 2 * 32 + 32 + 32 * 32 + 32 + 32 + 1
    assert model.energy(params, jnp.zeros((5, 2))).shape == (5,)


@pytest.mark.parametrize("shape", [(30, 30, 3), (32, 16, 3), (2,)])
def test_conv_energy_rejects_shapes_it_cannot_reduce_to_4x4(shape):
    with pytest.raises(ValueError):
        nets.build_model(conv_config(), shape)


def test_unknown_activation_and_model_are_errors():
    with pytest.raises(ValueError, match="activation"):
        nets.get_activation("relu6")
    with pytest.raises(ValueError, match="model.name"):
        nets.build_model(ml_collections.ConfigDict(dict(name="resnet")), (32, 32, 3))
