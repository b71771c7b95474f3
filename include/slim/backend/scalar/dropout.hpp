// slim — scalar reference kernels: dropout (forward beside backward). See docs/kernels.md.
// Element (n,d) is kept iff philox_uniform(seed, offset + n·D + d) ≥ p: a pure function of its index, so
// every backend draws the same mask and backward recomputes it instead of storing it. Kept elements are
// multiplied by 1/(1−p) (computed once, in T); dropped ones are 0.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "slim/backend/common.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/error.hpp"
#include "slim/core/philox.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::detail {

/// Shared by the CPU backends: same shapes, unit innermost strides, 0 ≤ p < 1.
template <class T>
void check_dropout(const char* where, const char* a_name, const char* b_name, matrix_view<const T> a, float p,
                   matrix_view<T> b) {
  const std::array<index_t, 2> shape{a.extent(0), a.extent(1)};
  require_shape(a, shape, where, a_name);
  require_shape(b, shape, where, b_name);
  if (!a.has_unit_inner_stride()) throw error(where, a_name, "the innermost stride must be 1");
  if (!b.has_unit_inner_stride()) throw error(where, b_name, "the innermost stride must be 1");
  if (b.extent(0) > 1 && b.extent(1) > 0 && (b.stride(0) < 0 ? -b.stride(0) : b.stride(0)) < b.extent(1))
    throw error(where, b_name, "an output's rows overlap");
  if (!(p >= 0.0f && p < 1.0f)) throw error(where, "p", "the drop probability must lie in [0, 1)");
}

/// The keep decision of element `index`: philox_uniform(seed, index) ≥ p.
constexpr bool dropout_keep(std::uint64_t seed, std::uint64_t index, float p) noexcept {
  return philox_uniform(seed, index) >= p;
}

struct scalar_dropout {
  /// keep = philox_uniform(seed, offset + n·D + d) ≥ p; y = keep ? x/(1−p) : 0; p = 0 copies.
  ///                                                                             x,y (N,D); y may be x
  template <class T>
  static void dropout_forward(const scalar&, matrix_view<in_t<T>> x, float p, std::uint64_t seed, std::uint64_t offset,
                              matrix_view<T> y) {
    check_dropout<T>("dropout_forward", "x", "y", x, p, y);
    const index_t n = x.extent(0), d = x.extent(1);
    const T scale = T(1) / (T(1) - static_cast<T>(p));
    for (index_t r = 0; r < n; ++r) {
      const std::uint64_t row = offset + static_cast<std::uint64_t>(r) * static_cast<std::uint64_t>(d);
      for (index_t j = 0; j < d; ++j) {
        if (p == 0.0f)
          y(r, j) = x(r, j);
        else
          y(r, j) = dropout_keep(seed, row + static_cast<std::uint64_t>(j), p) ? x(r, j) * scale : T(0);
      }
    }
  }

  /// dx += keep ? dy/(1−p) : 0, the mask recomputed from (seed, offset).                     dy,dx (N,D)
  template <class T>
  static void dropout_backward(const scalar&, matrix_view<in_t<T>> dy, float p, std::uint64_t seed,
                               std::uint64_t offset, matrix_view<T> dx) {
    check_dropout<T>("dropout_backward", "dy", "dx", dy, p, dx);
    const index_t n = dy.extent(0), d = dy.extent(1);
    const T scale = T(1) / (T(1) - static_cast<T>(p));
    for (index_t r = 0; r < n; ++r) {
      const std::uint64_t row = offset + static_cast<std::uint64_t>(r) * static_cast<std::uint64_t>(d);
      for (index_t j = 0; j < d; ++j) {
        if (p == 0.0f)
          dx(r, j) += dy(r, j);
        else if (dropout_keep(seed, row + static_cast<std::uint64_t>(j), p))
          dx(r, j) += dy(r, j) * scale;
      }
    }
  }
};

}  // namespace slim::backend::detail
