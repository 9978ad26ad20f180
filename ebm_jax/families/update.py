"""The learning update that the families share: one optimizer step on a loss of the chains.

Update t of a family, ``(state, batch) -> (state, metrics)``, with ``k_t = keys.step_key(seed,
t)``: the params frozen for the chains; the data plus N(0, sigma_data^2) noise from
``fold_in(k_t, 1)``, sigma_data on the data-noise schedule; then the family's ``objective``
(its chains, its loss and its bank); one step of the optimizer on that loss; and the norms of
the gradient and of the new params. What varies is the objective alone, and the keys it draws
(every family leaves ``fold_in(k_t, 1)`` to the data noise).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import optax

from ebm_jax.core import keys, schedules
from ebm_jax.families import base
from ebm_jax.runtime import parallel


class Objective(NamedTuple):
    """What a family's objective gives the shared update: ``loss_fn(params) -> (loss, aux)``,
    with ``aux`` a dict of metrics of the loss; ``metrics`` of the chains it ran; and the bank
    of the new state."""
    loss_fn: Callable[[Any], tuple[jax.Array, dict]]
    metrics: dict
    bank: jax.Array | None = None


def make_update(family: base.Family, objective, tx: optax.GradientTransformation, mesh=None,
                meta: dict | None = None):
    """The jitted ``(state, batch) -> (state, metrics)`` of ``family``: ``objective(state,
    batch, x, frozen, key, constrain) -> Objective``, given the noisy data x, the frozen
    params, the update's key k_t and the constraint that splits arrays along the mesh's data
    axis (the identity without a mesh). The metrics: ``loss``, the objective's ``aux`` and
    ``metrics``, ``grad_norm_params``, ``param_norm`` and ``data_noise_std``."""
    seed = int(family.config.seed)
    data_noise_std = schedules.data_noise(family.config.training)
    constrain = parallel.split_constraint(mesh) or (lambda a: a)

    def update(state: base.TrainState, batch: base.Batch):
        key = keys.step_key(seed, state.step)
        frozen = jax.lax.stop_gradient(state.params)
        sigma_data = data_noise_std(state.step)
        x = constrain(batch.x + sigma_data * jax.random.normal(
            jax.random.fold_in(key, 1), batch.x.shape, batch.x.dtype))
        out = objective(state, batch, x, frozen, key, constrain)
        (loss, aux), grads = jax.value_and_grad(out.loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(loss=loss, **aux, **out.metrics, grad_norm_params=optax.tree.norm(grads),
                       param_norm=optax.tree.norm(params), data_noise_std=sigma_data)
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                             bank=out.bank), metrics

    return jit(update, family.state_shardings(mesh, meta) if mesh else None, mesh)


def jit(update, state_shardings, mesh):
    """``update`` jit-compiled with the state donated; with a mesh, the state placed as
    ``state_shardings`` says, the batch split along the data axis and the metrics replicated."""
    if mesh is None:
        return jax.jit(update, donate_argnums=0)
    split = parallel.data_sharded(mesh)
    return jax.jit(update, in_shardings=(state_shardings, base.Batch(split, split)),
                   out_shardings=(state_shardings, parallel.replicated(mesh)), donate_argnums=0)
