"""The configs shipped with the package; ``train.py --config=NAME`` takes one by name."""
from __future__ import annotations

import os

FOLDER = os.path.dirname(os.path.abspath(__file__))


def names() -> list[str]:
    return sorted(n[:-3] for n in os.listdir(FOLDER) if n.endswith(".py") and n[0] != "_")


def resolve(value: str) -> str:
    """The config file that ``--config=value`` means: ``value`` itself when it names an
    existing file; else the packaged config it names, as ``digits``, ``digits.py`` or
    ``configs/digits.py`` (the repository's folder, from any directory). A ``:argument``
    suffix is kept; anything else is returned unchanged."""
    file, sep, argument = value.partition(":")
    if os.path.exists(file):
        return value
    name = file[:-3] if file.endswith(".py") else file
    if name.startswith("configs/"):
        name = name[len("configs/"):]
    if name in names():
        return os.path.join(FOLDER, f"{name}.py") + sep + argument
    return value
