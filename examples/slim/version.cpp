// `slim version`: what this binary is and what it can run here.
#include <dlfcn.h>

#include <cstdio>
#include <string>

#include "commands.hpp"
#include "cpu.hpp"
#include "slim/core/config.hpp"
#include "tour.hpp"

// Set by examples/CMakeLists.txt.
#ifndef SLIM_CLI_BUILD_TYPE
#define SLIM_CLI_BUILD_TYPE "unknown"
#endif
#ifndef SLIM_CLI_NATIVE
#define SLIM_CLI_NATIVE 0
#endif
#ifndef SLIM_CLI_CUDA_COMPILED
#define SLIM_CLI_CUDA_COMPILED 0
#endif

namespace slim::cli {
namespace {

std::string compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "g++ " __VERSION__;
#else
  return "unknown compiler";
#endif
}

/// Asks the CUDA driver (if installed) how many GPUs it sees, without linking against CUDA.
std::string gpu_summary() {
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return "no CUDA driver (libcuda.so.1 not found)";
  using init_fn = int (*)(unsigned);
  using count_fn = int (*)(int*);
  using get_fn = int (*)(int*, int);
  using name_fn = int (*)(char*, int, int);
  using version_fn = int (*)(int*);
  auto init = reinterpret_cast<init_fn>(dlsym(lib, "cuInit"));
  auto count = reinterpret_cast<count_fn>(dlsym(lib, "cuDeviceGetCount"));
  auto get = reinterpret_cast<get_fn>(dlsym(lib, "cuDeviceGet"));
  auto name = reinterpret_cast<name_fn>(dlsym(lib, "cuDeviceGetName"));
  auto version = reinterpret_cast<version_fn>(dlsym(lib, "cuDriverGetVersion"));
  std::string s;
  int n = 0, v = 0;
  if (!init || !count || !get || !name) {
    s = "CUDA driver found but incomplete";
  } else if (const int rc = init(0); rc != 0) {
    s = str("CUDA driver found, cuInit failed (error ", rc, "): no usable GPU");
  } else if (count(&n) != 0 || n == 0) {
    s = "CUDA driver found, no GPU";
  } else {
    s = str(n, " GPU(s):");
    for (int i = 0; i < n; ++i) {
      int dev = 0;
      char buf[256] = {};
      if (get(&dev, i) == 0 && name(buf, sizeof buf, dev) == 0) s += str(i ? ", " : " ", buf);
    }
  }
  if (version && version(&v) == 0) s += str(" (driver API ", v / 1000, ".", v % 1000 / 10, ")");
  dlclose(lib);
  return s;
}

}  // namespace

int run_version(args a) {
  if (!a.empty()) throw usage_error("version takes no arguments");
  const cpu_features cpu = cpu_features::detect();
  std::printf("slim %.*s\n", static_cast<int>(version_string.size()), version_string.data());
  std::printf("compiler      %s, C++ %ld\n", compiler().c_str(), static_cast<long>(__cplusplus));
  const std::string build_type = SLIM_CLI_BUILD_TYPE;
  std::printf("build         %s%s\n", build_type.empty() ? "no CMAKE_BUILD_TYPE" : build_type.c_str(),
              SLIM_CLI_NATIVE ? ", -march=native" : "");
  std::string backends;
  for (const auto& b : compiled_cpu_backends()) backends += str(backends.empty() ? "" : ", ", b);
  std::printf("CPU backends  %s (compiled in)\n", backends.c_str());
  std::printf("this CPU      %s\n", cpu.summary().c_str());
  std::string runnable = "scalar, simd<sse2>";
#if XSIMD_WITH_FMA3_AVX2
  if (cpu.runs_fma3_avx2()) runnable += ", simd<fma3<avx2>>";
#endif
#if XSIMD_WITH_AVX512BW
  if (cpu.runs_avx512bw()) runnable += ", simd<avx512bw>";
#endif
  std::printf("runs here     %s\n", runnable.c_str());
#if SLIM_CLI_CUDA_COMPILED
  std::printf("CUDA          kernels<cuda> targets built by nvcc %s for %s (this program has no CUDA code yet)\n",
              SLIM_CLI_CUDA_COMPILER_VERSION, SLIM_CLI_CUDA_ARCHITECTURES);
#else
  std::printf("CUDA          not built (no CUDA compiler at configure time, or SLIM_ENABLE_CUDA=OFF)\n");
#endif
  std::printf("GPU           %s\n", gpu_summary().c_str());
  return 0;
}

}  // namespace slim::cli
