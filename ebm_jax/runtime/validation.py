"""Checks of a run's inputs, made before anything is written to the workdir.

Each failure is an ``InputError`` whose message is one paragraph: what is wrong, and how to fix
it. ``train.py`` prints it without a traceback (unless ``--verbose``) and exits with status 1.
"""
from __future__ import annotations

import difflib
import json
import os

from ebm_jax import data
from ebm_jax.runtime import checkpointing, parallel, workdir_files


class InputError(ValueError):
    """A bad config, data set or workdir."""


def config_fields(config, prefix: str = "") -> list[str]:
    """The dotted names of every leaf field of a (nested) ConfigDict or dict."""
    names = []
    for key, value in config.items():
        if hasattr(value, "items"):
            names += config_fields(value, f"{prefix}{key}.")
        else:
            names.append(f"{prefix}{key}")
    return names


def check_field_names(names, reference) -> None:
    """Raises InputError for any dotted name that is not a field of ``reference``."""
    known = config_fields(reference)
    unknown = [n for n in names if n not in known]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise InputError(
            f"unknown config field{'s' if len(unknown) > 1 else ''} {', '.join(hints)}: every "
            "field a run takes is defined, with its default, in configs/default.py.")


def check_config(config, reference) -> None:
    """Raises InputError if ``config`` has a field that ``reference`` (the defaults) lacks."""
    check_field_names(config_fields(config), reference)


def override_names(argv) -> list[str]:
    """The field names of the ``--config.a.b=value`` overrides in a command line."""
    names = []
    for arg in argv:
        if arg.startswith("--config."):
            names.append(arg[len("--config."):].split("=", 1)[0])
    return names


def checked(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, with the errors that mean bad input (a ValueError, a missing
    file or optional package, an unprepared data set) turned into InputError."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, FileNotFoundError, ImportError, data.DatasetNotPreparedError,
            data.CacheError) as error:
        raise InputError(str(error)) from error


def load_dataset(data_config, seed: int) -> data.Dataset:
    """``data.get_dataset``, with its errors about the data turned into InputError."""
    return checked(data.get_dataset, data_config, seed=seed)


def check_batch_size(batch_size: int, mesh) -> None:
    try:
        parallel.check_batch_size(batch_size, mesh)
    except ValueError as error:
        raise InputError(str(error)) from error


def check_same_model(workdir: str, config, data_shape) -> None:
    """Raises InputError if ``workdir`` holds a run of a different model or data shape.

    A workdir with no ``config.json`` (a new run) passes.
    """
    config_path = os.path.join(workdir, workdir_files.CONFIG_FILE)
    if not os.path.exists(config_path):
        return
    with open(config_path) as f:
        saved_model = json.load(f).get("model", {})
    differences = []
    new_model = json.loads(config.model.to_json())
    # Fields only one side has (added to the defaults since) do not count.
    for key in sorted(set(saved_model) & set(new_model)):
        if saved_model[key] != new_model[key]:
            differences.append(f"model.{key} is {saved_model[key]!r} there and "
                               f"{new_model[key]!r} here")
    meta_path = os.path.join(workdir, workdir_files.META_FILE)
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            saved_shape = tuple(json.load(f)["data_shape"])
        if saved_shape != tuple(data_shape):
            differences.append(f"the data shape is {saved_shape} there and {tuple(data_shape)} "
                               "here")
    if differences:
        raise InputError(
            f"the workdir {workdir!r} holds checkpoints of a different model: "
            f"{'; '.join(differences)}. Nothing was changed in it; train in a new --workdir, or "
            "resume this one with the config it was trained with.")


def restore(ckpt: checkpointing.Checkpointer, target):
    """``ckpt.restore_readable(target)``, with a checkpoint that does not fit the model, or no
    readable checkpoint at all, turned into InputError."""
    try:
        return ckpt.restore_readable(target)
    except checkpointing.UnreadableCheckpointsError as error:
        raise InputError(str(error)) from error
    except ValueError as error:
        if "stored shape" not in str(error):
            raise
        raise InputError(
            f"the workdir {ckpt.directory!r} holds checkpoints of a different model "
            f"({str(error).split('. ')[0]}). "
            "Nothing was changed in it; train in a new --workdir, or resume this one with the "
            "config it was trained with.") from error
