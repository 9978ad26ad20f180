"""Tests for the decode-once image cache (data/cache.py) and the prefetcher (data/prefetch.py)."""
import io
import json
import os
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from ebm_jax import data
from ebm_jax.data import cache, tfds_source

STEPS = (0, 1, 4, 9)
SLICES = ((0, 1), (0, 2), (1, 2))


def config(**fields):
    return types.SimpleNamespace(**fields)


class EbmJaxCacheImages(tfds.core.GeneratorBasedBuilder):
    """Twelve structured 30x40 RGB images stored as PNG, a really prepared ArrayRecord set."""

    VERSION = tfds.core.Version("1.0.0")
    SEED = 0

    def _info(self):
        features = tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(30, 40, 3))})
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        rng = np.random.default_rng(self.SEED)
        rows_HW, cols_HW = np.mgrid[0:30, 0:40]
        for i in range(12):
            image_HWC = np.stack([rows_HW * (i + 3), cols_HW * 5 + i * 7, rows_HW * cols_HW], -1)
            image_HWC = (image_HWC + rng.integers(0, 40, image_HWC.shape)) % 256
            buffer = io.BytesIO()
            Image.fromarray(image_HWC.astype(np.uint8)).save(buffer, format="PNG")
            yield i, {"image": buffer.getvalue()}


class EbmJaxCacheImagesOther(EbmJaxCacheImages):
    """The same images but for their noise: another data set of the same name and shape."""

    SEED = 1


@pytest.fixture(scope="module")
def local_source_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    for name in ("ebm_jax_cache_images", "ebm_jax_cache_images_other"):
        tfds.builder(name, data_dir=path, file_format="array_record").download_and_prepare()
    return path


@pytest.fixture
def local_lsun(local_source_dir, monkeypatch):
    """`lsun/bedroom` read from the local ArrayRecord set `.name` (its real tfds data source)."""
    local = types.SimpleNamespace(name="ebm_jax_cache_images", data_dir=local_source_dir)
    real_open = tfds_source.open_source
    monkeypatch.setattr(tfds_source, "open_source", lambda name, split, data_dir: real_open(
        local.name, split, local.data_dir))
    return local


def count_builds(monkeypatch):
    calls = []
    real_build = cache.build_cache

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real_build(*args, **kwargs)

    monkeypatch.setattr(cache, "build_cache", counting)
    return calls


def assert_same_batches(cached, uncached, batch_size=4):
    assert len(cached) == len(uncached) and cached.shape == uncached.shape
    for step in STEPS:
        for p, count in SLICES:
            got = cached.batch(step, batch_size, 3, p, count)
            want = uncached.batch(step, batch_size, 3, p, count)
            assert got.dtype == np.float32 and got.shape == want.shape
            assert np.array_equal(got, want), (step, p, count)


def test_cached_batches_equal_uncached_on_a_local_array_record_set(local_lsun, tmp_path,
                                                                    monkeypatch):
    builds = count_builds(monkeypatch)
    fields = dict(dataset="lsun/bedroom", image_size=16, cache_dir=str(tmp_path))
    cached = data.get_dataset(config(**fields))
    uncached = data.get_dataset(config(**fields, cache=False))
    assert len(builds) == 1 and cached.shape == (16, 16, 3) and len(cached) == 12
    assert_same_batches(cached, uncached)
    # Images differ from one another and span the range: equality is not trivially met.
    x_NHWC = cached.get(np.arange(12))
    assert len({x.tobytes() for x in x_NHWC}) == 12 and x_NHWC.min() < -0.9 < 0.9 < x_NHWC.max()

    (header_path,) = [p for p in os.listdir(tmp_path) if p.endswith(".json")]
    header = json.load(open(tmp_path / header_path))
    assert header["complete"] is True and header["shape"] == [12, 16, 16, 3]
    assert header["key"]["crop"] == "cropshort" and header["key"]["version"] == "1.0.0"
    assert header_path.startswith("lsun-bedroom_train_16_cropshort_12_")
    assert os.path.getsize(tmp_path / header_path.replace(".json", ".u8")) == 12 * 16 * 16 * 3

    again = data.get_dataset(config(**fields))
    assert len(builds) == 1  # the complete cache is reused, not rebuilt
    assert np.array_equal(again.get(np.arange(12)), x_NHWC)

    fields.update(max_examples=8, image_size=8)
    other = data.get_dataset(config(**fields))
    assert len(builds) == 2 and other.shape == (8, 8, 3) and len(other) == 8
    assert_same_batches(other, data.get_dataset(config(**fields, cache=False)))


