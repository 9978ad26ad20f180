"""The record of a run: every file of a workdir, and how each is written.

- ``config.json``: the config the run was started with, written once; it is never rewritten;
- ``config_history.json``: each later change of the config (``config_changes``), with the step
  from which it took effect: ``read_config(workdir, step)`` is the config in force at a
  checkpoint's step;
- ``meta.json``: the example shape the model was built for and whether examples are images, so
  that no data set is needed to use the model, plus what the family's state needs
  (``Family.state_meta``, e.g. ``bank_size``);
- ``guard.json``: the divergence guard's rollback record (``guard.Record``);
- ``metrics.jsonl``: one JSON row per logged update (and event rows such as rollbacks);
- ``samples/step_*.png``: the sample grids of training;
- ``eval/``: what ``evaluate.py`` wrote, each mode's files moved in once it has finished
  (``publish_eval``);
- ``checkpoints/``, and ``unreadable_checkpoints/`` for those set aside: written by Orbax
  through ``checkpointing.py``, into a temporary directory renamed when complete;
- ``tensorboard/``: event files, appended and rewritten by ``tensorboard.py``.

Every file this module writes is written atomically (a temporary file in the same folder,
renamed over the old one) or appended, so a kill at any moment leaves the old content or the
new; in a multi-process run only process 0 writes.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil

import ml_collections
import numpy as np

from ebm_jax.runtime import config_changes, distributed

CONFIG_FILE = "config.json"
HISTORY_FILE = "config_history.json"
META_FILE = "meta.json"
GUARD_FILE = "guard.json"
METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"
EVAL_DIR = "eval"
CHECKPOINTS_DIR = "checkpoints"
UNREADABLE_DIR = "unreadable_checkpoints"
TENSORBOARD_DIR = "tensorboard"
ALLOW_FLAG = "--allow_config_change"


def write_atomically(path: str, text: str) -> None:
    """Writes a file so that a kill at any moment leaves either its old or its new content."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


@contextlib.contextmanager
def atomic_path(path: str):
    """Yields a temporary path, with ``path``'s extension, in ``path``'s folder, for a writer
    that takes a path (a PNG, an npy); renames it to ``path`` when the block ends without
    error, and removes it otherwise."""
    root, ext = os.path.splitext(path)
    tmp = f"{root}.tmp{ext}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_json(workdir: str, name: str, value) -> None:
    if distributed.is_main_process():
        write_atomically(os.path.join(workdir, name), json.dumps(value, indent=1))


def _read_json(workdir: str, name: str, default=None):
    path = os.path.join(workdir, name)
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def write_run_files(workdir: str, config: ml_collections.ConfigDict, data_shape, is_image: bool,
                    **meta):
    """Writes config.json, when the workdir has none yet (a new run; a resumed run keeps the
    config it was started with: see ``record_changes``), and meta.json, when it is missing or
    lacks an entry. ``meta`` adds entries (e.g. a latent bank's size). In a multi-process run
    only process 0 writes."""
    if not distributed.is_main_process():
        return
    os.makedirs(workdir, exist_ok=True)
    if not os.path.exists(os.path.join(workdir, CONFIG_FILE)):
        write_atomically(os.path.join(workdir, CONFIG_FILE), config.to_json(indent=2))
    new_meta = {"data_shape": list(data_shape), "is_image": bool(is_image), **meta}
    if _read_json(workdir, META_FILE) != new_meta:
        write_atomically(os.path.join(workdir, META_FILE), json.dumps(new_meta))


def read_history(workdir: str) -> list[dict]:
    """The entries of config_history.json, oldest first: ``{"step": S, "changes": [...]}``,
    each change in force for the updates after step S."""
    return _read_json(workdir, HISTORY_FILE, [])


def record_changes(workdir: str, step: int, changes: list[config_changes.Change]) -> None:
    """Appends the changes of a resume at ``step`` to config_history.json; config.json stays."""
    if not changes:
        return
    allowed = any(c.protocol for c in changes)
    entry = {"step": int(step), "changes": [c.to_json() for c in changes],
             "allowed_by": ALLOW_FLAG if allowed else None}
    _write_json(workdir, HISTORY_FILE, read_history(workdir) + [entry])


