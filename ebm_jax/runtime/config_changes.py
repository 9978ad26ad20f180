"""Which config fields make a run's protocol, and what differs between two configs of one run.

The protocol is every field that changes what is learned or how it is sampled: the model, the
data, the chains, the optimizer and its schedules, the batch, the data noise, the seed and the
guard. The other fields only change what is logged, saved or shown, how a loop is compiled, or
where the data are read from (``HARMLESS``), and may differ between the starts of one run.
So may ``training.num_steps`` (a run made longer, or stopped sooner), unless the learning rate
or the data noise decays until it: then the rates of the updates still to come would change.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

HARMLESS = frozenset({
    "training.log_every", "training.checkpoint_every", "training.keep_checkpoints",
    "training.sample_every", "training.num_plot_samples", "training.tensorboard",
    "data.data_dir", "data.cache", "data.cache_dir", "sampling.unroll", "inference.unroll",
    "sampling.grad_impl",
})
HARMLESS_BLOCKS = ("eval.",)  # what evaluate.py samples by default, not what is learned
NUM_STEPS = "training.num_steps"


@dataclasses.dataclass(frozen=True)
class Change:
    """``field`` is ``saved`` in the workdir's record and ``new`` in the config given."""
    field: str
    saved: Any
    new: Any
    protocol: bool

    def describe(self) -> str:
        return f"{self.field} is {self.saved!r} there and {self.new!r} here"

    def to_json(self) -> dict:
        return {"field": self.field, "from": self.saved, "to": self.new,
                "protocol": self.protocol}


def flatten(tree, prefix: str = "") -> dict[str, Any]:
    """``{'a.b': value}`` of a nested dict, with JSON values (tuples as lists)."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def as_flat(config) -> dict[str, Any]:
    """The leaf fields of a ConfigDict (or a nested dict) as JSON values."""
    tree = json.loads(config.to_json()) if hasattr(config, "to_json") else json.loads(
        json.dumps(config))
    return flatten(tree)


def decays_until_num_steps(flat: dict[str, Any]) -> bool:
    """Whether the learning rate or the data noise decays until ``training.num_steps``."""
    lr = (flat.get("optim.schedule", "constant") != "constant"
          and not flat.get("optim.decay_steps", 0))
    noise = (flat.get("training.data_noise_schedule", "constant") != "constant"
             and not flat.get("training.data_noise_decay_steps", 0))
    return lr or noise


def is_protocol(field: str, flat_new: dict[str, Any]) -> bool:
    if field in HARMLESS or field.startswith(HARMLESS_BLOCKS):
        return False
    if field == NUM_STEPS:
        return decays_until_num_steps(flat_new)
    return True


def differences(saved, new) -> list[Change]:
    """The fields where ``new`` differs from ``saved``; a field only one side has (added to
    the defaults since) does not count."""
    flat_saved, flat_new = as_flat(saved), as_flat(new)
    return [Change(field, flat_saved[field], flat_new[field],
                   is_protocol(field, flat_new))
            for field in sorted(set(flat_saved) & set(flat_new))
            if flat_saved[field] != flat_new[field]]


def apply(tree: dict, changes: list[dict]) -> dict:
    """``tree`` (a nested dict) with each recorded change (``Change.to_json``) applied."""
    for change in changes:
        *parents, leaf = change["field"].split(".")
        node = tree
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = change["to"]
    return tree
