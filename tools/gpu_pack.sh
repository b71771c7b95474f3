#!/usr/bin/env bash
# Builds the CUDA programs here, for the device machine, and packs them into .gpu/ (ignored by git) so that
# a lent GPU machine runs them without building: that machine's image is described as nvcc, CMake and PyTorch,
# with none of the Debian packages slim's build needs (Eigen, xsimd, Catch2, nlohmann-json, Google Benchmark)
# named, and its device time is too short to spend on compiles.
#
#   bash tools/gpu_pack.sh            then, on the device:  bash tools/gpu_check.sh   (carry: [".gpu"])
#
# .gpu/bin holds slim_tests_cuda_checks, slim_tests_cuda_ops and slim_bench_cuda, built for sm_90 without
# -march=native (the device's CPU is not this one); .gpu/lib the shared libraries they need that a CUDA image
# need not have (Google Benchmark's, the CUDA runtime), not cuBLAS (≈ 600 MB: gpu_check.sh finds the device's
# own); .gpu/MANIFEST the commit, the compilers and the newest glibc / libstdc++ symbol versions the programs
# ask for. Environment: SLIM_GPU_BUILD (build folder, default build-gpu-pack), SLIM_CUDA_ARCHS (default 90).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${SLIM_GPU_BUILD:-build-gpu-pack}"
archs="${SLIM_CUDA_ARCHS:-90}"
command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ] || {
  echo "gpu_pack.sh: no nvcc here: the CUDA programs cannot be built" >&2
  exit 1
}
export PATH="$PATH:/usr/local/cuda/bin"
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLIM_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$archs" \
  -DSLIM_NATIVE=OFF -DSLIM_BUILD_TESTS=ON -DSLIM_BUILD_BENCHMARKS=ON -DSLIM_BUILD_EXAMPLES=OFF "${launcher[@]}" >/dev/null
programs=(tests/cuda/slim_tests_cuda_checks tests/cuda/slim_tests_cuda_ops bench/slim_bench_cuda)
cmake --build "$build" --target "${programs[@]##*/}" -j "$(nproc)"

rm -rf .gpu
mkdir -p .gpu/bin .gpu/lib
for p in "${programs[@]}"; do cp "$build/$p" .gpu/bin/; done
# Shared libraries to carry: Google Benchmark (Debian's soname) and the CUDA runtime. Everything from libc's
# family and cuBLAS stays behind.
for p in .gpu/bin/*; do
  ldd "$p" | awk '$3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  case "$name" in
    libbenchmark*|libcudart*) cp -L "$path" ".gpu/lib/$name" ;;
  esac
done
newest() { objdump -T .gpu/bin/* .gpu/lib/* 2>/dev/null | grep -o "$1_[0-9.]*" | sort -uV | tail -1; }
{
  echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- include tests bench || echo ' (with uncommitted changes)')"
  echo "built $(date -u +%FT%TZ) on $(uname -m) for sm_${archs}"
  echo "nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
  echo "c++ $(c++ --version | head -1)"
  echo "needs $(newest GLIBC) $(newest GLIBCXX) $(newest CXXABI), and libcublas.so.13 / libcublasLt.so.13 on the device"
  echo "programs ${programs[*]##*/}"
} >.gpu/MANIFEST
# The PyTorch peer cannot be built ahead, only checked: a CPU smoke run where this machine has torch
# (SLIM_TORCH_PYTHON names a python that has it; default python3).
py="${SLIM_TORCH_PYTHON:-python3}"
if "$py" -c 'import torch' 2>/dev/null; then
  "$py" tools/bench/torch_cuda.py --smoke >/dev/null && echo "torch peer: CPU smoke run passed ($py)"
else
  echo "torch peer: not checked ($py has no torch; SLIM_TORCH_PYTHON=... to name one)"
fi
cat .gpu/MANIFEST
du -sh .gpu | awk '{print "size " $1 " (the device tool carries at most 64 MiB with the working tree)"}'
