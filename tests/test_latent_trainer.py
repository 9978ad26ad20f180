import os

import jax
import numpy as np
import pytest

from ebm_jax.configs import latent_ebm_digits
from ebm_jax.runtime import checkpointing, parallel
from ebm_jax.evaluation import evaluation
from ebm_jax.training import trainer


def tiny_config(family, start):
    config = latent_ebm_digits.get_config()
    config.model.family, config.inference.start = family, start
    config.model.nf, config.model.latent_dim, config.model.feature_dim = 4, 3, 8
    config.model.latent_hidden = 8
    config.sampling.num_steps, config.inference.num_steps = 2, 2
    config.sampling.unroll, config.inference.unroll = 1, 1
    config.training.num_steps, config.training.batch_size = 4, 16
    config.training.checkpoint_every = config.training.sample_every = 2
    config.training.log_every, config.training.num_plot_samples = 1, 4
    config.optim.schedule = "constant"  # a decay would depend on num_steps, which resume changes
    return config


@pytest.fixture(scope="module")
def one_device():
    return parallel.make_mesh(jax.devices()[:1])


def test_warm_run_resumes_exactly_with_its_bank_and_evaluates_samples(tmp_path, one_device):
    family = "latent_ebm"
    config = tiny_config(family, "warm")
    full = trainer.train_and_evaluate(config, str(tmp_path / "full"), mesh=one_device,
                                      progress=False)
    config.training.num_steps = 2
    trainer.train_and_evaluate(config, str(tmp_path / "split"), mesh=one_device, progress=False)
    config.training.num_steps = 4
    resumed = trainer.train_and_evaluate(config, str(tmp_path / "split"), mesh=one_device,
                                         progress=False)
    assert full.bank.shape == (1797, 3)
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert [r["step"] for r in trainer.read_metrics(str(tmp_path / "full"))] == [1, 2, 3, 4]

    run = checkpointing.load_workdir(str(tmp_path / "full"))
    assert run.step == 4 and run.model.family == family
    np.testing.assert_array_equal(run.bank, np.asarray(full.bank))
    result = evaluation.evaluate(str(tmp_path / "full"), "samples", num_samples=6, seed=1)
    x = np.load(tmp_path / "full" / "eval" / "samples.npy")
    assert x.shape == (6, 8, 8, 1) and np.isfinite(x).all()
    assert os.path.exists(tmp_path / "full" / "samples" / "step_0000004.png")
    np.testing.assert_allclose(result["stats"]["mean"], x.mean(), rtol=1e-5)


def test_cold_generator_run_has_no_bank(tmp_path, one_device):
    config = tiny_config("generator", "cold")
    config.training.num_steps = 2
    state = trainer.train_and_evaluate(config, str(tmp_path), mesh=one_device, progress=False)
    assert state.bank is None and int(state.step) == 2
    assert checkpointing.load_workdir(str(tmp_path)).bank is None
