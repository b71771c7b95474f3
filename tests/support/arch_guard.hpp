// Include first in a test program compiled for a specific ISA: at static initialisation it checks that
// this CPU has the ISA and otherwise exits with the skip code before any ISA-specific code runs.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace slim::testing {

inline bool cpu_has(const char* feature) {
  __builtin_cpu_init();
  // __builtin_cpu_supports needs a string literal, so map the names we use.
  const std::string_view f = feature;
  if (f == "avx2") return __builtin_cpu_supports("avx2");
  if (f == "fma") return __builtin_cpu_supports("fma");
  if (f == "avx512f") return __builtin_cpu_supports("avx512f");
  if (f == "avx512bw") return __builtin_cpu_supports("avx512bw");
  if (f == "avx512dq") return __builtin_cpu_supports("avx512dq");
  if (f == "avx512vl") return __builtin_cpu_supports("avx512vl");
  return false;
}

template <class... F>
bool require_cpu(F... features) {
  for (const char* f : {static_cast<const char*>(features)...})
    if (!cpu_has(f)) {
      std::fprintf(stderr, "this CPU lacks %s: skipping (exit 77)\n", f);
      std::_Exit(77);
    }
  return true;
}

}  // namespace slim::testing
