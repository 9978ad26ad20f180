"""The schedules of a run: its learning rate and its data noise, as functions of the update.

Both follow one ``decay``: constant, or cosine or linear decay after an optional warm-up. They
sit in the core, below the families (whose updates read sigma_data) and the training loop
(whose optimizer reads the learning rate).
"""
from __future__ import annotations

import optax


def decay(value: float, kind: str = "constant", *, total_steps: int | None = None,
          warmup_steps: int = 0, decay_start: int = 0, decay_steps: int = 0,
          final_factor: float = 0.0):
    """``value`` as a function of the update: ``constant``, or ``cosine`` / ``linear`` decay to
    ``value * final_factor`` between ``decay_start`` and ``decay_start + decay_steps``
    (``decay_steps`` 0: until ``total_steps``), after ``warmup_steps`` of linear warm-up from 0.
    """
    value, warmup, start = float(value), int(warmup_steps), int(decay_start)
    if kind == "constant":
        schedule = optax.constant_schedule(value)
    elif kind in ("cosine", "linear"):
        steps = int(decay_steps) or max(int(total_steps or 0) - start, 1)
        final = value * float(final_factor)
        if kind == "cosine":
            tail = optax.cosine_decay_schedule(value, steps, alpha=final / value if value else 0.0)
        else:
            tail = optax.linear_schedule(value, final, steps)
        schedule = optax.join_schedules([optax.constant_schedule(value), tail], [start])
    else:
        raise ValueError(f"schedule {kind!r}: choose constant, cosine or linear")
    if warmup:
        return optax.join_schedules([optax.linear_schedule(0.0, value, warmup), schedule],
                                    [warmup])
    return schedule


def learning_rate(optim_config, total_steps: int | None = None):
    """The learning rate: ``decay`` of ``optim.learning_rate`` with ``optim.schedule``,
    ``warmup_steps``, ``decay_start``, ``decay_steps`` and ``final_lr_factor``."""
    c = optim_config
    return decay(c.learning_rate, c.get("schedule", "constant"), total_steps=total_steps,
                 warmup_steps=c.get("warmup_steps", 0), decay_start=c.get("decay_start", 0),
                 decay_steps=c.get("decay_steps", 0), final_factor=c.get("final_lr_factor", 0.0))


def data_noise(training_config):
    """sigma_data: ``decay`` of ``training.data_noise_std`` with
    ``training.data_noise_schedule``, ``data_noise_decay_start``, ``data_noise_decay_steps`` and
    ``data_noise_final_factor`` (the paper lowers the data noise with the learning rate)."""
    c = training_config
    return decay(c.data_noise_std, c.get("data_noise_schedule", "constant"),
                 total_steps=c.num_steps, decay_start=c.get("data_noise_decay_start", 0),
                 decay_steps=c.get("data_noise_decay_steps", 0),
                 final_factor=c.get("data_noise_final_factor", 0.0))
