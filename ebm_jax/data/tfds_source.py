"""Image data sets from TensorFlow Datasets, read through `tfds.data_source` (ArrayRecord,
random access, no TensorFlow) and preprocessed with numpy and PIL.

tensorflow_datasets is imported inside the functions only, so that `import ebm_jax` stays fast
and toy or digits runs never touch it.
"""
from __future__ import annotations

import os

import numpy as np

from ebm_jax.data import cache as image_cache
from ebm_jax.data.base import Dataset
from ebm_jax.data.images import (
    MNIST_PADDED_SIZE,
    center_crop,
    mnist_to_size,
    resize_image,
    uint8_to_unit,
)

TFDS_NAMES = ("cifar10", "celeb_a", "mnist", "lsun/<category>")
DEFAULT_IMAGE_SIZE = {"cifar10": 32, "celeb_a": 64, "mnist": 32, "lsun": 64}
NUM_CHANNELS = {"cifar10": 3, "celeb_a": 3, "mnist": 1, "lsun": 3}
CELEBA_MANUAL_FILES = (
    "img_align_celeba.zip",
    "list_eval_partition.txt",
    "list_attr_celeba.txt",
    "list_landmarks_align_celeba.txt",
    "identity_CelebA.txt",
)


class DatasetNotPreparedError(RuntimeError):
    """A tfds data set is missing from the data directory (or not in the ArrayRecord format);
    the message says how to prepare it."""


def is_tfds_name(name: str) -> bool:
    """Whether `name` is one of the tfds image data sets this package reads."""
    return name in DEFAULT_IMAGE_SIZE or (name.startswith("lsun/") and len(name) > len("lsun/"))


def _family(name: str) -> str:
    return name.split("/", 1)[0]


def _default_data_dir() -> str:
    import tensorflow_datasets as tfds

    return os.fspath(tfds.core.constants.DATA_DIR)


def not_prepared_message(name: str, data_dir: str | None, reason: str) -> str:
    """How to prepare `name` so that `tfds.data_source` can read it."""
    shown_dir = data_dir or _default_data_dir()
    manual = ""
    if _family(name) == "celeb_a":
        manual = (
            "\nCelebA is hosted on Google Drive, which often refuses scripted downloads. If the build "
            "fails there, download " + ", ".join(CELEBA_MANUAL_FILES) + " by hand into one folder "
            "(from the CelebA page or Google Drive) and add --manual_dir=/path/to/that/folder to the "
            "tfds build command (from Python: download_and_prepare(download_config="
            "tfds.download.DownloadConfig(manual_dir=...)))."
        )
    return (
        f"TFDS data set {name!r} is not prepared in data_dir {shown_dir!r}: {reason}\n"
        "ebm_jax reads it with tfds.data_source, which needs the ArrayRecord file format. Prepare "
        "it once; this needs network access, and TensorFlow in the environment that prepares it "
        "(`pip install tensorflow`); reading it afterwards needs neither:\n"
        f"    tfds build {name} --file_format=array_record --data_dir={shown_dir}\n"
        "or from Python:\n"
        f"    python -c \"import tensorflow_datasets as tfds; tfds.builder('{name}', "
        f"data_dir='{shown_dir}', file_format='array_record').download_and_prepare()\"\n"
        "If the data set is already prepared elsewhere, point at that directory with "
        "--config.data.data_dir=/path/to/tensorflow_datasets." + manual
    )


def open_source(name: str, split: str = "train", data_dir: str | None = None):
    """`tfds.data_source(name, split, data_dir)` without downloading: a random-access sequence
    of decoded examples.

    Raises:
      DatasetNotPreparedError: the data set is not prepared in data_dir as ArrayRecord.
    """
    import tensorflow_datasets as tfds

    data_dir = data_dir or None
    try:
        return tfds.data_source(
            name,
            split=split,
            data_dir=data_dir,
            download=False,
            builder_kwargs={"file_format": "array_record"},
        )
    except Exception as error:
        # tfds reports a missing data set as an empty-splits KeyError or a file-format error;
        # the builder says which case this is, and anything else (a bad split) is re-raised.
        builder = tfds.builder(name, data_dir=data_dir)
        if not builder.is_prepared():
            reason = f"no prepared version found under {builder.data_dir!r}."
            raise DatasetNotPreparedError(not_prepared_message(name, data_dir, reason)) from error
        formats = [builder.info.file_format, *builder.info.alternative_file_formats]
        if tfds.core.FileFormat.ARRAY_RECORD not in formats:
            reason = (
                f"it is prepared at {builder.data_dir!r} only as "
                f"{', '.join(str(getattr(f, 'value', f)) for f in formats)}, which has no random access. Prepare "
                "it again as ArrayRecord into another data_dir (or delete that copy)."
            )
            raise DatasetNotPreparedError(not_prepared_message(name, data_dir, reason)) from error
        raise