def test_two_sources_of_one_name_do_not_share_a_cache(local_lsun, tmp_path):
    fields = dict(dataset="lsun/bedroom", image_size=8, cache_dir=str(tmp_path))
    first_NHWC = data.get_dataset(config(**fields)).get(np.arange(12))
    local_lsun.name = "ebm_jax_cache_images_other"
    cached = data.get_dataset(config(**fields))
    assert_same_batches(cached, data.get_dataset(config(**fields, cache=False)))
    assert not np.array_equal(cached.get(np.arange(12)), first_NHWC)
    assert len([p for p in os.listdir(tmp_path) if p.endswith(".u8")]) == 2


def test_cached_batches_equal_uncached_under_mock_celeb_a(tmp_path):
    with tfds.testing.mock_data(num_examples=10, policy=tfds.testing.MockPolicy.USE_CODE):
        fields = dict(dataset="celeb_a", image_size=12, celeba_crop=100, cache_dir=str(tmp_path))
        cached = data.get_dataset(config(**fields))
        uncached = data.get_dataset(config(**fields, cache=False))
        assert_same_batches(cached, uncached)
    assert any("crop100" in p for p in os.listdir(tmp_path))


def test_default_cache_lives_under_the_data_dir(local_lsun):
    dataset = data.get_dataset(config(dataset="lsun/bedroom", image_size=8, max_examples=5,
                                      data_dir=local_lsun.data_dir))
    folder = os.path.join(local_lsun.data_dir, cache.CACHE_SUBDIR)
    assert len(dataset) == 5 and sorted(p.rsplit(".", 1)[1] for p in os.listdir(folder)) == [
        "json", "lock", "u8"]


@pytest.mark.parametrize("damage", ["stale_key", "not_complete", "truncated", "no_header"])
def test_a_stale_or_incomplete_cache_is_rebuilt(local_lsun, tmp_path, monkeypatch, damage):
    fields = dict(dataset="lsun/bedroom", image_size=8, cache_dir=str(tmp_path))
    expected_NHWC = data.get_dataset(config(**fields, cache=False)).get(np.arange(12))
    data.get_dataset(config(**fields))
    (base,) = [str(tmp_path / p[:-5]) for p in os.listdir(tmp_path) if p.endswith(".json")]
    header = json.load(open(base + ".json"))
    if damage == "stale_key":
        header["key"]["format"] = -1
    if damage == "not_complete":
        header["complete"] = False
    if damage == "no_header":
        os.remove(base + ".json")
    else:
        json.dump(header, open(base + ".json", "w"))
    if damage == "truncated":
        os.truncate(base + ".u8", 100)
    # Zeroed data: a cache that was wrongly reused would give all -1.
    with open(base + ".u8", "r+b") as f:
        f.write(bytes(os.path.getsize(base + ".u8")))
    builds = count_builds(monkeypatch)
    dataset = data.get_dataset(config(**fields))
    assert builds == [base]
    assert np.array_equal(dataset.get(np.arange(12)), expected_NHWC)
    assert cache.is_complete(base, json.load(open(base + ".json"))["key"], (12, 8, 8, 3))


def test_a_build_that_dies_leaves_nothing_that_looks_complete(tmp_path):
    key = {"name": "x", "split": "train", "size": 2, "crop": "none", "count": 6}
    base = cache.cache_base(str(tmp_path), key)

    def failing(i):
        if i == 4:
            raise RuntimeError("killed")
        return np.full((2, 2, 1), i, np.uint8)

    with pytest.raises(RuntimeError, match="killed"):
        cache.open_or_build(str(tmp_path), key, (6, 2, 2, 1), failing, workers=1)
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(base) + ".lock"]
    assert not cache.is_complete(base, key, (6, 2, 2, 1))

    x_NHWC = cache.open_or_build(str(tmp_path), key, (6, 2, 2, 1),
                                 lambda i: np.full((2, 2, 1), 10 * i, np.uint8))
    np.testing.assert_array_equal(x_NHWC[:, 0, 0, 0], [0, 10, 20, 30, 40, 50])


def test_a_second_process_waits_for_the_builder_and_reuses_its_cache(tmp_path):
    key = {"name": "x", "split": "train", "size": 1, "crop": "none", "count": 3}
    base, shape = cache.cache_base(str(tmp_path), key), (3, 1, 1, 1)
    reads, result = [], {}

    def read(i):
        reads.append(i)
        return np.zeros((1, 1, 1), np.uint8)

    def waiter():
        result["x"] = cache.open_or_build(str(tmp_path), key, shape, read)

    with cache._exclusive(base):
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.3)
        assert thread.is_alive() and "x" not in result
        cache.build_cache(base, key, shape, lambda i: np.full((1, 1, 1), 7 + i, np.uint8))
    thread.join(10)
    assert not thread.is_alive() and reads == []
    np.testing.assert_array_equal(result["x"].ravel(), [7, 8, 9])


