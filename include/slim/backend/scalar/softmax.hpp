// slim — scalar reference kernels: row softmax with scale and causal mask (forward beside backward).
// See docs/kernels.md. Row i of a (S,L) slice may see columns j ≤ i + (L−S) under the causal mask, i.e. the
// prefix [0, softmax_visible(i, S, L)); masked entries are 0, and a row with nothing visible (or only −∞
// inputs) is all 0. Stable form: the row maximum of scale·x is subtracted before exp. The sum accumulates
// in at least double, in column order.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

#include "slim/backend/common.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/error.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::detail {

/// Number of leading columns row `i` of an (S,L) slice sees: L, or under the causal mask
/// min(L, max(0, i + L − S + 1)).
constexpr index_t softmax_visible(bool causal, index_t i, index_t s, index_t l) noexcept {
  return causal ? std::clamp<index_t>(i + (l - s) + 1, 0, l) : l;
}

template <class T, std::size_t R>
void softmax_require(const tensor_view<T, R>& v, std::array<index_t, R> shape, const char* where, const char* name) {
  require_shape(v, shape, where, name);
  if (!v.has_unit_inner_stride()) throw error(where, name, "the innermost stride must be 1");
}

/// As softmax_require, for an output: no two elements may share memory (the parallel backends write rows
/// concurrently). Checked conservatively: each stride covers the span of the dimensions inside it.
template <class T, std::size_t R>
void softmax_require_out(const tensor_view<T, R>& v, std::array<index_t, R> shape, const char* where,
                         const char* name) {
  softmax_require(v, shape, where, name);
  if (v.size() == 0) return;
  index_t span = 1;
  for (std::size_t r = R; r-- > 0;) {
    const index_t s = v.stride(r) < 0 ? -v.stride(r) : v.stride(r);
    if (v.extent(r) > 1 && s < span) throw error(where, name, "an output's elements overlap");
    if (v.extent(r) > 0) span += (v.extent(r) - 1) * s;
  }
}

template <class T>
void check_softmax_forward(tensor_view<const T, 3> x, T scale, tensor_view<T, 3> y) {
  constexpr const char* where = "softmax_forward";
  const std::array<index_t, 3> shape{x.extent(0), x.extent(1), x.extent(2)};
  softmax_require(x, shape, where, "x");
  softmax_require_out(y, shape, where, "y");
  if (!std::isfinite(static_cast<double>(scale))) throw error(where, "scale", "must be finite");
}

template <class T>
void check_softmax_backward(tensor_view<const T, 3> y, tensor_view<const T, 3> dy, T scale, tensor_view<T, 3> dx) {
  constexpr const char* where = "softmax_backward";
  const std::array<index_t, 3> shape{y.extent(0), y.extent(1), y.extent(2)};
  softmax_require(y, shape, where, "y");
  softmax_require(dy, shape, where, "dy");
  softmax_require_out(dx, shape, where, "dx");
  if (!std::isfinite(static_cast<double>(scale))) throw error(where, "scale", "must be finite");
}

struct scalar_softmax {
  /// y = softmax(scale·x) per row over L; causal: column j visible iff j ≤ i + (L−S); masked → 0.
  ///                                                                      x,y (Bt,S,L); y may be x
  template <class T>
  static void softmax_forward(const scalar&, tensor_view<in_t<T>, 3> x, std::type_identity_t<T> scale, bool causal,
                              tensor_view<T, 3> y) {
    check_softmax_forward<T>(x, scale, y);
    using acc = std::common_type_t<T, double>;
    const index_t bt = x.extent(0), s = x.extent(1), l = x.extent(2);
    for (index_t b = 0; b < bt; ++b)
      for (index_t i = 0; i < s; ++i) {
        const index_t lim = softmax_visible(causal, i, s, l);
        T m = -std::numeric_limits<T>::infinity();
        for (index_t j = 0; j < lim; ++j) m = std::max(m, scale * x(b, i, j));
        if (m == -std::numeric_limits<T>::infinity()) {  // nothing visible, or every visible input is −∞
          for (index_t j = 0; j < l; ++j) y(b, i, j) = T(0);
          continue;
        }
        acc sum = 0;
        for (index_t j = 0; j < lim; ++j) {
          const T e = std::exp(scale * x(b, i, j) - m);
          y(b, i, j) = e;
          sum += static_cast<acc>(e);
        }
        for (index_t j = 0; j < lim; ++j) y(b, i, j) = static_cast<T>(static_cast<acc>(y(b, i, j)) / sum);
        for (index_t j = lim; j < l; ++j) y(b, i, j) = T(0);
      }
  }

  /// dx += scale·y⊙(dy − Σ y⊙dy) per row (masked entries have y = 0 and get nothing).   (Bt,S,L)
  template <class T>
  static void softmax_backward(const scalar&, tensor_view<in_t<T>, 3> y, tensor_view<in_t<T>, 3> dy,
                               std::type_identity_t<T> scale, tensor_view<T, 3> dx) {
    check_softmax_backward<T>(y, dy, scale, dx);
    using acc = std::common_type_t<T, double>;
    const index_t bt = y.extent(0), s = y.extent(1), l = y.extent(2);
    for (index_t b = 0; b < bt; ++b)
      for (index_t i = 0; i < s; ++i) {
        acc dot = 0;
        for (index_t j = 0; j < l; ++j) dot += static_cast<acc>(y(b, i, j)) * static_cast<acc>(dy(b, i, j));
        for (index_t j = 0; j < l; ++j)
          dx(b, i, j) += static_cast<T>(static_cast<acc>(scale) * static_cast<acc>(y(b, i, j)) *
                                        (static_cast<acc>(dy(b, i, j)) - dot));
      }
  }
};

}  // namespace slim::backend::detail
