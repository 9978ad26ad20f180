"""``--mode=fid`` (FID, Inception Score and KID in one pass) and ``--mode=fid_stats``.

A run trained with persistent chains is scored twice: its fresh short-run samples (the plain
stats) and chains of its saved replay buffer (``buffer_`` stats; ``common.SOURCES``).

``fid`` draws fresh short-run samples (40,000 by default, ``eval.fid_num_samples``) in batches
split across the devices, runs each batch through the FID Inception-v3 inside the same
compiled call, and compares the pool3 features with the data set's reference statistics.
``fid_stats`` computes those statistics for the run's data set and caches them under
``CACHE_DIR/fid_stats/`` (``~/.cache/ebm_jax`` unless ``cache_dir`` is given), keyed by the
data set and the network; ``fid`` computes them first when they are missing.

Options: ``inception_weights`` (the converted ``.npz``; see ``ebm_jax.evaluation.inception``),
``inception_width`` and ``inception_size`` (only for a smaller, Inception-shaped network, as in
tests), ``batch_size`` (400), ``cache_dir``, ``num_reference`` (examples for the statistics;
all by default), ``kid_subsets`` (100) and ``kid_subset_size`` (1000).

On digits, mnist and mnist5k ``fid`` uses a small digit classifier instead of Inception
(``ebm_jax.evaluation.digit_features``; option ``digit_weights``), with a real-digit floor and a
noise ceiling beside the model's figures; ``feature_network='inception'`` keeps Inception.
"""
from __future__ import annotations

import os
import time

import jax
import numpy as np

from ebm_jax import data
from ebm_jax.evaluation import common, digit_features, fid, inception, options
from ebm_jax.runtime import distributed, parallel, validation

KID_REFERENCE_FEATURES = 5000
INCEPTION_WEIGHTS = options.Option("inception_weights", "string", "the converted Inception .npz "
                                   "(default $EBM_JAX_INCEPTION or "
                                   "~/.cache/ebm_jax/fid_inception_v3.npz)")
CACHE_DIR = options.Option("cache_dir", "string", "where reference statistics are cached",
                           default=os.path.join("~", ".cache", "ebm_jax"))
NUM_REFERENCE = options.Option("num_reference", "integer", "data examples for the reference "
                               "statistics (default all)", positive=True)
BATCH_SIZE = options.BATCH_SIZE.but(default=400)
KID_SUBSETS = options.Option("kid_subsets", "integer", "KID's subsets", default=100,
                             positive=True)
KID_SUBSET_SIZE = options.Option("kid_subset_size", "integer", "examples per KID subset",
                                 default=1000, positive=True)
INCEPTION_WIDTH = options.Option("inception_width", "float", "channel width of the Inception "
                                 "net, 1 for the real one (smaller only in tests)", default=1.0)
INCEPTION_SIZE = options.Option("inception_size", "integer", "the Inception net's input size",
                                default=inception.IMAGE_SIZE, positive=True)
OPTIONS = (INCEPTION_WEIGHTS, CACHE_DIR, NUM_REFERENCE, BATCH_SIZE, INCEPTION_WIDTH,
           INCEPTION_SIZE)


class Network:
    """The Inception network an evaluation uses, and the name of its cached statistics."""

    def __init__(self, request: common.Request):
        self.width = float(request.option(INCEPTION_WIDTH))
        self.size = int(request.option(INCEPTION_SIZE))
        self.path = request.option(INCEPTION_WEIGHTS) or inception.default_weights_path()
        self.variables = inception.load_params(self.path, self.width)
        self.apply = inception.make_apply(self.width, self.size)
        self.tag = ("fid_inception" if (self.width, self.size) == (1.0, inception.IMAGE_SIZE)
                    else f"inception_w{self.width:g}_s{self.size}")


def cache_dir(request: common.Request) -> str:
    return os.path.expanduser(request.option(CACHE_DIR))


def stats_path(config, request: common.Request, net: Network) -> str:
    d = config.data
    name = (f"{d.dataset.replace('/', '_')}_{d.split}_{d.image_size}_max{d.max_examples}"
            f"_{request.option(NUM_REFERENCE, 'all')}_{net.tag}.npz")
    return os.path.join(cache_dir(request), "fid_stats", name)


def _features(fn, batches):
    """Runs ``fn(n)(*args)`` per batch and gathers its (pool, logits) from every process."""
    pools, logits = [], []
    for args, n in batches:
        pool, logit = fn(n)(*args)
        pools.append(distributed.gather(pool)[:n].astype(np.float64))
        logits.append(distributed.gather(logit)[:n].astype(np.float64))
    return np.concatenate(pools), np.concatenate(logits)


