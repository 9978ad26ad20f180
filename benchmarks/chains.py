"""Short-run against persistent and Metropolis-corrected chains, on one net at equal training time.

  python benchmarks/chains.py --data=digits --out=runs/chains_digits
  python benchmarks/chains.py --data=toy2d --out=runs/chains_toy2d

Four settings of ``configs/<data>.py``, changed in nothing else: the config's short-run
Langevin chain (K = 25 on digits, 50 on toy2d), persistent Langevin with the same K, persistent
Langevin with K = 5, and short-run MALA with the config's K.

Equal wall-clock: a shared machine's load changes from minute to minute, so the training
lengths are set before training, from one back-to-back calibration. Each setting's update is
compiled, then the four are timed in turn, ``--rounds`` rounds of ``--calib_updates`` updates
each, and each setting's median time per update t_i is taken. The budget is the config's
``training.num_steps`` times the short-run Langevin t_0; setting i trains for
budget / t_i updates (its cosine schedule stretched to that length). The measured training
times are reported beside the budget.

Evaluation: digits, ``--mode=fid`` (the digit FID on 297 samples) at sampling seeds 1234, 1
and 2, of fresh short-run samples from noise with the training K and, for persistent runs, of
297 buffer chains; toy2d, ``--mode=density`` (KL and TV of the EBM's exp(f) on the grid
against the truth) and ``--mode=samples`` (MMD^2 of 2,000 samples, fresh and from the buffer).
Prints a Markdown table and writes ``OUT/results.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ebm_jax import data  # noqa: E402
from ebm_jax.configs import digits, toy2d  # noqa: E402
from ebm_jax.core import keys  # noqa: E402
from ebm_jax.evaluation import common, runner  # noqa: E402
from ebm_jax.families import base, registry  # noqa: E402
from ebm_jax.runtime import parallel  # noqa: E402
from ebm_jax.training import guard, optim, trainer  # noqa: E402

CONFIGS = {"digits": digits, "toy2d": toy2d}
SEEDS = (1234, 1, 2)


def settings(k: int) -> dict[str, dict]:
    return {
        f"short-run Langevin, K={k}": {},
        f"persistent Langevin, K={k}": {"training.chains": "persistent"},
        "persistent Langevin, K=5": {"training.chains": "persistent", "sampling.num_steps": 5},
        f"short-run MALA, K={k}": {"sampling.method": "mala"},
    }


def calibrate(configs: dict, ds, mesh, updates: int, rounds: int) -> dict[str, float]:
    """Median seconds per update of each config, timed in turn after compiling all."""
    runs = {}
    for name, config in configs.items():
        family = registry.build_family(config, ds.shape)
        tx = optim.make_optimizer(config.optim, config.training.num_steps)
        meta = family.state_meta(len(ds), mesh)
        state = jax.jit(lambda key: family.init_state(key, tx, meta),
                        out_shardings=family.state_shardings(mesh, meta))(keys.init_key(0))
        index = data.batch_indices(len(ds), config.training.batch_size, 0, config.seed)
        batch = base.Batch(parallel.shard_batch(ds.get(index), mesh),
                           parallel.shard_batch(index.astype(np.int32), mesh))
        update = family.make_update(tx, mesh, meta)
        state, m = update(state, batch)
        jax.block_until_ready(m)
        runs[name] = [update, state, batch, []]
    for _ in range(rounds):
        for name, entry in runs.items():
            update, state, batch, times = entry
            start = time.perf_counter()
            for _ in range(updates):
                state, m = update(state, batch)
            jax.block_until_ready(m)
            times.append((time.perf_counter() - start) / updates)
            entry[1] = state
    return {name: statistics.median(entry[3]) for name, entry in runs.items()}


def evaluate(data_name: str, workdir: str, persistent: bool) -> dict:
    out = {}
    if data_name == "digits":
        fids, buffer_fids = [], []
        for seed in SEEDS:
            stats = runner.evaluate(workdir, "fid", seed=seed)["stats"]
            fids.append(stats["fid"])
            if persistent:
                buffer_fids.append(stats["buffer_fid"])
        out.update(fid=fids, buffer_fid=buffer_fids or None)
    else:
        dens = runner.evaluate(workdir, "density")["stats"]
        out.update({k: dens[k] for k in ("kl_true_vs_ebm_T1", "tv_true_vs_ebm_T1",
                                         "kl_true_vs_ebm_T", "tv_true_vs_ebm_T",
                                         "kl_true_vs_kde", "tv_true_vs_kde")})
        mmd, buffer_mmd = [], []
        for seed in SEEDS:
            stats = runner.evaluate(workdir, "samples", num_samples=2000, seed=seed)["stats"]
            mmd.append(stats["mmd2_vs_truth"])
            if persistent:
                buffer_mmd.append(stats["buffer_mmd2_vs_truth"])
        out.update(mmd2=mmd, buffer_mmd2=buffer_mmd or None)
    return out


def fmt(values, digits_=2):
    if not values:
        return "–"
    if isinstance(values, list):
        return f"{np.mean(values):.{digits_}f} ± {np.std(values):.{digits_}f}"
    return f"{values:.{digits_}f}"


def table(data_name: str, rows: dict) -> str:
    if data_name == "digits":
        lines = ["| setting | updates | s/update (calibration) | training time (s) | rollbacks "
                 "| FID, short-run from noise | FID, buffer |", "|" + " --- |" * 7]
        for name, r in rows.items():
            lines.append(f"| {name} | {r['updates']} | {r['seconds_per_update']:.4f} | "
                         f"{r['train_seconds']:.0f} | {r['rollbacks']} | {fmt(r['fid'])} | "
                         f"{fmt(r['buffer_fid'])} |")
    else:
        lines = ["| setting | updates | s/update (calibration) | training time (s) | rollbacks "
                 "| KL(true ‖ exp f) | TV(true, exp f) | KL at chain T | MMD², short-run "
                 "| MMD², buffer |", "|" + " --- |" * 10]
        for name, r in rows.items():
            lines.append(f"| {name} | {r['updates']} | {r['seconds_per_update']:.4f} | "
                         f"{r['train_seconds']:.0f} | {r['rollbacks']} | "
                         f"{r['kl_true_vs_ebm_T1']:.3f} | {r['tv_true_vs_ebm_T1']:.3f} | "
                         f"{r['kl_true_vs_ebm_T']:.3f} | {fmt(r['mmd2'], 4)} | "
                         f"{fmt(r['buffer_mmd2'], 4)} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=sorted(CONFIGS), default="digits")
    parser.add_argument("--out", required=True)
    parser.add_argument("--calib_updates", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated indices of settings to run")
    args = parser.parse_args()
    trainer.quiet_library_logs()
    base_config = CONFIGS[args.data].get_config()
    k = int(base_config.sampling.num_steps)
    configs = {name: common.apply_overrides(base_config, o) for name, o in settings(k).items()}
    ds = data.get_dataset(base_config.data, seed=base_config.seed)
    mesh = parallel.make_mesh()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "results.json")
    results = json.load(open(path)) if os.path.exists(path) else {}
    if "calibration" not in results:
        per_update = calibrate(configs, ds, mesh, args.calib_updates, args.rounds)
        budget = int(base_config.training.num_steps) * per_update[next(iter(configs))]
        results["calibration"] = dict(seconds_per_update=per_update, budget_seconds=budget)
        json.dump(results, open(path, "w"), indent=2)
    cal = results["calibration"]
    rows = results.setdefault("rows", {})
    only = {int(i) for i in args.only.split(",") if i}
    for i, (name, config) in enumerate(configs.items()):
        if name in rows or (only and i not in only):
            continue
        t = cal["seconds_per_update"][name]
        updates = int(round(cal["budget_seconds"] / t))
        config.training.num_steps = updates
        for field in ("checkpoint_every", "sample_every"):
            config.training[field] = max(updates // 4, 1)
        workdir = os.path.join(args.out, f"setting{i}")
        start, stopped = time.perf_counter(), None
        try:
            trainer.train_and_evaluate(config, workdir, progress=False)
        except guard.DivergenceError as error:  # evaluated at its last good checkpoint
            stopped = str(error)
        train_seconds = time.perf_counter() - start
        row = dict(updates=updates, seconds_per_update=t, train_seconds=train_seconds,
                   rollbacks=guard.Record.load(workdir).rollbacks, workdir=workdir,
                   stopped=stopped)
        row.update(evaluate(args.data, workdir, config.training.chains == "persistent"))
        rows[name] = row
        json.dump(results, open(path, "w"), indent=2)
        print(json.dumps({name: row}), flush=True)
    print(f"budget {cal['budget_seconds']:.1f} s of updates at the calibrated rates")
    print(table(args.data, {n: rows[n] for n in configs if n in rows}))


if __name__ == "__main__":
    main()
