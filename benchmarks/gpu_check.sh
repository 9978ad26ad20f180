#!/usr/bin/env bash
# The GPU benchmark set, in about 5 minutes of machine time (each call under `timeout`):
# 1. the matmul ceiling, then the sampler and update cases at 32x32 nf 64 / 128 and 64x64 nf 64
#    with float32 matmuls and jax.grad's input gradient (cuDNN convolutions), with compile time
#    and memory;
# 2. the same sampler and update with the matrix-product input gradient (sampling.grad_impl
#    matmul), at 32x32 and 64x64 nf 64;
# 3. the 64x64 nf 64 update with TF32 and bfloat16 matmuls (chain state and update arithmetic
#    stay float32) for both input gradients;
# 4. bpd and reconstruction seconds per image (ours only; 32x32 nf 64, 16 images, 50 steps).
# Each beside PyTorch eager on the same card, when torch is installed (otherwise ours only).
#
#   bash benchmarks/gpu_check.sh [--torch_reference PATH] > gpu.jsonl
#   GPU_CHECK_TINY=1 bash benchmarks/gpu_check.sh   # tiny settings on the CPU: a smoke run
set -uo pipefail
cd "$(dirname "$0")/.."
# JAX would otherwise take 75% of the card up front, leaving the reference little and making
# the peak-memory figures meaningless.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PYTHON:-python}
if [[ "${GPU_CHECK_TINY:-0}" == 1 ]]; then
  DEV=(--batch 4 --steps 3 --langevin_steps 2 --repeats 1)
  SCALE=${GPU_CHECK_TIME_SCALE:-6}  # a shared 2-core CPU compiles far slower than a GPU host
  S_ALL=8:4,8:8; S_TWO=8:4; S_BIG=8:8; FLOW=(--settings 8:4 --flow_images 1 --flow_iters 2)
else
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader >&2 || true
  DEV=(--device --repeats 5)
  SCALE=1
  S_ALL=32:64,32:128,64:64; S_TWO=32:64,64:64; S_BIG=64:64
  FLOW=(--settings 32:64 --flow_images 16 --flow_iters 50)
fi
status=0
call() {  # call SECONDS ARGS...: one run.py call under a time limit; a failure ends only it
  local limit=$1; shift
  timeout $((limit * SCALE)) "$PY" benchmarks/run.py "$@" || { echo "# run.py $* exited $?" >&2; status=1; }
}
call 110 "${DEV[@]}" --settings "$S_ALL" --cases ceiling,langevin,update,compile,memory \
  --matmul fp32 --grad_impl autodiff "$@"
call 60 "${DEV[@]}" --settings "$S_TWO" --cases langevin,update --matmul fp32 \
  --grad_impl matmul "$@"
call 90 "${DEV[@]}" --settings "$S_BIG" --cases update --matmul tf32,bf16 \
  --grad_impl autodiff,matmul "$@"
call 40 "${DEV[@]}" "${FLOW[@]}" --cases bpd,reconstruction "$@"
exit $status