def data_features(config, net: Network, request: common.Request, mesh):
    """Pool3 and logits of the run's data set (the first ``num_reference`` examples)."""
    dataset = data.get_dataset(config.data, seed=int(config.seed))
    total = int(request.option(NUM_REFERENCE, len(dataset)))
    return image_features(dataset.get, total, net, request, mesh)


def image_features(get, total: int, net: Network, request: common.Request, mesh):
    """Pool3 and logits of images ``get(indices)``, indices 0 to ``total`` - 1."""
    batch = int(request.option(BATCH_SIZE))
    variables = parallel.replicate(net.variables, mesh)
    fns = {}

    def fn(n):
        if n not in fns:
            constrain = common.mesh_constraint(mesh, n)
            fns[n] = jax.jit(lambda v, x: net.apply(v, x if constrain is None else constrain(x)))
        return fns[n]

    def batches():
        for start in range(0, total, batch):
            idx = np.arange(start, min(start + batch, total))
            yield (variables, get(idx)), len(idx)

    return _features(fn, batches())


def reference_stats(config, net: Network, request: common.Request, mesh):
    """Loads the cached statistics, or computes and caches them. Returns (mu, sigma, features
    for KID, path, number of examples)."""
    path = stats_path(config, request, net)
    if not os.path.exists(path):
        pool, _ = data_features(config, net, request, mesh)
        mu, sigma = fid.feature_stats(pool)
        fid.save_stats(path, mu, sigma, features=pool[:KID_REFERENCE_FEATURES].astype(np.float32),
                       num_examples=len(pool))
    with np.load(path) as f:
        return f["mu"], f["sigma"], f["features"], path, int(f["num_examples"])


def sample_features(run, config, net: Network, request: common.Request, mesh):
    """Pool3 and logits of ``num_samples`` fresh short-run samples (``common.batch_keys``),
    sampling and Inception in one compiled call per batch."""
    batch = int(request.option(BATCH_SIZE))
    fns = {}

    def fn(n):
        if n not in fns:
            # Padded to a multiple of the device count; padding leaves the first n chains as
            # they are (parallel.round_up), and _features keeps those.
            sample = run.make_sampler(config)
            n_pad = parallel.round_up(n, mesh)
            fns[n] = jax.jit(lambda p, v, key: net.apply(v, sample(p, key, n_pad).x))
        return fns[n]

    params, variables = parallel.replicate((run.params, net.variables), mesh)
    batches = (((params, variables, key), n)
               for key, n in common.batch_keys(request.num_samples, request.seed, batch))
    return _features(fn, batches)


def evaluate_fid_stats(run, config, out_dir: str, request: common.Request) -> dict:
    net = Network(request)
    mesh = run.mesh
    mu, sigma, _, path, n = reference_stats(config, net, request, mesh)
    return {"mode": "fid_stats", "path": path, "inception_weights": net.path,
            "protocol": {"dataset": config.data.dataset, "split": config.data.split,
                         "image_size": int(config.data.image_size), "num_examples": n},
            "stats": {"num_examples": n, "trace_sigma": float(np.trace(sigma)),
                      "norm_mu": float(np.linalg.norm(mu))}}


def evaluate_fid(run, config, out_dir: str, request: common.Request) -> dict:
    if digit_features.uses_digit_network(config, request):
        return evaluate_digit_fid(run, config, request)
    net = Network(request)
    mesh = run.mesh
    mu_ref, sigma_ref, feat_ref, path, n_ref = reference_stats(config, net, request, mesh)

    def scores(pool, logits):
        mu, sigma = fid.feature_stats(pool)
        is_mean, is_std = fid.inception_score(logits)
        kid_mean, kid_std = fid.kernel_inception_distance(
            pool, feat_ref, int(request.option(KID_SUBSETS)),
            int(request.option(KID_SUBSET_SIZE)), seed=request.seed)
        return {"fid": fid.frechet_distance(mu, sigma, mu_ref, sigma_ref),
                "inception_score": is_mean, "inception_score_std": is_std,
                "kid": kid_mean, "kid_std": kid_std}

    stats = scores(*sample_features(run, config, net, request, mesh))
    protocol = common.protocol(config, request.num_samples, request.seed, run.step)
    protocol.update(reference=path, reference_examples=n_ref, inception_weights=net.path,
                    network=net.tag)
    stats = {"num_samples": request.num_samples, "reference_examples": n_ref, **stats}
    buffer = common.buffer_samples(run, request.num_samples, request.seed)
    if buffer is not None:
        pool_logits = image_features(lambda idx: buffer[idx], len(buffer), net, request, mesh)
        stats.update({f"buffer_{k}": v for k, v in scores(*pool_logits).items()})
        stats["buffer_num_samples"] = len(buffer)
        protocol.update(sources=common.SOURCES, buffer_num_samples=len(buffer))
    return {"mode": "fid", "protocol": protocol, "stats": stats}


