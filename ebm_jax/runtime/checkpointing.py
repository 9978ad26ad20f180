"""Checkpoints of a run's state with Orbax, under ``workdir/checkpoints/<step>/``.

The state is any pytree (every family's ``TrainState``: step, params, optimizer state and, for
warm-started latent models, the bank). Data order and random keys are pure functions of the
step, so restoring the state resumes a run exactly.
"""
from __future__ import annotations

import glob
import os
import shutil

import jax
import orbax.checkpoint as ocp
from absl import logging

from ebm_jax.runtime import workdir_files

UNREADABLE_DIR = workdir_files.UNREADABLE_DIR


def one_line(error: Exception, limit: int) -> str:
    """The start of an error's text on one line (TensorStore's span several)."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit] + "..."


class UnreadableCheckpointsError(RuntimeError):
    """No checkpoint of a workdir can be read."""


class Checkpointer:
    """Keeps the last ``max_to_keep`` checkpoints of a TrainState under ``workdir/checkpoints``.

    Orbax writes each checkpoint into a temporary directory and renames it when complete, so a
    process killed while writing leaves the earlier checkpoints intact; the unfinished
    directory is removed when the next Checkpointer opens the workdir.
    """

    def __init__(self, workdir: str, max_to_keep: int = 3, cleanup: bool = True):
        """``cleanup=False`` only reads: nothing is created or removed (Orbax removes old
        checkpoints only when saving). ``name``: the workdir as given, for messages."""
        self.name, self.read_only = workdir, not cleanup
        self.workdir = os.path.abspath(workdir)
        self.directory = os.path.join(self.workdir, workdir_files.CHECKPOINTS_DIR)
        if cleanup:
            for path in glob.glob(os.path.join(self.directory, "*.orbax-checkpoint-tmp*")):
                logging.warning("discarding %s, a checkpoint whose writing never finished",
                                path)
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=cleanup,
                                               cleanup_tmp_directories=cleanup)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, state: object) -> None:
        step = int(jax.device_get(state.step))
        if step in self._manager.all_steps():
            return
        self._manager.save(step, args=ocp.args.StandardSave(state))

    def restore(self, target: object, step: int | None = None):
        """Restores into the structure, shapes and shardings of ``target``."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError("no checkpoint to restore")
        return self._manager.restore(step, args=ocp.args.StandardRestore(target))

    def restore_readable(self, target: object):
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
                f"{type(failed[0][1]).__name__}: {one_line(failed[0][1], 300)}). Nothing was "
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
                        type(error).__name__, one_line(error, 200), fallback, destination)

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
