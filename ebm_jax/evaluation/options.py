"""The options of the evaluation modes, declared where they are used: name, type, help,
default and check. The command line's flags (``ebm_jax/cli/evaluate.py``) and the runner's
input checks are built from these declarations.

Where an option is declared:

- one that every mode takes (``num_samples``, ``seed``, ``step``) is declared here, in
  ``COMMON``;
- one that several modes take is declared here once, and each of them lists it in its
  ``common.Mode.options``, with its own default or help where they differ
  (``NUM_CHAINS.but(default=256)``); its type and check stay those declared here;
- one that a single mode takes is declared in that mode's module.

A mode reads an option with ``request.option(DECLARATION)``, which falls back on the declared
default; ``None`` as the default means the mode works it out (its help says how).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from ebm_jax.runtime import validation

KINDS = ("integer", "float", "string", "enum", "list", "bool")


@dataclasses.dataclass(frozen=True)
class Option:
    """One setting of an evaluation mode, given on the command line as ``--name``.

    ``kind`` is one of ``KINDS`` (``enum`` takes one of ``choices``); ``help`` says what it is,
    without its default, which ``describe`` adds; ``positive``: a given value must be > 0."""
    name: str
    kind: str
    help: str
    default: Any = None
    choices: tuple[str, ...] = ()
    positive: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if (self.kind == "enum") != bool(self.choices):
            raise ValueError(f"option {self.name}: choices go with kind 'enum', and only there")

    def but(self, **changes) -> Option:
        """This option as one mode takes it: another default or help, the same check."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        if self.default is None:
            return self.help
        return f"{self.help} (default {_format(self.default)})"

    def check(self, value) -> None:
        """Raises InputError for a given ``value`` (not None) that the option refuses."""
        if value is None:
            return
        if self.positive and int(value) <= 0:
            raise validation.InputError(f"--{self.name} must be positive, got {value}")
        if self.choices and value not in self.choices:
            raise validation.InputError(f"--{self.name} must be one of "
                                        f"{', '.join(self.choices)}, got {value!r}")


def _format(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


NUM_SAMPLES = Option("num_samples", "integer", "Number of samples (default: "
                     "config.eval.num_samples).", positive=True)
SEED = Option("seed", "integer", "Sampling seed (default: config.eval.seed).")
STEP = Option("step", "integer", "Checkpoint step (default: the latest).")
COMMON = (NUM_SAMPLES, SEED, STEP)

# Taken by several modes, each with its own default.
NUM_IMAGES = Option("num_images", "integer", "number of data points or images", positive=True)
SPLIT = Option("split", "string", "data split, train or test")
NUM_CHAINS = Option("num_chains", "integer", "number of AIS chains", positive=True)
NUM_TEMPS = Option("num_temps", "integer", "number of AIS temperatures", positive=True)
MCMC_STEP_SIZE = Option("mcmc_step_size", "float", "AIS's MALA step size")
NUM_ROWS = Option("num_rows", "integer", "chains shown as rows", positive=True)
BATCH_SIZE = Option("batch_size", "integer", "images per compiled batch", positive=True)


def by_name(modes: Iterable) -> dict[str, list[tuple[str, Option]]]:
    """``{option name: [(mode name, its declaration), ...]}`` over ``modes`` (``common.Mode``
    records). Raises ValueError where two modes declare one name with another type or check:
    one flag serves them all."""
    out: dict[str, list[tuple[str, Option]]] = {}
    for mode in modes:
        for option in mode.options:
            for _, other in out.get(option.name, []):
                if (other.kind, other.choices, other.positive) != (
                        option.kind, option.choices, option.positive):
                    raise ValueError(f"--{option.name} is declared with another type or check "
                                     f"by --mode={mode.name}; declare it once in options.py")
            out.setdefault(option.name, []).append((mode.name, option))
    return out


def flag_help(declared: list[tuple[str, Option]]) -> str:
    """One flag's help: each mode's description, modes that describe it alike together
    (``"fid, fid_stats: ... (default 400); probe: ... (default 256)"``)."""
    modes_of: dict[str, list[str]] = {}
    for mode, option in declared:
        modes_of.setdefault(option.describe(), []).append(mode)
    return "; ".join(f"{', '.join(modes)}: {text}" for text, modes in modes_of.items()) + "."


def check(values: dict[str, Any], declared: dict[str, list[tuple[str, Option]]]) -> None:
    """Raises InputError for a given value that its declarations refuse (``COMMON`` and every
    mode's, whichever mode is asked for, as the flags are)."""
    for option in COMMON:
        option.check(values.get(option.name))
    for name, decls in declared.items():
        decls[0][1].check(values.get(name))
