"""Inception-v3 of the FID (the TensorFlow graph ``inception-2015-12-05``), in Flax.

The network is the FID variant used by every published FID: the blocks of ``pytorch-fid``'s
``FIDInceptionA/C/E_1/E_2`` (average pools that leave padding out of the count, a max pool in
the last block), 1008 output classes, batch norm with eps 1e-3 in inference mode. Module names
follow the PyTorch state dict, so the converter (``scripts/convert_inception_weights.py``) only
transposes kernels.

Preprocessing follows the 2015 graph: images in [-1, 1] are quantised to 8 bits as a saved PNG
would be, resized to 299x299 with TensorFlow 1's bilinear resize (no half-pixel offset, no
antialiasing), and mapped by (x - 128) / 128. Grey images are repeated over three channels.

Outputs: ``pool3`` (2048-d, for FID and KID) and ``logits`` (1008-d, for the Inception Score)
computed as in the original Inception Score code, pool3 times the weights of the softmax layer
without its bias.

The weights cannot be downloaded here; ``load_params`` reads them from a local ``.npz`` and
its error says how to get one.
"""
from __future__ import annotations

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

WEIGHTS_FILE = "fid_inception_v3.npz"
WEIGHTS_ENV = "EBM_JAX_INCEPTION"
SOURCE_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
              "pt_inception-2015-12-05-6726825d.pth")
NUM_CLASSES = 1008
IMAGE_SIZE = 299


def tf1_resize_bilinear(x_BHWC: Array, size: int) -> Array:
    """TensorFlow 1's ``resize_bilinear`` (align_corners=False): output pixel i samples the
    input at i * in / out, with no half-pixel offset, as in the 2015 graph."""

    def resize_axis(x, axis):
        n = x.shape[axis]
        src = jnp.arange(size, dtype=jnp.float32) * (n / size)
        lo = jnp.floor(src).astype(jnp.int32)
        hi = jnp.minimum(lo + 1, n - 1)
        w = (src - lo).reshape((-1,) + (1,) * (x.ndim - axis - 1))
        return jnp.take(x, lo, axis=axis) * (1 - w) + jnp.take(x, hi, axis=axis) * w

    return resize_axis(resize_axis(x_BHWC, 1), 2)


def preprocess(x_BHWC: Array, size: int = IMAGE_SIZE) -> Array:
    """Samples in [-1, 1] (values beyond are clipped) to the network's input."""
    x = jnp.round((jnp.clip(x_BHWC.astype(jnp.float32), -1, 1) + 1) * 127.5)
    if x.shape[-1] == 1:
        x = jnp.repeat(x, 3, axis=-1)
    return (tf1_resize_bilinear(x, size) - 128.0) / 128.0


