// slim — kernels<backend::simd<Arch>>: xsimd kernels for the architecture the user names. Each op family
// (backend/simd/*.hpp) is a layer that derives from the one below and overrides what it vectorises; the
// bottom layer is kernels<backend::scalar>, so an op that is not ported falls back to the oracle, and so
// does every op for element types other than float.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "slim/backend/scalar.hpp"
#include "slim/backend/simd/gemm.hpp"
#include "slim/backend/simd/norm.hpp"
#include "slim/backend/simd/rope.hpp"
#include "slim/backend/simd/softmax.hpp"
#include "slim/backend/simd/attention.hpp"
#include "slim/backend/simd/activation.hpp"
#include "slim/backend/simd/dropout.hpp"
#include "slim/backend/simd/gru.hpp"
#include "slim/backend/simd/embedding.hpp"
#include "slim/backend/simd/cross_entropy.hpp"
#include "slim/backend/simd/optimizer.hpp"
#include "slim/backend/simd/topk.hpp"

namespace slim {
namespace backend::detail {
template <class Arch>
using simd_layers =
    simd_topk<Arch, simd_optimizer<Arch, simd_cross_entropy<Arch, simd_embedding<Arch, simd_gru<Arch, simd_dropout<Arch, simd_activation<Arch, simd_attention<Arch, simd_softmax<Arch, simd_rope<Arch, simd_norm<Arch, simd_gemm<Arch, kernels<backend::scalar>>>>>>>>>>>>>;
}  // namespace backend::detail

template <class Arch>
struct kernels<backend::simd<Arch>> : backend::detail::simd_layers<Arch> {};

}  // namespace slim
