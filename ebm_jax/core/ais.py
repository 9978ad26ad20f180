"""The EBM's own density p(x) = exp(g(x)) / Z, with g = f / T: annealed importance sampling
(AIS) for log Z, and RAISE (Burda, Grosse and Salakhutdinov, 2015) for a conservative log p(x).

The chain x <- x + s grad f(x) + sigma eps is a Langevin discretisation of exp(f / T) with
T = sigma^2 / (2 s) (``chain_temperature``); T = 1 gives exp(f). The path of densities runs
from the sampler's prior p_0 to the model,

    f_beta(x) = p_0(x)^(1 - beta) exp(beta g(x)),    0 = beta_0 < ... < beta_n = 1,

so with a uniform p_0 the model lives on p_0's box (its density is 0 outside) and Z is the
integral of exp(g) over the box; with a Gaussian p_0 it lives on all of R^D. Each temperature
applies ``mcmc_steps`` MALA steps (Metropolis-adjusted Langevin, reversible with respect to
f_beta; proposals outside the box are rejected) or, with ``transition='langevin'``, unadjusted
Langevin steps (biased: they leave f_beta only approximately invariant).

- AIS: x_0 ~ p_0, log w += (beta_k - beta_{k-1}) (g - log p_0)(x_{k-1}), then a transition at
  beta_k. Z-hat = mean w is unbiased, so log Z-hat underestimates log Z on average, and
  g(x) - log Z-hat overestimates log p(x): the upper estimate.
- RAISE: from a data point x_n = x, transitions at beta_n, ..., beta_1 give x_{n-1}, ..., x_0,
  and p-hat(x) = exp(g(x)) prod_k f_{k-1}(x_{k-1}) / f_k(x_{k-1}) is unbiased for the annealed
  model's density, so its log is a stochastic lower bound: the lower estimate.
"""
from __future__ import annotations

import logging
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax import data
from ebm_jax.core import flow, sampler
from ebm_jax.evaluation import likelihood

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
    return noise_std ** 2 / (2.0 * step_size)


def betas(num_temps: int, power: float = 1.0) -> Array:
    """beta_k = (k / n)^power, k = 0..n; power > 1 spends more temperatures near p_0."""
    return jnp.linspace(0.0, 1.0, int(num_temps) + 1) ** power


def _log_mean_exp(a: Array, axis=0) -> Array:
    return jax.nn.logsumexp(a, axis=axis) - jnp.log(a.shape[axis])


class _Path:
    """log f_beta and its gradient for a batch, with g = energy / temperature."""

    def __init__(self, energy_fn, temperature, init, init_low, init_high, init_std):
        self.g = lambda x: energy_fn(x) / temperature
        self.log_p0 = lambda x: sampler.init_log_prob(x, init, init_low, init_high, init_std)
        self.uniform = init == "uniform"

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
    axes = tuple(range(1, x.ndim))
    noise = jax.random.normal(jax.random.fold_in(key, 0), x.shape, x.dtype)
    drift = path.grad_log_f(x, beta)
    prop = x + 0.5 * eps ** 2 * drift + eps * noise
    if kind == "langevin":
        return prop
    drift_prop = path.grad_log_f(prop, beta)
    log_q_fwd = -jnp.sum(jnp.square(noise), axis=axes) / 2
    back = x - prop - 0.5 * eps ** 2 * drift_prop
    log_q_back = -jnp.sum(jnp.square(back), axis=axes) / (2 * eps ** 2)
    log_ratio = path.log_f(prop, beta) - path.log_f(x, beta) + log_q_back - log_q_fwd
    u = jax.random.uniform(jax.random.fold_in(key, 1), x.shape[:1], x.dtype)
    accept = jnp.log(u) < jnp.nan_to_num(log_ratio, nan=-jnp.inf)
    return jnp.where(accept.reshape((-1,) + (1,) * (x.ndim - 1)), prop, x)


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
              schedule_power: float = 1.0, init: str = "uniform", init_low: float = -1.0,
              init_high: float = 1.0, init_std: float = 1.0) -> AISResult:
    """AIS estimate of log Z = log of the integral of exp(f / temperature) over p_0's support
    (see the module docstring)."""
    path = _Path(energy_fn, temperature, init, init_low, init_high, init_std)
    x0 = sampler.init_chains(jax.random.fold_in(key, 0), (num_chains,) + tuple(example_shape),
                             init, init_low, init_high, init_std)
    x, log_w = _anneal(path, x0, jax.random.fold_in(key, 1), betas(num_temps, schedule_power),
                       mcmc_step_size, mcmc_steps, transition, reverse=False)
    w = jnp.exp(log_w - jnp.max(log_w))
    stderr = jnp.std(w) / (jnp.sqrt(num_chains) * jnp.mean(w))
    return AISResult(_log_mean_exp(log_w), stderr, log_w, x)


