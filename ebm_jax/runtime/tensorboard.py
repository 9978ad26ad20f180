"""TensorBoard event files of a run, in ``workdir/tensorboard/``, without TensorFlow.

They hold every scalar of ``metrics.jsonl`` at its step, each rollback (the JSON of its row) as
text under ``events``, the sample grid of every ``training.sample_every`` step under
``samples``, and the figures of ``evaluate.py`` under ``eval/<mode>/<stat>`` at the checkpoint's
step. ``training.tensorboard`` is ``"auto"`` (write them when the extra is installed),
``"true"`` or ``"false"``; a string, so that ``--config.training.tensorboard=false`` works.

The extra, ``pip install -e '.[tensorboard]'``, is the ``tensorboard`` package alone: its
record framing, protocol buffers and text summary work without TensorFlow, its event reader is
what a resume rewrites the files with (and what the tests read them with), and its server shows
them. tensorboardX would add a second writer and a second copy of the protos for nothing.

Each step appears once in the files, as in ``metrics.jsonl``: ``truncate(step)`` (on resume and
after a rollback) keeps the events of steps up to ``step``, and every text event, by writing
them to the next generation of the file (a temporary name, then renamed) and removing the older
generations. The newest generation holds the whole history; older ones are only left behind by
a kill between the rename and the removal, and the next start removes them. Each event is
appended and flushed at once, so a kill loses at most a torn last record, dropped at the next
start. Process 0 alone writes.
"""
from __future__ import annotations

import io
import os
import time
import types

import numpy as np
from PIL import Image

from ebm_jax.runtime import distributed, validation, workdir_files

SETTINGS = ("auto", "true", "false")
INSTALL = "pip install -e '.[tensorboard]'"
PREFIX, SUFFIX = "events.out.tfevents.", ".ebm_jax"  # TensorBoard reads names with "tfevents"
_COLORSPACES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


def _tensorboard():
    """The pieces of the ``tensorboard`` package used here, or None where it is not installed."""
    try:
        from tensorboard.backend.event_processing import event_file_loader
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.text import summary_v2 as text_summary
        from tensorboard.summary.writer import record_writer
    except ImportError:
        return None
    return types.SimpleNamespace(loader=event_file_loader, event_pb2=event_pb2,
                                 summary_pb2=summary_pb2, text_pb=text_summary.text_pb,
                                 record_writer=record_writer)


def _files(directory: str) -> list[str]:
    """The generations of the event file, oldest first."""
    if not os.path.isdir(directory):
        return []
    return [os.path.join(directory, n) for n in sorted(os.listdir(directory))
            if n.startswith(PREFIX) and n.endswith(SUFFIX)]


def _load(tb, path: str) -> list:
    """The events of one file; a record torn by a kill ends it."""
    return [tb.event_pb2.Event.FromString(raw)
            for raw in tb.loader.RawEventFileLoader(path).Load()]


def _record(tb, event) -> bytes:
    out = io.BytesIO()
    tb.record_writer.RecordWriter(out).write(event.SerializeToString())
    return out.getvalue()


def _is_text(event) -> bool:
    return any(v.metadata.plugin_data.plugin_name == "text" for v in event.summary.value)


