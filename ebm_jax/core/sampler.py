"""Short-run sampling M_theta: fresh noise in, K steps of a chain out.

Every function here takes an arbitrary energy callable ``energy_fn(x_B...) -> f_B`` (negative
energy, density proportional to exp f), so a user's own energy works as well as ours. The
default chain (``sampling.method='langevin'``) is

    x_0 ~ p_0,    x_{k+1} = x_k + s * grad_x f(x_k) + sigma * eps_k,    eps_k ~ N(0, I),

with no clamping, no replay buffer and no Metropolis correction. ``METHODS`` also holds the
Metropolis-corrected ``mala`` (``core/mala.py``) and ``hmc`` (``core/hmc.py``), which take the
same s and sigma and leave exp(f / T), T = sigma^2 / (2 s), exactly invariant. ``run`` is the
one entry to a chain, ``chain_length`` the one reader of K. The functions are pure and
traceable: call them under ``jax.jit`` (``make_sampler`` does that for you).
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from ebm_jax.core import chain, hmc, mala
from ebm_jax.core.chain import ChainResult
from ebm_jax.core.prior import Prior

Array = jax.Array


def langevin(energy_fn: Callable[[Array], Array], x0: Array, key: Array | None,
             num_steps: int | Array, step_size: float = 1.0, noise_std: float = 0.01, *,
             num_steps_max: int | None = None, num_steps_min: int = 0,
             noise: Array | None = None,
             snapshot_steps: Sequence[int] = (), return_path: bool = False,
             constrain: Callable[[Array], Array] | None = None,
             unroll: int | bool = 1,
             grad_fn: Callable[[Array], Array] | None = None) -> ChainResult:
    """Runs K steps of x <- x + s * grad f(x) + sigma * eps from ``x0``.

    Args:
      energy_fn: maps a batch x_B... to f_B (negative energy, one number per chain).
      x0: the initial states, batch first.
      key: the noise key; step k uses ``fold_in(key, k)``. Unused when ``noise`` is given or
        ``noise_std`` is 0 (then it may be None).
      num_steps: K. A Python int, or, with ``num_steps_max``, a traced integer (dynamic K): the
        loop then always has ``num_steps_max`` iterations and skips those past K, so drawing a
        new K per update never recompiles.
      step_size: the gradient coefficient s; an array broadcasting against x gives each
        coordinate its own (for instance a joint chain over (x, z) that moves each differently).
      noise_std: sigma, a number or such an array. With 0 the map x_0 -> x_K is deterministic
        (the flow view).
      num_steps_max: static loop length for dynamic K.
      num_steps_min: with dynamic K, the first ``num_steps_min`` steps run unconditionally
        (K is taken to be at least this). Only the remaining steps sit under ``lax.cond``,
        whose branches XLA:CPU compiles without its fast convolution path.
      noise: explicit eps, shaped (loop length, *x0.shape), for interpolation and
        reconstruction, where the same noise must be replayed.
      snapshot_steps: steps at which to keep the state (0 is x_0); static.
      return_path: keep all K + 1 states (memory grows with K).
      constrain: applied to every state, e.g. a sharding constraint; it must not change values.
      unroll: ``jax.lax.scan``'s unroll (True: the whole loop). See ``default_unroll``.
      grad_fn: ``x -> grad_x sum_B f(x)`` in place of ``jax.grad`` of ``energy_fn``, such as
        ``EnergyModel.input_grad(params)``, which computes the same faster.

    Returns:
      A ChainResult. The chain is differentiable like any JAX code; to keep gradients from
      flowing through it into the energy's parameters, close over ``stop_gradient(params)``,
      as the learning step does.
    """
    grad_fn = grad_fn or jax.grad(lambda x: jnp.sum(energy_fn(x)))
    constrain_x = constrain or (lambda x: x)
    no_noise = noise is None and jnp.ndim(noise_std) == 0 and noise_std == 0

    def step(state, k, eps):
        (x,) = state
        if no_noise:
            eps = jnp.zeros_like(x)
        g = grad_fn(x)
        if eps is None:
            eps = jax.random.normal(jax.random.fold_in(key, k), x.shape, x.dtype)
        x_new = constrain_x(x + step_size * g + noise_std * eps)
        axes = tuple(range(1, x.ndim))
        return (x_new,), (jnp.mean(jnp.sqrt(jnp.sum(jnp.square(g), axis=axes))),)

    return chain.run(chain.Kernel(lambda x: (x,), step), x0, num_steps,
                     num_steps_max=num_steps_max, num_steps_min=num_steps_min, noise=noise,
                     snapshot_steps=snapshot_steps, return_path=return_path,
                     constrain=constrain, unroll=unroll)


class Method(NamedTuple):
    """A sampling method: ``chain(energy_fn, x0, key, num_steps, step_size, noise_std,
    **kwargs) -> ChainResult`` with the keyword arguments of ``langevin``, and ``options``,
    which reads the method's own settings from a ``sampling`` config block."""
    chain: Callable[..., ChainResult]
    options: Callable[[object], dict] = lambda sampling_config: {}


# ``sampling.method``: a new method is one module and one line here.
METHODS = {
    "langevin": Method(langevin),
    "mala": Method(mala.chain),
    "hmc": Method(hmc.chain, hmc.options),
}


