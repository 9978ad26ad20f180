import numpy as np
from PIL import Image

from ebm_jax import plotting


def test_to_uint8_maps_the_range_and_clips_oversaturation():
    np.testing.assert_array_equal(plotting.to_uint8(np.array([-1.0, 0.0, 1.0, 3.0, -7.0])),
                                  [0, 128, 255, 255, 0])


def test_image_grid_layout():
    x = np.zeros((5, 4, 6, 3)) - 1
    x[4] = 1
    grid = plotting.image_grid(x, ncol=3, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 7 + 1, 3)
    # The fifth image is the second of the second row, and it is white.
    assert (grid[6:10, 8:14] == 255).all()
    assert (grid[1:5, 1:7] == 0).all()


def test_save_image_grid_and_toy_plots(tmp_path):
    plotting.save_image_grid(np.zeros((4, 8, 8, 1)), str(tmp_path / "g.png"), scale=2)
    img = Image.open(tmp_path / "g.png")
    assert img.mode == "L" and img.size == (2 * (2 * 10 + 2), 2 * (2 * 10 + 2))
    rng = np.random.default_rng(0)
    plotting.save_toy_plot(rng.normal(size=(100, 2)), str(tmp_path / "s.png"),
                           log_density=lambda x: -0.5 * (x ** 2).sum(1) - np.log(2 * np.pi))
    plotting.save_toy_plot(rng.normal(size=(100, 1)), str(tmp_path / "h.png"),
                           log_density=lambda x: -0.5 * x[:, 0] ** 2 - 0.5 * np.log(2 * np.pi))
    for name in ("s.png", "h.png"):
        assert Image.open(tmp_path / name).size[0] > 100


def test_labelled_grid_and_toy_plots_name_what_they_show(tmp_path):
    ax = plotting.save_labelled_grid(np.zeros((6, 8, 8, 1)), str(tmp_path / "t.png"), 3,
                                     [0, 20, 40], "K2", ylabel="chains")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "20", "40"]
    # Each label sits under the centre of its column: 2-pixel padding, 8-pixel images.
    np.testing.assert_allclose(ax.get_xticks(), [2 + 3.5, 12 + 3.5, 22 + 3.5])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("K2", "chains")
    assert Image.open(tmp_path / "t.png").size[0] > plotting.image_grid(np.zeros((6, 8, 8, 1)),
                                                                       3).shape[1]
    rng = np.random.default_rng(0)
    ax = plotting.save_toy_plot(rng.normal(size=(100, 2)), str(tmp_path / "s.png"),
                                log_density=lambda x: -0.5 * (x ** 2).sum(1))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "short-run samples", "true density (darker: higher)"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x1", "x2")
    ax = plotting.save_toy_plot(rng.normal(size=(100, 1)), str(tmp_path / "h.png"),
                                log_density=lambda x: -0.5 * x[:, 0] ** 2)
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == [
        "short-run samples", "true density"]