def evaluate_digit_fid(run, config, request: common.Request) -> dict:
    """``--mode=fid`` for a digit data set: the model's fresh samples, the floor and the
    ceiling, all against the training split of the network's data (``digit_features``)."""
    df = digit_features
    name = df.network_for(config.data.dataset)
    spec = df.SPECS[name]
    path = request.option(digit_features.DIGIT_WEIGHTS) or spec.weights_path
    params = df.load(name, path)
    kid = dict(kid_subsets=int(request.option(KID_SUBSETS)),
               kid_subset_size=int(request.option(KID_SUBSET_SIZE)))
    start = time.perf_counter()
    x = common.draw_samples(run, config, request.num_samples, request.seed)
    sample_seconds = time.perf_counter() - start
    points = df.reference_points(spec, params, request.num_samples, request.seed, **kid)
    model = df.compare(spec, params, x, points["reference"], seed=request.seed, **kid)
    with np.load(path) as f:
        accuracy = float(f["test_accuracy"])
    buffer = common.buffer_samples(run, request.num_samples, request.seed)
    buffer_stats = {}
    if buffer is not None:
        buffer_stats = df.compare(spec, params, buffer, points["reference"], seed=request.seed,
                                  **kid)
        buffer_stats.pop("confident_class_counts")
    protocol = common.protocol(config, request.num_samples, request.seed, run.step)
    if buffer is not None:
        protocol.update(sources=common.SOURCES, buffer_num_samples=buffer_stats["num_samples"])
    protocol.update(
        network={"name": f"{name}_classifier", "weights": path, "test_accuracy": accuracy,
                 "feature_dim": spec.feature_dim},
        split=spec.split_text, reference="the training examples of the split",
        reference_examples=len(points["reference"]), floor="the held-out examples, real",
        ceiling="uniform noise U[-1, 1]",
        training_copy="training examples drawn without replacement", confidence=df.CONFIDENCE,
        coverage_fraction=df.COVERAGE_FRACTION, sample_seconds=sample_seconds)
    counts = {k: model.pop(k) for k in ("confident_class_counts",)}
    stats = dict(model)  # its num_samples included: every FID beside its sample count
    for label in ("floor", "ceiling", "training_copy"):
        point = points[label]
        point.pop("confident_class_counts")
        protocol[f"{label}_num_samples"] = point["num_samples"]
        stats.update({f"{label}_{k}": v for k, v in point.items()})
    stats.update({f"buffer_{k}": v for k, v in buffer_stats.items()})
    notes = [df.floor_note(spec, config, protocol["floor_num_samples"]),
             f"Each FID is over the number of images beside it (num_samples, "
             f"floor_num_samples, buffer_num_samples, ...), against "
             f"{len(points['reference'])} reference digits; with fewer images the FID is "
             "biased upwards, so compare FIDs at one count."]
    return {"mode": "fid", "protocol": protocol, "stats": stats, "notes": notes,
            "confident_class_counts": counts["confident_class_counts"]}


def check_inception(run, config, request) -> None:
    """The Inception weights must be there, and the images gray or RGB."""
    if run.data_shape[-1] not in (1, 3):
        raise validation.InputError("FID, IS and KID need images with 1 or 3 channels")
    path = request.option(INCEPTION_WEIGHTS) or inception.default_weights_path()
    if not os.path.exists(path):
        raise validation.InputError(inception.missing_weights_message(path))


def check(run, config, request) -> None:
    """Digit data sets use the digit network, shipped with the package; others Inception."""
    if not digit_features.uses_digit_network(config, request):
        check_inception(run, config, request)


FID = common.Mode("fid", evaluate_fid, "FID, Inception Score and KID of fresh samples",
                  data="image", check=check,
                  options=OPTIONS + (KID_SUBSETS, KID_SUBSET_SIZE, digit_features.FEATURE_NETWORK,
                                    digit_features.DIGIT_WEIGHTS))
FID_STATS = common.Mode("fid_stats", evaluate_fid_stats, "the data set's reference statistics "
                        "for FID", data="image", check=check_inception,
                        in_all=False, options=OPTIONS)
