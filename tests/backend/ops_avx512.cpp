// The op-case table on simd<avx512bw>, compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma.
#include "support/arch_guard.hpp"
static const bool slim_cpu_ok = slim::testing::require_cpu("avx512f", "avx512bw", "avx512dq", "avx512vl");

#include <xsimd/xsimd.hpp>

#include "slim/backend/simd.hpp"

namespace slim::testing {
using backend_under_test = backend::simd<xsimd::avx512bw>;
inline constexpr const char* backend_label = "simd<avx512bw>";
}  // namespace slim::testing

#include "backend/ops/all.inc"
