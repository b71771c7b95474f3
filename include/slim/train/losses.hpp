// slim — training losses with their gradients: binary cross-entropy on logits (numerically stable), and
// softmax cross-entropy over a logits matrix or over the rows of an output table (logits = h·Eᵀ computed
// chunk by chunk, so a large catalogue never materialises an (N, V) matrix). Each returns the SUM of the
// per-row losses (in double, row order) and adds scale·∂/∂ to the gradients; callers pick the scale
// (1/count for a mean).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "slim/backend/kernels.hpp"
#include "slim/core/error.hpp"
#include "slim/nn/context.hpp"

namespace slim::train {

/// Σᵢ wᵢ·[max(xᵢ,0) − xᵢ·yᵢ + log(1 + e^−|xᵢ|)] (= −y·log σ(x) − (1−y)·log(1−σ(x))) for labels y ∈ [0,1]
/// and weights w (empty: all 1); grad[i] += scale·wᵢ·(σ(xᵢ) − yᵢ) when grad is not empty.
template <class T>
double bce_with_logits(std::span<const T> logits, std::span<const T> labels, std::span<const T> weights,
                       std::span<T> grad, T scale) {
  constexpr const char* where = "slim::train::bce_with_logits";
  const std::size_t n = logits.size();
  require(labels.size() == n, where, "labels has ", labels.size(), " entries, logits ", n);
  require(weights.empty() || weights.size() == n, where, "weights has ", weights.size(), " entries, logits ", n);
  require(grad.empty() || grad.size() == n, where, "grad has ", grad.size(), " entries, logits ", n);
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const T x = logits[i], y = labels[i], w = weights.empty() ? T(1) : weights[i];
    const T e = std::exp(-std::abs(x));
    total += static_cast<double>(w * ((x > T(0) ? x : T(0)) - x * y + std::log1p(e)));
    if (!grad.empty()) {
      const T sig = x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
      grad[i] += scale * w * (sig - y);
    }
  }
  return total;
}

/// Σₙ (lse(logits[n]) − logits[n, tₙ]) over rows with tₙ ≠ ignore_index; dlogits += scale·(softmax − onehot)
/// on those rows (dlogits may be empty). Returns the sum; `counted` receives the number of rows counted.
///                                                         logits, dlogits (N,V), targets (N) in [0,V)
template <class Backend, class T>
double softmax_cross_entropy(const Backend& be, matrix_view<const T> logits, vector_view<const std::int32_t> targets,
                             std::int32_t ignore_index, matrix_view<T> dlogits, T scale, index_t* counted = nullptr) {
  using K = kernels<Backend>;
  const index_t n = logits.extent(0);
  tensor<T, 1> loss({n}), lse({n});
  const index_t c = K::cross_entropy_forward(be, logits, targets, ignore_index, loss.view(), lse.view());
  if (counted) *counted = c;
  double total = 0;
  for (index_t i = 0; i < n; ++i) total += static_cast<double>(loss(i));
  if (!dlogits.empty()) {
    tensor<T, 1> dloss({n});
    for (auto& x : dloss) x = scale;
    K::cross_entropy_backward(be, logits, targets, vector_view<const T>(lse.view()), ignore_index,
                              vector_view<const T>(dloss.view()), dlogits);
  }
  return total;
}

/// Full softmax cross-entropy of hidden rows h against every row of an output table E: logits = h·Eᵀ,
/// loss = Σₙ (lse(logits[n]) − logits[n, tₙ]) over rows with tₙ ≠ ignore_index. Computed over chunks of
/// rows; adds dh += scale·dlogits·E and dE += scale·dlogitsᵀ·h (either may be empty). Chunk boundaries
/// depend on the shapes only; `scratch` and `dlogits_scratch` hold one chunk's logits and gradients.
///                                               h, dh (N,D); table, dtable (V,D); targets (N) in [0,V)
template <class Backend, class T>
double table_softmax_cross_entropy(const Backend& be, matrix_view<const T> h, matrix_view<const T> table,
                                   vector_view<const std::int32_t> targets, std::int32_t ignore_index,
                                   matrix_view<T> dh, matrix_view<T> dtable, T scale, nn::buffer<T>& scratch,
                                   nn::buffer<T>& dlogits_scratch) {
  using K = kernels<Backend>;
  constexpr const char* where = "slim::train::table_softmax_cross_entropy";
  const index_t n = h.extent(0), v = table.extent(0), d = h.extent(1);
  require(table.extent(1) == d, where, "table has ", table.extent(1), " columns, h ", d);
  require_shape(targets, {n}, where, "targets");
  if (!dh.empty()) require_shape(dh, {n, d}, where, "dh");
  if (!dtable.empty()) require_shape(dtable, {v, d}, where, "dtable");
  const index_t chunk = std::max<index_t>(64, (index_t{1} << 20) / std::max<index_t>(1, v));
  const bool backward = !dh.empty() || !dtable.empty();
  double total = 0;
  for (index_t r0 = 0; r0 < n; r0 += chunk) {
    const index_t m = std::min(chunk, n - r0);
    const auto hc = nn::row_range(h, r0, m);
    const auto tc = subview(targets, {r0}, {m});
    const auto logits = scratch.resize(m, v);
    K::gemm(be, T(1), hc, transpose(table), T(0), logits);
    if (!backward) {
      total += softmax_cross_entropy<Backend, T>(be, logits, tc, ignore_index, matrix_view<T>{}, scale);
      continue;
    }
    tensor<T, 1> loss({m}), lse({m}), dloss({m});
    K::cross_entropy_forward(be, matrix_view<const T>(logits), tc, ignore_index, loss.view(), lse.view());
    for (index_t i = 0; i < m; ++i) total += static_cast<double>(loss(i));
    for (auto& x : dloss) x = scale;
    const auto dlogits = dlogits_scratch.zeros(m, v);
    K::cross_entropy_backward(be, matrix_view<const T>(logits), tc, vector_view<const T>(lse.view()), ignore_index,
                              vector_view<const T>(dloss.view()), dlogits);
    if (!dh.empty()) K::gemm(be, T(1), matrix_view<const T>(dlogits), table, T(1), nn::row_range(dh, r0, m));
    if (!dtable.empty()) K::gemm(be, T(1), transpose(matrix_view<const T>(dlogits)), hc, T(1), dtable);
  }
  return total;
}

}  // namespace slim::train
