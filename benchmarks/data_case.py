"""The `data` benchmark: host images per second of the input pipeline at 64x64, one JSON line
per measurement.

  python benchmarks/data_case.py                       # 640 images per format, 40,000 cached
  python benchmarks/data_case.py --num_images 256 --big 0

For each tfds storage format we read (ArrayRecord with JPEG or PNG bytes) and each source size
(CelebA 218x178, centre crop 140; LSUN 256x341, centre crop to the shorter side), locally
written structured images are read three ways: ``uncached`` (the first epoch: decode, crop and
resize every image of each batch), ``cache_build`` (decode everything once into the uint8
cache) and ``cached`` (random batches of 64 from the memory-mapped cache, scaled to float32).
``cached_40k`` reads random batches from a 40,000-image cache, the paper's data set size.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ebm_jax import data  # noqa: E402
from ebm_jax.data import cache, tfds_source  # noqa: E402
from ebm_jax.data.images import uint8_to_unit  # noqa: E402

BATCH = 64
IMAGE_SIZE = 64
# Source shape (H, W) and the tfds data set whose preprocessing it gets.
SOURCES = {"celeba": ((218, 178), "celeb_a"), "lsun": ((256, 341), "lsun/bedroom")}
FORMATS = ("jpeg", "png")


def structured_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth colour gradients, a few flat ellipses and mild noise: compresses like a photo
    more than uniform noise does."""
    y_HW, x_HW = np.mgrid[0:height, 0:width] / max(height, width)
    image_HWC = (rng.uniform(60, 200, 3) + rng.uniform(-90, 90, 3) * x_HW[..., None]
                 + rng.uniform(-90, 90, 3) * y_HW[..., None])
    for _ in range(5):
        cy, cx, ry, rx = rng.uniform(0.1, 0.9, 2).tolist() + rng.uniform(0.05, 0.3, 2).tolist()
        inside_HW = ((y_HW - cy) / ry) ** 2 + ((x_HW - cx) / rx) ** 2 < 1
        image_HWC[inside_HW] = rng.uniform(0, 255, 3)
    image_HWC += rng.normal(0, 6, image_HWC.shape)
    return np.clip(image_HWC, 0, 255).astype(np.uint8)


def encode(image_HWC: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    options = {"quality": 90} if fmt == "jpeg" else {}
    Image.fromarray(image_HWC).save(buffer, format=fmt.upper(), **options)
    return buffer.getvalue()


def prepare_sources(data_dir: str, num_images: int) -> dict:
    """Writes one ArrayRecord tfds data set per (source, format); returns their data sources."""
    import tensorflow_datasets as tfds

    configs = [f"{kind}_{fmt}" for kind in SOURCES for fmt in FORMATS]

    class EbmJaxBenchImages(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")
        BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=name) for name in configs]

        def _info(self):
            kind, fmt = self.builder_config.name.split("_")
            shape = SOURCES[kind][0] + (3,)
            features = tfds.features.FeaturesDict(
                {"image": tfds.features.Image(shape=shape, encoding_format=fmt)})
            return tfds.core.DatasetInfo(builder=self, features=features)

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            kind, fmt = self.builder_config.name.split("_")
            rng = np.random.default_rng(0)
            for i in range(num_images):
                yield i, {"image": encode(structured_image(rng, *SOURCES[kind][0]), fmt)}

    sources = {}
    for name in configs:
        full = f"ebm_jax_bench_images/{name}"
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON rows
            tfds.builder(full, data_dir=data_dir, file_format="array_record").download_and_prepare()
        sources[name] = tfds.data_source(full, split="train", data_dir=data_dir)
    return sources


def cpu_info() -> dict:
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
        model = next(l.split(":", 1)[1].strip() for l in lines if l.startswith("Model name"))
    except (OSError, StopIteration):
        model = "unknown"
    # The load average says how far other processes share those cores during the run.
    return {"cpu": model, "cores": len(os.sched_getaffinity(0)),
            "load_avg_1min": round(os.getloadavg()[0], 2)}


def rate(images: int, seconds: float) -> dict:
    return {"images": images, "seconds": round(seconds, 3),
            "images_per_s": round(images / seconds, 1),
            "ms_per_batch_64": round(1e3 * seconds * BATCH / images, 3)}


def time_batches(ds: data.Dataset, steps: range) -> float:
    start = time.perf_counter()
    for step in steps:
        ds.batch(step, BATCH, 0)
    return time.perf_counter() - start


def run_data_case(emit, num_images: int = 640, read_batches: int = 2000, big: int = 40_000,
                  workdir: str | None = None) -> None:
    """Emits one row per measurement (see the module docstring) through `emit(row)`."""
    head = {"case": "data", "image_size": IMAGE_SIZE, "batch": BATCH, **cpu_info()}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        sources = prepare_sources(os.path.join(tmp, "tfds"), num_images)
        for name, source in sources.items():
            kind, fmt = name.split("_")
            shape, tfds_name = SOURCES[kind]
            row = {**head, "format": f"array_record/{fmt}", "source_hw": list(shape),
                   "preprocess": tfds_name}
            load = lambda **kw: tfds_source.dataset_from_source(
                source, tfds_name, image_size=IMAGE_SIZE, cache_dir=os.path.join(tmp, "cache"),
                **kw)
            uncached = load(cache=False)
            epoch = range(num_images // BATCH)
            seconds = time_batches(uncached, epoch)
            emit({**row, "stage": "uncached", **rate(len(epoch) * BATCH, seconds)})
            start = time.perf_counter()
            cached = load(cache=True)
            emit({**row, "stage": "cache_build", "workers": os.cpu_count(),
                  **rate(num_images, time.perf_counter() - start)})
            same = all(np.array_equal(cached.batch(s, BATCH, 0), uncached.batch(s, BATCH, 0))
                       for s in (0, len(epoch) + 1))
            reads = range(read_batches)
            emit({**row, "stage": "cached", "identical_to_uncached": same,
                  **rate(read_batches * BATCH, time_batches(cached, reads))})
        if big:
            emit({**head, "stage": "cached_40k" if big == 40_000 else f"cached_{big}",
                  **big_cache_rate(os.path.join(tmp, "cache"), big, read_batches)})


def big_cache_rate(directory: str, count: int, read_batches: int) -> dict:
    """Random batches of 64 from a `count`-image uint8 cache of 64x64x3 (noise images)."""
    shape = (count, IMAGE_SIZE, IMAGE_SIZE, 3)
    pool_PHWC = np.random.default_rng(0).integers(0, 256, (256,) + shape[1:], dtype=np.uint8)
    key = {"name": "bench", "split": "train", "size": IMAGE_SIZE, "crop": "none", "count": count}
    x_NHWC = cache.open_or_build(directory, key, shape, lambda i: pool_PHWC[i % 256])
    ds = data.Dataset("bench", shape[1:], True, count,
                      lambda idx_N: uint8_to_unit(x_NHWC[idx_N]))
    time_batches(ds, range(50))  # page the file in
    return {"cache_gb": round(x_NHWC.nbytes / 1e9, 3),
            **rate(read_batches * BATCH, time_batches(ds, range(read_batches)))}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num_images", type=int, default=640, help="images per format")
    p.add_argument("--read_batches", type=int, default=2000, help="batches read from a cache")
    p.add_argument("--big", type=int, default=40_000, help="size of the large cache; 0: none")
    p.add_argument("--workdir", default=None, help="where the temporary data sets go")
    a = p.parse_args()
    run_data_case(lambda row: print(json.dumps(row), flush=True), a.num_images, a.read_batches,
                  a.big, a.workdir)


if __name__ == "__main__":
    main()
