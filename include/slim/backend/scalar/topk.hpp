// slim — scalar reference kernels: per-row top-k (forward beside backward). See docs/kernels.md.
//
// Ranking: larger values first; equal values by lower column first; NaN ranks below every number (NaNs
// among themselves by column). −0 and +0 are equal.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "slim/backend/common.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::detail {

/// The largest k topk_forward accepts.
inline constexpr index_t topk_max_k = 1000;

/// True when (a, column ia) ranks before (b, column ib) in top-k order.
template <class T>
bool topk_ranks_before(T a, index_t ia, T b, index_t ib) noexcept {
  const bool na = std::isnan(a), nb = std::isnan(b);
  if (na != nb) return nb;  // a number ranks before NaN
  if (!na && a != b) return a > b;
  return ia < ib;
}

/// Validates x (N,L), k and the outputs values (N,k), indices (N,k) (all with unit inner strides).
template <class T>
void check_topk(const char* where, matrix_view<const T> x, index_t k, matrix_view<T> values,
                matrix_view<std::int32_t> indices) {
  require_valid(x, where, "x");
  const index_t cols = x.extent(1);
  require(k >= 1 && k <= std::min(cols, topk_max_k), where, "k = ", k, " must lie in [1, min(L = ", cols, ", ",
          topk_max_k, ")]");
  require(cols <= std::numeric_limits<std::int32_t>::max(), where, "rows of ", cols,
          " columns do not fit int32 indices");
  require_shape(values, {x.extent(0), k}, where, "values");
  require_shape(indices, {x.extent(0), k}, where, "indices");
  require(x.has_unit_inner_stride() && values.has_unit_inner_stride() && indices.has_unit_inner_stride(), where,
          "x, values and indices need unit column strides");
}

/// Validates indices, dvalues (N,k) and dx (N,L) and every index against [0,L) before any data is touched.
template <class T>
void check_topk_backward(const char* where, matrix_view<const std::int32_t> indices, matrix_view<const T> dvalues,
                         matrix_view<T> dx) {
  require_valid(indices, where, "indices");
  require_valid(dx, where, "dx");
  require_shape(dvalues, indices.extents(), where, "dvalues");
  require(dx.extent(0) == indices.extent(0), where, "dx has ", dx.extent(0), " rows where indices has ",
          indices.extent(0));
  require(dx.has_unit_inner_stride(), where, "dx needs a unit column stride");
  for (index_t n = 0; n < indices.extent(0); ++n)
    for (index_t j = 0; j < indices.extent(1); ++j)
      if (indices(n, j) < 0 || indices(n, j) >= dx.extent(1))
        throw error(
            where, "indices[" + std::to_string(n) + "," + std::to_string(j) + "]",
            "index " + std::to_string(indices(n, j)) + " lies outside [0, " + std::to_string(dx.extent(1)) + ")");
}

struct scalar_topk {
  /// values[n] = the k largest of x[n] in descending order, indices[n] their columns.
  /// x (N,L); values, indices (N,k) (indices int32); 1 ≤ k ≤ min(L, 1000).
  template <class T>
  static void topk_forward(const backend::scalar&, matrix_view<in_t<T>> x, index_t k, matrix_view<T> values,
                           matrix_view<std::int32_t> indices) {
    check_topk<T>("slim::topk_forward", x, k, values, indices);
    std::vector<index_t> order(static_cast<std::size_t>(x.extent(1)));
    for (index_t n = 0; n < x.extent(0); ++n) {
      for (index_t c = 0; c < x.extent(1); ++c) order[static_cast<std::size_t>(c)] = c;
      std::sort(order.begin(), order.end(),
                [&](index_t a, index_t b) { return topk_ranks_before(x(n, a), a, x(n, b), b); });
      for (index_t j = 0; j < k; ++j) {
        const index_t c = order[static_cast<std::size_t>(j)];
        values(n, j) = x(n, c);
        indices(n, j) = static_cast<std::int32_t>(c);
      }
    }
  }

  /// dx[n, indices[n,j]] += dvalues[n,j]. indices, dvalues (N,k); dx (N,L); an index outside [0,L) throws.
  template <class T>
  static void topk_backward(const backend::scalar&, matrix_view<const std::int32_t> indices,
                            matrix_view<in_t<T>> dvalues, matrix_view<T> dx) {
    check_topk_backward<T>("slim::topk_backward", indices, dvalues, dx);
    for (index_t n = 0; n < indices.extent(0); ++n)
      for (index_t j = 0; j < indices.extent(1); ++j) dx(n, indices(n, j)) += dvalues(n, j);
  }
};

}  // namespace slim::backend::detail
