"""Checkpoints with Orbax, and the public loader of a trained workdir.

A workdir holds ``config.json`` (the full config of the run), ``meta.json`` (the example
shape the model was built for, so that no data set is needed to use the model) and
``checkpoints/<step>/`` (the TrainState: step, params and optimizer state). Data order and
random keys are pure functions of the step, so restoring the state resumes a run exactly.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp

from ebm_jax import latent, latent_models, latent_train_step, models, sampler, train_step

CONFIG_FILE = "config.json"
META_FILE = "meta.json"


class Checkpointer:
    """Keeps the last ``max_to_keep`` checkpoints of a TrainState under ``workdir/checkpoints``."""

    def __init__(self, workdir: str, max_to_keep: int = 3):
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(
            os.path.join(os.path.abspath(workdir), "checkpoints"), options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, state: train_step.TrainState) -> None:
        step = int(jax.device_get(state.step))
        if step in self._manager.all_steps():
            return
        self._manager.save(step, args=ocp.args.StandardSave(state))

    def restore(self, target: train_step.TrainState, step: int | None = None):
        """Restores into the structure, shapes and shardings of ``target``."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError("no checkpoint to restore")
        return self._manager.restore(step, args=ocp.args.StandardRestore(target))

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def write_run_files(workdir: str, config: ml_collections.ConfigDict, data_shape, is_image: bool,
                    **meta):
    """Writes the config and ``meta.json``; ``meta`` adds entries (e.g. a latent bank's size)."""
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, CONFIG_FILE), "w") as f:
        f.write(config.to_json(indent=2))
    with open(os.path.join(workdir, META_FILE), "w") as f:
        json.dump({"data_shape": list(data_shape), "is_image": bool(is_image), **meta}, f)


def read_config(workdir: str) -> ml_collections.ConfigDict:
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: {workdir!r} is not a workdir written by "
                                "train.py")
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f))


@dataclasses.dataclass
class LoadedRun:
    """A trained model: ``energy(params, x)`` is the negative energy; for the latent families
    (``model`` a LatentModel) it is ``energy(params, x, z)``, log p(x, z) up to a constant, and
    ``bank`` holds the warm-start z of each training example (None otherwise)."""
    model: models.EnergyModel | latent_models.LatentModel
    params: Any
    config: ml_collections.ConfigDict
    step: int
    is_image: bool
    bank: Any = None

    @property
    def energy(self):
        return self.model.energy

    def make_sampler(self, config=None):
        """``sample(params, key, num) -> ChainResult`` of fresh samples of x, with the chain
        settings of ``config`` (default: the run's own)."""
        config = config or self.config
        if isinstance(self.model, latent_models.LatentModel):
            return latent.make_sampler(self.model, config)
        return sampler.make_sampler(self.energy, config.sampling, self.data_shape)

    @property
    def data_shape(self) -> tuple[int, ...]:
        return self.model.data_shape


def load_workdir(workdir: str, step: int | None = None) -> LoadedRun:
    """Loads the model, its params (latest checkpoint unless ``step``) and its config."""
    config = read_config(workdir)
    with open(os.path.join(workdir, META_FILE)) as f:
        meta = json.load(f)
    tx = train_step.make_optimizer(config.optim, config.training.num_steps)
    if latent_models.is_latent(config.model):
        model = latent_models.build_latent_model(config.model, meta["data_shape"])
        target = latent_train_step.init_state(model, jax.random.key(0), tx, config.inference,
                                              meta.get("bank_size", 0))
    else:
        model = models.build_model(config.model, meta["data_shape"])
        target = train_step.init_state(model.init(jax.random.key(0)), tx)
    ckpt = Checkpointer(workdir)
    try:
        state = ckpt.restore(target, step)
    finally:
        ckpt.close()
    return LoadedRun(model, state.params, config, int(state.step), meta["is_image"],
                     getattr(state, "bank", None))
