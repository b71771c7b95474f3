// slim — scalar reference kernels: rotary position embedding (forward beside backward). See docs/kernels.md.
// Rotate-half convention of HF LLaMA: the head's first half pairs with its second half, element i with
// element i + Dh/2, and θᵢ = pos·inv_freqᵢ is formed in T (float: one rounded product, as HF does). Each
// row carries its own position, so a KV-cache offset is just larger positions.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "slim/backend/common.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/error.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::detail {

template <class T, std::size_t R>
void rope_require(const tensor_view<T, R>& v, std::array<index_t, R> shape, const char* where, const char* name) {
  require_shape(v, shape, where, name);
  if (!v.has_unit_inner_stride()) throw error(where, name, "the innermost stride must be 1");
}

/// As rope_require, for an output: no two elements may share memory (the parallel backends write rows
/// concurrently). Checked conservatively: each stride covers the span of the dimensions inside it.
template <class T, std::size_t R>
void rope_require_out(const tensor_view<T, R>& v, std::array<index_t, R> shape, const char* where, const char* name) {
  rope_require(v, shape, where, name);
  if (v.size() == 0) return;
  index_t span = 1;
  for (std::size_t r = R; r-- > 0;) {
    const index_t s = v.stride(r) < 0 ? -v.stride(r) : v.stride(r);
    if (v.extent(r) > 1 && s < span) throw error(where, name, "an output's elements overlap");
    if (v.extent(r) > 0) span += (v.extent(r) - 1) * s;
  }
}

/// Shared by rope_forward / rope_backward of every CPU backend: `a` is x or dy, `b` is y or dx.
template <class T>
void check_rope(const char* where, const char* a_name, const char* b_name, tensor_view<const T, 3> a,
                vector_view<const std::int32_t> pos, vector_view<const T> inv_freq, tensor_view<T, 3> b) {
  const index_t n = a.extent(0), h = a.extent(1), dh = a.extent(2);
  rope_require(a, {n, h, dh}, where, a_name);
  if (dh % 2 != 0) throw error(where, a_name, "the head dimension " + std::to_string(dh) + " must be even");
  rope_require_out(b, {n, h, dh}, where, b_name);
  rope_require(pos, {n}, where, "pos");
  rope_require(inv_freq, {dh / 2}, where, "inv_freq");
}

struct scalar_rope {
  /// θᵢ = pos·inv_freqᵢ, h = Dh/2: yᵢ = xᵢcosθᵢ − x_{i+h}sinθᵢ, y_{i+h} = x_{i+h}cosθᵢ + xᵢsinθᵢ.
  ///                                        x,y (N,H,Dh), pos (N) int32, inv_freq (Dh/2); y may be x
  template <class T>
  static void rope_forward(const scalar&, tensor_view<in_t<T>, 3> x, vector_view<const std::int32_t> pos,
                           vector_view<in_t<T>> inv_freq, tensor_view<T, 3> y) {
    check_rope<T>("rope_forward", "x", "y", x, pos, inv_freq, y);
    const index_t n = x.extent(0), heads = x.extent(1), half = x.extent(2) / 2;
    for (index_t r = 0; r < n; ++r)
      for (index_t i = 0; i < half; ++i) {
        const T theta = static_cast<T>(pos(r)) * inv_freq(i);
        const T c = std::cos(theta), s = std::sin(theta);
        for (index_t hd = 0; hd < heads; ++hd) {
          const T a = x(r, hd, i), b = x(r, hd, i + half);
          y(r, hd, i) = a * c - b * s;
          y(r, hd, i + half) = b * c + a * s;
        }
      }
  }

  /// dx += Rᵀ·dy: dxᵢ += dyᵢcosθᵢ + dy_{i+h}sinθᵢ, dx_{i+h} += dy_{i+h}cosθᵢ − dyᵢsinθᵢ.   shapes as forward
  template <class T>
  static void rope_backward(const scalar&, tensor_view<in_t<T>, 3> dy, vector_view<const std::int32_t> pos,
                            vector_view<in_t<T>> inv_freq, tensor_view<T, 3> dx) {
    check_rope<T>("rope_backward", "dy", "dx", dy, pos, inv_freq, dx);
    const index_t n = dy.extent(0), heads = dy.extent(1), half = dy.extent(2) / 2;
    for (index_t r = 0; r < n; ++r)
      for (index_t i = 0; i < half; ++i) {
        const T theta = static_cast<T>(pos(r)) * inv_freq(i);
        const T c = std::cos(theta), s = std::sin(theta);
        for (index_t hd = 0; hd < heads; ++hd) {
          const T a = dy(r, hd, i), b = dy(r, hd, i + half);
          dx(r, hd, i) += a * c + b * s;
          dx(r, hd, i + half) += b * c - a * s;
        }
      }
  }
};

}  // namespace slim::backend::detail
