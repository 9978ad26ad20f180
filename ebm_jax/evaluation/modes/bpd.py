"""``--mode=bpd``: a held-out log-likelihood lower bound for every family, on the noisy model
z ~ p(z), x = m(z) + tau * eps (``noisy_models``, ``core.iwae``).

Headline: the importance-weighted bound at the largest S (Burda et al., 2016), per example
and averaged with its standard error; the bounds at S = 1, 10, 100, 1000 beside it, and AIS
over z (Wu et al., 2017) on the first ``ais_images`` points as a second estimate. Images are
scored as discrete values: the Gaussian integrated over each value's bin, so bits/dim are
-log P / (D ln 2) of the exact discrete probability. Toy data: nats per point on fresh draws
from the true density, beside its own -log p on the same points; their difference estimates
KL(p_true || p_model) (from above, as the model's figure is a lower bound). For the EBM, the
review's figure, the density of M(z*) at the flow's inversion z* of x, is kept as a named
diagnostic (``review_*``) with its reconstruction error.

tau: the model's own ``obs_std`` for the latent families; for the EBM, the value of a small
grid with the largest bound on ``fit_images`` training points (fresh draws for toy data),
then fixed for the evaluated split; ``--obs_std`` overrides either.
"""
from __future__ import annotations

import logging
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax import data
from ebm_jax.core import iwae
from ebm_jax.evaluation import common, likelihood, noisy_models, options, splits
from ebm_jax.families import base
from ebm_jax.runtime import validation

NUM_IMAGES = options.NUM_IMAGES.but(help="points scored (default: the whole split, or 1,000 "
                                    "fresh toy points)")
SPLIT = options.SPLIT.but(help="the split scored", default="test")
LOGDET = options.Option("logdet", "enum", "log-determinant method of the EBM's review "
                        "diagnostic, the density of M(z*) (none skips it)", default="exact",
                        choices=("exact", "per_step", "stochastic", "none"))
OBS_STD = options.Option("obs_std", "string", "the observation noise tau: 'fit' (the grid's best "
                         "on the training split), 'model' (the latent families' obs_std; the "
                         "EBM fits), or a number (default model)")
NUM_IMPORTANCE_SAMPLES = options.Option("num_importance_samples", "integer", "importance "
                                        "samples S per point; the bounds at S = 1, 10, 100 "
                                        "come from the same draws", default=1000)
PROPOSAL = options.Option("proposal", "enum", "the Laplace proposal's precision, full (d x d, "
                          "from the D x d Jacobian) or diagonal (from vector-Jacobian probes, "
                          "no Jacobian; default dense up to d = 1024)", choices=("dense", "diag"))
AIS_IMAGES = options.Option("ais_images", "integer", "points also scored by AIS over z (0: "
                            "none)", default=16)
FIT_IMAGES = options.Option("fit_images", "integer", "training points for the fit of tau",
                            default=64)
CHUNK_SIZE = options.Option("chunk_size", "integer", "Jacobian columns per forward-mode pass",
                            default=64)
INVERSION_ITERS = options.Option("inversion_iters", "integer", "Adam iterations of the "
                                 "inversion", default=200)
NUM_CHAINS = options.NUM_CHAINS.but(help="AIS chains per point", default=16)
NUM_TEMPS = options.NUM_TEMPS.but(default=200)
MCMC_STEP_SIZE = options.MCMC_STEP_SIZE.but(help="AIS's MALA step size, in the proposal's "
                                            "whitened coordinates", default=0.5)

