#!/usr/bin/env bash
# slim's two entry points, for a fresh Debian 12 machine (as root; otherwise sudo is used to install):
#
#   bash tools/slim.sh run [options]   build the `slim` program and run the main job, `slim run`: the SLIM
#                                      pipeline end to end on the embedded synthetic world (options go to
#                                      it, e.g. --quick, --config FILE, --run-dir DIR);
#   bash tools/slim.sh test            configure, build and run every test: a Release build with warnings as
#                                      errors (everything: tests, benchmarks, the program, CUDA targets when
#                                      nvcc exists, the header self-containment check), then an
#                                      AddressSanitizer + UndefinedBehaviorSanitizer build of the tests.
#                                      The real-data suites (ctest label `data`) are left to .ci/run.
#
# Each installs the Debian packages it needs when they are missing. Builds live in build/ (release,
# sanitize), compiled through ccache with $(nproc) jobs. Any failure exits non-zero.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
jobs="$(nproc)"

# Build and test dependencies. Beyond the library's own (Eigen, xsimd, nlohmann-json, cpp-httplib) and the
# test/benchmark frameworks (Catch2, Google Benchmark): ninja-build and ccache keep CI time down, and
# libopenblas-dev + pkg-config give the SGEMM benchmark its OpenBLAS peer (linked into the benchmark only);
# unicode-data + bzip2 give the text tests Unicode's own NormalizationTest.txt (an oracle independent of our tables).
packages=(cmake g++ ninja-build ccache libeigen3-dev libxsimd-dev catch2 libbenchmark-dev nlohmann-json3-dev
          libcpp-httplib-dev libopenblas-dev pkg-config unicode-data bzip2)

say() { printf '[slim] %s\n' "$*"; }
die() {
  printf '[slim] error: %s\n' "$*" >&2
  exit 1
}

install_missing_packages() {
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo > /dev/null || die "missing Debian packages (${missing[*]}): run as root or install sudo"
    sudo=(sudo)
  fi
  say "installing missing Debian packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

# CUDA targets are built whenever a CUDA compiler exists; Debian's CUDA installs leave nvcc off the PATH.
find_nvcc() {
  if [ -z "${CUDACXX:-}" ] && ! command -v nvcc > /dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
    export CUDACXX=/usr/local/cuda/bin/nvcc
  fi
}

export CCACHE_BASEDIR="$root"  # cache hits across checkouts in different folders

configure_release() {
  find_nvcc
  cmake -S "$root" -B "$build/release" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    -DSLIM_WERROR=ON \
    -DCMAKE_VERIFY_INTERFACE_HEADER_SETS=ON \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache
}

configure_sanitize() {
  # Tests only, at -O1 (fast enough to run, still precise) with line tables only (-g1: stack traces keep
  # file:line, and the compiles take about a third less time than with -g): no benchmarks, program or CUDA.
  cmake -S "$root" -B "$build/sanitize" -G Ninja \
    -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
    -DSLIM_SANITIZE=ON \
    -DSLIM_BUILD_BENCHMARKS=OFF \
    -DSLIM_BUILD_EXAMPLES=OFF \
    -DSLIM_ENABLE_CUDA=OFF \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
}

ctest_sanitize() {
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$build/sanitize" --output-on-failure -j "$jobs" -LE '^data$'
}

# Phase timings, printed at the end (and on failure, with the phase that failed).
phases=()
current_phase=""
phase() {
  local name="$1" start
  shift
  say "== $name"
  current_phase="$name"
  start=$(date +%s)
  "$@"
  current_phase=""
  phases+=("$(printf '%-34s %5d s' "$name" "$(($(date +%s) - start))")")
}
report_phases() {
  local p
  [ "${#phases[@]}" -eq 0 ] || say "phase timings:"
  for p in "${phases[@]}"; do
    printf '[slim]   %s\n' "$p"
  done
}
on_exit() {
  local status=$?
  if [ "$status" -ne 0 ] && [ -n "$current_phase" ]; then
    report_phases
    printf '[slim] FAILED in phase: %s (exit status %d)\n' "$current_phase" "$status" >&2
  fi
}
trap on_exit EXIT

cmd_run() {
  install_missing_packages
  phase "configure (release)" configure_release
  phase "build the slim program" cmake --build "$build/release" --target slim-cli -j "$jobs"
  report_phases
  say "running: slim run $*"
  exec "$build/release/bin/slim" run "$@"
}

cmd_test() {
  [ "$#" -eq 0 ] || die "test takes no arguments"
  install_missing_packages
  local total_start
  total_start=$(date +%s)
  phase "configure (release, -Werror)" configure_release
  phase "build everything (release)" cmake --build "$build/release" -j "$jobs"
  phase "header self-containment check" \
    cmake --build "$build/release" --target all_verify_interface_header_sets -j "$jobs"
  phase "ctest (release)" ctest --test-dir "$build/release" --output-on-failure -j "$jobs" -LE '^data$'
  phase "configure (ASan+UBSan)" configure_sanitize
  phase "build tests (ASan+UBSan)" cmake --build "$build/sanitize" -j "$jobs"
  phase "ctest (ASan+UBSan)" ctest_sanitize
  report_phases
  say "all tests passed in $(($(date +%s) - total_start)) s"
}

usage() {
  cat >&2 << 'EOF'
usage: bash tools/slim.sh run [options]   build the slim program and run the main job (slim run)
       bash tools/slim.sh test            configure, build and run every test (release -Werror, then ASan+UBSan)
EOF
  exit 2
}

[ "$#" -ge 1 ] || usage
command="$1"
shift
case "$command" in
  run) cmd_run "$@" ;;
  test) cmd_test "$@" ;;
  *) usage ;;
esac
