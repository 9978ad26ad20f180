"""Checks of a run's inputs, made before anything is written to the workdir.

Each failure is an ``InputError`` whose message is one paragraph: what is wrong, and how to fix
it. ``train.py`` prints it without a traceback (unless ``--verbose``) and exits with status 1.
"""
from __future__ import annotations

import difflib
import os
import tempfile

from ebm_jax import data
from ebm_jax.runtime import checkpointing, config_changes, parallel, workdir_files


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


# (field, what it is, the least value allowed, whether that value itself is allowed)
VALUE_RULES = (
    ("training.num_steps", "the number of updates", 1, True),
    ("training.batch_size", "the batch size m", 1, True),
    ("training.checkpoint_every", "the checkpoint period", 1, True),
    ("training.keep_checkpoints", "the number of checkpoints kept", 1, True),
    ("training.log_every", "the logging period", 1, True),
    ("training.sample_every", "the sample-grid period", 1, True),
    ("training.num_plot_samples", "the number of samples per grid", 1, True),
    ("training.data_noise_std", "sigma_data", 0, True),
    ("sampling.num_steps", "K, the number of Langevin steps", 1, True),
    ("sampling.step_size", "s, the Langevin step size", 0, False),
    ("sampling.noise_std", "sigma, the Langevin noise", 0, True),
    ("inference.num_steps", "K of the posterior chain", 1, True),
    ("inference.step_size", "s of the posterior chain", 0, False),
    ("inference.noise_std", "sigma of the posterior chain", 0, True),
)


def check_values(config) -> None:
    """Raises InputError, naming every field at fault, for a value no run can take (a
    non-positive batch size, number of updates or K, s <= 0, sigma < 0, ...)."""
    flat = config_changes.as_flat(config)
    bad = []
    for field, meaning, least, inclusive in VALUE_RULES:
        value = flat.get(field)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or not (
                value >= least if inclusive else value > least):
            bound = (f"at least {least}" if inclusive and least else
                     "non-negative" if inclusive else "positive")
            bad.append(f"{field} ({meaning}) is {value!r} but must be {bound}")
    if bad:
        raise InputError(f"{'; '.join(bad)}. Nothing was written; fix the value on the command "
                         "line or in the config file.")


def _nearest_existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def check_workdir(workdir: str) -> None:
    """Raises InputError if ``workdir`` is not a directory, or if no file can be written in it
    (or, for a new workdir, in the nearest folder above it that exists). The probe is an
    unnamed temporary file, removed at once: nothing is left behind."""
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise InputError(f"the workdir {workdir!r} is a file, not a directory. Nothing was "
                         "written; pass a --workdir that is a directory or does not exist yet.")
    folder = _nearest_existing(workdir)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        where = "it" if folder == os.path.abspath(workdir) else f"{folder!r} (where it would go)"
        raise InputError(
            f"the workdir {workdir!r} cannot be written: creating a file in {where} failed "
            f"({error.strerror or type(error).__name__}). Nothing was written; pass a --workdir "
            "on a writable file system where you have write permission.") from error


def check_resume(workdir: str, config, data_shape,
                 allow_change: bool = False) -> list[config_changes.Change]:
    """The differences between ``config`` and the config in force in ``workdir`` (none for a
    new workdir), for the caller to record once the run has resumed.

    Raises InputError if the workdir holds a model of another data shape, or if a field of
    the protocol (``config_changes``) differs and ``allow_change`` is false."""
    meta = workdir_files.read_meta(workdir) if os.path.isdir(workdir) else None
    if meta is not None and tuple(meta["data_shape"]) != tuple(data_shape):
        raise InputError(
            f"the workdir {workdir!r} holds checkpoints of a different model: the data shape "
            f"is {tuple(meta['data_shape'])} there and {tuple(data_shape)} here. Nothing was "
            "changed in it; train in a new --workdir, or resume this one with the config it "
            "was trained with.")
    if not os.path.exists(os.path.join(workdir, workdir_files.CONFIG_FILE)):
        return []
    changes = config_changes.differences(workdir_files.read_config(workdir), config)
    refused = [c for c in changes if c.protocol]
    if refused and not allow_change:
        raise InputError(
            f"the workdir {workdir!r} was trained with other settings, and this config would "
            "change what is learned or how it is sampled: "
            f"{'; '.join(c.describe() for c in refused)}. Nothing was changed in it. Resume it "
            f"with the values it holds ({workdir_files.CONFIG_FILE}, with the changes in "
            f"{workdir_files.HISTORY_FILE}), train in a new --workdir, or pass "
            f"{workdir_files.ALLOW_FLAG} to make the change from the latest checkpoint on: "
            f"{workdir_files.CONFIG_FILE} then stays as it is and "
            f"{workdir_files.HISTORY_FILE} records each change and the step from which it "
            "holds.")
    return changes


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
