#!/usr/bin/env bash
# Runs the kernel benchmark program for the figures in docs/PERFORMANCE.md.
# Usage: bash bench/run_kernels.sh [BUILD_DIR] [extra Google Benchmark flags...]
# This machine exports OPENBLAS_CORETYPE=Haswell (and OPENBLAS_L2_SIZE) for old OpenBLAS builds; the
# benchmark unsets both so OpenBLAS, the SGEMM peer, runs its AVX-512 (SkylakeX) kernel.
set -euo pipefail
build="${1:-build/release}"
shift || true
exe="$build/bench/slim_bench_kernels"
[ -x "$exe" ] || { echo "build $exe first: cmake --build $build --target slim_bench_kernels" >&2; exit 2; }
filter='probe_|gemm/(slim_simd_avx512|slim_simd_avx512_bf16_B|openblas|eigen)/M:(1024/K:1024/N:1024|512/K:2048/N:512|2048/K:512/N:2048|8/K:4096/N:4096)/|gemm_Bt/|rows/.*/(scalar|avx512)/|(attention|gru|embedding|cross_entropy|adam|topk).*(scalar|avx512|partial_sort)'
exec env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$exe" --benchmark_filter="$filter" --benchmark_min_time=0.2 "$@"
