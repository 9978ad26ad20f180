"""The decode-once cache: a data set's preprocessed uint8 images in one memory-mapped file.

A tfds image set is otherwise decoded, cropped and resized at every batch (42 ms per 64 CelebA
images on one core). The first run writes every preprocessed image, once, to

    <directory>/<name>_<split>_<size>_<crop>_<count>_<hash>.u8     raw uint8 (count, S, S, C)
    <directory>/<name>_<split>_<size>_<crop>_<count>_<hash>.json   its header, written last

and later runs map that file read-only. The header holds the key (data set, version, split,
example count and preprocessing, `CACHE_FORMAT`), the shape and `"complete": true`; a file whose
header is missing, differs from the key or disagrees with the file's size is rebuilt, never
used. Both files are written under temporary names and renamed into place, the data file
first, so a build killed at any moment leaves nothing that looks complete. An exclusive lock
(`fcntl.flock` on `<base>.lock`) lets one process build while the others (several processes
on one host, or on hosts sharing the directory) wait, then map the finished file.

The cached images are exactly what `tfds_source.preprocess_uint8_fn` returns, and batches are
scaled by the same `uint8_to_unit`, so cached and uncached batches are equal bit for bit.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import logging
import os
import re
import time
from concurrent import futures
from typing import Callable

import numpy as np

# Bump whenever the preprocessing changes its output, so that no older cache is reused.
CACHE_FORMAT = 1
CACHE_SUBDIR = "ebm_jax_cache"
_CHUNK = 256


class CacheError(RuntimeError):
    """The cache cannot be written where it should live; the message says what to set."""


def cache_base(directory: str, key: dict) -> str:
    """The path, without extension, of the cache of `key` in `directory`."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    parts = (key["name"], key["split"], key["size"], key["crop"], key["count"], digest)
    stem = "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", str(p)) for p in parts)
    return os.path.join(os.path.expanduser(directory), stem)


def read_header(base: str) -> dict | None:
    """The header of the cache at `base`, or None when there is none or it is unreadable."""
    try:
        with open(base + ".json") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_complete(base: str, key: dict, shape_NHWC: tuple[int, ...]) -> bool:
    """Whether `base` holds a finished cache of exactly `key` with shape `shape_NHWC`."""
    header = read_header(base)
    if not header or header.get("complete") is not True:
        return False
    if header.get("key") != key or tuple(header.get("shape", ())) != tuple(shape_NHWC):
        return False
    try:
        return os.path.getsize(base + ".u8") == int(np.prod(shape_NHWC))
    except OSError:
        return False


def open_cache(base: str, shape_NHWC: tuple[int, ...]) -> np.memmap:
    """The cached images, memory-mapped read-only, uint8 of shape `shape_NHWC`."""
    return np.memmap(base + ".u8", dtype=np.uint8, mode="r", shape=tuple(shape_NHWC))


@contextlib.contextmanager
def _exclusive(base: str):
    try:
        os.makedirs(os.path.dirname(base), exist_ok=True)
        lock = open(base + ".lock", "a")
    except OSError as error:
        raise CacheError(
            f"cannot write the decode-once image cache {base}.u8 ({error}). Point it at a "
            "writable folder with --config.data.cache_dir=/path, or switch it off with "
            "--config.data.cache=False (every batch is then decoded again).") from error
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logging.info("image cache %s.u8: another process is building it; waiting", base)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _fill(out_NHWC: np.ndarray, read_fn: Callable[[int], np.ndarray], base: str,
          workers: int) -> None:
    count, start, last_log = len(out_NHWC), time.monotonic(), 0.0
    size = int(np.clip(count // (4 * workers), 1, _CHUNK))

    def chunk(lo: int) -> int:
        hi = min(lo + size, count)
        for i in range(lo, hi):
            out_NHWC[i] = read_fn(i)
        return hi - lo

    done = 0
    # PIL decodes and resizes without the GIL, so threads share the cores.
    with futures.ThreadPoolExecutor(max(1, workers)) as pool:
        for n in pool.map(chunk, range(0, count, size)):
            done += n
            elapsed = time.monotonic() - start
            if elapsed - last_log >= 10.0 or done == count:
                last_log = elapsed
                rate = done / max(elapsed, 1e-9)
                logging.info("image cache %s.u8: %d / %d images (%.0f%%), %.0f images/s, "
                             "%.0f s left", base, done, count, 100 * done / count, rate,
                             (count - done) / rate)


def build_cache(base: str, key: dict, shape_NHWC: tuple[int, ...],
                read_fn: Callable[[int], np.ndarray], workers: int | None = None) -> None:
    """Writes the cache at `base`: image i is `read_fn(i)`, uint8 of shape `shape_NHWC[1:]`.

    Writes under temporary names and renames into place, header last; call it holding the lock.
    """
    for stale in glob.glob(glob.escape(base) + ".*.tmp*"):
        os.remove(stale)  # left by a killed build; the lock says no one else is writing
    with contextlib.suppress(FileNotFoundError):
        os.remove(base + ".json")
    suffix = f".tmp{os.getpid()}"
    data_tmp, header_tmp = base + ".u8" + suffix, base + ".json" + suffix
    start = time.monotonic()
    out_NHWC = np.memmap(data_tmp, dtype=np.uint8, mode="w+", shape=tuple(shape_NHWC))
    try:
        _fill(out_NHWC, read_fn, base, workers or os.cpu_count() or 1)
        out_NHWC.flush()
        del out_NHWC
        with open(data_tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(data_tmp, base + ".u8")
        header = {"key": key, "shape": list(shape_NHWC), "dtype": "uint8", "complete": True,
                  "build_seconds": round(time.monotonic() - start, 1)}
        with open(header_tmp, "w") as f:
            json.dump(header, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(header_tmp, base + ".json")
    finally:
        for path in (data_tmp, header_tmp):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def open_or_build(directory: str, key: dict, shape_NHWC: tuple[int, ...],
                  read_fn: Callable[[int], np.ndarray], workers: int | None = None) -> np.memmap:
    """The cache of `key` in `directory`, memory-mapped; built first if it is not complete.

    Raises:
      CacheError: the directory cannot be written and holds no complete cache.
    """
    base = cache_base(directory, key)
    if not is_complete(base, key, shape_NHWC):
        with _exclusive(base):
            if not is_complete(base, key, shape_NHWC):
                if read_header(base) is not None:
                    logging.warning("image cache %s.u8 is stale or incomplete; rebuilding", base)
                size_gb = np.prod(shape_NHWC) / 1e9
                logging.info("image cache %s.u8: decoding %d images once (%.2f GB)", base,
                             shape_NHWC[0], size_gb)
                build_cache(base, key, shape_NHWC, read_fn, workers)
    return open_cache(base, shape_NHWC)