TAU_GRID_IMAGES = (0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
TAU_GRID_TOY = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
ESTIMATOR = ("importance-weighted bound (Burda, Grosse & Salakhutdinov 2016) with a "
             "Gauss-Newton Laplace proposal at the posterior mode in u-space (u ~ N(0, I) "
             "mapped onto p_0), mixed with a defensive share of N(0, I); AIS over u from the "
             "Laplace proposal to the posterior (Wu et al. 2017) as a second estimate")
FIT_SAMPLES = options.Option("fit_samples", "integer", "importance samples per point in the fit "
                             "of tau (at most num_importance_samples)", default=100,
                             positive=True)
DEFENSIVE = options.Option("defensive", "float", "weight of the prior in the defensive mixture "
                           "proposal (default 0 for images, 0.1 for toy points)")
MAP_ITERS = options.Option("map_iters", "integer", "Gauss-Newton steps of the proposal's mode "
                           "search", default=100, positive=True)
NUM_STARTS = options.Option("num_starts", "integer", "starts of the mode search per point "
                            "(default 1 for images, 8 for toy points)", positive=True)


def _points(run, config, request, num_default: int):
    """(evaluated points, training points for tau's fit, what they are)."""
    num = request.option(NUM_IMAGES)
    num_fit = int(request.option(FIT_IMAGES))
    if run.is_image:
        split = request.option(SPLIT)
        x = splits.load_split(config, split, None if num is None else int(num))
        return x, splits.load_split(config, "train", num_fit), {"split": split}
    density = data.TOY_DENSITIES[config.data.dataset]
    seed = int(request.seed)
    draw = lambda name, n: density.sample(
        np.random.default_rng(data.toy.split_seed(seed, name)), n)
    x = draw("bpd_heldout", int(num or num_default))
    return x, draw("bpd_fit", num_fit), {"split": "fresh draws of the true density"}


def _model(run, config, request, key):
    """The family's noisy model and the protocol and stats of its own parts."""
    family = run.family
    if base.FLOW in family.capabilities:
        method = request.option(LOGDET)
        ld_kwargs = {"chunk_size": int(request.option(CHUNK_SIZE))} if method in (
            "exact", "per_step") else {}
        inv_iters = int(request.option(INVERSION_ITERS))
        input_grad = family.input_grad(config.sampling)
        model = noisy_models.ebm_model(run.energy, config.sampling, inversion_iters=inv_iters,
                                       logdet_method=None if method == "none" else method,
                                       logdet_kwargs=ld_kwargs, input_grad=input_grad)
        model = model._replace(latent_shape=run.data_shape)
        proto = {**common.protocol(config, 0, request.seed, run.step), "review_logdet": method,
                 "inversion_iters": inv_iters,
                 "flow_gradient": ("jax.grad" if input_grad is None else "the chains' "
                                   "input gradient, sampling.grad_impl="
                                   f"{config.sampling.get('grad_impl', 'auto')}")}
        for name in ("num_samples", "seed", "checkpoint_step", "noise_std"):
            proto.pop(name, None)
        return model, proto, {}
    log_z, stats, proto = None, {}, {"latent_dim": family.latent_dim}
    if base.ENERGY_PRIOR in family.capabilities:
        chains, temps = 1024, 500
        res = jax.jit(lambda p, k: noisy_models.latent_log_z(
            lambda z: family.model.log_prior(p, z), family.latent_dim, k,
            num_chains=chains, num_temps=temps))(run.params, jax.random.fold_in(key, 3))
        log_z = float(res.log_z)
        stats = {"prior_log_z": log_z, "prior_log_z_stderr": float(res.log_z_stderr)}
        proto["prior_log_z"] = (f"AIS from N(0, I), {chains} chains, {temps} temperatures, "
                                "MALA step 0.5")
    return noisy_models.latent_model(family, log_z), proto, stats


def _obs_std(model, request, score_fit, is_image):
    """tau and how it was chosen."""
    given = request.option(OBS_STD)
    if given not in (None, "fit", "model"):
        return float(given), {"obs_std_source": "--obs_std"}
    if given != "fit" and model.obs_std is not None:
        return model.obs_std, {"obs_std_source": "the model's obs_std"}
    grid = TAU_GRID_IMAGES if is_image else TAU_GRID_TOY
    tau, scores = likelihood.fit_obs_std(score_fit, grid)
    at_end = tau in (min(grid), max(grid))
    if at_end:
        logging.warning("bpd: the fitted tau %g is at an end of its grid %s; the bound might "
                        "rise past it (--obs_std sets tau)", tau, grid)
    return tau, {"obs_std_source": "fitted on the training split: the grid's value with the "
                 "largest mean bound", "obs_std_at_grid_end": at_end,
                 "obs_std_grid_bound": {str(t): v for t, v in scores.items()}}


def _timed(seconds: dict, stage: str, fn, *args):
    """``fn(*args)``, its results ready, with the wall and process CPU seconds (compilation
    included) added to ``seconds[stage]``."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = jax.block_until_ready(fn(*args))
    prev = seconds.get(stage, {"wall": 0.0, "cpu": 0.0})
    seconds[stage] = {"wall": prev["wall"] + time.perf_counter() - wall,
                      "cpu": prev["cpu"] + time.process_time() - cpu}
    return out


def evaluate_bpd(run, config, out_dir: str, request) -> dict:
    """The ``bpd`` mode (see the module docstring)."""
    levels = likelihood.num_levels(config.data) if run.is_image else None
    key = jax.random.key(request.seed)
    x, x_fit, where = _points(run, config, request, 1000)
    x, x_fit = jnp.asarray(x), jnp.asarray(x_fit)
    model, model_proto, stats = _model(run, config, request, key)
    num_samples = int(request.option(NUM_IMPORTANCE_SAMPLES))
    fit_samples = min(num_samples, int(request.option(FIT_SAMPLES)))
    dim = math.prod(model.latent_shape)
    proposal = request.option(PROPOSAL, "dense" if dim <= 1024 else "diag")
    defensive = float(request.option(DEFENSIVE, 0.0 if run.is_image else 0.1))
    settings = dict(levels=levels, proposal=proposal, defensive=defensive,
                    map_iters=int(request.option(MAP_ITERS)),
                    num_starts=int(request.option(NUM_STARTS, 1 if run.is_image else 8)),
                    hessian=not run.is_image, dof=0.0 if run.is_image else 4.0)
    bound = jax.jit(likelihood.make_bound_fn(model, num_samples=num_samples, **settings))
    init = jax.jit(model.init)
    params = run.params

    fit_bound = jax.jit(likelihood.make_bound_fn(model, num_samples=fit_samples, **settings))

    seconds = {}

    def score_fit(tau):
        log_w, _, _ = _timed(seconds, "fit_obs_std", fit_bound, params, x_fit, u0_fit,
                             jax.random.fold_in(key, 4), tau)
        return likelihood.bounds_by_size(log_w, (fit_samples,))[fit_samples]

    u0_fit, given = None, request.option(OBS_STD)
    if given == "fit" or (given in (None, "model") and model.obs_std is None):
        u0_fit = _timed(seconds, "fit_obs_std", init, params, x_fit,
                        jax.random.fold_in(key, 5))[0]
    tau, tau_proto = _obs_std(model, request, score_fit, run.is_image)

    u0, diag = _timed(seconds, "init", init, params, x, jax.random.fold_in(key, 1))
    log_w, u_star, q = _timed(seconds, "bound", bound, params, x, u0,
                              jax.random.fold_in(key, 2), tau)
    by_size = likelihood.bounds_by_size(log_w)
    best = by_size[max(by_size)]
    recon = np.mean(np.square(np.asarray(model.decode(params, u_star) - x)).reshape(len(x), -1), 1)
    per_example = {"log_likelihood": best.tolist(), "recon_mse": recon.tolist()}
    stats.update(num_points=int(len(x)), recon_mse=float(recon.mean()))
    stats["log_likelihood"], stats["log_likelihood_stderr"] = likelihood.mean_stderr(best)
    img_dim = int(np.prod(x.shape[1:]))
    if run.is_image:
        stats["bpd"], stats["bpd_stderr"] = likelihood.mean_stderr(
            likelihood.discrete_bpd(best, img_dim))
    for s, b in by_size.items():
        stats[f"log_likelihood_S{s}"] = float(np.mean(b))
        per_example[f"log_likelihood_S{s}"] = b.tolist()
        if run.is_image:
            stats[f"bpd_S{s}"] = float(np.mean(likelihood.discrete_bpd(b, img_dim)))

    num_ais = min(int(request.option(AIS_IMAGES)), len(x))
    ais_proto = {}
    if num_ais:
        ais_settings = dict(num_chains=int(request.option(NUM_CHAINS)),
                            num_temps=int(request.option(NUM_TEMPS)),
                            mcmc_step_size=float(request.option(MCMC_STEP_SIZE)))

        def log_joint_one(p, x_1, u_C):
            return model.log_prior(p, u_C) + iwae.obs_log_prob(
                jnp.broadcast_to(x_1, (u_C.shape[0],) + x_1.shape[1:]), model.decode(p, u_C),
                tau, levels)

        sub = q._replace(**{f: getattr(q, f)[:, :num_ais]
                            for f in ("mean_MB", "chol_MBdd", "prec_MBd")
                            if getattr(q, f) is not None})
        ais_fn = jax.jit(lambda p, xs, qs, k: iwae.ais_log_marginal(
            lambda x_1, u: log_joint_one(p, x_1, u), xs, qs, k, **ais_settings))
        ais_ll = np.asarray(_timed(seconds, "ais", ais_fn, params, x[:num_ais], sub,
                                   jax.random.fold_in(key, 6)))
        stats["ais_log_likelihood"], stats["ais_log_likelihood_stderr"] = (
            likelihood.mean_stderr(ais_ll))
        stats["iw_log_likelihood_on_ais_points"] = float(np.mean(best[:num_ais]))
        per_example["ais_log_likelihood"] = ais_ll.tolist()
        ais_proto = {"ais": {**ais_settings, "num_points": num_ais, "mcmc_steps": 1,
                             "transition": "mala"}}

    if not run.is_image:
        true = np.asarray(data.TOY_DENSITIES[config.data.dataset].log_density(x))
        per_example["true_log_likelihood"] = true.tolist()
        stats["true_log_likelihood"] = float(true.mean())
        stats["kl_estimate"], stats["kl_estimate_stderr"] = likelihood.mean_stderr(true - best)
    if "review_log_density" in diag:
        review = np.asarray(diag["review_log_density"])
        per_example["review_log_density"] = review.tolist()
        stats["review_log_density"] = float(review.mean())
        if run.is_image:
            stats["review_bpd"] = float(np.mean(likelihood.bits_per_dim(review, img_dim,
                                                                         levels)))
    if diag:
        per_example["review_recon_mse"] = np.asarray(diag["review_recon_mse"]).tolist()
        stats["review_recon_mse"] = float(np.mean(diag["review_recon_mse"]))
        stats["review_out_of_support"] = int(np.sum(np.asarray(diag["review_at_boundary"]) > 0))

    np.save(os.path.join(out_dir, "bpd_points.npy"), np.asarray(x))
    discretisation = ("Gaussian integrated over each value's bin of width 2/(L-1) (the end "
                      "bins open): an exact discrete likelihood, bits/dim = -log P / (D ln 2)"
                      if run.is_image else "none: continuous points, nats per point")
    protocol = {"family": run.family.name, "estimator": ESTIMATOR, "obs_std": float(tau),
                **tau_proto, "num_importance_samples": num_samples,
                "bound_sizes": sorted(by_size), "discretisation": discretisation,
                "levels": levels, **where, "num_points": int(len(x)), "proposal": proposal,
                "defensive": defensive, "map_iters": settings["map_iters"],
                "num_starts": settings["num_starts"], "laplace_hessian": (
                    "exact where positive definite" if settings["hessian"] else "Gauss-Newton"),
                "proposal_tails": (f"Student t, {settings['dof']:g} degrees of freedom"
                                   if settings["dof"] else "Gaussian"),
                "fit_points": int(len(x_fit)), "fit_samples": fit_samples,
                **model_proto, **ais_proto, "seed": int(request.seed),
                "checkpoint_step": int(run.step)}
    stats["wall_seconds"] = sum(v["wall"] for v in seconds.values())
    stats["cpu_seconds"] = sum(v["cpu"] for v in seconds.values())
    return {"mode": "bpd", "protocol": protocol, "stats": stats, "per_example": per_example,
            "seconds": seconds}


def check(run, config, request) -> None:
    if not {base.FLOW, base.LATENT} & run.family.capabilities:
        raise validation.InputError(
            f"--mode=bpd does not apply: a {run.family.name} run has no noisy latent model")
    if run.is_image:
        try:
            likelihood.num_levels(config.data)
        except ValueError as error:
            raise validation.InputError(str(error)) from error
        splits.check_split(config, request.option(SPLIT))
    elif not common.is_toy(run):
        raise validation.InputError("--mode=bpd does not apply: it needs images or a 1-D or "
                                    "2-D toy density")


MODE = common.Mode("bpd", evaluate_bpd, "held-out log-likelihood lower bound (bits/dim of "
                   "images, nats per toy point)", check=check, in_all=False,
                   options=(NUM_IMAGES, SPLIT, LOGDET, OBS_STD, NUM_IMPORTANCE_SAMPLES, PROPOSAL,
                            AIS_IMAGES, FIT_IMAGES, CHUNK_SIZE, INVERSION_ITERS, NUM_CHAINS,
                            NUM_TEMPS, MCMC_STEP_SIZE, FIT_SAMPLES, DEFENSIVE, MAP_ITERS,
                            NUM_STARTS))
