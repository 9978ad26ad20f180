import numpy as np
import pytest
from sklearn.datasets import load_digits

from ebm_jax.configs import test as test_config
from ebm_jax.configs import toy2d
from ebm_jax.evaluation import splits
from ebm_jax.runtime import validation


def test_held_out_digits_are_the_ones_training_never_saw():
    config = test_config.get_config()
    with pytest.raises(validation.InputError, match="no held-out"):
        splits.load_split(config, "test", 4)
    config.data.max_examples = 1500
    x = splits.load_split(config, "test", 4)
    np.testing.assert_allclose(x[..., 0], load_digits().images[1500:1504] / 8 - 1)
    dataset, first, count = splits.split_dataset(config, "test")
    assert (first, count, len(dataset)) == (1500, 297, 1797)
    train = splits.load_split(config, "train")
    assert len(train) == 1500
    np.testing.assert_allclose(train[-1, ..., 0], load_digits().images[1499] / 8 - 1)
    with pytest.raises(validation.InputError, match="train' or 'test"):
        splits.check_split(config, "valid")


def test_toy_sets_hold_out_their_tail_too():
    config = toy2d.get_config()
    config.data.num_examples, config.data.max_examples = 100, 80
    assert len(splits.load_split(config, "test")) == 20
    assert len(splits.load_split(config, "train", 5)) == 5
