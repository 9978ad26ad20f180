"""Checkpoints with Orbax, and the public loader of a trained workdir.

A workdir holds ``config.json`` (the full config of the run), ``meta.json`` (the example
shape the model was built for, so that no data set is needed to use the model) and
``checkpoints/<step>/`` (the TrainState: step, params and optimizer state). Data order and
random keys are pure functions of the step, so restoring the state resumes a run exactly.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
import shutil
from typing import Any

import jax
from absl import logging
import ml_collections
import orbax.checkpoint as ocp

from ebm_jax.runtime import distributed, parallel
from ebm_jax.families import latent_chains
from ebm_jax.models import latent_nets, nets
from ebm_jax.training import latent_train_step, train_step
from ebm_jax.core import sampler

CONFIG_FILE = "config.json"
META_FILE = "meta.json"
UNREADABLE_DIR = "unreadable_checkpoints"


class UnreadableCheckpointsError(RuntimeError):
    """No checkpoint of a workdir can be read."""


class Checkpointer:
    """Keeps the last ``max_to_keep`` checkpoints of a TrainState under ``workdir/checkpoints``.

    Orbax writes each checkpoint into a temporary directory and renames it when complete, so a
    process killed while writing leaves the earlier checkpoints intact; the unfinished
    directory is removed when the next Checkpointer opens the workdir.
    """

    def __init__(self, workdir: str, max_to_keep: int = 3):
        self.workdir = os.path.abspath(workdir)
        self.directory = os.path.join(self.workdir, "checkpoints")
        for path in glob.glob(os.path.join(self.directory, "*.orbax-checkpoint-tmp*")):
            logging.warning("discarding %s, a checkpoint whose writing never finished", path)
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                               cleanup_tmp_directories=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

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

    def restore_readable(self, target: train_step.TrainState):
        """Restores the latest checkpoint that can be read, or returns ``target`` if there is
        none.

        Unreadable (corrupt or partial) checkpoints are skipped with a warning and, once an
        earlier one has been read, moved to ``workdir/unreadable_checkpoints/`` so that later
        saves do not collide with them. A checkpoint whose shapes do not fit ``target`` is a
        different model, not damage: its ValueError is raised. Raises
        UnreadableCheckpointsError, moving nothing, if no checkpoint can be read.
        """
        failed = []
        for step in sorted(self.all_steps(), reverse=True):
            try:
                state = self.restore(target, step)
            except ValueError as error:
                if "stored shape" in str(error):
                    raise
                failed.append((step, error))
            except Exception as error:  # Orbax and TensorStore raise many kinds on bad files.
                failed.append((step, error))
            else:
                for bad, error in failed:
                    self._set_aside(bad, step, error)
                return state
        if failed:
            raise UnreadableCheckpointsError(
                f"no checkpoint in {self.directory} can be read (steps "
                f"{', '.join(str(s) for s, _ in failed)}; latest error: "
                f"{type(failed[0][1]).__name__}: {str(failed[0][1])[:300]}). Nothing was "
                "changed; restore the directory from a backup or train in a new --workdir.")
        return target

    def _set_aside(self, step: int, fallback: int, error: Exception) -> None:
        destination = os.path.join(self.workdir, UNREADABLE_DIR, str(step))
        while os.path.exists(destination):
            destination += "_"
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        shutil.move(os.path.join(self.directory, str(step)), destination)
        self._manager.reload()
        logging.warning("checkpoint %d is unreadable (%s: %s); resuming from the previous one, "
                        "at step %d. The unreadable one was moved to %s.", step,
                        type(error).__name__, str(error)[:200], fallback, destination)

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def write_atomically(path: str, text: str) -> None:
    """Writes a file so that a kill at any moment leaves either its old or its new content."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def write_run_files(workdir: str, config: ml_collections.ConfigDict, data_shape, is_image: bool,
                    **meta):
    """Writes config.json and meta.json; ``meta`` adds entries (e.g. a latent bank's size). In a
    multi-process run only process 0 writes."""
    if not distributed.is_main_process():
        return
    os.makedirs(workdir, exist_ok=True)
    write_atomically(os.path.join(workdir, CONFIG_FILE), config.to_json(indent=2))
    write_atomically(os.path.join(workdir, META_FILE), json.dumps(
        {"data_shape": list(data_shape), "is_image": bool(is_image), **meta}))


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
    ``bank`` holds the warm-start z of each training example (None otherwise). ``params`` are
    replicated over ``mesh``, the devices that evaluation splits its chains over."""
    model: nets.EnergyModel | latent_nets.LatentModel
    params: Any
    config: ml_collections.ConfigDict
    step: int
    is_image: bool
    mesh: Any
    bank: Any = None

    @property
    def energy(self):
        return self.model.energy

    def make_sampler(self, config=None, snapshot_steps=()):
        """``sample(params, key, num) -> ChainResult`` of fresh samples of x, with the chain
        settings of ``config`` (default: the run's own). An EBM's chains are split over
        ``mesh`` (``num`` a multiple of its devices); a latent model's joint chain is not."""
        config = config or self.config
        if isinstance(self.model, latent_nets.LatentModel):
            if snapshot_steps:
                raise ValueError("snapshots of the chain are for EBMs, not the latent families")
            return latent_chains.make_sampler(self.model, config)
        return sampler.make_sampler(self.energy, config.sampling, self.data_shape,
                                    snapshot_steps=snapshot_steps,
                                    input_grad=self.model.input_grad, mesh=self.mesh)

    @property
    def data_shape(self) -> tuple[int, ...]:
        return self.model.data_shape


def load_workdir(workdir: str, step: int | None = None, mesh=None) -> LoadedRun:
    """Loads the model, its params (latest checkpoint unless ``step``) and its config.

    The params are replicated over ``mesh`` (by default all devices, of all processes)."""
    config = read_config(workdir)
    with open(os.path.join(workdir, META_FILE)) as f:
        meta = json.load(f)
    tx = train_step.make_optimizer(config.optim, config.training.num_steps)
    mesh = parallel.make_mesh() if mesh is None else mesh
    if latent_nets.is_latent(config.model):
        model = latent_nets.build_latent_model(config.model, meta["data_shape"])
        target = latent_train_step.init_state(model, jax.random.key(0), tx, config.inference,
                                              meta.get("bank_size", 0))
    else:
        model = nets.build_model(config.model, meta["data_shape"])
        init = jax.jit(lambda key: train_step.init_state(model.init(key), tx),
                       out_shardings=parallel.replicated(mesh))
        target = init(jax.random.key(0))
    ckpt = Checkpointer(workdir)
    try:
        state = ckpt.restore(target, step)
    finally:
        ckpt.close()
    return LoadedRun(model, state.params, config, int(state.step), meta["is_image"], mesh,
                     getattr(state, "bank", None))
