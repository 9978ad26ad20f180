"""The divergence guard: which update statistics mean a run has diverged, and its rollback record.

Every update's metrics are checked (see ``first_trip``): the family's ``GuardSpec`` names the
statistics that must stay finite, those with a fixed bound (``guard.max_*``; 0 is no bound),
and those that must not grow by orders of magnitude against their own recent scale
(``Growth``), which catches a run that diverges while every statistic stays finite. A trip
makes the trainer restore the last checkpoint and go on with the learning rate multiplied by
``guard.lr_factor``; after ``guard.max_rollbacks`` rollbacks the next trip stops training with
``DivergenceError``. The record (``workdir/guard.json``) survives restarts, so a resumed run
keeps its lowered rate and its count.
"""
from __future__ import annotations

import collections
import dataclasses
import math
import statistics

from ebm_jax.runtime import workdir_files


class DivergenceError(RuntimeError):
    """Training diverged more often than ``guard.max_rollbacks`` allows."""


@dataclasses.dataclass(frozen=True)
class Trip:
    """Update ``step`` (counted after the update) gave ``statistic`` = ``value``."""
    step: int
    statistic: str
    value: float
    reason: str

    def describe(self) -> str:
        return f"{self.statistic} = {self.value:.4g} at step {self.step} ({self.reason})"


def check(step: int, metrics: dict, guard_config, spec) -> Trip | None:
    """The first statistic of one update's metrics that shows divergence, or None. ``spec``
    (the family's ``GuardSpec``) names the statistics that must stay finite and the bounded
    ones; every one it names must be in ``metrics``."""
    for name in spec.finite:
        if not math.isfinite(float(metrics[name])):
            return Trip(step, name, float(metrics[name]), "not finite")
    for name, field in spec.bounds:
        bound, value = float(guard_config[field]), float(metrics[name])
        if bound > 0 and abs(value) > bound:
            return Trip(step, name, value, f"|{name}| above guard.{field}={bound:g}")
    return None


class Growth:
    """The recent scale of each of ``spec.growth``'s statistics, and the check against it.

    The scale of a statistic is the median of |value| over the last ``guard.growth_window``
    updates that passed the guard, but no less than ``guard.growth_floor`` (a statistic near 0
    has no meaningful ratio). An update trips when |value| exceeds ``guard.max_growth`` times
    that scale, once ``guard.growth_min_updates`` updates have been seen; ``max_growth`` 0 is
    off. The median follows a new level only after half a window spent there, so a blow-up
    that takes fewer updates than that to grow by ``max_growth`` is caught, however smooth.
    ``rewind`` forgets the updates after a rollback's restored step.
    """

    def __init__(self, guard_config, spec):
        self.factor = float(guard_config.max_growth)
        self.floor = float(guard_config.growth_floor)
        self.window = int(guard_config.growth_window)
        self.min_updates = max(int(guard_config.growth_min_updates), 1)
        self.names = tuple(spec.growth) if self.factor > 0 else ()
        self.seen = {name: collections.deque(maxlen=self.window) for name in self.names}

    def check(self, step: int, metrics: dict) -> Trip | None:
        for name in self.names:
            seen = self.seen[name]
            if len(seen) < self.min_updates:
                continue
            value = float(metrics[name])
            scale = max(statistics.median(abs(v) for _, v in seen), self.floor)
            if abs(value) > self.factor * scale:
                return Trip(step, name, value,
                            f"|{name}| {abs(value) / scale:.3g} times its recent scale "
                            f"{scale:.3g}, the median |{name}| of the last {len(seen)} updates;"
                            f" above guard.max_growth={self.factor:g}")
        return None

    def add(self, step: int, metrics: dict) -> None:
        for name in self.names:
            self.seen[name].append((step, float(metrics[name])))

    def rewind(self, step: int) -> None:
        """Forgets the updates after ``step`` (counted after the update)."""
        for name in self.names:
            kept = [(s, v) for s, v in self.seen[name] if s <= step]
            self.seen[name].clear()
            self.seen[name].extend(kept)


def first_trip(rows: list[tuple[int, dict]], guard_config, spec,
               growth: Growth | None = None) -> Trip | None:
    """The first trip among ``(step, metrics)`` rows, in step order. With ``growth``, the rows
    are also checked against their statistics' recent scale, and those that pass are added
    to it."""
    for step, metrics in rows:
        trip = check(step, metrics, guard_config, spec)
        if trip is None and growth is not None:
            trip = growth.check(step, metrics)
        if trip is not None:
            return trip
        if growth is not None:
            growth.add(step, metrics)
    return None


def collapsed(metrics: dict, guard_config, spec) -> bool:
    """Whether the samples have (nearly) no diversity across chains, for a family whose spec
    names a collapse statistic."""
    return spec.collapse is not None and float(metrics[spec.collapse]) < guard_config.collapse_std


@dataclasses.dataclass
class Record:
    """The rollbacks of a run so far; ``lr_scale`` multiplies ``optim.learning_rate``."""
    rollbacks: int = 0
    lr_scale: float = 1.0

    @classmethod
    def load(cls, workdir: str) -> Record:
        return cls(**(workdir_files.read_guard(workdir) or {}))

    def save(self, workdir: str) -> None:
        """Writes ``workdir/guard.json`` (through the run's record, ``workdir_files``)."""
        workdir_files.write_guard(workdir, dataclasses.asdict(self))

    def rollback(self, trip: Trip, restored_step: int, guard_config) -> dict:
        """Counts a rollback to ``restored_step`` and returns its log entry.

        Once ``guard.max_rollbacks`` rollbacks have been made, it changes nothing and returns a
        ``stop`` entry instead (see ``stop_message``).
        """
        entry = dict(statistic=trip.statistic, value=trip.value, reason=trip.reason,
                     tripped_step=trip.step, restored_step=restored_step)
        if self.rollbacks >= guard_config.max_rollbacks:
            return dict(event="stop", rollbacks=self.rollbacks, lr_scale=self.lr_scale, **entry)
        self.rollbacks += 1
        self.lr_scale *= float(guard_config.lr_factor)
        return dict(event="rollback", rollbacks=self.rollbacks, lr_scale=self.lr_scale, **entry)


def stop_message(entry: dict) -> str:
    """What a ``stop`` entry means: the step window, the statistic, and what to do."""
    kept = (f"The checkpoint at step {entry['restored_step']} is intact." if entry["restored_step"]
            else "No checkpoint had been saved yet.")
    return (f"training diverged between step {entry['restored_step']} and step "
            f"{entry['tripped_step']}: {entry['statistic']} = {entry['value']:.4g} "
            f"({entry['reason']}), after {entry['rollbacks']} rollbacks to the last good "
            f"checkpoint (learning rate scaled by {entry['lr_scale']:g}). {kept} Lower "
            "optim.learning_rate, raise guard.max_rollbacks or loosen the guard.* bounds before "
            "resuming.")
