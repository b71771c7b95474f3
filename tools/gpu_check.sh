#!/usr/bin/env bash
# The prepared device check for a lent GPU machine: one call of the device tool, from the repo root.
#
#   here:        bash tools/gpu_pack.sh                (builds the CUDA programs for sm_90 into .gpu/)
#   on the GPU:  bash tools/gpu_check.sh [all|check|bench]       with carry [".gpu"], timeout_s 600
#
#   check  the GPU-free contract checks, the GPU op-case table against the scalar oracle, then
#          compute-sanitizer: memcheck on the hand-written kernels' cases, racecheck on those that use shared
#          memory, memcheck on the cuBLAS GEMM cases;
#   bench  slim_bench_cuda beside tools/bench/torch_cuda.py (PyTorch on the same shapes, same GPU);
#   all    (the default) the tests, both benchmarks, then the sanitizers: the figures come before the slow
#          sanitizer passes, so a short lease still yields them.
#
# Every step is time-boxed inside one budget (SLIM_GPU_BUDGET seconds, default 540, so the whole script ends
# inside a 600-second call); the whole log, the benchmarks' JSON and a summary go to $OUT when set (the device
# tool brings them back: at most 8 files, so no more than 4 are written there), else to build-gpu/logs.
# Without .gpu/ the programs are built here first — which needs slim's Debian dependencies, most likely absent
# from the device image, hence gpu_pack.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
mode="${1:-all}"
case "$mode" in all | check | bench) ;; *)
  echo "usage: bash tools/gpu_check.sh [all|check|bench]" >&2
  exit 2
  ;;
esac
# $OUT brings back at most 8 files: the whole output goes to one log there, the two benchmarks' JSON and the
# summary beside it (4 files); each step's own log stays on the machine under $logs.
out="${OUT:-build-gpu/logs}"
logs="${TMPDIR:-/tmp}/slim_gpu_check"
mkdir -p "$out" "$logs"
exec > >(tee "$out/gpu_check.log") 2>&1
tee_pid=$!
trap 'exec 1>&- 2>&-; wait "$tee_pid" 2>/dev/null' EXIT  # the log is complete before the call returns
deadline=$((SECONDS + ${SLIM_GPU_BUDGET:-540}))
summary="$out/summary.txt"
: >"$summary"
status=0

step() { # step SECONDS NAME COMMAND...: runs within the remaining budget; 77 = skipped (no device)
  local limit=$1 name=$2
  shift 2
  local left=$((deadline - SECONDS - 5))
  ((left < limit)) && limit=$left
  if ((limit < 10)); then
    echo "== $name: not run, the budget is spent" | tee -a "$summary"
    return 124
  fi
  echo "== $name (at most ${limit} s)"
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$logs/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc in $((SECONDS - t0)) s" | tee -a "$summary"
  if ((rc != 0 && rc != 77)); then status=1; fi
  return "$rc"
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1

# ---- the programs: packed here by gpu_pack.sh, or built now ----
if [ -x .gpu/bin/slim_tests_cuda_ops ]; then
  bin=.gpu/bin
  cat .gpu/MANIFEST
  # cuBLAS comes from the device: the CUDA toolkit's folders, else the pip wheels PyTorch brought.
  libs="$PWD/.gpu/lib"
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -e "$d/libcublasLt.so.13" ] && libs="$libs:$d" && break
  done
  if [[ "$libs" != *:* ]]; then
    d=$(python3 - <<'EOF' 2>/dev/null
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
for r in roots:
    for f in glob.glob(os.path.join(r, "nvidia", "**", "libcublasLt.so.13*"), recursive=True):
        print(os.path.dirname(f)); raise SystemExit
EOF
    )
    [ -z "$d" ] && d=$(dirname "$(find /usr /opt -name 'libcublasLt.so.13*' -print -quit 2>/dev/null)" 2>/dev/null)
    [ -n "$d" ] && [ "$d" != . ] && libs="$libs:$d"
  fi
  export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  ldd "$bin/slim_tests_cuda_ops" | grep -E "not found|cublas|cudart|benchmark|libstdc"
  bench_bin="$bin/slim_bench_cuda"
else
  echo "gpu_check.sh: no .gpu/ (bash tools/gpu_pack.sh, then carry .gpu): building here"
  step 240 configure cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DSLIM_NATIVE=OFF -DSLIM_BUILD_BENCHMARKS=ON -DSLIM_BUILD_EXAMPLES=OFF || exit 1
  step 300 build cmake --build build-gpu --target slim_tests_cuda_checks slim_tests_cuda_ops slim_bench_cuda \
    -j "$(nproc)" || exit 1
  bin=build-gpu/tests/cuda
  bench_bin=build-gpu/bench/slim_bench_cuda
fi

sanitizer=$(command -v compute-sanitizer || { [ -x /usr/local/cuda/bin/compute-sanitizer ] &&
  echo /usr/local/cuda/bin/compute-sanitizer; })

if [ "$mode" != bench ]; then
  step 60 checks "$bin/slim_tests_cuda_checks"
  step 240 ops "$bin/slim_tests_cuda_ops" --durations yes
fi
if [ "$mode" != check ]; then
  step 240 bench-slim "$bench_bin" --benchmark_min_time=0.2 --benchmark_out="$out/slim_bench_cuda.json" \
    --benchmark_out_format=json
  step 180 bench-torch env PYTHONUNBUFFERED=1 python3 tools/bench/torch_cuda.py --json "$out/torch_cuda.json"
fi
if [ "$mode" != bench ]; then
  if [ -n "$sanitizer" ]; then
    # the hand-written kernels first (cuBLAS's GEMM cases last), and racecheck only where shared memory is used,
    # so that a short budget still covers what is ours
    step 240 memcheck "$sanitizer" --tool memcheck --error-exitcode 3 "$bin/slim_tests_cuda_ops" "~[gemm]"
    step 200 racecheck "$sanitizer" --tool racecheck --error-exitcode 3 "$bin/slim_tests_cuda_ops" \
      "[attention],[norm],[softmax],[cross_entropy],[topk]"
    step 120 memcheck-gemm "$sanitizer" --tool memcheck --error-exitcode 3 "$bin/slim_tests_cuda_ops" "[gemm]"
  else
    echo "== compute-sanitizer: not on this machine" | tee -a "$summary"
  fi
fi
echo "== summary"
cat "$summary"
exit "$status"
