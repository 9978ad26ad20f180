"""The plain files of a workdir, beside its checkpoints.

- ``config.json``: the full config of the run;
- ``meta.json``: the example shape the model was built for and whether examples are images, so
  that no data set is needed to use the model, plus what the family's state needs
  (``Family.state_meta``, e.g. ``bank_size``);
- ``metrics.jsonl``: one JSON row per logged update (and event rows such as rollbacks).

Every write is atomic (a temporary file renamed over the old one) or an append, so a kill at any
moment leaves the old content or the new; in a multi-process run only process 0 writes.
"""
from __future__ import annotations

import json
import os

import ml_collections
import numpy as np

from ebm_jax.runtime import distributed

CONFIG_FILE = "config.json"
META_FILE = "meta.json"
METRICS_FILE = "metrics.jsonl"


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

def read_meta(workdir: str) -> dict:
    with open(os.path.join(workdir, META_FILE)) as f:
        return json.load(f)


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
