"""ebm_jax: energy-based models learned with short-run MCMC (Nijkamp et al., NeurIPS 2019).

    import ebm_jax
    run = ebm_jax.load_workdir("runs/toy2d")                 # model, params, config
    out = ebm_jax.short_run(lambda x: run.energy(run.params, x), key, (64, 2), num_steps=50)

The core is pure: ``energy(params, x) -> f`` (negative energy), a Langevin sampler that takes
any energy callable, and a learning step on the energy gap.
"""
from ebm_jax.runtime.checkpointing import LoadedRun, load_workdir
from ebm_jax.core.flow import Inversion, flow_map, invert
from ebm_jax.models.latent_nets import LatentModel, build_latent_model
from ebm_jax.models.nets import ConvEnergy, EnergyModel, MLPEnergy, build_model, count_params
from ebm_jax.core.sampler import (ChainResult, init_chains, init_log_prob, langevin, make_sampler,
                             short_run)
from ebm_jax.training.train_step import TrainState, init_state, make_optimizer, make_train_step
from ebm_jax.training.trainer import train_and_evaluate

__version__ = "0.1.0"

__all__ = [
    "ChainResult", "ConvEnergy", "EnergyModel", "Inversion", "LatentModel", "LoadedRun",
    "MLPEnergy", "TrainState", "build_latent_model", "build_model", "count_params", "flow_map",
    "init_chains", "init_log_prob", "init_state", "invert", "langevin", "load_workdir",
    "make_optimizer", "make_sampler",
    "make_train_step", "short_run", "train_and_evaluate",
]