def run(energy_fn: Callable[[Array], Array], x0: Array, key: Array | None,
        num_steps: int | Array, step_size: float = 1.0, noise_std: float = 0.01, *,
        method: str = "langevin", **kwargs) -> ChainResult:
    """K steps of the named ``method`` (``METHODS``) from ``x0``; ``kwargs`` are ``langevin``'s
    and the method's own options. Every chain over x of a family goes through here."""
    return METHODS[method].chain(energy_fn, x0, key, num_steps, step_size, noise_std, **kwargs)


def short_run(energy_fn: Callable[[Array], Array], key: Array, shape: Sequence[int],
              num_steps: int | Array, step_size: float = 1.0, noise_std: float = 0.01, *,
              prior: Prior = Prior(), **run_kwargs) -> ChainResult:
    """Draws fresh x_0 ~ ``prior`` (key ``fold_in(key, 0)``) and runs the chain (``run``, noise
    key ``fold_in(key, 1)``): the non-persistent short-run sampler M_theta."""
    x0 = prior.sample(jax.random.fold_in(key, 0), shape)
    return run(energy_fn, x0, jax.random.fold_in(key, 1), num_steps, step_size, noise_std,
               **run_kwargs)


def default_unroll(backend: str | None = None, grad_given: bool = False) -> int | bool:
    """The loop unrolling that is fastest where we measured it.

    On the CPU (XLA:CPU, jax 0.10), a rolled loop over ``jax.grad`` of the ConvNet keeps the
    loop-invariant kernel transforms of the input-gradient convolutions inside the loop and
    misses the fast convolution path: 750 ms per step at 32x32, nf=64, batch 64, against 304 ms
    fully unrolled, and unrolling K=100 steps compiles in about 2 s. A given gradient
    (``grad_given``, such as ``EnergyModel.input_grad``, whose weight transforms sit outside
    the loop) and other backends keep the loop rolled, so compile time and program size do
    not grow with K.
    """
    backend = backend or jax.default_backend()
    return True if backend == "cpu" and not grad_given else 1


def resolve_unroll(value, default: int | bool) -> int | bool:
    """A config's ``unroll`` field: 0 picks ``default``, 1 keeps the loop rolled, n > 1 unrolls
    n steps, and a value of K or more unrolls it whole. Every chain of the package (sampler,
    flow, latent inference) reads its field through this."""
    value = int(value or 0)
    return value if value > 0 else default


def method_of(sampling_config) -> str:
    """``sampling.method`` (default ``langevin``), checked against ``METHODS``."""
    name = sampling_config.get("method", "langevin") or "langevin"
    if name not in METHODS:
        raise ValueError(f"sampling.method={name!r}: choose one of {', '.join(METHODS)}")
    return name


def sampling_kwargs(sampling_config, grad_given: bool = False) -> dict:
    """The keyword arguments of ``short_run`` held in a config's ``sampling`` block: s, sigma,
    the prior p_0, the unrolling (``resolve_unroll`` with ``default_unroll``), the method and
    its own options. K is read by ``chain_length``."""
    c = sampling_config
    method = method_of(c)
    return dict(step_size=float(c.step_size), noise_std=float(c.noise_std),
                prior=Prior.from_config(c),
                unroll=resolve_unroll(c.get("unroll", 0), default_unroll(grad_given=grad_given)),
                method=method, **METHODS[method].options(c))


def chain_length(sampling_config):
    """K of a config's ``sampling`` block, the one place it is read, as a function
    ``key -> run kwargs``.

    Fixed K gives ``num_steps=K``. Dynamic K (``num_steps_max`` > ``num_steps``) draws
    K ~ U{num_steps..num_steps_max} from the key; the loop then always has ``num_steps_max``
    iterations, of which the first ``num_steps`` run unconditionally (see ``langevin``).
    Without a key (``None``: evaluation, pictures, the flow view) K is ``num_steps``."""
    k_min = int(sampling_config.num_steps)
    k_max = int(sampling_config.get("num_steps_max", 0) or 0)

    def draw(key=None):
        if key is None or k_max <= k_min:
            return dict(num_steps=k_min)
        k = jax.random.randint(key, (), k_min, k_max + 1)
        return dict(num_steps=k, num_steps_max=k_max, num_steps_min=k_min)

    return draw


def num_steps(sampling_config) -> int:
    """The fixed K of evaluation and the flow view (``chain_length`` without a key)."""
    return chain_length(sampling_config)()["num_steps"]


def make_sampler(energy: Callable[[object, Array], Array], sampling_config,
                 data_shape: Sequence[int], *, snapshot_steps: Sequence[int] = (),
                 input_grad: Callable[[object], Callable[[Array], Array]] | None = None,
                 constrain: Callable[[Array], Array] | None = None):
    """Returns ``sample(params, key, num_samples) -> ChainResult``, jit-compiled, with the K, s,
    sigma and p_0 of ``sampling_config``. ``energy`` is ``energy(params, x_B...) -> f_B``;
    ``input_grad(params)``, if given, is the chain's ``grad_fn`` (``EnergyModel.input_grad``).

    ``constrain`` (e.g. ``parallel.split_constraint(mesh)``) splits the chains over devices;
    ``num_samples`` must then be a multiple of the device count."""
    kwargs = sampling_kwargs(sampling_config, grad_given=input_grad is not None)
    k = chain_length(sampling_config)()

    def sample(params, key, num_samples: int) -> ChainResult:
        grad_fn = None if input_grad is None else input_grad(params)
        return short_run(lambda x: energy(params, x), key, (num_samples,) + tuple(data_shape),
                         snapshot_steps=snapshot_steps, grad_fn=grad_fn, constrain=constrain,
                         **k, **kwargs)

    return jax.jit(sample, static_argnums=2)
