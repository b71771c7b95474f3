#!/usr/bin/env bash
# The prepared device check for a lent GPU machine (one call of the device tool each, from the repo root):
#   bash tools/gpu_check.sh          builds the CUDA programs for sm_90, runs the GPU-free contract checks and
#                                    the GPU op-case table, then compute-sanitizer memcheck and racecheck on it;
#   bash tools/gpu_check.sh bench    builds slim_bench_cuda and runs it beside tools/bench/torch_cuda.py (the
#                                    PyTorch peer, when torch is importable) on the same GPU.
# Each step is time-boxed so the whole script ends well inside one 10-minute call; logs go to $OUT when set.
set -uo pipefail
out="${OUT:-build-gpu/logs}"
mkdir -p "$out"
step() {  # step SECONDS NAME COMMAND...
  local limit=$1 name=$2
  shift 2
  echo "== $name"
  timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc"
  return "$rc"
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$out/gpu.txt"
if [ "${1:-}" = bench ]; then
  step 240 configure-bench cmake -S . -B build-gpu-bench -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DSLIM_BUILD_TESTS=OFF -DSLIM_BUILD_EXAMPLES=OFF -DSLIM_BUILD_BENCHMARKS=ON || exit 1
  step 300 build-bench cmake --build build-gpu-bench --target slim_bench_cuda -j "$(nproc)" || exit 1
  step 240 bench-slim build-gpu-bench/bench/slim_bench_cuda --benchmark_min_time=0.2 \
    --benchmark_out="$out/slim_bench_cuda.json" --benchmark_out_format=json
  rc=$?
  step 180 bench-torch python3 tools/bench/torch_cuda.py --json "$out/torch_cuda.json"
  exit "$rc"
fi
step 240 configure cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DSLIM_BUILD_BENCHMARKS=OFF -DSLIM_BUILD_EXAMPLES=OFF || exit 1
step 300 build cmake --build build-gpu --target slim_tests_cuda_checks slim_tests_cuda_ops -j "$(nproc)" || exit 1
step 120 ctest ctest --test-dir build-gpu -L 'cuda|gpu' --output-on-failure
rc=$?
if command -v compute-sanitizer >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/compute-sanitizer ]; then
  cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  step 180 memcheck "$cs" --tool memcheck --error-exitcode 3 build-gpu/tests/cuda/slim_tests_cuda_ops
  step 180 racecheck "$cs" --tool racecheck --error-exitcode 3 build-gpu/tests/cuda/slim_tests_cuda_ops
fi
exit "$rc"
