// slim — the kernel set of a backend: `kernels<B>`, one specialisation per backend tag (CUTLASS-style).
// Include `slim/backend/scalar.hpp` and/or `slim/backend/simd.hpp` for the CPU backends and
// `slim/backend/cuda/kernels.cuh` (from a .cu file) for CUDA. The op list and every signature are in
// docs/kernels.md; each op's header states its formula with shapes beside the code.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "slim/backend/tags.hpp"

namespace slim {

template <class B>
struct kernels {
  static_assert(always_false<B>,
                "slim: no kernels<B> for this backend in this translation unit — include "
                "<slim/backend/scalar.hpp> (backend::scalar), <slim/backend/simd.hpp> (backend::simd<Arch>) "
                "or, from a .cu file compiled by nvcc, <slim/backend/cuda/kernels.cuh> (backend::cuda)");
};

}  // namespace slim
