"""The cost of ``--mode=bpd``'s bound on CIFAR-size images, by its parts, with the diagonal
Laplace proposal (no D x D or D x d Jacobian is formed: its precision comes from Rademacher
vector-Jacobian products).

  python benchmarks/bpd_cost.py                      # 16 images, untrained cifar10_gelu net
  python benchmarks/bpd_cost.py --num_samples 4 --map_iters 2 --inversion_iters 2

The net is initialised from ``--config`` (untrained), the images are uniform draws on the 256
levels of [-1, 1], tau is fixed (``--obs_std``; no fit). Each part is one jitted call, compiled
first, then timed (wall and process CPU seconds): the flow's inversion (where the mode search
starts), the mode search, the diagonal proposal, and the S importance draws. The last line
scales the measured parts linearly to ``--mode=bpd``'s defaults (200 inversion iterations, 100
mode-search steps, 8 probes, S = 1,000): arithmetic on the measured figures, not a run.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ebm_jax import data  # noqa: E402
from ebm_jax.core import iwae  # noqa: E402
from ebm_jax.evaluation import noisy_models  # noqa: E402
from ebm_jax.families import registry  # noqa: E402

DEFAULTS = {"inversion": 200, "mode_search": 100, "proposal": 8, "draws": 1000}


def _machine() -> dict:
    spec = importlib.util.spec_from_file_location(
        "bench_run", os.path.join(os.path.dirname(os.path.abspath(__file__)), "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.machine_info()


def _config(path: str):
    spec = importlib.util.spec_from_file_location("bench_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def timed(fn, *args) -> tuple[object, dict]:
    """``fn(*args)`` jitted: compiled, then run once; its wall and CPU seconds."""
    compiled = jax.jit(fn).lower(*args).compile()
    wall, cpu = time.perf_counter(), time.process_time()
    out = jax.block_until_ready(compiled(*args))
    return out, {"wall_s": round(time.perf_counter() - wall, 2),
                 "cpu_s": round(time.process_time() - cpu, 2)}


def main(argv=None):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=os.path.join(root, "configs", "cifar10_gelu.py"))
    p.add_argument("--num_images", type=int, default=16)
    p.add_argument("--num_samples", type=int, default=10, help="importance draws S timed")
    p.add_argument("--map_iters", type=int, default=5, help="mode-search steps timed")
    p.add_argument("--inversion_iters", type=int, default=5, help="inversion steps timed")
    p.add_argument("--num_probes", type=int, default=8, help="the diagonal's probes")
    p.add_argument("--num_steps", type=int, default=0, help="K (0: the config's)")
    p.add_argument("--obs_std", type=float, default=0.1)
    a = p.parse_args(argv)

    config = _config(a.config)
    if a.num_steps:
        config.sampling.num_steps = a.num_steps
    shape = data.image_shape(config.data)
    family = registry.build_family(config, shape)
    params = family.init_params(jax.random.key(0))
    levels = 256
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.integers(0, levels, (a.num_images,) + shape) * (2 / (levels - 1)) - 1,
                    jnp.float32)
    model = noisy_models.ebm_model(family.energy, config.sampling,
                                   inversion_iters=a.inversion_iters, logdet_method=None,
                                   input_grad=family.input_grad(config.sampling))
    tau = a.obs_std
    decode = lambda p, u: model.decode(p, u)
    joint = lambda p, u: model.log_prior(p, u) + iwae.obs_log_prob(x, decode(p, u), tau, levels)

    rows = {}
    u0, rows["inversion"] = timed(lambda p, k: model.init(p, x, k)[0], params,
                                  jax.random.key(1))
    u, rows["mode_search"] = timed(lambda p, v: iwae.find_mode(
        lambda w: joint(p, w), v, num_iters=a.map_iters), params, u0)
    q, rows["proposal"] = timed(lambda p, v, k: iwae.laplace_diag(
        lambda w: decode(p, w), v, tau, k, num_probes=a.num_probes), params, u,
        jax.random.key(2))
    q = iwae.Proposal(q.mean_MB, None, q.prec_MBd)
    log_w, rows["draws"] = timed(lambda p, k: iwae.log_weights(
        lambda w: joint(p, w), q, k, a.num_samples), params, jax.random.key(3))
    units = {"inversion": a.inversion_iters, "mode_search": a.map_iters,
             "proposal": a.num_probes, "draws": a.num_samples}
    bound = float(jnp.mean(iwae.iw_bound(log_w, a.num_samples)))
    print(json.dumps({"machine": _machine(), "config": os.path.basename(a.config),
                      "K": int(config.sampling.num_steps), "nf": int(config.model.nf),
                      "num_images": a.num_images, "dim": int(np.prod(shape)),
                      "proposal": "diag", "bound_nats_per_image": round(bound, 1),
                      "load_avg_1min": os.getloadavg()[0],
                      "parts": {k: {**v, "units": units[k]} for k, v in rows.items()}}))
    cpu = sum(rows[k]["cpu_s"] / units[k] * DEFAULTS[k] for k in rows)
    wall = sum(rows[k]["wall_s"] / units[k] * DEFAULTS[k] for k in rows)
    print(f"# scaled to the defaults {DEFAULTS} on these {a.num_images} images: "
          f"{wall / 60:.1f} wall minutes, {cpu / 60:.1f} CPU minutes (arithmetic, not a run)")


if __name__ == "__main__":
    main()
