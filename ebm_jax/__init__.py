"""ebm_jax: energy-based models learned with short-run MCMC (Nijkamp et al., NeurIPS 2019).

    import ebm_jax
    run = ebm_jax.load_workdir("runs/toy2d")                 # family, params, config
    out = ebm_jax.short_run(lambda x: run.energy(run.params, x), key, (64, 2), num_steps=50,
                            prior=ebm_jax.Prior.uniform(-2, 2))

The core is pure: ``energy(params, x) -> f`` (negative energy), a Langevin sampler that takes
any energy callable, and a learning step on the energy gap. The model family (the EBM, the
latent EBM, the generator) is the one part of a run that varies (``ebm_jax.families``); the
training loop and the evaluation modes are shared.
"""
from ebm_jax.core.flow import Inversion, flow_map, invert
from ebm_jax.core.prior import Prior
from ebm_jax.core.sampler import ChainResult, langevin, make_sampler, short_run
from ebm_jax.evaluation.loaded_run import LoadedRun, load_workdir
from ebm_jax.evaluation.runner import evaluate
from ebm_jax.families.base import Batch, Family, TrainState
from ebm_jax.families.registry import FAMILIES, build_family
from ebm_jax.models.latent_nets import (GeneratorModel, LatentEnergyModel, build_generator,
                                        build_latent_energy)
from ebm_jax.models.nets import ConvEnergy, EnergyModel, MLPEnergy, build_model, count_params
from ebm_jax.training.optim import make_optimizer
from ebm_jax.training.trainer import train_and_evaluate

__version__ = "0.1.0"

__all__ = [
    "Batch", "ChainResult", "ConvEnergy", "EnergyModel", "FAMILIES", "Family", "GeneratorModel",
    "Inversion", "LatentEnergyModel", "LoadedRun", "MLPEnergy", "Prior", "TrainState",
    "build_family", "build_generator", "build_latent_energy", "build_model", "count_params",
    "evaluate", "flow_map", "invert", "langevin", "load_workdir", "make_optimizer",
    "make_sampler", "short_run", "train_and_evaluate",
]
