"""Short-run MCMC without its noise, as a flow: x = M(z), and the inversion z = M^{-1}(x).

With sigma = 0 the K-step sampler is a deterministic residual map of the prior draw z ~ p_0,

    x_0 = z,    x_{k+1} = x_k + s * grad_x f(x_k),    M(z) = x_K,

so that p(x) = p_0(z) / |det dM/dz|. Every function takes an energy callable
``energy_fn(x_B...) -> f_B`` (negative energy, one number per example), and computes its
gradients with ``jax.grad`` of that callable, or with ``grad_fn(x_B...) -> grad_x sum_B f``
where given (such as ``EnergyModel.input_grad(params)``, the same gradient as matrix products,
which the CPU runs about twice as fast; it is differentiable like ``jax.grad``).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ebm_jax.core import sampler
from ebm_jax.core.prior import Prior

Array = jax.Array


def energy_grad(energy_fn: Callable[[Array], Array]) -> Callable[[Array], Array]:
    """grad_x f for a batch: examples are independent, so the gradient of the sum is the
    per-example gradient."""
    return jax.grad(lambda x: jnp.sum(energy_fn(x)))


def flow_step(energy_fn: Callable[[Array], Array], step_size: float,
              grad_fn: Callable[[Array], Array] | None = None):
    """One noise-free step x -> x + s * grad f(x)."""
    grad_fn = grad_fn or energy_grad(energy_fn)
    return lambda x: x + step_size * grad_fn(x)


def flow_map(energy_fn: Callable[[Array], Array], z: Array, *, num_steps: int,
             step_size: float, remat: bool = True, unroll: int | bool = 1,
             grad_fn: Callable[[Array], Array] | None = None) -> Array:
    """x = M(z): ``num_steps`` noise-free steps x <- x + s * grad f(x) from ``z`` (batch first).

    With ``remat`` each step is wrapped in ``jax.checkpoint``, so that reverse-mode
    differentiation through the K steps (as in ``invert``) keeps only the K states x_k and
    recomputes each step's activations, instead of storing the activations of all K steps.
    Forward-mode (``jax.jvp``) needs no such help: its memory does not grow with K.
    """
    step = flow_step(energy_fn, step_size, grad_fn)
    if remat:
        step = jax.checkpoint(step)

    def body(x, _):
        return step(x), None

    x, _ = jax.lax.scan(body, z, None, length=int(num_steps), unroll=unroll)
    return x


def flow_kwargs(sampling_config) -> dict:
    """The keyword arguments of ``invert`` held in a config's ``sampling`` block: K, s and the
    prior p_0 of the sampler (its noise sigma is dropped: the flow is noise-free). K is the
    sampler's (``sampler.num_steps``); whatever ``sampling.method``, the flow is the drift
    x + s grad f that all methods share (MALA's proposal mean, one leapfrog step of HMC).

    The loop stays rolled unless ``sampling.unroll`` is set: unrolled K steps inside the
    inversion's own loop would make the compile time grow with K."""
    c = sampling_config
    return dict(num_steps=sampler.num_steps(c), step_size=float(c.step_size),
                prior=Prior.from_config(c), unroll=sampler.resolve_unroll(c.get("unroll", 0), 1))


class Inversion(NamedTuple):
    """What ``invert`` returns.

    z: the latent found, shaped like the target, inside the prior's support.
    x: M(z), the point whose likelihood the flow gives.
    mse_B: per-example mean squared error between the target and M(z).
    snapshots: M(z_t) at the iterations in ``snapshot_iters``, stacked on a leading axis
      (None unless ``snapshot_every``).
    snapshot_iters: the iterations t of the snapshots (0 and the last included).
    at_boundary_B: per-example count of coordinates of z on the boundary of a uniform prior's
      box (always 0 for a Gaussian prior): where the projection is active, the best z lies
      outside the support and the target is not exactly in the image of M.
    """
    z: Array
    x: Array
    mse_B: Array
    snapshots: Array | None
    snapshot_iters: tuple[int, ...]
    at_boundary_B: Array


def invert(energy_fn: Callable[[Array], Array], x_target: Array, key: Array, *,
           num_steps: int, step_size: float, num_iters: int = 200,
           learning_rate: float = 0.05, prior: Prior = Prior(), snapshot_every: int | None = None,
           remat: bool = True, unroll: int | bool = 1,
           grad_fn: Callable[[Array], Array] | None = None) -> Inversion:
    """Finds z with M(z) close to ``x_target`` (batch first) by gradient descent on
    ||x - M(z)||^2, from z_0 ~ p_0 drawn with ``key``.

    The optimiser is Adam with a cosine decay of ``learning_rate`` to 0 over ``num_iters``, so
    that the last iterations settle instead of oscillating. Each example has its own loss and
    Adam is per-coordinate, so the examples of a batch do not influence each other.

    z stays in the support of a uniform prior by projection: after each update it is clipped
    to the prior's box (``Prior.project``). Clipping is the exact Euclidean projection onto the box, leaves
    the loss unchanged inside it, and lets z reach the boundary, where p_0 is still positive.
    A reparameterisation such as z = tanh(u) would never reach the boundary and its gradient
    vanishes near it, slowing the coordinates whose latent lies close to +-1. A Gaussian prior
    has full support, and z is left free.

    ``snapshot_every``: keep M(z_t) every that many iterations, t = 0 and t = ``num_iters``
    included (for a picture of the reconstruction as it converges).
    """
    project = prior.project
    z0 = prior.sample(key, x_target.shape)
    axes = tuple(range(1, x_target.ndim))

    def forward(z):
        return flow_map(energy_fn, z, num_steps=num_steps, step_size=step_size, remat=remat,
                        unroll=unroll, grad_fn=grad_fn)

    def loss_fn(z):
        x = forward(z)
        return jnp.sum(jnp.mean(jnp.square(x - x_target), axis=axes)), x

    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, max(int(num_iters), 1)))
    every = int(snapshot_every) if snapshot_every else 0
    iters = tuple(range(0, int(num_iters), every)) if every else ()
    if every:
        iters = iters + (int(num_iters),)
    snaps0 = jnp.zeros((max(len(iters) - 1, 0),) + x_target.shape, x_target.dtype)

    def body(carry, t):
        z, opt_state, snaps = carry
        (_, x), g = jax.value_and_grad(loss_fn, has_aux=True)(z)
        if every:
            hit = t % every == 0
            i = jnp.minimum(t // every, snaps.shape[0] - 1)
            snaps = snaps.at[i].set(jnp.where(hit, x, snaps[i]))
        updates, opt_state = tx.update(g, opt_state, z)
        return (project(optax.apply_updates(z, updates)), opt_state, snaps), None

    z0 = project(z0)
    (z, _, snaps), _ = jax.lax.scan(body, (z0, tx.init(z0), snaps0), jnp.arange(int(num_iters)))
    x = forward(z)
    mse_B = jnp.mean(jnp.square(x - x_target), axis=axes)
    snapshots = jnp.concatenate([snaps, x[None]], axis=0) if every else None
    return Inversion(z, x, mse_B, snapshots, iters, prior.boundary_count(z))
