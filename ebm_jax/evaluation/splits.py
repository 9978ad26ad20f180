"""The examples of a data split, for the modes that score data (bpd, ais, reconstruction,
probe).

tfds data sets read their own split. For local ones (digits, mnist5k, npy, toy sets) ``test``
is the examples after the first ``data.max_examples``, which training never saw; a config that
trains on all of them has no ``test`` split, which is bad input (``InputError``).
"""
from __future__ import annotations

import numpy as np

from ebm_jax import data
from ebm_jax.runtime import validation

SPLITS = ("train", "test")


def split_dataset(config, split: str) -> tuple[data.Dataset, int, int]:
    """``(dataset, first, count)``: the examples ``first .. first + count - 1`` of
    ``dataset`` make up ``split``."""
    if split not in SPLITS:
        raise validation.InputError(f"split must be 'train' or 'test', got {split!r}")
    data_config = type(config.data)(config.data.to_dict())
    if data.is_tfds_name(data_config.dataset):
        data_config.split = split
        dataset = validation.load_dataset(data_config, config.seed)
        return dataset, 0, len(dataset)
    used = int(data_config.max_examples or 0)
    data_config.max_examples = 0
    dataset = validation.load_dataset(data_config, config.seed)
    if split == "train":
        return dataset, 0, min(used or len(dataset), len(dataset))
    if not 0 < used < len(dataset):
        raise validation.InputError(
            f"{data_config.dataset!r} has no held-out examples: training used "
            f"{'all' if not used else used} of its {len(dataset)} examples "
            "(data.max_examples); use --split=train or a config that holds some out, such as "
            "configs/digits_gelu.py")
    return dataset, used, len(dataset) - used


def check_split(config, split: str) -> None:
    """Raises InputError now if ``split`` does not exist, before a mode writes anything."""
    split_dataset(config, split)


def load_split(config, split: str, num: int | None = None) -> np.ndarray:
    """The first ``num`` (default: all) examples of ``split``."""
    dataset, first, count = split_dataset(config, split)
    count = count if num is None else min(int(num), count)
    return dataset.get(np.arange(first, first + count))
