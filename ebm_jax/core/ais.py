"""The EBM's own density p(x) = exp(g(x)) / Z, with g = f / T: annealed importance sampling
(AIS) for log Z, and RAISE (Burda, Grosse and Salakhutdinov, 2015) for a conservative log p(x).

The chain x <- x + s grad f(x) + sigma eps is a Langevin discretisation of exp(f / T) with
T = sigma^2 / (2 s) (``chain_temperature``); T = 1 gives exp(f). The path of densities runs
from the sampler's prior p_0 to the model,

    f_beta(x) = p_0(x)^(1 - beta) exp(beta g(x)),    0 = beta_0 < ... < beta_n = 1,

so with a uniform p_0 the model lives on p_0's box (its density is 0 outside) and Z is the
integral of exp(g) over the box; with a Gaussian p_0 it lives on all of R^D. Each temperature
applies ``mcmc_steps`` MALA steps (``core/mala.py``, the sampler's ``mala`` method;
reversible with respect to f_beta; proposals outside the box are rejected) or, with
``transition='langevin'``, unadjusted Langevin steps (biased: they leave f_beta only
approximately invariant).

- AIS: x_0 ~ p_0, log w += (beta_k - beta_{k-1}) (g - log p_0)(x_{k-1}), then a transition at
  beta_k. Z-hat = mean w is unbiased, so log Z-hat underestimates log Z on average, and
  g(x) - log Z-hat overestimates log p(x): the upper estimate.
- RAISE: from a data point x_n = x, transitions at beta_n, ..., beta_1 give x_{n-1}, ..., x_0,
  and p-hat(x) = exp(g(x)) prod_k f_{k-1}(x_{k-1}) / f_k(x_{k-1}) is unbiased for the annealed
  model's density, so its log is a stochastic lower bound: the lower estimate.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from ebm_jax.core import flow, mala
from ebm_jax.core.prior import Prior

Array = jax.Array


class AISResult(NamedTuple):
    """log_z: log of the mean importance weight. log_z_stderr: its standard error (delta
    method). log_w_N: each chain's log weight. x_N: the chains' final states."""
    log_z: Array
    log_z_stderr: Array
    log_w_N: Array
    x_N: Array


def chain_temperature(step_size: float, noise_std: float) -> float:
    """T = sigma^2 / (2 s): the temperature at which x + s grad f + sigma eps samples exp(f/T)."""
    return mala.temperature(step_size, noise_std)


def betas(num_temps: int, power: float = 1.0) -> Array:
    """beta_k = (k / n)^power, k = 0..n; power > 1 spends more temperatures near p_0."""
    return jnp.linspace(0.0, 1.0, int(num_temps) + 1) ** power


def log_mean_exp(a: Array, axis=0) -> Array:
    """log mean exp(a) along ``axis``, without overflow."""
    return jax.nn.logsumexp(a, axis=axis) - jnp.log(a.shape[axis])


class _Path:
    """log f_beta and its gradient for a batch, with g = energy / temperature."""

    def __init__(self, energy_fn, temperature, prior: Prior):
        self.g = lambda x: energy_fn(x) / temperature
        self.log_p0 = prior.log_prob
        self.uniform = prior.kind == "uniform"

    def log_f(self, x, beta):
        log_p0 = self.log_p0(x)
        if self.uniform:  # p_0^(1 - beta) is 0 outside the box even at beta = 1
            inside = jnp.isfinite(log_p0)
            return jnp.where(inside, (1 - beta) * jnp.where(inside, log_p0, 0.0)
                             + beta * self.g(x), -jnp.inf)
        return (1 - beta) * log_p0 + beta * self.g(x)

    def grad_log_f(self, x, beta):
        if self.uniform:
            return beta * flow.energy_grad(self.g)(x)
        return jax.grad(lambda v: jnp.sum((1 - beta) * self.log_p0(v) + beta * self.g(v)))(x)

    def increment(self, x):
        """d log f_beta / d beta = g(x) - log p_0(x)."""
        return self.g(x) - self.log_p0(x)


def _transition(path: _Path, x, key, beta, eps, kind: str):
    """One transition at ``beta``: MALA (``mala.step``), or its proposal alone for
    ``kind='langevin'``."""
    log_f = lambda v: path.log_f(v, beta)
    grad = lambda v: path.grad_log_f(v, beta)
    if kind == "langevin":
        noise = jax.random.normal(jax.random.fold_in(key, 0), x.shape, x.dtype)
        return mala.propose(mala.Point(x, None, grad(x)), noise, eps)
    current = mala.Point(x, log_f(x), grad(x))
    return mala.step(lambda v: (log_f(v), grad(v)), current, key, eps)[0].x


def _anneal(path: _Path, x, key, betas_K1, eps, mcmc_steps, kind, reverse):
    """Runs the transitions through the temperatures and sums the weight increments; the
    forward pass weights before each transition, the reverse pass after it."""
    steps = jnp.arange(1, betas_K1.shape[0])
    if reverse:
        steps = steps[::-1]

    def body(carry, k):
        x, acc = carry
        beta, d_beta = betas_K1[k], betas_K1[k] - betas_K1[k - 1]
        if not reverse:
            acc = acc + d_beta * path.increment(x)
        for j in range(int(mcmc_steps)):
            x = _transition(path, x, jax.random.fold_in(jax.random.fold_in(key, k), j), beta,
                            eps, kind)
        if reverse:
            acc = acc + d_beta * path.increment(x)
        return (x, acc), None

    (x, acc), _ = jax.lax.scan(body, (x, jnp.zeros(x.shape[:1], x.dtype)), steps)
    return x, acc


def ais_log_z(energy_fn: Callable[[Array], Array], key: Array, example_shape, *,
              num_chains: int = 256, num_temps: int = 1000, temperature: float = 1.0,
              mcmc_step_size: float = 0.1, mcmc_steps: int = 1, transition: str = "mala",
              schedule_power: float = 1.0, prior: Prior = Prior()) -> AISResult:
    """AIS estimate of log Z = log of the integral of exp(f / temperature) over p_0's support
    (see the module docstring)."""
    path = _Path(energy_fn, temperature, prior)
    x0 = prior.sample(jax.random.fold_in(key, 0), (num_chains,) + tuple(example_shape))
    x, log_w = _anneal(path, x0, jax.random.fold_in(key, 1), betas(num_temps, schedule_power),
                       mcmc_step_size, mcmc_steps, transition, reverse=False)
    w = jnp.exp(log_w - jnp.max(log_w))
    stderr = jnp.std(w) / (jnp.sqrt(num_chains) * jnp.mean(w))
    return AISResult(log_mean_exp(log_w), stderr, log_w, x)


def raise_log_prob(energy_fn: Callable[[Array], Array], x_B: Array, key: Array, *,
                   num_chains: int = 1, num_temps: int = 1000, temperature: float = 1.0,
                   mcmc_step_size: float = 0.1, mcmc_steps: int = 1, transition: str = "mala",
                   schedule_power: float = 1.0, prior: Prior = Prior()) -> Array:
    """RAISE: a stochastic lower bound on log p(x) per example (``num_chains`` reverse chains
    per example, their estimates of p averaged)."""
    path = _Path(energy_fn, temperature, prior)
    x_CB = jnp.broadcast_to(x_B[None], (num_chains,) + x_B.shape)
    x_N = x_CB.reshape((-1,) + x_B.shape[1:])
    _, acc_N = _anneal(path, x_N, key, betas(num_temps, schedule_power), mcmc_step_size,
                       mcmc_steps, transition, reverse=True)
    log_p_N = path.log_f(x_N, 1.0) - acc_N
    return log_mean_exp(log_p_N.reshape(num_chains, -1), axis=0)
