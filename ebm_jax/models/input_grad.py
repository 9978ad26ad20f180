"""Which input gradient the sampler uses: ``matmul`` (``conv_grad``) or ``autodiff`` (jax.grad).

``sampling.grad_impl`` names it; ``auto`` takes the one that measured fastest on the backend and
CPU at hand (``MEASURED``). The two compute the same gradient; only the speed differs.
"""
from __future__ import annotations

import functools
from typing import Callable

import jax

IMPLS = ("auto", "matmul", "autodiff")

# Fastest input gradient per (backend, CPU kind), ms per Langevin step at 32x32, nf=64, batch 64
# on 2 cores (K-step chain, fp32), ours beside each other in the same run:
# - cpu, amd-avx512 (AMD EPYC with AVX-512, /work/shared/PERF_NOTES.md): matmul 179.3, autodiff
#   unrolled 235.7, autodiff rolled 390.4.
# - cpu, amd-avx2 (AMD EPYC family 25 model 1, Zen 3, no AVX-512; benchmarks/FINDINGS.md):
#   on a quiet machine, matmul rolled 208.5 against autodiff unrolled 370.2 (medians of three
#   20-step chains, alternated); earlier, shared: matmul 399 and 458, autodiff 677 and 543.
#   Since, matmul with Winograd's stride-2 products: 122.1, against PyTorch eager's 217.3.
# - gpu: not measured; jax.grad's cuDNN convolutions are the default until a GPU run of
#   benchmarks/gpu_check.sh shows the matmul form ahead.
MEASURED = {
    ("cpu", "amd-avx512"): "matmul",
    ("cpu", "amd-avx2"): "matmul",
    ("gpu", None): "autodiff",
}
# Backends or CPU kinds not in the table: on every CPU measured the matrix products won.
FALLBACK = {"cpu": "matmul"}


@functools.cache
def cpu_kind() -> str:
    """This machine's CPU as a ``MEASURED`` key: vendor and widest vector ISA, e.g. 'amd-avx2'."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return "unknown"
    vendor = "amd" if "AuthenticAMD" in info else "intel" if "GenuineIntel" in info else "other"
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines()
                  if line.startswith("flags")), [])
    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "base"
    return f"{vendor}-{isa}"


def resolve_grad_impl(name: str = "auto", backend: str | None = None,
                      cpu: str | None = None) -> str:
    """``matmul`` or ``autodiff`` for ``name``; ``auto`` looks the backend (default: JAX's) and,
    on the CPU, the CPU kind (default: ``cpu_kind()``) up in ``MEASURED``."""
    if name not in IMPLS:
        raise ValueError(f"sampling.grad_impl={name!r}: choose one of {IMPLS}")
    if name != "auto":
        return name
    backend = backend or jax.default_backend()
    if backend == "cpu":
        cpu = cpu or cpu_kind()
        return MEASURED.get((backend, cpu), FALLBACK["cpu"])
    return MEASURED.get((backend, None), "autodiff")


def configured(sampling_config) -> str:
    """``sampling_config.grad_impl`` as named (``auto`` where a config has none)."""
    return sampling_config.get("grad_impl", "auto")


def for_sampling(input_grad: Callable | None, sampling_config) -> Callable | None:
    """The ``input_grad`` to hand the sampler under ``sampling_config.grad_impl``: as given for
    ``matmul``, None (the sampler's own ``jax.grad`` of the energy, with its loop unrolling)
    for ``autodiff``."""
    impl = resolve_grad_impl(configured(sampling_config))
    return input_grad if impl == "matmul" else None


def grad_fn_for(input_grad: Callable | None, params) -> Callable | None:
    """The sampler's ``grad_fn`` at ``params``: ``input_grad(params)``, or None (the sampler's
    own ``jax.grad`` of the energy) where ``input_grad`` is None (``for_sampling``)."""
    return None if input_grad is None else input_grad(params)
