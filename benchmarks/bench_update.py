"""Times one learning update (K Langevin steps + one Adam step) beside the PyTorch reference.

  python benchmarks/bench_update.py [--image_size 32 --nf 64 --batch 64 --steps 100]
                                    [--torch_reference ../shared/bench/torch_reference.py]

Both implementations run in the same invocation, on the same machine, with the same settings,
so that the ratio is meaningful on a noisy shared machine. Prints one JSON line per
implementation and a final JSON line with the ratio (torch time / ours: above 1 means faster).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import default  # noqa: E402
from ebm_jax import models, parallel, train_step  # noqa: E402


def bench_jax(image_size: int, nf: int, batch: int, steps: int, repeats: int) -> dict:
    config = default.get_config()
    config.model.nf = nf
    config.sampling.num_steps = steps
    config.training.batch_size = batch
    shape = (image_size, image_size, 3)
    model = models.build_model(config.model, shape)
    tx = train_step.make_optimizer(config.optim)
    mesh = parallel.make_mesh(jax.devices()[:1])
    state = parallel.replicate(train_step.init_state(model.init(jax.random.key(0)), tx), mesh)
    update = train_step.make_train_step(model.energy, tx, config, shape, mesh)
    data = parallel.shard_batch(
        np.random.default_rng(0).uniform(-1, 1, (batch,) + shape).astype(np.float32), mesh)
    t = time.perf_counter()
    state, metrics = update(state, data)
    jax.block_until_ready(metrics)
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        state, metrics = update(state, data)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"impl": "ebm_jax", "jax": jax.__version__, "device": str(jax.devices()[0]),
            "image_size": image_size, "nf": nf, "batch": batch, "K": steps,
            "update_s_median": round(med, 4), "langevin_step_ms": round(1e3 * med / steps, 2),
            "first_call_s": round(first, 2), "params": models.count_params(state.params)}


def bench_torch(script: str, image_size: int, nf: int, batch: int, steps: int,
                repeats: int) -> dict | None:
    if not os.path.exists(script):
        print(f"# {script} not found: no PyTorch baseline", file=sys.stderr)
        return None
    cmd = [sys.executable, script, "--image-size", str(image_size), "--nf", str(nf),
           "--batch", str(batch), "--steps", str(steps), "--repeats", str(repeats)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        print(f"# the PyTorch baseline failed:\n{out.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image_size", type=int, default=32)
    p.add_argument("--nf", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=100, help="Langevin steps K")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--torch_reference",
                   default=os.path.join(here, "..", "..", "shared", "bench", "torch_reference.py"))
    a = p.parse_args()
    ours = bench_jax(a.image_size, a.nf, a.batch, a.steps, a.repeats)
    print(json.dumps(ours), flush=True)
    ref = bench_torch(a.torch_reference, a.image_size, a.nf, a.batch, a.steps, a.repeats)
    if ref is not None:
        print(json.dumps(ref), flush=True)
        print(json.dumps({"ratio_torch_over_ours": round(
            ref["update_s_median"] / ours["update_s_median"], 3)}))


if __name__ == "__main__":
    main()
