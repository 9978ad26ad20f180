"""``--mode=probe``: does the inferred code z carry the class? A linear probe of z.

A multinomial logistic regression (scikit-learn, L2, lbfgs) is fitted on the codes that the
family infers (``Family.make_encoder``) for the training split and scored by its accuracy on
the test split, beside the same probe on PCA features with the same d (fitted on the training
split) and on the raw pixels. It needs a data set with labels (digits, mnist5k) and a config
that holds examples out (``data.max_examples``, see ``splits``).

Keys: the codes of the training split ``fold_in(key(seed), 0)``, of the test split
``fold_in(key(seed), 1)``; batches of ``batch_size`` examples.
"""
from __future__ import annotations

import jax
import numpy as np

from ebm_jax.evaluation import common, options, splits, stats
from ebm_jax.families import base
from ebm_jax.runtime import distributed, parallel, validation


def probe_accuracy(train_X: np.ndarray, train_y: np.ndarray, test_X: np.ndarray,
                   test_y: np.ndarray, seed: int = 0) -> float:
    """Test accuracy of a multinomial logistic regression fitted on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    clf.fit(np.asarray(train_X, np.float64).reshape(len(train_X), -1), train_y)
    return float(clf.score(np.asarray(test_X, np.float64).reshape(len(test_X), -1), test_y))


def encode_all(run, encode, x: np.ndarray, key, batch_size: int) -> np.ndarray:
    """The codes of ``x`` in batches split over the run's devices, gathered."""
    out = []
    for i, start in enumerate(range(0, len(x), batch_size)):
        chunk = x[start:start + batch_size]
        z = encode(run.params, parallel.shard_rows(chunk, run.mesh), jax.random.fold_in(key, i))
        out.append(distributed.gather(z)[:len(chunk)])
    return np.concatenate(out)


def labelled_split(config, split: str):
    dataset, first, count = splits.split_dataset(config, split)
    x = dataset.get(np.arange(first, first + count))
    return x, dataset.labels[first:first + count]


BATCH_SIZE = options.BATCH_SIZE.but(help="images encoded per compiled batch", default=256)


def evaluate_probe(run, config, out_dir: str, request: common.Request) -> dict:
    batch_size = int(request.option(BATCH_SIZE))
    x_train, y_train = labelled_split(config, "train")
    x_test, y_test = labelled_split(config, "test")
    family = run.family.with_config(config)
    encode = family.make_encoder()
    key = jax.random.key(request.seed)
    z_train = encode_all(run, encode, x_train, jax.random.fold_in(key, 0), batch_size)
    z_test = encode_all(run, encode, x_test, jax.random.fold_in(key, 1), batch_size)
    d = family.latent_dim
    mean, basis = stats.pca_basis(x_train, d)
    acc = {"probe_accuracy_z": probe_accuracy(z_train, y_train, z_test, y_test, request.seed),
           f"probe_accuracy_pca{d}": probe_accuracy(stats.pca_codes(mean, basis, x_train),
                                                    y_train, stats.pca_codes(mean, basis, x_test),
                                                    y_test, request.seed),
           "probe_accuracy_pixels": probe_accuracy(x_train, y_train, x_test, y_test,
                                                   request.seed)}
    protocol = common.encoder_protocol(run, config, len(x_test), request.seed, run.step)
    protocol.update(family=run.family.name, latent_dim=d, num_train=len(x_train),
                    num_test=len(x_test), classifier="multinomial logistic regression, L2, "
                    "standardised features")
    np.savez(f"{out_dir}/probe_codes.npz", z_train=z_train, y_train=y_train, z_test=z_test,
             y_test=y_test)
    return {"mode": "probe", "protocol": protocol, "stats": acc}


def check(run, config, request) -> None:
    dataset, _, _ = splits.split_dataset(config, "test")
    if dataset.labels is None:
        raise validation.InputError(f"--mode=probe needs labels, and {config.data.dataset!r} "
                                    "has none (digits and mnist5k have them)")


MODE = common.Mode("probe", evaluate_probe, "a linear probe of the inferred codes",
                   needs=frozenset({base.INFERENCE}), check=check,
                   options=(BATCH_SIZE,))