class BasicConv(nn.Module):
    features: int
    kernel: tuple[int, int] = (1, 1)
    stride: int = 1
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x):
        (ph, pw), s = self.padding, self.stride
        x = nn.Conv(self.features, self.kernel, (s, s), ((ph, ph), (pw, pw)), use_bias=False,
                    name="conv")(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
        return nn.relu(x)


def _avg_pool(x):
    return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool(x, stride=2, pad=0):
    return nn.max_pool(x, (3, 3), (stride, stride), ((pad, pad), (pad, pad)))


class InceptionA(nn.Module):
    pool_features: int
    w: float = 1.0

    @nn.compact
    def __call__(self, x):
        c = lambda n: max(1, int(n * self.w))
        b1 = BasicConv(c(64), name="branch1x1")(x)
        b5 = BasicConv(c(48), name="branch5x5_1")(x)
        b5 = BasicConv(c(64), (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
        b3 = BasicConv(c(64), name="branch3x3dbl_1")(x)
        b3 = BasicConv(c(96), (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
        b3 = BasicConv(c(96), (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
        bp = BasicConv(c(self.pool_features), name="branch_pool")(_avg_pool(x))
        return jnp.concatenate([b1, b5, b3, bp], -1)


class InceptionB(nn.Module):
    w: float = 1.0

    @nn.compact
    def __call__(self, x):
        c = lambda n: max(1, int(n * self.w))
        b3 = BasicConv(c(384), (3, 3), 2, name="branch3x3")(x)
        bd = BasicConv(c(64), name="branch3x3dbl_1")(x)
        bd = BasicConv(c(96), (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = BasicConv(c(96), (3, 3), 2, name="branch3x3dbl_3")(bd)
        return jnp.concatenate([b3, bd, _max_pool(x)], -1)


class InceptionC(nn.Module):
    channels_7x7: int
    w: float = 1.0

    @nn.compact
    def __call__(self, x):
        c = lambda n: max(1, int(n * self.w))
        c7 = c(self.channels_7x7)
        b1 = BasicConv(c(192), name="branch1x1")(x)
        b7 = BasicConv(c7, name="branch7x7_1")(x)
        b7 = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
        b7 = BasicConv(c(192), (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
        bd = BasicConv(c7, name="branch7x7dbl_1")(x)
        bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
        bd = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
        bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
        bd = BasicConv(c(192), (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
        bp = BasicConv(c(192), name="branch_pool")(_avg_pool(x))
        return jnp.concatenate([b1, b7, bd, bp], -1)


class InceptionD(nn.Module):
    w: float = 1.0

    @nn.compact
    def __call__(self, x):
        c = lambda n: max(1, int(n * self.w))
        b3 = BasicConv(c(192), name="branch3x3_1")(x)
        b3 = BasicConv(c(320), (3, 3), 2, name="branch3x3_2")(b3)
        b7 = BasicConv(c(192), name="branch7x7x3_1")(x)
        b7 = BasicConv(c(192), (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
        b7 = BasicConv(c(192), (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
        b7 = BasicConv(c(192), (3, 3), 2, name="branch7x7x3_4")(b7)
        return jnp.concatenate([b3, b7, _max_pool(x)], -1)


class InceptionE(nn.Module):
    max_pool: bool = False  # the last block of the 2015 graph pools by max, the other by mean
    w: float = 1.0

    @nn.compact
    def __call__(self, x):
        c = lambda n: max(1, int(n * self.w))
        b1 = BasicConv(c(320), name="branch1x1")(x)
        b3 = BasicConv(c(384), name="branch3x3_1")(x)
        b3 = jnp.concatenate([
            BasicConv(c(384), (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
            BasicConv(c(384), (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], -1)
        bd = BasicConv(c(448), name="branch3x3dbl_1")(x)
        bd = BasicConv(c(384), (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = jnp.concatenate([
            BasicConv(c(384), (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
            BasicConv(c(384), (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], -1)
        pooled = _max_pool(x, 1, 1) if self.max_pool else _avg_pool(x)
        bp = BasicConv(c(192), name="branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, bp], -1)


class FIDInceptionV3(nn.Module):
    """Returns ``(pool3_BD, logits_BC)`` for preprocessed input (see ``preprocess``).

    ``width`` scales every layer's channels; 1.0 is the real network (D = 2048), smaller
    values give an Inception-shaped network for tests."""
    width: float = 1.0
    num_classes: int = NUM_CLASSES

    @nn.compact
    def __call__(self, x_BHWC):
        w = self.width
        c = lambda n: max(1, int(n * w))
        x = BasicConv(c(32), (3, 3), 2, name="Conv2d_1a_3x3")(x_BHWC)
        x = BasicConv(c(32), (3, 3), name="Conv2d_2a_3x3")(x)
        x = BasicConv(c(64), (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
        x = _max_pool(x)
        x = BasicConv(c(80), name="Conv2d_3b_1x1")(x)
        x = BasicConv(c(192), (3, 3), name="Conv2d_4a_3x3")(x)
        x = _max_pool(x)
        x = InceptionA(32, w, name="Mixed_5b")(x)
        x = InceptionA(64, w, name="Mixed_5c")(x)
        x = InceptionA(64, w, name="Mixed_5d")(x)
        x = InceptionB(w, name="Mixed_6a")(x)
        x = InceptionC(128, w, name="Mixed_6b")(x)
        x = InceptionC(160, w, name="Mixed_6c")(x)
        x = InceptionC(160, w, name="Mixed_6d")(x)
        x = InceptionC(192, w, name="Mixed_6e")(x)
        x = InceptionD(w, name="Mixed_7a")(x)
        x = InceptionE(False, w, name="Mixed_7b")(x)
        x = InceptionE(True, w, name="Mixed_7c")(x)
        pool3_BD = jnp.mean(x, axis=(1, 2))
        fc = nn.Dense(self.num_classes, name="fc")
        fc(pool3_BD)  # creates the layer's bias, kept so the weights match the published file
        logits_BC = pool3_BD @ fc.variables["params"]["kernel"]
        return pool3_BD, logits_BC


def variable_shapes(width: float = 1.0, image_size: int = IMAGE_SIZE):
    """The network's variables as ``jax.ShapeDtypeStruct``s (nothing is computed)."""
    dummy = jax.ShapeDtypeStruct((1, image_size, image_size, 3), jnp.float32)
    return jax.eval_shape(lambda x: FIDInceptionV3(width).init(jax.random.key(0), x), dummy)


def init_variables(seed: int = 0, width: float = 1.0, image_size: int = IMAGE_SIZE):
    """Random variables of an Inception-shaped network, for tests: kernels N(0, 1/fan_in),
    batch norm the identity. Drawn with NumPy, since compiling Flax's initialisers for the
    network's ~470 arrays takes minutes on a CPU."""
    rng = np.random.default_rng(seed)
    flat = {}
    for name, leaf in _named_leaves(variable_shapes(width, image_size)).items():
        shape, last = leaf.shape, name.rsplit("/", 1)[-1]
        if last == "kernel":
            value = rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1]))
        elif last in ("scale", "var"):
            value = np.ones(shape)
        else:
            value = np.zeros(shape)
        flat[name] = value.astype(np.float32)
    return unflatten(flat)


def missing_weights_message(path: str) -> str:
    return (
        f"Inception weights not found at {path!r}. FID, IS and KID need the standard FID "
        f"Inception-v3 weights, which are never downloaded here. On a machine with network "
        f"access, fetch\n  {SOURCE_URL}\n(pytorch-fid's port of the TensorFlow graph "
        f"inception-2015-12-05), then convert it once (needs torch):\n"
        f"  python scripts/convert_inception_weights.py pt_inception-2015-12-05-6726825d.pth "
        f"{WEIGHTS_FILE}\nand place {WEIGHTS_FILE} at {path!r}, or pass "
        f"--inception_weights=PATH, or set ${WEIGHTS_ENV} to its path or to its folder.")


def default_weights_path() -> str:
    """``$EBM_JAX_INCEPTION`` (a file, or a folder holding ``fid_inception_v3.npz``), else
    ``~/.cache/ebm_jax/fid_inception_v3.npz``."""
    path = os.environ.get(WEIGHTS_ENV) or os.path.join(
        os.path.expanduser("~"), ".cache", "ebm_jax")
    return os.path.join(path, WEIGHTS_FILE) if os.path.isdir(path) else path


def _named_leaves(tree) -> dict:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(k.key for k in path): v for path, v in flat}


def flatten(variables) -> dict[str, np.ndarray]:
    """``{'params/Mixed_5b/branch1x1/conv/kernel': array, ...}``: the ``.npz`` layout."""
    return {name: np.asarray(v) for name, v in _named_leaves(variables).items()}


def unflatten(flat: dict[str, np.ndarray]):
    tree: dict = {}
    for name, value in flat.items():
        *parents, leaf = name.split("/")
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = jnp.asarray(value)
    return tree


def load_params(path: str | None = None, width: float = 1.0):
    """Reads converted weights and checks that every array has the network's shape."""
    path = path or default_weights_path()
    if not os.path.exists(path):
        raise FileNotFoundError(missing_weights_message(path))
    with np.load(path) as f:
        loaded = {k: f[k] for k in f.files}
    expected = _named_leaves(variable_shapes(width))
    if set(loaded) != set(expected):
        diff = sorted(set(loaded) ^ set(expected))[:5]
        raise ValueError(f"{path!r} is not a converted FID Inception (names differ: {diff})")
    for name, value in loaded.items():
        if value.shape != expected[name].shape:
            raise ValueError(f"{path!r}: {name} has shape {value.shape}, expected "
                             f"{expected[name].shape}")
    return unflatten(loaded)


def make_apply(width: float = 1.0, image_size: int = IMAGE_SIZE):
    """Returns ``apply(variables, x_BHWC in [-1, 1]) -> (pool3_BD, logits_BC)``, pure."""
    net = FIDInceptionV3(width)

    def apply(variables, x_BHWC):
        return net.apply(variables, preprocess(x_BHWC, image_size))

    return apply


def output_dims(width: float = 1.0) -> tuple[int, int]:
    """(D, C): the sizes of pool3 and of the logits."""
    shapes = jax.eval_shape(make_apply(width, 75), variable_shapes(width, 75),
                            jax.ShapeDtypeStruct((1, 8, 8, 1), jnp.float32))
    return shapes[0].shape[1], shapes[1].shape[1]


def conv_kernel_from_torch(w_OIHW: np.ndarray) -> np.ndarray:
    return np.transpose(w_OIHW, (2, 3, 1, 0))


def convert_torch_state_dict(state_dict: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """pytorch-fid's ``FIDInceptionA``... state dict (arrays) to our flat ``.npz`` names."""
    out = {}
    for name, value in state_dict.items():
        value = np.asarray(value, np.float32)
        *module, leaf = name.split(".")
        prefix = "/".join(module)
        if leaf == "num_batches_tracked":
            continue
        if module[-1] == "conv" and leaf == "weight":
            out[f"params/{prefix}/kernel"] = conv_kernel_from_torch(value)
        elif module[-1] == "bn":
            target = {"weight": "params/{}/scale", "bias": "params/{}/bias",
                      "running_mean": "batch_stats/{}/mean",
                      "running_var": "batch_stats/{}/var"}[leaf]
            out[target.format(prefix)] = value
        elif module == ["fc"]:
            out[f"params/fc/{'kernel' if leaf == 'weight' else 'bias'}"] = (
                value.T if leaf == "weight" else value)
        else:
            raise ValueError(f"unexpected entry {name!r} in the Inception state dict")
    return out