BUILD_IN_A_PROCESS = """
import os, sys, time
import numpy as np
from ebm_jax.data import cache
folder, log = sys.argv[1], sys.argv[2]
key = {"name": "x", "split": "train", "size": 2, "crop": "none", "count": 8}

def read(i):
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(0.05)
    return np.full((2, 2, 1), 3 * i, np.uint8)

open(f"{log}.ready{os.getpid()}", "w").close()
while len([p for p in os.listdir(os.path.dirname(log)) if ".ready" in p]) < 2:
    time.sleep(0.01)  # both processes start building at once
x_NHWC = cache.open_or_build(folder, key, (8, 2, 2, 1), read, workers=1)
print(os.getpid(), " ".join(str(v) for v in x_NHWC[:, 0, 0, 0]))
"""


def test_two_processes_build_one_cache_once(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    args = [sys.executable, "-c", BUILD_IN_A_PROCESS, str(tmp_path / "cache"),
            str(tmp_path / "log")]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0].split(maxsplit=1) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    builders = set(open(tmp_path / "log").read().split())
    assert len(builders) == 1 and builders <= {pid for pid, _ in outputs}
    assert [values.split() for _, values in outputs] == [[str(3 * i) for i in range(8)]] * 2


def test_an_unwritable_cache_folder_is_a_clear_error(local_lsun, tmp_path):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(data.CacheError, match="data.cache=False"):
        data.get_dataset(config(dataset="lsun/bedroom", image_size=8,
                                cache_dir=str(tmp_path / "a_file" / "cache")))


# ---------------------------------------------------------------------------------------------
# Prefetch


def digits_dataset():
    return data.get_dataset(config(dataset="digits", max_examples=100))


@pytest.mark.parametrize("process_index,process_count", SLICES)
def test_prefetch_yields_the_batches_the_loop_would_read(process_index, process_count):
    dataset = digits_dataset()
    with data.prefetch_batches(dataset, 3, 30, 8, 5, process_index, process_count,
                               depth=2) as batches:
        got = list(batches)
    assert [step for step, _ in got] == list(range(3, 30))
    for step, x_NHWC in got:
        want = dataset.batch(step, 8, 5, process_index, process_count)
        assert x_NHWC.shape == (8 // process_count, 8, 8, 1) and np.array_equal(x_NHWC, want)
    # Steps 3..29 at 12 per epoch cross two epoch boundaries: batches really differ.
    assert len({x.tobytes() for _, x in got}) == len(got)


def test_prefetch_applies_its_transform_and_restarts_at_a_rollback_step():
    dataset = digits_dataset()
    with data.prefetch_batches(dataset, 0, 10, 4, 0, transform=lambda x: x.sum()) as batches:
        first = [next(batches) for _ in range(6)]
    with data.prefetch_batches(dataset, 2, 10, 4, 0, transform=lambda x: x.sum()) as batches:
        again = list(batches)
    assert [s for s, _ in first] == list(range(6)) and [s for s, _ in again] == list(range(2, 10))
    assert dict(again)[4] == dict(first)[4] == dataset.batch(4, 4, 0).sum()


def test_prefetch_raises_the_worker_exception_at_its_step():
    def read(step):
        if step == 5:
            raise KeyError("bad example 5")
        return step * 10

    prefetcher = data.Prefetcher(read, 2, 9, depth=2)
    got = []
    with pytest.raises(KeyError, match="bad example 5"):
        for step, value in prefetcher:
            got.append((step, value))
    assert got == [(2, 20), (3, 30), (4, 40)]
    assert not prefetcher._thread.is_alive() and list(prefetcher) == []


def slow_reader(calls):
    def read(step):
        calls.append(step)
        time.sleep(0.01)
        return step
    return read


def test_prefetch_stops_its_thread_when_the_consumer_leaves_early():
    calls = []
    with pytest.raises(InterruptedError):
        with data.Prefetcher(slow_reader(calls), 0, 10_000, depth=2) as prefetcher:
            for step, _ in prefetcher:
                if step == 3:
                    raise InterruptedError("preempted")
    assert not prefetcher._thread.is_alive()
    # At most depth batches ahead of step 3, plus the one being read when it stopped.
    assert calls == list(range(len(calls))) and 4 <= len(calls) <= 7


def test_an_abandoned_prefetcher_stops_its_thread():
    calls = []
    prefetcher = data.Prefetcher(slow_reader(calls), 0, 10_000, depth=2)
    assert next(prefetcher) == (0, 0)
    thread = prefetcher._thread
    del prefetcher
    thread.join(5)
    assert not thread.is_alive() and len(calls) < 10