def raise_log_prob(energy_fn: Callable[[Array], Array], x_B: Array, key: Array, *,
                   num_chains: int = 1, num_temps: int = 1000, temperature: float = 1.0,
                   mcmc_step_size: float = 0.1, mcmc_steps: int = 1, transition: str = "mala",
                   schedule_power: float = 1.0, init: str = "uniform", init_low: float = -1.0,
                   init_high: float = 1.0, init_std: float = 1.0) -> Array:
    """RAISE: a stochastic lower bound on log p(x) per example (``num_chains`` reverse chains
    per example, their estimates of p averaged)."""
    path = _Path(energy_fn, temperature, init, init_low, init_high, init_std)
    x_CB = jnp.broadcast_to(x_B[None], (num_chains,) + x_B.shape)
    x_N = x_CB.reshape((-1,) + x_B.shape[1:])
    _, acc_N = _anneal(path, x_N, key, betas(num_temps, schedule_power), mcmc_step_size,
                       mcmc_steps, transition, reverse=True)
    log_p_N = path.log_f(x_N, 1.0) - acc_N
    return _log_mean_exp(log_p_N.reshape(num_chains, -1), axis=0)


def load_points(config, split: str, num: int) -> np.ndarray:
    """Images of ``split`` (see ``likelihood.load_images``), or the first points of a toy set."""
    if config.data.dataset in data.TOY_DENSITIES:
        return data.get_dataset(config.data, seed=config.seed).get(np.arange(int(num)))
    return likelihood.load_images(config, split, num)


def evaluate_ais(run, config, out_dir: str, request) -> dict:
    """The ``ais`` mode: log Z of exp(f / T) by AIS, and the upper (AIS) and lower (RAISE)
    estimates of the mean log p over ``num_images`` data points of ``split``.

    ``temperature``: 'chain' (default) for T = sigma^2 / (2 s), the density the sampler's
    noise implies, or a number (1 for exp(f))."""
    s, sigma = float(config.sampling.step_size), float(config.sampling.noise_std)
    temp = request.option("temperature", "chain")
    temperature = chain_temperature(s, sigma) if temp == "chain" else float(temp)
    prior = {k: v for k, v in flow.flow_kwargs(config.sampling).items()
             if k.startswith("init")}
    settings = dict(num_temps=int(request.option("num_temps", 1000)),
                    mcmc_step_size=float(request.option("mcmc_step_size", 0.1)),
                    mcmc_steps=int(request.option("mcmc_steps", 1)),
                    transition=request.option("transition", "mala"),
                    schedule_power=float(request.option("schedule_power", 1.0)),
                    temperature=temperature, **prior)
    num_chains = int(request.option("num_chains", 256))
    x = jnp.asarray(load_points(config, request.option("split", "test"),
                                int(request.option("num_images", 16))))
    energy, key = run.energy, jax.random.key(request.seed)

    @jax.jit
    def compute(params, x):
        f = lambda v: energy(params, v)
        res = ais_log_z(f, jax.random.fold_in(key, 0), x.shape[1:], num_chains=num_chains,
                        **settings)
        lower = raise_log_prob(f, x, jax.random.fold_in(key, 1), **settings)
        upper = f(x) / temperature - res.log_z
        return res.log_z, res.log_z_stderr, upper, lower

    log_z, stderr, upper, lower = jax.device_get(compute(run.params, x))
    if temperature < 1e-2:
        logging.warning("T = %.3g: exp(f/T) is extremely peaked; MALA with step %.3g may not "
                        "mix, and the estimates may be far apart", temperature,
                        settings["mcmc_step_size"])
    stats = {"log_z": float(log_z), "log_z_stderr": float(stderr), "temperature": temperature,
             "num_chains": num_chains, "num_temps": settings["num_temps"],
             "mean_log_p_upper": float(np.mean(upper)), "mean_log_p_lower": float(np.mean(lower)),
             "num_points": int(len(x))}
    protocol = {**settings, "num_chains": num_chains, "seed": int(request.seed),
                "checkpoint_step": int(run.step)}
    return {"mode": "ais", "protocol": protocol, "stats": stats,
            "per_image": {"log_p_upper": np.asarray(upper).tolist(),
                          "log_p_lower": np.asarray(lower).tolist()}}
