// slim — scalar reference kernels: fused softmax cross-entropy from logits (forward beside backward).
// See docs/kernels.md. Rows whose target equals ignore_index count for nothing (PyTorch's ignore_index).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "slim/backend/common.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::detail {

/// The shapes alone: logits (N,V) with a unit inner stride, targets (N) (any memory space: reads no data; the
/// CUDA backend checks the targets themselves on the device).
template <class T, class S>
void check_cross_entropy_shapes(const char* where, const tensor_view<const T, 2, S>& logits,
                                const tensor_view<const std::int32_t, 1, S>& targets) {
  require_valid(logits, where, "logits");
  require(logits.has_unit_inner_stride(), where, "logits need a unit column stride");
  require_shape(targets, {logits.extent(0)}, where, "targets");
}

/// Validates logits (N,V) (unit inner stride), targets (N) and every target: each lies in [0,V) or equals
/// ignore_index, else throws naming the first bad position. Returns the number of counted rows.
template <class T>
index_t check_cross_entropy(const char* where, matrix_view<const T> logits, vector_view<const std::int32_t> targets,
                            std::int32_t ignore_index) {
  check_cross_entropy_shapes<T>(where, logits, targets);
  const index_t vocab = logits.extent(1);
  index_t counted = 0;
  for (index_t n = 0; n < targets.extent(0); ++n) {
    const std::int32_t t = targets(n);
    if (t == ignore_index) continue;
    if (t < 0 || t >= vocab)
      throw error(where, "targets[" + std::to_string(n) + "]",
                  "target " + std::to_string(t) + " lies outside [0, " + std::to_string(vocab) +
                      ") and is not ignore_index " + std::to_string(ignore_index));
    ++counted;
  }
  return counted;
}

struct scalar_cross_entropy {
  /// lse[n] = log Σ_v exp(logits[n,v]) (every row); loss[n] = lse[n] − logits[n,tₙ], 0 where tₙ = ignore_index.
  /// Returns the number of rows counted. logits (N,V); targets (N) int32; loss, lse (N).
  template <class T>
  static index_t cross_entropy_forward(const backend::scalar&, matrix_view<in_t<T>> logits,
                                       vector_view<const std::int32_t> targets, std::int32_t ignore_index,
                                       vector_view<T> loss, vector_view<T> lse) {
    constexpr const char* where = "slim::cross_entropy_forward";
    const index_t counted = check_cross_entropy<T>(where, logits, targets, ignore_index);
    const index_t rows = logits.extent(0), vocab = logits.extent(1);
    require_shape(loss, {rows}, where, "loss");
    require_shape(lse, {rows}, where, "lse");
    for (index_t n = 0; n < rows; ++n) {
      T mx = -std::numeric_limits<T>::infinity();
      for (index_t c = 0; c < vocab; ++c) mx = std::max(mx, logits(n, c));
      T sum = T(0);
      for (index_t c = 0; c < vocab; ++c) sum += std::exp(logits(n, c) - mx);
      lse(n) = mx + std::log(sum);
      loss(n) = targets(n) == ignore_index ? T(0) : lse(n) - logits(n, targets(n));
    }
    return counted;
  }

  /// dlogits[n] += dloss[n]·(softmax(logits[n]) − onehot(tₙ)); rows with tₙ = ignore_index are untouched.
  /// logits, dlogits (N,V); targets (N) int32; lse, dloss (N).
  template <class T>
  static void cross_entropy_backward(const backend::scalar&, matrix_view<in_t<T>> logits,
                                     vector_view<const std::int32_t> targets, vector_view<in_t<T>> lse,
                                     std::int32_t ignore_index, vector_view<in_t<T>> dloss, matrix_view<T> dlogits) {
    constexpr const char* where = "slim::cross_entropy_backward";
    check_cross_entropy<T>(where, logits, targets, ignore_index);
    const index_t rows = logits.extent(0), vocab = logits.extent(1);
    require_shape(lse, {rows}, where, "lse");
    require_shape(dloss, {rows}, where, "dloss");
    require_shape(dlogits, {rows, vocab}, where, "dlogits");
    require(dlogits.has_unit_inner_stride(), where, "dlogits need a unit column stride");
    for (index_t n = 0; n < rows; ++n) {
      if (targets(n) == ignore_index) continue;
      for (index_t c = 0; c < vocab; ++c) {
        const T onehot = c == targets(n) ? T(1) : T(0);
        dlogits(n, c) += dloss(n) * (std::exp(logits(n, c) - lse(n)) - onehot);
      }
    }
  }
};

}  // namespace slim::backend::detail
