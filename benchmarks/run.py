"""The benchmark suite: ours beside the PyTorch eager reference, one JSON line per case.

  python benchmarks/run.py                      # CPU: every case at 32x32 nf 64 / 128, 64x64 nf 64
  python benchmarks/run.py --settings 32:64 --cases update --steps 100 --repeats 3
  python benchmarks/run.py --device --matmul fp32,tf32,bf16    # GPU (see gpu_check.sh)

Cases: ``langevin`` (ms per Langevin step of a chain of ``--langevin_steps``), ``update`` (one
learning update: K Langevin steps and one Adam step), ``compile`` (ours: lowering and compiling
the update; the reference: its first, warm-up update minus a steady one), ``memory`` (ours:
XLA's buffer assignment of the update, and the device's peak on a GPU; the reference: the CUDA
allocator's peak), ``bpd`` and ``reconstruction`` (ours only: seconds per image; the reference
has neither), ``data`` (host images per second of the input pipeline, ``data_case.py``).

The reference is ``torch_reference.py``, driven call by call in a process of its own
(``torch_worker.py``), so that ours and the reference alternate: on a shared machine the load
then hits both alike, and ``ratio_torch_over_ours`` (above 1: ours faster) is what to read. ``mfu`` is the update's FLOPs, m F (2K + 6) with F the FLOPs of one forward pass of one
image, over time and the chip's peak for the matmul precision (GPU only).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ebm_jax.configs import default  # noqa: E402
from ebm_jax.evaluation import evaluation# noqa: E402
from ebm_jax.models import nets
from ebm_jax.runtime import parallel
from ebm_jax.core import sampler
from ebm_jax.training import train_step

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "..", "shared", "bench", "torch_reference.py")
CASES = ("langevin", "update", "compile", "memory", "bpd", "reconstruction", "data")
# Dense peak TFLOP/s by matmul precision (vendor data sheets, SXM parts).
PEAK_TFLOPS = {"H100": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4},
               "H200": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4}}
PRECISIONS = {"fp32": ("highest", None), "tf32": ("tensorfloat32", None),
              "bf16": ("highest", jnp.bfloat16)}


def forward_flops(image_size: int, nf: int, channels: int = 3) -> int:
    """Multiply-adds x 2 of one forward pass of the ConvNet energy on one image."""
    flops = 2 * image_size**2 * nf * 9 * channels
    size, width = image_size, nf
    for _ in range(nets.conv_depth(image_size)):
        size //= 2
        flops += 2 * size**2 * 2 * width * 16 * width
        width *= 2
    return flops + 2 * 16 * width


class Ours:
    """The learning update and the sampler of ebm_jax at one setting."""

    def __init__(self, image_size, nf, batch, steps, langevin_steps, precision, unroll):
        config = default.get_config()
        config.model.nf, config.sampling.num_steps = nf, steps
        config.sampling.unroll = unroll
        config.training.batch_size = batch
        self.shape = (image_size, image_size, 3)
        self.model = nets.build_model(config.model, self.shape)
        self.matmul_precision, dtype = PRECISIONS[precision]
        input_grad = lambda params: self.model.input_grad(params, dtype)
        tx = train_step.make_optimizer(config.optim)
        mesh = parallel.make_mesh(jax.devices()[:1])
        self.state = parallel.replicate(
            train_step.init_state(self.model.init(jax.random.key(0)), tx), mesh)
        self.data = parallel.shard_batch(np.random.default_rng(0).uniform(
            -1, 1, (batch,) + self.shape).astype(np.float32), mesh)
        self.update_fn = train_step.make_train_step(self.model.energy, tx, config, self.shape,
                                                    mesh, input_grad=input_grad)
        config.sampling.num_steps = langevin_steps
        self.sample_fn = sampler.make_sampler(self.model.energy, config.sampling, self.shape,
                                              input_grad=input_grad)
        self.batch, self.key = batch, jax.random.key(1)
        self.compiled = None

    def precision(self):
        return jax.default_matmul_precision(self.matmul_precision)

    def compile(self) -> tuple[float, object]:
        with self.precision():
            t = time.perf_counter()
            self.compiled = self.update_fn.lower(self.state, self.data).compile()
            return time.perf_counter() - t, self.compiled

    def update(self):
        with self.precision():
            self.state, metrics = (self.compiled or self.update_fn)(self.state, self.data)
        return metrics

    def langevin(self):
        with self.precision():
            return self.sample_fn(self.state.params, self.key, self.batch).x


class Reference:
    """torch_reference.py in its own process (``torch_worker.py``), one call per request."""

    def __init__(self, path, image_size, nf, batch, steps, langevin_steps, device):
        cmd = [sys.executable, os.path.join(HERE, "torch_worker.py"), path, str(image_size),
               str(nf), str(batch), str(steps), str(langevin_steps), device]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.info = json.loads(self.proc.stdout.readline())

    def ask(self, cmd: str):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait()


def timed_pair(ours_fn, ref: Reference | None, cmd: str, repeats: int) -> dict:
    """Wall seconds of ``ours_fn`` and of the reference's ``cmd``, after one warm-up each, in
    turn ``repeats`` times."""
    def ours():
        t = time.perf_counter()
        jax.block_until_ready(ours_fn())
        return time.perf_counter() - t

    ours()
    if ref is not None:
        ref.ask(cmd)
    times = {"ours": [], "torch": []} if ref is not None else {"ours": []}
    for _ in range(repeats):
        times["ours"].append(ours())
        if ref is not None:
            times["torch"].append(ref.ask(cmd))
    return times


def summary(times: dict, per: int = 1) -> dict:
    out = {}
    for name, ts in times.items():
        out[f"{name}_ms"] = round(1e3 * statistics.median(ts) / per, 2)
        out[f"{name}_all_ms"] = [round(1e3 * t / per, 1) for t in ts]
    if "torch_ms" in out:
        out["ratio_torch_over_ours"] = round(out["torch_ms"] / out["ours_ms"], 3)
    return out


def mfu(flops: float, seconds: float, precision: str) -> float | None:
    if jax.default_backend() != "gpu":
        return None
    kind = jax.devices()[0].device_kind
    peak = next((v[precision] for k, v in PEAK_TFLOPS.items() if k in kind), None)
    return None if peak is None else round(flops / seconds / (peak * 1e12), 4)


def flow_case(case: str, image_size: int, nf: int, a) -> dict:
    """Seconds per image of ``bpd`` or ``reconstruction`` (ours only: the reference has
    neither) on a random GELU ConvNet, K = ``--steps``, ``--flow_images`` images in one jitted
    call, timed after a compiling call; ``bpd`` uses the ``--bpd_logdet`` method."""
    from ebm_jax.core import flow
    from ebm_jax.evaluation import likelihood
    config = default.get_config()
    config.model.nf, config.model.activation = nf, "gelu"
    shape = (image_size, image_size, 3)
    model = nets.build_model(config.model, shape)
    params = model.init(jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (a.flow_images,) + shape),
                    jnp.float32)
    kw = dict(num_steps=a.steps, step_size=1.0)
    energy = lambda p, v: model.energy(p, v)
    if case == "bpd":
        fn = jax.jit(lambda p, x, k: likelihood.flow_bpd(
            lambda v: energy(p, v), x, k, levels=256, logdet_method=a.bpd_logdet,
            num_iters=a.flow_iters, **kw)["bpd"])
    else:
        fn = jax.jit(lambda p, x, k: flow.invert(lambda v: energy(p, v), x, k,
                                                 num_iters=a.flow_iters, **kw).mse_B)
    start = time.perf_counter()
    jax.block_until_ready(fn(params, x, jax.random.key(1)))
    first = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(fn(params, x, jax.random.key(2)))
    seconds = time.perf_counter() - start
    row = {"images": a.flow_images, "iterations": a.flow_iters,
           "ours_s_per_image": round(seconds / a.flow_images, 3),
           "ours_compile_s": round(first - seconds, 2)}
    if case == "bpd":
        row["logdet"] = a.bpd_logdet
    return row


def run_setting(a, image_size: int, nf: int, precision: str, emit):
    head = {"image_size": image_size, "nf": nf, "batch": a.batch, "K": a.steps,
            "precision": precision, "unroll": a.unroll, "device": jax.devices()[0].device_kind,
            "jax": jax.__version__}
    cases = [c for c in a.cases.split(",") if c]
    for case in ("bpd", "reconstruction"):
        if case in cases:
            emit({"case": case, **head, **flow_case(case, image_size, nf, a)})
    ours = Ours(image_size, nf, a.batch, a.steps, a.langevin_steps, precision, a.unroll)
    ref = None
    if os.path.exists(a.torch_reference):
        ref = Reference(a.torch_reference, image_size, nf, a.batch, a.steps, a.langevin_steps,
                        "cuda" if a.device else "cpu")
        head["torch"] = ref.info["torch"]
        head["torch_threads"] = ref.info["threads"]
    else:
        print(f"# {a.torch_reference} not found: no PyTorch baseline", file=sys.stderr)
    f_image = forward_flops(image_size, nf)
    if "compile" in cases or "memory" in cases:
        seconds, compiled = ours.compile()
        if "compile" in cases:
            row = {"case": "compile", **head, "ours_compile_s": round(seconds, 2)}
            if ref is not None:
                first, steady = ref.ask("update"), ref.ask("update")
                row["torch_first_call_overhead_s"] = round(first - steady, 2)
            emit(row)
        if "memory" in cases:
            mem = compiled.memory_analysis()
            row = {"case": "memory", **head, "ours_buffers_mb": round(
                (mem.temp_size_in_bytes + mem.argument_size_in_bytes
                 + mem.output_size_in_bytes) / 2**20, 1)}
            if a.device:
                ours.update()
                jax.block_until_ready(ours.state)
                stats = jax.devices()[0].memory_stats() or {}
                row["ours_peak_mb"] = round(stats.get("peak_bytes_in_use", 0) / 2**20, 1)
                if ref is not None:
                    row["torch_peak_mb"] = round(ref.ask("peak") / 2**20, 1)
            else:
                row["torch_peak_mb"] = None
                row["note"] = "the reference's CPU peak is not measured (no allocator stats)"
            emit(row)
    if "langevin" in cases:
        times = timed_pair(ours.langevin, ref, "langevin", a.repeats)
        row = {"case": "langevin", **head, "chain_steps": a.langevin_steps,
               **summary(times, a.langevin_steps)}
        row["ours_mfu"] = mfu(2 * a.batch * f_image, row["ours_ms"] / 1e3, precision)
        emit(row)
    if "update" in cases:
        times = timed_pair(ours.update, ref, "update", a.repeats)
        row = {"case": "update", **head, **summary(times)}
        row["ours_mfu"] = mfu(a.batch * f_image * (2 * a.steps + 6), row["ours_ms"] / 1e3,
                              precision)
        emit(row)
    if ref is not None:
        ref.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settings", default="32:64,32:128,64:64",
                   help="image_size:nf pairs, comma-separated")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=100, help="Langevin steps K of an update")
    p.add_argument("--langevin_steps", type=int, default=20,
                   help="length of the chain that the langevin case times")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", action="store_true",
                   help="run on the accelerator: JAX's default GPU and torch's cuda:0")
    p.add_argument("--matmul", default="fp32",
                   help="ours' matmul precisions, comma-separated: fp32, tf32, bf16 "
                        "(the chain state and the update stay float32)")
    p.add_argument("--unroll", type=int, default=0,
                   help="sampling.unroll of ours: 0 the config default, 1 a rolled loop")
    p.add_argument("--flow_images", type=int, default=1,
                   help="bpd, reconstruction: images per call")
    p.add_argument("--flow_iters", type=int, default=200,
                   help="bpd, reconstruction: gradient steps of the inversion")
    p.add_argument("--bpd_logdet", default="stochastic",
                   help="bpd: exact, per_step or stochastic (exact at K=100 is a GPU job)")
    p.add_argument("--torch_reference", default=REFERENCE)
    a = p.parse_args()
    if a.device and jax.default_backend() != "gpu":
        sys.exit(f"--device needs a GPU; JAX's backend is {jax.default_backend()}")

    def emit(row):
        print(json.dumps(row), flush=True)

    if "data" in a.cases.split(","):
        import data_case  # noqa: E402  (this script's folder is first on sys.path)
        data_case.run_data_case(emit)
    if not set(a.cases.split(",")) - {"data"}:
        return
    for setting in a.settings.split(","):
        size, nf = (int(v) for v in setting.split(":"))
        for precision in a.matmul.split(","):
            run_setting(a, size, nf, precision, emit)


if __name__ == "__main__":
    main()
