// slim — xsimd kernels: optimizer (forward beside backward). Ops not defined here fall back to Base (scalar).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <xsimd/xsimd.hpp>

#include "slim/backend/scalar/optimizer.hpp"

namespace slim::backend::detail {

template <class Arch, class Base>
struct simd_optimizer : Base {};

}  // namespace slim::backend::detail
