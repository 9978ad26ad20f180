"""One learning update of the short-run EBM, and the optimizer it uses.

For a mini-batch of m data points x_i (plus N(0, sigma_data^2) noise) and m fresh short-run
samples y_i = M_theta(z_i), the update is a step of the optimizer on

    L(theta) = mean_i f_theta(y_i) - mean_i f_theta(x_i),

whose negative gradient is the usual maximum-likelihood direction with the model expectation
replaced by the short-run samples. The samples are constants: no gradient flows through the
chain.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from ebm_jax import input_grad as input_grad_lib, parallel, sampler

Array = jax.Array


class TrainState(flax.struct.PyTreeNode):
    step: Array
    params: Any
    opt_state: Any


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


def init_state(params, tx: optax.GradientTransformation) -> TrainState:
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))


def init_key(seed: int) -> Array:
    """The key of the parameter initialisation: ``fold_in(key(seed), 0)``."""
    return jax.random.fold_in(jax.random.key(seed), 0)


def step_key(seed: int | Array, step: Array) -> Array:
    """The key of update ``step``: ``fold_in(fold_in(key(seed), 1), step)``. Derived from the
    seed and the step, never carried or reused, so a resumed run draws the same numbers."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), 1), step)


def make_train_step(energy: Callable[[Any, Array], Array], tx: optax.GradientTransformation,
                    config, data_shape: Sequence[int], mesh: Mesh | None = None, *,
                    input_grad: Callable[[Any], Callable[[Array], Array]] | None = None):
    """Returns ``train_step(state, data_B...) -> (state, metrics)``, jit-compiled.

    ``input_grad(params)``, if given, is the chains' gradient ``x -> grad_x sum_B f(x)``
    (``EnergyModel.input_grad``); by default the sampler takes ``jax.grad`` of ``energy``.

    Update ``t`` uses ``k_t = step_key(config.seed, t)``; its chains use ``fold_in(k_t, 0)``,
    the data noise ``fold_in(k_t, 1)`` and the dynamic K ``fold_in(k_t, 2)``. With a mesh,
    the state is replicated and data and chains are split across its devices (see parallel.py).
    """
    s_cfg, t_cfg = config.sampling, config.training
    num_steps = int(s_cfg.num_steps)
    num_steps_max = int(s_cfg.get("num_steps_max", 0) or 0)
    dynamic = num_steps_max > num_steps
    input_grad = input_grad_lib.for_sampling(input_grad, s_cfg)
    sample_kwargs = sampler.sampling_kwargs(s_cfg, grad_given=input_grad is not None)
    data_noise_std = make_data_noise_schedule(t_cfg)
    seed = int(config.seed)
    constrain = parallel.split_constraint(mesh)

    def train_step(state: TrainState, data: Array):
        key = step_key(seed, state.step)
        batch_shape = (data.shape[0],) + tuple(data_shape)
        if dynamic:
            k = jax.random.randint(jax.random.fold_in(key, 2), (), num_steps, num_steps_max + 1)
            k_kwargs = dict(num_steps=k, num_steps_max=num_steps_max,
                            num_steps_min=num_steps)
        else:
            k_kwargs = dict(num_steps=num_steps)
        frozen = jax.lax.stop_gradient(state.params)
        grad_fn = None if input_grad is None else input_grad(frozen)
        chains = sampler.short_run(lambda x: energy(frozen, x), jax.random.fold_in(key, 0),
                                   batch_shape, constrain=constrain, grad_fn=grad_fn,
                                   **k_kwargs, **sample_kwargs)
        y = jax.lax.stop_gradient(chains.x)
        sigma_data = data_noise_std(state.step)
        x = data + sigma_data * jax.random.normal(jax.random.fold_in(key, 1), data.shape,
                                                  data.dtype)
        if constrain is not None:
            x = constrain(x)

        def loss_fn(params):
            f_data, f_chain = energy(params, x), energy(params, y)
            return jnp.mean(f_chain) - jnp.mean(f_data), (f_data, f_chain)

        (loss, (f_data, f_chain)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(
            loss=loss,
            energy_gap=-loss,  # mean f(data) - mean f(chains)
            f_data=jnp.mean(f_data),
            f_chains=jnp.mean(f_chain),
            grad_norm_x=chains.grad_norm,
            grad_norm_params=optax.tree.norm(grads),
            num_langevin_steps=chains.num_steps,
            samples_mean=jnp.mean(y),
            samples_std=jnp.std(y),
            samples_saturation=jnp.mean(jnp.abs(y) > 1.0),
            # Diversity across chains: near 0 when every chain ends at the same point.
            samples_chain_std=jnp.mean(jnp.std(y, axis=0)),
            param_norm=optax.tree.norm(params),
            data_noise_std=sigma_data,
        )
        return TrainState(state.step + 1, params, opt_state), metrics

    if mesh is None:
        return jax.jit(train_step, donate_argnums=0)
    rep, dat = parallel.replicated(mesh), parallel.data_sharded(mesh)
    return jax.jit(train_step, in_shardings=(rep, dat), out_shardings=(rep, rep),
                   donate_argnums=0)
