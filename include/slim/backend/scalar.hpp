// slim — kernels<backend::scalar>: plain loops over any element type, the oracle for every other backend.
// One op family per header in backend/scalar/; this header assembles them.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "slim/backend/scalar/gemm.hpp"
#include "slim/backend/scalar/norm.hpp"
#include "slim/backend/scalar/rope.hpp"
#include "slim/backend/scalar/softmax.hpp"
#include "slim/backend/scalar/attention.hpp"
#include "slim/backend/scalar/activation.hpp"
#include "slim/backend/scalar/dropout.hpp"
#include "slim/backend/scalar/gru.hpp"
#include "slim/backend/scalar/embedding.hpp"
#include "slim/backend/scalar/cross_entropy.hpp"
#include "slim/backend/scalar/optimizer.hpp"
#include "slim/backend/scalar/topk.hpp"
#include "slim/backend/kernels.hpp"

namespace slim {

template <>
struct kernels<backend::scalar>
    : backend::detail::scalar_gemm,
      backend::detail::scalar_norm,
      backend::detail::scalar_rope,
      backend::detail::scalar_softmax,
      backend::detail::scalar_attention,
      backend::detail::scalar_activation,
      backend::detail::scalar_dropout,
      backend::detail::scalar_gru,
      backend::detail::scalar_embedding,
      backend::detail::scalar_cross_entropy,
      backend::detail::scalar_optimizer,
      backend::detail::scalar_topk {};

}  // namespace slim
