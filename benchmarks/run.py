"""The benchmark suite: ours beside the PyTorch eager reference, one JSON line per case.

  python benchmarks/run.py                      # CPU: every case at 32x32 nf 64 / 128, 64x64 nf 64
  python benchmarks/run.py --settings 32:64 --cases update --steps 100 --repeats 3
  python benchmarks/run.py --settings 32:64 --cases ceiling,langevin,update --steps 100 --repeats 3
  python benchmarks/run.py --device --matmul fp32,tf32,bf16    # GPU (see gpu_check.sh)
  python benchmarks/run.py --cases demos [--demo_steps 20]   # the README's two demonstrations

Cases: ``ceiling`` (GFLOP/s of a large fp32 ``jnp.dot``, best of 1024..4096, and numpy's),
``langevin`` (ms per Langevin step of a chain of ``--langevin_steps``), ``update`` (one
learning update: K Langevin steps and one Adam step), ``compile`` (ours: lowering and compiling
the update; the reference: its first, warm-up update minus a steady one), ``memory`` (ours:
XLA's buffer assignment of the update, and the device's peak on a GPU; the reference: the CUDA
allocator's peak), ``bpd`` and ``reconstruction`` (ours only: seconds per image; the reference
has neither), ``demos`` (wall seconds of ``train.py`` on configs/toy2d.py and configs/digits.py,
each in its own process; ``--demo_steps`` shortens both for a smoke run), ``data`` (host images
per second of the input pipeline, ``data_case.py``).

The reference is ``torch_reference.py``, driven call by call in a process of its own
(``torch_worker.py``), so that ours and the reference alternate: on a shared machine the load
then hits both alike, and ``ratio_torch_over_ours`` (above 1: ours faster) is what to read. ``mfu`` is the update's FLOPs, m F (2K + 6) with F the FLOPs of one forward pass of one
image, over time and the chip's peak for the matmul precision (GPU only); ``mfu_cpu`` is the
same FLOPs over time and the machine's matmul ceiling: a 2048^2 ``jnp.dot`` timed right after
each timed pair (``ceiling_alongside_gflops``, as the load of a shared machine changes), else
the start-of-run ``ceiling`` case. Every
line names the machine (CPU model, family and model number, AVX-512 or not, cores, versions)
and its ceiling. ``--grad_impl`` times our sampler with ``matmul`` or ``autodiff`` input
gradients (``sampling.grad_impl``).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ebm_jax.configs import default  # noqa: E402
from ebm_jax.families import base, ebm  # noqa: E402
from ebm_jax.models import conv_grad  # noqa: E402
from ebm_jax.models import input_grad as input_grad_lib  # noqa: E402
from ebm_jax.models import nets  # noqa: E402
from ebm_jax.runtime import parallel  # noqa: E402
from ebm_jax.training import optim  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "..", "shared", "bench", "torch_reference.py")
CASES = ("ceiling", "langevin", "update", "compile", "memory", "bpd", "reconstruction", "data")
DEMOS = ("configs/toy2d.py", "configs/digits.py")
# Dense peak TFLOP/s by matmul precision (vendor data sheets, SXM parts).
PEAK_TFLOPS = {"H100": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4},
               "H200": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4}}
PRECISIONS = {"fp32": ("highest", None), "tf32": ("tensorfloat32", None),
              "bf16": ("highest", jnp.bfloat16)}


def forward_flops(image_size: int, nf: int, channels: int = 3, stride2_share: float = 1.0) -> int:
    """Multiply-adds x 2 of one forward pass of the ConvNet energy on one image: the model's
    FLOPs, those of the direct convolutions. ``stride2_share`` scales the 4x4 stride-2 layers'
    part: ``conv_grad.STRIDE2_MULTIPLY_ADDS`` gives the FLOPs that its products execute."""
    flops = 2 * image_size**2 * nf * 9 * channels
    size, width = image_size, nf
    for _ in range(nets.conv_depth(image_size)):
        size //= 2
        flops += round(stride2_share * 2 * size**2 * 2 * width * 16 * width)
        width *= 2
    return flops + 2 * 16 * width


def machine_info() -> dict:
    """The CPU (lscpu's model name, family, model number, AVX-512 or not), cores and versions."""
    info = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU family", "Model"):
                info[key.strip()] = value.strip()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            info["avx512"] = " avx512f" in f.read()
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    return {"cpu_model": info.get("Model name"), "cpu_family": info.get("CPU family"),
            "cpu_model_number": info.get("Model"), "cpu_avx512": info.get("avx512"),
            "cpu_kind": input_grad_lib.cpu_kind(), "cores": os.cpu_count(),
            "jax": jax.__version__, "torch": torch_version}


def matmul_ceiling(sizes=(1024, 2048, 4096), repeats: int = 3) -> dict:
    """GFLOP/s of square fp32 products, best of ``repeats`` per size: ``jnp.dot`` (highest
    precision) on JAX's default device, and numpy's on the host."""
    dot = jax.jit(lambda a, b: jnp.dot(a, b, precision="highest"))
    row = {}
    for n in sizes:
        a = jnp.full((n, n), 0.5, jnp.float32)
        an = np.full((n, n), 0.5, np.float32)
        jax.block_until_ready(dot(a, a))
        ours, host = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            jax.block_until_ready(dot(a, a))
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            an @ an
            host.append(time.perf_counter() - t)
        row[f"jnp_dot_{n}_gflops"] = round(2 * n**3 / min(ours) / 1e9, 1)
        row[f"numpy_{n}_gflops"] = round(2 * n**3 / min(host) / 1e9, 1)
    row["ceiling_gflops"] = max(v for k, v in row.items() if k.startswith("jnp_dot"))
    row["numpy_best_gflops"] = max(v for k, v in row.items() if k.startswith("numpy"))
    return row


class BenchEBM(ebm.EBM):
    """The EBM family with the benchmark's matmul operand type: for ``matmul``, the operands of
    ``conv_grad``'s products in the chains; for ``autodiff``, the energy on parameters and input
    cast to ``dtype``, in the chains and the loss (chains and parameters stay float32)."""

    def __init__(self, config, data_shape, dtype):
        super().__init__(config, data_shape)
        self.dtype = dtype
        self.impl = input_grad_lib.resolve_grad_impl(config.sampling.grad_impl)

    @property
    def energy(self):
        if self.dtype is None or self.impl != "autodiff":
            return self.model.energy
        cast = lambda tree: jax.tree_util.tree_map(lambda v: v.astype(self.dtype), tree)
        return lambda p, x: self.model.energy(cast(p), cast(x)).astype(jnp.float32)

    @property
    def gap_energy(self):
        # autodiff: the cast energy above; matmul: the loss's products stay float32.
        return self.energy if self.impl == "autodiff" else super().gap_energy

    def input_grad(self, sampling_config=None):
        if self.impl != "matmul":
            return None
        return lambda params: self.model.input_grad(params, self.dtype, "matmul")


class Ours:
    """The learning update and the sampler of ebm_jax at one setting."""

    def __init__(self, image_size, nf, batch, steps, langevin_steps, precision, unroll,
                 grad_impl="auto"):
        config = default.get_config()
        config.model.nf, config.sampling.num_steps = nf, steps
        config.sampling.unroll = unroll
        config.sampling.grad_impl = grad_impl
        config.training.batch_size = batch
        self.shape = (image_size, image_size, 3)
        self.matmul_precision, dtype = PRECISIONS[precision]
        family = BenchEBM(config, self.shape, dtype)
        self.model = family.model
        tx = optim.make_optimizer(config.optim)
        mesh = parallel.make_mesh(jax.devices()[:1])
        self.state = parallel.replicate(family.init_state(jax.random.key(0), tx), mesh)
        x = np.random.default_rng(0).uniform(-1, 1, (batch,) + self.shape).astype(np.float32)
        self.data = base.Batch(parallel.shard_batch(x, mesh),
                               parallel.shard_batch(np.arange(batch, dtype=np.int32), mesh))
        self.update_fn = family.make_update(tx, mesh)
        config.sampling.num_steps = langevin_steps
        self.sample_fn = BenchEBM(config, self.shape, dtype).make_sampler()
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


def ceiling_probe(n: int = 2048) -> Callable[[], float]:
    """Returns a function giving the GFLOP/s of one fp32 n x n ``jnp.dot`` (best of 3), to time
    the ceiling beside each call on a machine whose load changes."""
    dot = jax.jit(lambda a, b: jnp.dot(a, b, precision="highest"))
    a = jnp.full((n, n), 0.5, jnp.float32)
    jax.block_until_ready(dot(a, a))

    def probe() -> float:
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            jax.block_until_ready(dot(a, a))
            best = min(best, time.perf_counter() - t)
        return 2 * n**3 / best / 1e9

    return probe


def timed_pair(ours_fn, ref: Reference | None, cmd: str, repeats: int, probe=None) -> dict:
    """Wall seconds of ``ours_fn`` and of the reference's ``cmd``, after one warm-up each, in
    turn ``repeats`` times; with a ``probe`` (``ceiling_probe``), its GFLOP/s after each."""
    def ours():
        t = time.perf_counter()
        jax.block_until_ready(ours_fn())
        return time.perf_counter() - t

    ours()
    if ref is not None:
        ref.ask(cmd)
    times = {"ours": [], "torch": []} if ref is not None else {"ours": []}
    ceilings = []
    for _ in range(repeats):
        times["ours"].append(ours())
        if ref is not None:
            times["torch"].append(ref.ask(cmd))
        if probe is not None:
            ceilings.append(probe())
    if ceilings:
        times["ceiling_alongside_gflops"] = ceilings
    return times


def summary(times: dict, per: int = 1) -> dict:
    out = {}
    if "ceiling_alongside_gflops" in times:
        ceilings = times.pop("ceiling_alongside_gflops")
        out["ceiling_alongside_gflops"] = round(statistics.median(ceilings), 1)
        out["ceiling_alongside_all_gflops"] = [round(c, 1) for c in ceilings]
    for name, ts in times.items():
        out[f"{name}_ms"] = round(1e3 * statistics.median(ts) / per, 2)
        out[f"{name}_all_ms"] = [round(1e3 * t / per, 1) for t in ts]
    if "torch_ms" in out:
        out["ratio_torch_over_ours"] = round(out["torch_ms"] / out["ours_ms"], 3)
    return out


def mfu_cpu(flops: float, row: dict, ceiling_gflops: float | None,
            executed_share: float = 1.0) -> dict:
    """Achieved GFLOP/s of ours and the reference over the measured matmul ceiling: the one
    timed beside the calls where there is one, else the start-of-run ``ceiling``. Model FLOPs
    (the direct convolutions'); where ours executes fewer (``executed_share`` of them, the
    Winograd products of ``conv_grad``), also ours' executed GFLOP/s and their share."""
    out = {}
    ceiling_gflops = row.get("ceiling_alongside_gflops") or ceiling_gflops
    for name in ("ours", "torch"):
        if f"{name}_ms" in row and ceiling_gflops:
            gflops = flops / (row[f"{name}_ms"] / 1e3) / 1e9
            out[f"{name}_gflops"] = round(gflops, 1)
            out[f"{name}_mfu_cpu"] = round(gflops / ceiling_gflops, 3)
            if name == "ours" and executed_share != 1.0:
                out["ours_executed_flops_share"] = round(executed_share, 4)
                out["ours_executed_gflops"] = round(gflops * executed_share, 1)
                out["ours_executed_share_of_ceiling"] = round(
                    gflops * executed_share / ceiling_gflops, 3)
    return out


def demos_case(a, emit, head: dict):
    """Wall seconds of ``train.py`` on each README demonstration, each in its own process with
    its own config and a fresh workdir; ``--demo_steps`` N > 0 sets training.num_steps."""
    root = os.path.dirname(HERE)
    for config in DEMOS:
        with tempfile.TemporaryDirectory() as workdir:
            cmd = [sys.executable, "train.py", f"--config={config}", f"--workdir={workdir}",
                   "--noprogress"]
            if a.demo_steps:
                cmd.append(f"--config.training.num_steps={a.demo_steps}")
            t = time.perf_counter()
            proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
            seconds = time.perf_counter() - t
        row = {"case": "demos", **head, "config": config, "num_steps": a.demo_steps or "config",
               "wall_s": round(seconds, 1), "returncode": proc.returncode}
        if proc.returncode:
            row["stderr_tail"] = proc.stderr[-2000:]
        emit(row)


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


def run_setting(a, image_size: int, nf: int, precision: str, grad_impl: str, emit,
                machine: dict):
    head = {"image_size": image_size, "nf": nf, "batch": a.batch, "K": a.steps,
            "precision": precision, "unroll": a.unroll,
            "grad_impl": input_grad_lib.resolve_grad_impl(grad_impl),
            "device": jax.devices()[0].device_kind, **machine}
    cases = [c for c in a.cases.split(",") if c]
    for case in ("bpd", "reconstruction"):
        if case in cases:
            emit({"case": case, **head, **flow_case(case, image_size, nf, a)})
    if not set(cases) & {"langevin", "update", "compile", "memory"}:
        return
    ours = Ours(image_size, nf, a.batch, a.steps, a.langevin_steps, precision, a.unroll,
                grad_impl)
    ref = None
    if importlib.util.find_spec("torch") is None:
        print("# torch is not installed: no PyTorch baseline, ours only", file=sys.stderr)
    elif os.path.exists(a.torch_reference):
        ref = Reference(a.torch_reference, image_size, nf, a.batch, a.steps, a.langevin_steps,
                        "cuda" if a.device else "cpu")
        head["torch"] = ref.info["torch"]
        head["torch_threads"] = ref.info["threads"]
    else:
        print(f"# {a.torch_reference} not found: no PyTorch baseline", file=sys.stderr)
    f_image = forward_flops(image_size, nf)
    # The share of the model's FLOPs that ours executes: under matmul, the Winograd products.
    executed = (forward_flops(image_size, nf, stride2_share=conv_grad.STRIDE2_MULTIPLY_ADDS)
                / f_image if head["grad_impl"] == "matmul" else 1.0)
    probe = ceiling_probe() if "ceiling_gflops" in machine else None
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
        times = timed_pair(ours.langevin, ref, "langevin", a.repeats, probe)
        row = {"case": "langevin", **head, "chain_steps": a.langevin_steps,
               **summary(times, a.langevin_steps)}
        row["ours_mfu"] = mfu(2 * a.batch * f_image, row["ours_ms"] / 1e3, precision)
        row.update(mfu_cpu(2 * a.batch * f_image, row, machine.get("ceiling_gflops"), executed))
        emit(row)
    if "update" in cases:
        times = timed_pair(ours.update, ref, "update", a.repeats, probe)
        row = {"case": "update", **head, **summary(times)}
        row["ours_mfu"] = mfu(a.batch * f_image * (2 * a.steps + 6), row["ours_ms"] / 1e3,
                              precision)
        row.update(mfu_cpu(a.batch * f_image * (2 * a.steps + 6), row,
                           machine.get("ceiling_gflops"), executed))
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
    p.add_argument("--grad_impl", default="auto",
                   help="ours' sampling.grad_impl, comma-separated: auto, matmul, autodiff")
    p.add_argument("--demo_steps", type=int, default=0,
                   help="demos: training.num_steps of each demonstration (0: its config's)")
    p.add_argument("--torch_reference", default=REFERENCE)
    a = p.parse_args()
    if a.device and jax.default_backend() != "gpu":
        sys.exit(f"--device needs a GPU; JAX's backend is {jax.default_backend()}")

    def emit(row):
        print(json.dumps(row), flush=True)

    cases = a.cases.split(",")
    machine = machine_info()
    if set(cases) & {"ceiling", "langevin", "update"}:
        ceiling = matmul_ceiling()
        machine["ceiling_gflops"] = ceiling["ceiling_gflops"]
        if "ceiling" in cases:
            emit({"case": "ceiling", "device": jax.devices()[0].device_kind, **machine,
                  **ceiling})
    if "demos" in cases:
        demos_case(a, emit, machine)
    if "data" in cases:
        import data_case  # noqa: E402  (this script's folder is first on sys.path)
        data_case.run_data_case(emit)
    if not set(cases) - {"data", "demos", "ceiling"}:
        return
    for setting in a.settings.split(","):
        size, nf = (int(v) for v in setting.split(":"))
        for precision in a.matmul.split(","):
            for grad_impl in a.grad_impl.split(","):
                run_setting(a, size, nf, precision, grad_impl, emit, machine)


if __name__ == "__main__":
    main()
