"""The optimizer of a run.

Any optax optimizer, configured from the ``optim`` block, its learning rate on the schedule of
``core.schedules.learning_rate``. The loop builds the optimizer (``make_optimizer``) and hands
it to the model family, whose update applies it; the divergence guard rebuilds it with a
lowered rate after a rollback.
"""
from __future__ import annotations

import inspect

import ml_collections
import optax

from ebm_jax.core import schedules


def make_optimizer(optim_config, total_steps: int | None = None) -> optax.GradientTransformation:
    """The optax optimizer named by ``optim.optimizer``, with every config field it accepts.

    Any optax optimizer works (adam, adamw, sgd, lamb, ...); fields that the optimizer does not
    take are ignored. The learning rate follows ``schedules.learning_rate``. ``grad_clip_norm``
    > 0 clips the global gradient norm first.
    """
    name = optim_config.optimizer
    factory = getattr(optax, name, None)
    if factory is None or not callable(factory):
        raise ValueError(f"optim.optimizer={name!r} is not an optax optimizer")
    accepted = inspect.signature(factory).parameters
    kwargs = {k: v for k, v in optim_config.items() if k in accepted}
    kwargs["learning_rate"] = schedules.learning_rate(optim_config, total_steps)
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
