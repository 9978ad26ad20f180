import jax
import numpy as np

from ebm_jax.core import keys


def data(key):
    return np.asarray(jax.random.key_data(key))


def test_keys_are_derived_from_seed_and_step():
    k0, k1 = keys.step_key(0, 0), keys.step_key(0, 1)
    assert not np.array_equal(data(k0), data(k1))
    np.testing.assert_array_equal(data(keys.step_key(0, 5)), data(keys.step_key(0, 5)))
    assert not np.array_equal(data(keys.step_key(1, 5)), data(keys.step_key(0, 5)))
    # The three streams of a run never share a key.
    streams = [data(keys.init_key(0)), data(k0), data(keys.plot_key(0, 0))]
    assert len({s.tobytes() for s in streams}) == 3
    np.testing.assert_array_equal(
        data(keys.step_key(3, 7)),
        data(jax.random.fold_in(jax.random.fold_in(jax.random.key(3), 1), 7)))
