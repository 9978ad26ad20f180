"""The optimizer of a run and the schedules of its learning rate and data noise.

Any optax optimizer, configured from the ``optim`` block; the learning rate and sigma_data
follow one ``decay_schedule`` (constant, cosine or linear decay after an optional warm-up).
The loop builds the optimizer (``make_optimizer``) and hands it to the model family, whose
update applies it; the divergence guard rebuilds it with a lowered rate after a rollback.
"""
from __future__ import annotations

import inspect

import ml_collections
import optax


def decay_schedule(value: float, kind: str = "constant", *, total_steps: int | None = None,
                   warmup_steps: int = 0, decay_start: int = 0, decay_steps: int = 0,
                   final_factor: float = 0.0):
    """``value`` as a function of the update: ``constant``, or ``cosine`` / ``linear`` decay to
    ``value * final_factor`` between ``decay_start`` and ``decay_start + decay_steps``
    (``decay_steps`` 0: until ``total_steps``), after ``warmup_steps`` of linear warm-up from 0.
    """
    value, warmup, start = float(value), int(warmup_steps), int(decay_start)
    if kind == "constant":
        decay = optax.constant_schedule(value)
    elif kind in ("cosine", "linear"):
        steps = int(decay_steps) or max(int(total_steps or 0) - start, 1)
        final = value * float(final_factor)
        if kind == "cosine":
            tail = optax.cosine_decay_schedule(value, steps, alpha=final / value if value else 0.0)
        else:
            tail = optax.linear_schedule(value, final, steps)
        decay = optax.join_schedules([optax.constant_schedule(value), tail], [start])
    else:
        raise ValueError(f"schedule {kind!r}: choose constant, cosine or linear")
    if warmup:
        return optax.join_schedules([optax.linear_schedule(0.0, value, warmup), decay], [warmup])
    return decay


def make_schedule(optim_config, total_steps: int | None = None):
    """The learning rate: ``decay_schedule`` of ``optim.learning_rate`` with ``optim.schedule``,
    ``warmup_steps``, ``decay_start``, ``decay_steps`` and ``final_lr_factor``."""
    c = optim_config
    return decay_schedule(c.learning_rate, c.get("schedule", "constant"), total_steps=total_steps,
                          warmup_steps=c.get("warmup_steps", 0),
                          decay_start=c.get("decay_start", 0), decay_steps=c.get("decay_steps", 0),
                          final_factor=c.get("final_lr_factor", 0.0))


def make_data_noise_schedule(training_config):
    """sigma_data: ``decay_schedule`` of ``training.data_noise_std`` with
    ``training.data_noise_schedule``, ``data_noise_decay_start``, ``data_noise_decay_steps`` and
    ``data_noise_final_factor`` (the paper lowers the data noise with the learning rate)."""
    c = training_config
    return decay_schedule(c.data_noise_std, c.get("data_noise_schedule", "constant"),
                          total_steps=c.num_steps,
                          decay_start=c.get("data_noise_decay_start", 0),
                          decay_steps=c.get("data_noise_decay_steps", 0),
                          final_factor=c.get("data_noise_final_factor", 0.0))


def make_optimizer(optim_config, total_steps: int | None = None) -> optax.GradientTransformation:
    """The optax optimizer named by ``optim.optimizer``, with every config field it accepts.

    Any optax optimizer works (adam, adamw, sgd, lamb, ...); fields that the optimizer does not
    take are ignored. The learning rate follows ``make_schedule``. ``grad_clip_norm`` > 0 clips
    the global gradient norm first.
    """
    name = optim_config.optimizer
    factory = getattr(optax, name, None)
    if factory is None or not callable(factory):
        raise ValueError(f"optim.optimizer={name!r} is not an optax optimizer")
    accepted = inspect.signature(factory).parameters
    kwargs = {k: v for k, v in optim_config.items() if k in accepted}
    kwargs["learning_rate"] = make_schedule(optim_config, total_steps)
    if name == "sgd" and not kwargs.get("momentum"):
        kwargs["momentum"] = None
    tx = factory(**kwargs)
    if optim_config.get("grad_clip_norm", 0.0) > 0:
        tx = optax.chain(optax.clip_by_global_norm(optim_config.grad_clip_norm), tx)
    return tx


def scaled_optim(optim_config, lr_scale: float) -> ml_collections.ConfigDict:
    """A copy of the ``optim`` config with the learning rate multiplied by ``lr_scale``."""
    scaled = ml_collections.ConfigDict(optim_config.to_dict())
    scaled.learning_rate = float(optim_config.learning_rate) * lr_scale
    return scaled
