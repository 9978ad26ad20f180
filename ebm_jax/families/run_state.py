"""A run's learning state: built for its family and placed on the mesh, then restored from the
workdir's checkpoints. The trainer (resuming a run) and evaluation (loading a trained one) both
build and restore it here.
"""
from __future__ import annotations

from typing import Callable

import jax
import optax

from ebm_jax.families import base
from ebm_jax.runtime import checkpointing, validation


def initializer(family: base.Family, tx: optax.GradientTransformation, mesh, meta: dict
                ) -> Callable[[jax.Array], base.TrainState]:
    """``init(key)``: the family's initial state, compiled to land on ``mesh`` as
    ``family.state_shardings(mesh, meta)`` places it."""
    return jax.jit(lambda key: family.init_state(key, tx, meta),
                   out_shardings=family.state_shardings(mesh, meta))


def restore_state(ckpt: checkpointing.Checkpointer,
                  target_at: Callable[[int], base.TrainState], step: int | None = None
                  ) -> tuple[base.TrainState, int]:
    """``(state, its step)``: the checkpoint at ``step``, or else the latest one that can be
    read, restored into ``target_at(s)``, a fresh state of the run as configured at step ``s``
    (its structure, shapes and placement).

    A read-write ``ckpt`` (the trainer's) sets unreadable checkpoints aside and gives
    ``(target_at(0), 0)`` when there is none: a new run. A read-only one (``cleanup=False``,
    evaluation) changes nothing, and raises InputError when none can be read."""
    if not ckpt.read_only and step is None:
        state = validation.restore(ckpt, target_at(0))
        return state, int(state.step)
    steps = ckpt.all_steps()
    if step is not None:
        if step not in steps:
            raise validation.InputError(
                f"{ckpt.name!r} has no checkpoint at step {step}; it has steps "
                f"{sorted(steps) or 'none'}")
        return ckpt.restore(target_at(step), step), step
    errors = []
    for s in sorted(steps, reverse=True):
        try:
            return ckpt.restore(target_at(s), s), s
        except validation.InputError:
            raise
        except Exception as error:  # Orbax and TensorStore raise many kinds on bad files.
            errors.append(f"step {s}: {type(error).__name__}: "
                          f"{checkpointing.one_line(error, 200)}")
    raise validation.InputError(
        f"{ckpt.name!r} holds no readable checkpoint"
        + (f" ({'; '.join(errors)})" if errors else " (its checkpoints/ folder is empty)")
        + ". Train it with train.py, or pick another --workdir.")
