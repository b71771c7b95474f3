// slim — xsimd kernels: embedding (forward beside backward). Ops not defined here fall back to Base (scalar).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <xsimd/xsimd.hpp>

#include "slim/backend/scalar/embedding.hpp"

namespace slim::backend::detail {

template <class Arch, class Base>
struct simd_embedding : Base {};

}  // namespace slim::backend::detail
