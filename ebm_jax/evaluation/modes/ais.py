"""``--mode=ais``: log Z of the EBM density exp(f / T) by AIS, and the AIS (upper) and RAISE
(lower) estimates of the mean log p of data points (``core.ais``)."""
from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax.core import ais
from ebm_jax.core.prior import Prior
from ebm_jax.evaluation import common, options, splits
from ebm_jax.families import base


NUM_CHAINS = options.NUM_CHAINS.but(default=256)
NUM_TEMPS = options.NUM_TEMPS.but(default=1000)
MCMC_STEP_SIZE = options.MCMC_STEP_SIZE.but(default=0.1)
TEMPERATURE = options.Option("temperature", "string", "T of exp(f/T): 'chain' for "
                             "sigma^2/(2s), or a number", default="chain")
SPLIT = options.SPLIT.but(default="test")
NUM_IMAGES = options.NUM_IMAGES.but(help="data points scored", default=16)
MCMC_STEPS = options.Option("mcmc_steps", "integer", "MCMC steps per temperature", default=1,
                            positive=True)
TRANSITION = options.Option("transition", "enum", "the MCMC kernel at each temperature",
                            default="mala", choices=("mala", "langevin"))
SCHEDULE_POWER = options.Option("schedule_power", "float", "the temperatures' schedule, beta_t = (t / T) ** power", default=1.0)


def evaluate_ais(run, config, out_dir: str, request) -> dict:
    """The ``ais`` mode: log Z of exp(f / T) by AIS, and the upper (AIS) and lower (RAISE)
    estimates of the mean log p over ``num_images`` data points of ``split``.

    ``temperature``: 'chain' (default) for T = sigma^2 / (2 s), the density the sampler's
    noise implies, or a number (1 for exp(f))."""
    s, sigma = float(config.sampling.step_size), float(config.sampling.noise_std)
    temp = request.option(TEMPERATURE)
    temperature = ais.chain_temperature(s, sigma) if temp == "chain" else float(temp)
    prior = Prior.from_config(config.sampling)
    settings = dict(num_temps=int(request.option(NUM_TEMPS)),
                    mcmc_step_size=float(request.option(MCMC_STEP_SIZE)),
                    mcmc_steps=int(request.option(MCMC_STEPS)),
                    transition=request.option(TRANSITION),
                    schedule_power=float(request.option(SCHEDULE_POWER)),
                    temperature=temperature)
    num_chains = int(request.option(NUM_CHAINS))
    x = jnp.asarray(splits.load_split(config, request.option(SPLIT),
                                      int(request.option(NUM_IMAGES))))
    energy, key = run.energy, jax.random.key(request.seed)

    @jax.jit
    def compute(params, x):
        f = lambda v: energy(params, v)
        res = ais.ais_log_z(f, jax.random.fold_in(key, 0), x.shape[1:],
                            num_chains=num_chains, prior=prior, **settings)
        lower = ais.raise_log_prob(f, x, jax.random.fold_in(key, 1), prior=prior, **settings)
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
    protocol = {**settings, **prior.describe(), "num_chains": num_chains, "seed": int(request.seed),
                "checkpoint_step": int(run.step)}
    return {"mode": "ais", "protocol": protocol, "stats": stats,
            "per_image": {"log_p_upper": np.asarray(upper).tolist(),
                          "log_p_lower": np.asarray(lower).tolist()}}


def check(run, config, request) -> None:
    splits.check_split(config, request.option(SPLIT))


MODE = common.Mode("ais", evaluate_ais, "log Z of the EBM density by annealed importance "
                   "sampling", needs=frozenset({base.ENERGY}), check=check, in_all=False,
                   options=(NUM_CHAINS, NUM_TEMPS, TEMPERATURE, MCMC_STEP_SIZE, SPLIT,
                            NUM_IMAGES, MCMC_STEPS, TRANSITION, SCHEDULE_POWER))