def history_in_force(workdir: str, step: int | None = None) -> list[dict]:
    """The history entries in force at checkpoint ``step`` (those made before it); all of them
    when ``step`` is None."""
    return [e for e in read_history(workdir) if step is None or e["step"] < step]


def read_config(workdir: str, step: int | None = None) -> ml_collections.ConfigDict:
    """The config in force at checkpoint ``step``: config.json with the changes recorded before
    that step (``step`` None: every change, the config of the latest updates)."""
    tree = _read_json(workdir, CONFIG_FILE)
    if tree is None:
        raise FileNotFoundError(f"{os.path.join(workdir, CONFIG_FILE)} not found: {workdir!r} "
                                "is not a workdir written by train.py")
    for entry in history_in_force(workdir, step):
        tree = config_changes.apply(tree, entry["changes"])
    return ml_collections.ConfigDict(tree)


def read_meta(workdir: str) -> dict:
    return _read_json(workdir, META_FILE)


def read_guard(workdir: str) -> dict | None:
    return _read_json(workdir, GUARD_FILE)


def write_guard(workdir: str, record: dict) -> None:
    _write_json(workdir, GUARD_FILE, record)


def sample_png_path(workdir: str, step: int) -> str:
    return os.path.join(workdir, SAMPLES_DIR, f"step_{step:07d}.png")


def write_sample_png(workdir: str, step: int, draw) -> str:
    """Calls ``draw(path)`` to write the sample grid of ``step`` and returns its final path."""
    path = sample_png_path(workdir, step)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_path(path) as tmp:
        draw(tmp)
    return path


def publish_eval(scratch: str, workdir: str) -> str:
    """Moves the files of a finished evaluation from ``scratch`` into ``workdir/eval/``, each
    copied beside its destination and renamed over it. Returns that folder."""
    out_dir = os.path.join(workdir, EVAL_DIR)
    os.makedirs(out_dir, exist_ok=True)
    for name in sorted(os.listdir(scratch)):
        with atomic_path(os.path.join(out_dir, name)) as tmp:
            shutil.copyfile(os.path.join(scratch, name), tmp)
    return out_dir


class MetricsWriter:
    """Appends one JSON object per line to ``workdir/metrics.jsonl``; in a multi-process run
    only process 0 writes."""

    def __init__(self, workdir: str, events=None):
        """``events`` (a ``tensorboard.EventLog``), if given, receives the same rows."""
        self.path = os.path.join(workdir, METRICS_FILE)
        self.enabled = distributed.is_main_process()
        self.events = events

    def write(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        row = {"step": int(step)}
        row.update({k: float(v) if np.ndim(v) == 0 else np.asarray(v).tolist()
                    for k, v in metrics.items()})
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.events is not None:
            self.events.scalars(step, metrics)

    def event(self, step: int, fields: dict) -> None:
        """Appends a row that records an event (such as a rollback) rather than an update."""
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": int(step), **fields}) + "\n")
        if self.events is not None:
            self.events.text(step, "events", json.dumps(fields))

    def truncate(self, step: int) -> None:
        """Drops update rows after ``step``, which the replayed steps log again on resume or
        after a rollback; event rows stay."""
        if self.events is not None:
            self.events.truncate(step)
        if not self.enabled or not os.path.exists(self.path):
            return
        rows = [r for r in read_metrics(os.path.dirname(self.path))
                if r["step"] <= step or "event" in r]
        write_atomically(self.path, "".join(json.dumps(r) + "\n" for r in rows))


def read_metrics(workdir: str) -> list[dict]:
    """The rows of ``workdir/metrics.jsonl``; a last line cut short by a kill is skipped."""
    with open(os.path.join(workdir, METRICS_FILE)) as f:
        lines = [line for line in f if line.strip()]
    if lines and not lines[-1].endswith("\n"):
        lines = lines[:-1]
    return [json.loads(line) for line in lines]
