"""A trained workdir, loaded: its family, params and config, for evaluation and notebooks.

    run = load_workdir("runs/digits")
    sample = run.make_sampler()                      # fresh samples of x, any family
    x = sample(run.params, jax.random.key(0), 64).x
    f_B = run.energy(run.params, x)                   # EBM runs: the negative energy

Loading reads the workdir and writes nothing to it.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import ml_collections

from ebm_jax.families import base, registry, run_state
from ebm_jax.runtime import checkpointing, parallel, validation, workdir_files
from ebm_jax.training import optim


@dataclasses.dataclass
class LoadedRun:
    """A trained model. ``family`` supplies everything that depends on the model family
    (``families/base.py``); ``params`` are replicated over ``mesh``, the devices that
    evaluation splits its chains over; ``bank`` holds a warm-started latent model's code of
    each training example (None otherwise); ``config`` is the config in force at ``step``,
    and ``config_changes`` the entries of the workdir's config history it includes."""
    family: base.Family
    params: Any
    config: ml_collections.ConfigDict
    step: int
    is_image: bool
    mesh: Any
    workdir: str
    bank: Any = None
    config_changes: list = dataclasses.field(default_factory=list)

    @property
    def model(self):
        return self.family.model

    @property
    def energy(self):
        """``energy(params, x_B...) -> f_B`` of an EBM run (the ``energy`` capability)."""
        reason = self.family.refuse(base.ENERGY)
        if reason:
            raise AttributeError(reason)
        return self.family.energy

    @property
    def data_shape(self) -> tuple[int, ...]:
        return self.family.data_shape

    def make_sampler(self, config=None, snapshot_steps=()):
        """``sample(params, key, num) -> ChainResult`` of fresh samples of x, with the chain
        settings of ``config`` (default: the run's own), split over ``mesh`` (``num`` a
        multiple of its devices: see ``parallel.round_up``)."""
        family = self.family if config is None else self.family.with_config(config)
        return family.make_sampler(mesh=self.mesh, snapshot_steps=snapshot_steps)


def load_workdir(workdir: str, step: int | None = None, mesh=None) -> LoadedRun:
    """Loads the family, params (the latest readable checkpoint unless ``step``) and config of
    a workdir written by ``train.py``: the config in force at the checkpoint's step
    (``workdir_files.read_config``). The params are replicated over ``mesh`` (by default all
    devices, of all processes). Raises ``validation.InputError`` for a path that is not a
    workdir or holds no readable checkpoint; nothing in the workdir is changed."""
    if not os.path.isdir(workdir):
        raise validation.InputError(f"no workdir at {workdir!r}: pass the --workdir that "
                                    "train.py wrote")
    if not os.path.exists(os.path.join(workdir, workdir_files.CONFIG_FILE)):
        raise validation.InputError(
            f"{workdir!r} is not a workdir written by train.py: it has no "
            f"{workdir_files.CONFIG_FILE}")
    meta = workdir_files.read_meta(workdir)
    mesh = parallel.make_mesh() if mesh is None else mesh
    built = {}

    def build(at_step: int):
        """The config in force at checkpoint ``at_step``, its family, and a target state."""
        config = workdir_files.read_config(workdir, at_step)
        key = config.to_json()
        if key not in built:
            family = validation.checked(registry.build_family, config, meta["data_shape"])
            tx = optim.make_optimizer(config.optim, config.training.num_steps)
            init = run_state.initializer(family, tx, mesh, meta)
            built[key] = (config, family, init(jax.random.key(0)))
        return built[key]

    ckpt = checkpointing.Checkpointer(workdir, cleanup=False)
    try:
        state, at_step = run_state.restore_state(ckpt, lambda s: build(s)[2], step)
    finally:
        ckpt.close()
    config, family, _ = build(at_step)
    return LoadedRun(family, state.params, config, int(state.step), meta["is_image"], mesh,
                     os.path.abspath(workdir), state.bank,
                     workdir_files.history_in_force(workdir, at_step))

