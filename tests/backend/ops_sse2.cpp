// The op-case table on simd<sse2>, built with the compiler's baseline flags: every x86-64 CPU runs it.
#include <xsimd/xsimd.hpp>

#include "slim/backend/simd.hpp"

namespace slim::testing {
using backend_under_test = backend::simd<xsimd::sse2>;
inline constexpr const char* backend_label = "simd<sse2>";
}  // namespace slim::testing

#include "backend/ops/all.inc"
