// slim program — what this CPU can run, asked at run time (the program is built with -march=native, but
// the binary may be copied to another machine: never run an architecture's kernels the CPU lacks).
#pragma once

#include <string>

#include "str.hpp"

namespace slim::cli {

struct cpu_features {
  bool avx2 = false, fma = false, avx512f = false, avx512cd = false, avx512dq = false, avx512bw = false,
       avx512bf16 = false;

  static cpu_features detect() {
    cpu_features f;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx512cd = __builtin_cpu_supports("avx512cd");
    f.avx512dq = __builtin_cpu_supports("avx512dq");
    f.avx512bw = __builtin_cpu_supports("avx512bw");
#if defined(__GNUC__) && !defined(__clang__)
    f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
#endif
#endif
    return f;
  }
  /// xsimd::fma3<xsimd::avx2>.
  bool runs_fma3_avx2() const { return avx2 && fma; }
  /// xsimd::avx512bw (which in xsimd 8.1 builds on avx512dq, avx512cd and avx512f).
  bool runs_avx512bw() const { return avx512f && avx512cd && avx512dq && avx512bw; }

  std::string summary() const {
    std::string s;
    auto add = [&](bool on, const char* name) {
      if (on) s += str(s.empty() ? "" : " ", name);
    };
    add(avx2, "avx2");
    add(fma, "fma");
    add(avx512f, "avx512f");
    add(avx512cd, "avx512cd");
    add(avx512dq, "avx512dq");
    add(avx512bw, "avx512bw");
    add(avx512bf16, "avx512_bf16");
    return s.empty() ? "none beyond the x86-64 baseline" : s;
  }
};

}  // namespace slim::cli
