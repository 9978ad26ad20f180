"""The random-access `Dataset` every data source returns, and the step-pure batch order."""
from __future__ import annotations

from typing import Callable

import numpy as np

GetFn = Callable[[np.ndarray], np.ndarray]
LogDensityFn = Callable[[np.ndarray], np.ndarray]


class Dataset:
    """A finite, random-access data set held as examples; all values float32.

    Attributes:
      name: the data set's name, as given in the config.
      shape: per-example shape, (H, W, C) for images and (D,) for vectors.
      is_image: True for images, which are NHWC in [-1, 1].
      log_density: toy data sets only (None otherwise): maps an (N, D) array, numpy or jax,
        to the (N,) true normalised log-density; written in jax.numpy, so it traces under jit.
      labels: the class of each example, int (N,), where the data set has them (digits,
        mnist5k), else None; training never reads them (the linear probe of
        ``--mode=probe`` does).
    """

    def __init__(
        self,
        name: str,
        shape: tuple[int, ...],
        is_image: bool,
        num_examples: int,
        get_fn: GetFn,
        log_density: LogDensityFn | None = None,
    ):
        """Wraps `get_fn`, which maps valid int64 indices (N,) to examples (N, *shape)."""
        if num_examples <= 0:
            raise ValueError(f"Data set {name!r} has no examples.")
        self.name = name
        self.shape = tuple(int(d) for d in shape)
        self.is_image = bool(is_image)
        self.log_density = log_density
        self.labels = None
        self._num_examples = int(num_examples)
        self._get_fn = get_fn

    @classmethod
    def from_array(
        cls,
        name: str,
        x_N: np.ndarray,
        is_image: bool,
        log_density: LogDensityFn | None = None,
    ) -> Dataset:
        """A data set held in memory as one float32 array, examples along axis 0."""
        x_N = np.ascontiguousarray(x_N, dtype=np.float32)
        return cls(name, x_N.shape[1:], is_image, len(x_N), lambda idx_N: x_N[idx_N], log_density)

    def with_labels(self, labels_N: np.ndarray) -> Dataset:
        """This data set with the class of each example attached."""
        labels_N = np.asarray(labels_N, np.int64)
        if labels_N.shape != (len(self),):
            raise ValueError(f"{len(labels_N)} labels for {len(self)} examples")
        self.labels = labels_N
        return self

    def __len__(self) -> int:
        return self._num_examples

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, num_examples={len(self)}, shape={self.shape}, "
            f"is_image={self.is_image})"
        )

    def get(self, indices_N: np.ndarray) -> np.ndarray:
        """Returns the examples at `indices_N` as a float32 array of shape (N, *shape)."""
        indices_N = np.asarray(indices_N)
        if indices_N.ndim != 1 or not np.issubdtype(indices_N.dtype, np.integer):
            raise ValueError(
                f"indices must be a 1-D integer array, got dtype {indices_N.dtype} and "
                f"shape {indices_N.shape}."
            )
        # Negative indices would wrap silently in numpy but not in a tfds source.
        if indices_N.size and (indices_N.min() < 0 or indices_N.max() >= len(self)):
            raise IndexError(
                f"indices must lie in [0, {len(self)}) for data set {self.name!r}; got "
                f"min {indices_N.min()}, max {indices_N.max()}."
            )
        if indices_N.size == 0:
            return np.zeros((0,) + self.shape, dtype=np.float32)
        x_N = self._get_fn(indices_N.astype(np.int64))
        return np.asarray(x_N, dtype=np.float32).reshape((len(indices_N),) + self.shape)

    def batch(self, step: int, batch_size: int, seed: int, process_index: int = 0,
              process_count: int = 1) -> np.ndarray:
        """This process's rows of the global batch of training step `step`.

        The global batch is get(batch_indices(len(self), batch_size, step, seed)); process p of
        P reads only its contiguous share, rows [p * batch_size / P, (p + 1) * batch_size / P),
        so P processes together see exactly the batch one process would.
        """
        indices = batch_indices(len(self), batch_size, step, seed)
        return self.get(indices[process_slice(batch_size, process_index, process_count)])


def process_slice(global_size: int, process_index: int, process_count: int) -> slice:
    """Process p's contiguous share of ``global_size`` rows: [p * n, (p + 1) * n), n = size / P.

    It is the order in which ``jax.make_array_from_process_local_data`` lays the processes'
    rows out over a mesh of ``jax.devices()``, whose devices are sorted by process.
    """
    if global_size % process_count:
        raise ValueError(f"{global_size} rows cannot be split evenly over {process_count} "
                         f"processes; choose a multiple of {process_count}.")
    n = global_size // process_count
    return slice(process_index * n, (process_index + 1) * n)


def batch_indices(num_examples: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """The example indices of the batch at `step`, a pure function of its arguments.

    Being pure in the step is what lets a resumed run see exactly the data order of an
    uninterrupted one, with no iterator state to checkpoint. Each epoch is a fresh permutation
    drawn from `np.random.default_rng([seed, epoch])`; the incomplete last batch of an epoch is
    dropped, so every example appears at most once per epoch.

    Args:
      num_examples: size of the data set.
      batch_size: examples per batch; at most `num_examples`.
      step: the global training step, >= 0.
      seed: the data-order seed.

    Returns:
      int64 array of shape (batch_size,).
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    if batch_size > num_examples:
        raise ValueError(
            f"batch_size {batch_size} exceeds the number of examples {num_examples}."
        )
    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}.")
    steps_per_epoch = num_examples // batch_size
    epoch, i = divmod(int(step), steps_per_epoch)
    permutation_N = np.random.default_rng([int(seed), epoch]).permutation(num_examples)
    return permutation_N[i * batch_size:(i + 1) * batch_size]
