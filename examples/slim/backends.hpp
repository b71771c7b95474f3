// slim program — the --backend option of the commands that run models: the names it takes and the backend
// object it picks for this CPU.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>
#include <xsimd/xsimd.hpp>

#include "commands.hpp"
#include "cpu.hpp"
#include "slim/backend/scalar.hpp"
#include "slim/backend/simd.hpp"
#include "slim/core/thread_pool.hpp"
#include "str.hpp"

namespace slim::cli {

/// Throws usage_error unless `want` is a --backend value: auto, scalar, sse2, avx2 or avx512.
inline void check_backend_name(std::string_view want) {
  if (want != "auto" && want != "scalar" && want != "sse2" && want != "avx2" && want != "avx512")
    throw usage_error(str("--backend wants auto, scalar, sse2, avx2 or avx512, not '", want, "'"));
}

/// Returns f(backend, name) on the backend `want` names (auto: the widest SIMD architecture compiled in that
/// this CPU runs), its thread pool set to `pool`.
template <class F>
auto with_backend(const std::string& want, thread_pool& pool, F&& f) {
  const cpu_features cpu = cpu_features::detect();
  auto with_pool = [&](auto be) {
    be.pool = &pool;
    return be;
  };
#if XSIMD_WITH_AVX512BW
  if ((want == "auto" || want == "avx512") && cpu.runs_avx512bw())
    return f(with_pool(backend::simd<xsimd::avx512bw>{}), std::string_view("simd<avx512bw>"));
#endif
#if XSIMD_WITH_FMA3_AVX2
  if ((want == "auto" || want == "avx2") && cpu.runs_fma3_avx2())
    return f(with_pool(backend::simd<xsimd::fma3<xsimd::avx2>>{}), std::string_view("simd<fma3<avx2>>"));
#endif
  if (want == "auto" || want == "sse2")
    return f(with_pool(backend::simd<xsimd::sse2>{}), std::string_view("simd<sse2>"));
  if (want == "scalar") return f(backend::scalar{}, std::string_view("scalar"));
  throw usage_error(str("--backend ", want, ": not compiled into this program or not supported by this CPU"));
}

}  // namespace slim::cli