class EventLog:
    """Writes the event file of ``workdir`` as ``setting`` says. Raises InputError, before
    anything is written, for a bad setting or ``"true"`` without the extra."""

    def __init__(self, workdir: str, setting: str = "auto"):
        setting = str(setting).lower()
        if setting not in SETTINGS:
            raise validation.InputError(
                f"training.tensorboard is {setting!r}; choose 'auto' (event files when the "
                "tensorboard extra is installed), 'true' or 'false'.")
        self._tb = None if setting == "false" else _tensorboard()
        if setting == "true" and self._tb is None:
            raise validation.InputError(
                "training.tensorboard is 'true' but the tensorboard package is not installed, "
                "so no event files can be written. Nothing was written; install it with "
                f"`{INSTALL}` (no TensorFlow needed), or set --config.training.tensorboard=auto "
                "to write them only where it is installed.")
        self.directory = os.path.join(workdir, workdir_files.TENSORBOARD_DIR)
        self.enabled = self._tb is not None and distributed.is_main_process()

    def scalars(self, step: int, values: dict, prefix: str = "") -> None:
        """One scalar per number of ``values``, tagged ``prefix + name``; others are skipped."""
        if not self.enabled:
            return
        Value = self._tb.summary_pb2.Summary.Value
        self._append(step, [Value(tag=prefix + k, simple_value=float(v)) for k, v in values.items()
                            if np.ndim(v) == 0 and isinstance(np.asarray(v).item(), (int, float))])

    def text(self, step: int, tag: str, text: str) -> None:
        if self.enabled:
            self._append(step, list(self._tb.text_pb(tag, text).value))

    def image(self, step: int, tag: str, picture) -> None:
        """``picture``: a uint8 (H, W, C) array, or the path of a PNG file."""
        if not self.enabled:
            return
        if isinstance(picture, (str, os.PathLike)):
            with open(picture, "rb") as f:
                png = f.read()
            img = Image.open(io.BytesIO(png))
        else:
            array = np.asarray(picture, np.uint8)
            img, png = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array), b""
        if img.mode not in _COLORSPACES:
            img, png = img.convert("RGB"), b""
        if not png:
            out = io.BytesIO()
            img.save(out, format="PNG")
            png = out.getvalue()
        summary = self._tb.summary_pb2.Summary.Image(
            height=img.height, width=img.width, colorspace=_COLORSPACES[img.mode],
            encoded_image_string=png)
        self._append(step, [self._tb.summary_pb2.Summary.Value(tag=tag, image=summary)])

    def evaluation(self, step: int, mode: str, stats: dict) -> None:
        """An evaluation's figures at the checkpoint's ``step``, replacing those of an earlier
        evaluation of that mode and step."""
        if not self.enabled:
            return
        prefix = f"eval/{mode}/"
        self._rewrite(lambda e: not (e.step == step and any(
            v.tag.startswith(prefix) for v in e.summary.value)))
        self.scalars(step, stats, prefix)

    def truncate(self, step: int) -> None:
        """Drops the events after ``step`` (text events stay), which resumed or replayed
        updates write again."""
        if self.enabled:
            self._rewrite(lambda e: e.step <= step or _is_text(e))

    def _append(self, step: int, values: list) -> None:
        if not values:
            return
        files = _files(self.directory)
        head = b""
        if not files:
            os.makedirs(self.directory, exist_ok=True)
            files = [os.path.join(self.directory, f"{PREFIX}{1:08d}{SUFFIX}")]
            head = _record(self._tb, self._tb.event_pb2.Event(
                wall_time=time.time(), file_version="brain.Event:2"))
        event = self._tb.event_pb2.Event(wall_time=time.time(), step=int(step),
                                         summary=self._tb.summary_pb2.Summary(value=values))
        with open(files[-1], "ab") as f:
            f.write(head + _record(self._tb, event))

    def _rewrite(self, keep) -> None:
        """Keeps the events of the newest generation that ``keep``, in a new generation when
        that changes the file (a dropped event or a torn last record); removes the older."""
        files = _files(self.directory)
        if not files:
            return
        newest = files[-1]
        data = b"".join(_record(self._tb, e) for e in _load(self._tb, newest) if keep(e))
        with open(newest, "rb") as f:
            changed = f.read() != data
        if changed:
            number = int(os.path.basename(newest)[len(PREFIX):-len(SUFFIX)]) + 1
            files.append(os.path.join(self.directory, f"{PREFIX}{number:08d}{SUFFIX}"))
            tmp = os.path.join(self.directory, "rewrite.tmp")
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, files[-1])
        for old in files[:-1]:
            os.remove(old)


def read_events(workdir: str) -> dict[str, list[tuple[int, object]]]:
    """``{tag: [(step, value), ...]}`` of ``workdir``'s event file, in the order written: a
    float for a scalar, a str for a text, a uint8 (H, W, C) array for an image."""
    tb = _tensorboard()
    if tb is None:
        raise ImportError(f"reading event files needs the tensorboard package: {INSTALL}")
    files = _files(os.path.join(workdir, workdir_files.TENSORBOARD_DIR))
    out: dict[str, list] = {}
    for event in _load(tb, files[-1]) if files else []:
        for v in event.summary.value:
            if v.HasField("image"):
                value = np.asarray(Image.open(io.BytesIO(v.image.encoded_image_string)))
                value = value[..., None] if value.ndim == 2 else value
            elif v.HasField("tensor"):
                value = v.tensor.string_val[0].decode()
            else:
                value = v.simple_value
            out.setdefault(v.tag, []).append((int(event.step), value))
    return out


def read_scalars(workdir: str) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` of the scalars of ``workdir``'s event file."""
    return {tag: points for tag, points in read_events(workdir).items()
            if points and isinstance(points[0][1], float)}
