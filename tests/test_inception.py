import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax.evaluation import inception

TINY = 1 / 16


def test_tf1_resize_samples_at_i_times_in_over_out_without_half_pixel_offset():
    x = jnp.asarray([[0.0, 10.0]]).reshape(1, 1, 2, 1)
    out = inception.tf1_resize_bilinear(jnp.tile(x, (1, 2, 1, 1)), 4)
    # Output column j samples the input at j / 2: 0, 0.5, 1, and 1.5 clamped to the last pixel.
    np.testing.assert_allclose(out[0, 0, :, 0], [0.0, 5.0, 10.0, 10.0])
    np.testing.assert_allclose(out[0, :, 0, 0], [0.0, 0.0, 0.0, 0.0])


def test_preprocess_quantises_to_8_bits_and_maps_to_the_graph_range():
    x = jnp.asarray([-1.0, 1.0, 3.0]).reshape(1, 1, 3, 1)
    out = inception.preprocess(x, size=3)
    assert out.shape == (1, 3, 3, 3)  # grey repeated over three channels
    np.testing.assert_allclose(out[0, 0, :, 0], [(0 - 128) / 128, (255 - 128) / 128,
                                                 (255 - 128) / 128])


def test_full_network_has_the_fid_shapes_and_the_published_parameter_count():
    variables = inception.variable_shapes()
    out = jax.eval_shape(inception.FIDInceptionV3().apply, variables,
                         jnp.zeros((2, 299, 299, 3)))
    assert out[0].shape == (2, 2048) and out[1].shape == (2, 1008)
    # pytorch-fid's FID Inception (no auxiliary head): 23,850,960 weights, batch-norm scales
    # and offsets, and the fc bias.
    assert sum(v.size for v in jax.tree_util.tree_leaves(variables["params"])) == 23850960


def test_tiny_network_logits_are_pool3_times_the_softmax_weights_without_bias():
    variables = inception.init_variables(0, TINY, 75)
    variables["params"]["fc"]["bias"] = jnp.full_like(variables["params"]["fc"]["bias"], 5.0)
    x = jax.random.uniform(jax.random.key(1), (3, 8, 8, 1), minval=-1, maxval=1)
    pool, logits = jax.jit(inception.make_apply(TINY, 75))(variables, x)
    assert pool.shape == (3, inception.output_dims(TINY)[0]) and logits.shape[1] == 1008
    np.testing.assert_allclose(logits, pool @ variables["params"]["fc"]["kernel"], rtol=1e-5,
                               atol=1e-6)


def test_converter_maps_a_torch_layout_state_dict_onto_our_names(tmp_path):
    variables = inception.init_variables(0, TINY, 75)
    flat = inception.flatten(variables)
    torch_layout = {}
    for name, value in flat.items():
        kind, *module, leaf = name.split("/")
        prefix = ".".join(module)
        if leaf == "kernel" and module[-1] == "conv":
            torch_layout[f"{prefix}.weight"] = np.transpose(value, (3, 2, 0, 1))
        elif module == ["fc"]:
            torch_layout[f"fc.{'weight' if leaf == 'kernel' else 'bias'}"] = (
                value.T if leaf == "kernel" else value)
        else:
            torch_name = {"scale": "weight", "bias": "bias", "mean": "running_mean",
                          "var": "running_var"}[leaf]
            torch_layout[f"{prefix}.{torch_name}"] = value
        torch_layout.setdefault(f"{prefix}.num_batches_tracked", np.zeros(()))
    path = str(tmp_path / "w.npz")
    np.savez(path, **inception.convert_torch_state_dict(torch_layout))
    loaded = inception.flatten(inception.load_params(path, TINY))
    assert set(loaded) == set(flat)
    for name in flat:
        np.testing.assert_array_equal(loaded[name], flat[name])


def test_missing_weights_say_what_to_fetch_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(tmp_path))
    where = str(tmp_path / inception.WEIGHTS_FILE)
    assert inception.default_weights_path() == where
    with pytest.raises(FileNotFoundError) as err:
        inception.load_params()
    message = str(err.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in message and where in message
    assert "scripts/convert_inception_weights.py" in message


def test_weights_of_another_shape_are_rejected(tmp_path):
    path = str(tmp_path / "w.npz")
    np.savez(path, **inception.flatten(inception.init_variables(0, TINY, 75)))
    with pytest.raises(ValueError, match="has shape"):
        inception.load_params(path, 2 * TINY)
