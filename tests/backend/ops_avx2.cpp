// The op-case table on simd<fma3<avx2>>, compiled with -mavx2 -mfma only (its own program, so no code
// built for a wider ISA can leak into it).
#include "support/arch_guard.hpp"
static const bool slim_cpu_ok = slim::testing::require_cpu("avx2", "fma");

#include <xsimd/xsimd.hpp>

#include "slim/backend/simd.hpp"

namespace slim::testing {
using backend_under_test = backend::simd<xsimd::fma3<xsimd::avx2>>;
inline constexpr const char* backend_label = "simd<fma3<avx2>>";
}  // namespace slim::testing

#include "backend/ops/all.inc"