def preprocess_uint8_fn(name: str, image_size: int | None = None, celeba_crop: int = 140):
    """The per-example map from a tfds uint8 image (H, W, C) to uint8 (S, S, C).

    cifar10: 32x32, resized bicubically if image_size differs. mnist: 28x28 zero-padded to 32x32,
    or resized to image_size. celeb_a: centre crop celeba_crop x celeba_crop, then resized to
    image_size (default 64). lsun/<category>: centre crop to the shorter side, then resized to
    image_size (default 64). Resizing uses PIL bicubic, antialiased when shrinking. The decode-once
    cache stores exactly these uint8 images.
    """
    family = _family(name)
    size = image_size or DEFAULT_IMAGE_SIZE[family]
    if family == "mnist":
        return lambda x_HWC: mnist_to_size(x_HWC[None], image_size)[0]
    if family == "cifar10":
        return lambda x_HWC: resize_image(x_HWC, size)
    if family == "celeb_a":
        return lambda x_HWC: resize_image(center_crop(x_HWC, celeba_crop), size)
    if family == "lsun":
        return lambda x_HWC: resize_image(center_crop(x_HWC), size)
    raise ValueError(f"No preprocessing for tfds data set {name!r}; expected one of {TFDS_NAMES}.")


def preprocess_spec(name: str, image_size: int | None = None, celeba_crop: int = 140) -> dict:
    """What `preprocess_uint8_fn` does, as a small dict: part of the decode-once cache's key."""
    family = _family(name)
    size = image_size or DEFAULT_IMAGE_SIZE[family]
    crop = {"celeb_a": f"crop{celeba_crop}", "lsun": "cropshort"}.get(family, "nocrop")
    if family == "mnist":
        crop = "pad32" if size == MNIST_PADDED_SIZE else "bilinear"
    return {"family": family, "size": size, "crop": crop, "resample": "pil_bicubic",
            "channels": NUM_CHANNELS[family]}


def preprocess_fn(name: str, image_size: int | None = None, celeba_crop: int = 140):
    """`preprocess_uint8_fn` followed by `uint8_to_unit`: float32 (S, S, C) in [-1, 1]."""
    to_uint8 = preprocess_uint8_fn(name, image_size, celeba_crop)
    return lambda x_HWC: uint8_to_unit(to_uint8(x_HWC))


def load_tfds_dataset(
    name: str,
    *,
    split: str = "train",
    data_dir: str | None = None,
    image_size: int | None = None,
    max_examples: int | None = None,
    celeba_crop: int = 140,
    cache: bool = True,
    cache_dir: str | None = None,
) -> Dataset:
    """A tfds image data set as a random-access `Dataset` of NHWC float32 images in [-1, 1].

    Only the first max_examples (0 or None: all) of the split are used. With `cache` (the
    default) every image is decoded and preprocessed once, into a memory-mapped uint8 file in
    `cache_dir` (default `<data_dir>/ebm_jax_cache`; see `cache.py`), and batches are read from
    it; without, `Dataset.get` decodes and preprocesses each example on demand. Both give the
    same values bit for bit.

    Raises:
      DatasetNotPreparedError: the data set is not prepared; the message says how to prepare it.
      cache.CacheError: the cache folder cannot be written.
    """
    if not is_tfds_name(name):
        raise ValueError(f"Unknown tfds data set {name!r}; expected one of {TFDS_NAMES}.")
    source = open_source(name, split, data_dir)
    return dataset_from_source(source, name, split=split, data_dir=data_dir,
                               image_size=image_size, max_examples=max_examples,
                               celeba_crop=celeba_crop, cache=cache, cache_dir=cache_dir)


def dataset_from_source(source, name: str, *, split: str = "train", data_dir: str | None = None,
                        image_size: int | None = None, max_examples: int | None = None,
                        celeba_crop: int = 140, cache: bool = True,
                        cache_dir: str | None = None) -> Dataset:
    """`load_tfds_dataset` for an open random-access `source` of {"image": uint8 (H, W, C)},
    preprocessed as the tfds data set `name` is."""
    num_examples = min(len(source), max_examples) if max_examples else len(source)
    to_uint8 = preprocess_uint8_fn(name, image_size, celeba_crop)
    spec = preprocess_spec(name, image_size, celeba_crop)
    shape = (spec["size"], spec["size"], spec["channels"])
    read_uint8 = lambda i: to_uint8(np.asarray(source[int(i)]["image"]))

    if cache:
        info = getattr(source, "dataset_info", None)
        # The source's own name and folder tell two prepared copies of one data set apart.
        key = {"name": name, "split": split, "count": num_examples, "source_len": len(source),
               "source": str(getattr(info, "full_name", "")),
               "source_dir": os.path.realpath(os.fspath(getattr(info, "data_dir", ""))),
               "version": str(getattr(info, "version", "")), "format": image_cache.CACHE_FORMAT,
               **spec}
        directory = cache_dir or os.path.join(data_dir or _default_data_dir(),
                                              image_cache.CACHE_SUBDIR)
        x_NHWC = image_cache.open_or_build(directory, key, (num_examples,) + shape, read_uint8)
        return Dataset(name, shape, True, num_examples, lambda idx_N: uint8_to_unit(x_NHWC[idx_N]))

    def get(indices_N: np.ndarray) -> np.ndarray:
        # One index at a time: batched __getitems__ is not supported by tfds's mock sources.
        return uint8_to_unit(np.stack([read_uint8(i) for i in indices_N]))

    return Dataset(name, shape, True, num_examples, get)
