#!/usr/bin/env bash
# The GPU benchmark set, in under 5 minutes of machine time: the sampler cases at 32x32 nf 64 /
# 128 and 64x64 nf 64 with float32 matmuls, then the learning update with TF32 and with
# bfloat16 matmuls (chain state and update arithmetic stay float32), each beside PyTorch eager
# on the same card, with MFU; then bpd and reconstruction time per image (ours only; 32x32
# nf 64, 16 images, 50 inversion steps).
#
#   bash benchmarks/gpu_check.sh [--torch_reference PATH] > gpu.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
# JAX would otherwise take 75% of the card up front, leaving the reference little and making
# the peak-memory figures meaningless.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader >&2 || true
timeout 140 python benchmarks/run.py --device --settings 32:64,32:128,64:64 \
  --cases langevin,update,compile,memory --matmul fp32 --repeats 5 "$@"
timeout 100 python benchmarks/run.py --device --settings 32:64,64:64 --cases update \
  --matmul tf32,bf16 --repeats 5 "$@"
timeout 60 python benchmarks/run.py --device --settings 32:64 --cases bpd,reconstruction \
  --flow_images 16 --flow_iters 50 "$@"
