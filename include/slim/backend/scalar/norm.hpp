// slim — scalar reference kernels: RMSNorm and LayerNorm over the last dimension (forward beside backward).
// See docs/kernels.md. Reductions run in index order and accumulate in at least double precision, so the
// oracle's float results carry only the final roundings. The argument checks here are shared with the
// simd backend (backend/simd/norm.hpp), so both reject the same misuse with the same message.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "slim/backend/common.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/error.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::detail {

/// True for a default-constructed (all extents 0) view: an optional output the caller does not want.
template <class T, std::size_t R>
constexpr bool norm_absent(const tensor_view<T, R>& v) noexcept {
  for (std::size_t r = 0; r < R; ++r)
    if (v.extent(r) != 0) return false;
  return true;
}

/// Shape check plus the row contract: the innermost stride is 1 (or the last extent is at most 1).
template <class T, std::size_t R>
void norm_require(const tensor_view<T, R>& v, std::array<index_t, R> shape, const char* where, const char* name) {
  require_shape(v, shape, where, name);
  if (!v.has_unit_inner_stride()) throw error(where, name, "the innermost stride must be 1");
}
/// As norm_require, for an output: no two elements may share memory (the parallel backends write rows
/// concurrently). Checked conservatively: each stride covers the span of the dimensions inside it.
template <class T, std::size_t R>
void norm_require_out(const tensor_view<T, R>& v, std::array<index_t, R> shape, const char* where, const char* name) {
  norm_require(v, shape, where, name);
  if (v.size() == 0) return;
  index_t span = 1;
  for (std::size_t r = R; r-- > 0;) {
    const index_t s = v.stride(r) < 0 ? -v.stride(r) : v.stride(r);
    if (v.extent(r) > 1 && s < span) throw error(where, name, "an output's elements overlap");
    if (v.extent(r) > 0) span += (v.extent(r) - 1) * s;
  }
}

template <class T>
void check_rmsnorm_forward(matrix_view<const T> x, vector_view<const T> w, T eps, matrix_view<T> y,
                           vector_view<T> rstd) {
  constexpr const char* where = "rmsnorm_forward";
  const index_t n = x.extent(0), d = x.extent(1);
  norm_require(x, {n, d}, where, "x");
  norm_require(w, {d}, where, "w");
  norm_require_out(y, {n, d}, where, "y");
  if (!norm_absent(rstd)) norm_require_out(rstd, {n}, where, "rstd");
  if (!(eps >= T(0))) throw error(where, "eps", "must be a non-negative number");
}

template <class T>
void check_rmsnorm_backward(matrix_view<const T> x, vector_view<const T> w, vector_view<const T> rstd,
                            matrix_view<const T> dy, matrix_view<T> dx, vector_view<T> dw) {
  constexpr const char* where = "rmsnorm_backward";
  const index_t n = x.extent(0), d = x.extent(1);
  norm_require(x, {n, d}, where, "x");
  norm_require(w, {d}, where, "w");
  norm_require(rstd, {n}, where, "rstd");
  norm_require(dy, {n, d}, where, "dy");
  if (!norm_absent(dx)) norm_require_out(dx, {n, d}, where, "dx");
  if (!norm_absent(dw)) norm_require_out(dw, {d}, where, "dw");
}

template <class T>
void check_layernorm_forward(matrix_view<const T> x, vector_view<const T> w, vector_view<const T> b, T eps,
                             matrix_view<T> y, vector_view<T> mean, vector_view<T> rstd) {
  constexpr const char* where = "layernorm_forward";
  const index_t n = x.extent(0), d = x.extent(1);
  norm_require(x, {n, d}, where, "x");
  norm_require(w, {d}, where, "w");
  norm_require(b, {d}, where, "b");
  norm_require_out(y, {n, d}, where, "y");
  if (!norm_absent(mean)) norm_require_out(mean, {n}, where, "mean");
  if (!norm_absent(rstd)) norm_require_out(rstd, {n}, where, "rstd");
  if (!(eps >= T(0))) throw error(where, "eps", "must be a non-negative number");
}

template <class T>
void check_layernorm_backward(matrix_view<const T> x, vector_view<const T> w, vector_view<const T> mean,
                              vector_view<const T> rstd, matrix_view<const T> dy, matrix_view<T> dx, vector_view<T> dw,
                              vector_view<T> db) {
  constexpr const char* where = "layernorm_backward";
  const index_t n = x.extent(0), d = x.extent(1);
  norm_require(x, {n, d}, where, "x");
  norm_require(w, {d}, where, "w");
  norm_require(mean, {n}, where, "mean");
  norm_require(rstd, {n}, where, "rstd");
  norm_require(dy, {n, d}, where, "dy");
  if (!norm_absent(dx)) norm_require_out(dx, {n, d}, where, "dx");
  if (!norm_absent(dw)) norm_require_out(dw, {d}, where, "dw");
  if (!norm_absent(db)) norm_require_out(db, {d}, where, "db");
}

/// Normalisation over the last dimension. Optional outputs (saved statistics in forward, any gradient in
/// backward) may be passed as a default-constructed view to skip them. y may be x (in place).
struct scalar_norm {
  /// RMSNorm: rstd = 1/√(mean(x²)+ε), y = x·rstd·w.                  x,y (N,D), w (D), rstd (N) or absent
  template <class T>
  static void rmsnorm_forward(const scalar&, matrix_view<in_t<T>> x, vector_view<in_t<T>> w,
                              std::type_identity_t<T> eps, matrix_view<T> y, vector_view<T> rstd) {
    check_rmsnorm_forward<T>(x, w, eps, y, rstd);
    using acc = std::common_type_t<T, double>;
    const index_t n = x.extent(0), d = x.extent(1);
    for (index_t r = 0; r < n; ++r) {
      acc ss = 0;
      for (index_t j = 0; j < d; ++j) ss += static_cast<acc>(x(r, j)) * static_cast<acc>(x(r, j));
      const T rs = static_cast<T>(1 / std::sqrt((d > 0 ? ss / static_cast<acc>(d) : acc{0}) + static_cast<acc>(eps)));
      for (index_t j = 0; j < d; ++j) y(r, j) = x(r, j) * rs * w(j);
      if (!norm_absent(rstd)) rstd(r) = rs;
    }
  }

  /// dx += rstd·(w⊙dy) − x·rstd³·mean(x⊙w⊙dy); dw += Σₙ dy⊙x·rstd.   shapes as forward; dx, dw may be absent
  template <class T>
  static void rmsnorm_backward(const scalar&, matrix_view<in_t<T>> x, vector_view<in_t<T>> w, vector_view<in_t<T>> rstd,
                               matrix_view<in_t<T>> dy, matrix_view<T> dx, vector_view<T> dw) {
    check_rmsnorm_backward<T>(x, w, rstd, dy, dx, dw);
    using acc = std::common_type_t<T, double>;
    const index_t n = x.extent(0), d = x.extent(1);
    const bool want_dx = !norm_absent(dx), want_dw = !norm_absent(dw);
    std::vector<acc> dw_sum(want_dw ? static_cast<std::size_t>(d) : 0, acc{0});
    for (index_t r = 0; r < n; ++r) {
      const acc rs = rstd(r);
      if (want_dx) {
        acc dot = 0;
        for (index_t j = 0; j < d; ++j)
          dot += static_cast<acc>(x(r, j)) * static_cast<acc>(w(j)) * static_cast<acc>(dy(r, j));
        const acc c = d > 0 ? rs * rs * rs * dot / static_cast<acc>(d) : acc{0};
        for (index_t j = 0; j < d; ++j)
          dx(r, j) +=
              static_cast<T>(rs * static_cast<acc>(w(j)) * static_cast<acc>(dy(r, j)) - c * static_cast<acc>(x(r, j)));
      }
      if (want_dw)
        for (index_t j = 0; j < d; ++j)
          dw_sum[static_cast<std::size_t>(j)] += static_cast<acc>(dy(r, j)) * static_cast<acc>(x(r, j)) * rs;
    }
    if (want_dw)
      for (index_t j = 0; j < d; ++j) dw(j) += static_cast<T>(dw_sum[static_cast<std::size_t>(j)]);
  }

  /// LayerNorm: μ = mean(x), rstd = 1/√(var(x)+ε) (biased var), y = (x−μ)·rstd·w + b.
  ///                                                   x,y (N,D), w,b (D), mean,rstd (N) or absent
  template <class T>
  static void layernorm_forward(const scalar&, matrix_view<in_t<T>> x, vector_view<in_t<T>> w, vector_view<in_t<T>> b,
                                std::type_identity_t<T> eps, matrix_view<T> y, vector_view<T> mean,
                                vector_view<T> rstd) {
    check_layernorm_forward<T>(x, w, b, eps, y, mean, rstd);
    using acc = std::common_type_t<T, double>;
    const index_t n = x.extent(0), d = x.extent(1);
    for (index_t r = 0; r < n; ++r) {
      acc s = 0;
      for (index_t j = 0; j < d; ++j) s += static_cast<acc>(x(r, j));
      const acc mu = d > 0 ? s / static_cast<acc>(d) : acc{0};
      acc ss = 0;
      for (index_t j = 0; j < d; ++j) {
        const acc c = static_cast<acc>(x(r, j)) - mu;
        ss += c * c;
      }
      const T m = static_cast<T>(mu);
      const T rs = static_cast<T>(1 / std::sqrt((d > 0 ? ss / static_cast<acc>(d) : acc{0}) + static_cast<acc>(eps)));
      for (index_t j = 0; j < d; ++j) y(r, j) = (x(r, j) - m) * rs * w(j) + b(j);
      if (!norm_absent(mean)) mean(r) = m;
      if (!norm_absent(rstd)) rstd(r) = rs;
    }
  }

  /// x̂ = (x−μ)·rstd, g = w⊙dy: dx += rstd·(g − mean(g) − x̂·mean(g⊙x̂)); dw += Σₙ dy⊙x̂; db += Σₙ dy.
  ///                                                   shapes as forward; dx, dw, db may be absent
  template <class T>
  static void layernorm_backward(const scalar&, matrix_view<in_t<T>> x, vector_view<in_t<T>> w,
                                 vector_view<in_t<T>> mean, vector_view<in_t<T>> rstd, matrix_view<in_t<T>> dy,
                                 matrix_view<T> dx, vector_view<T> dw, vector_view<T> db) {
    check_layernorm_backward<T>(x, w, mean, rstd, dy, dx, dw, db);
    using acc = std::common_type_t<T, double>;
    const index_t n = x.extent(0), d = x.extent(1);
    const bool want_dx = !norm_absent(dx), want_dw = !norm_absent(dw), want_db = !norm_absent(db);
    std::vector<acc> dw_sum(want_dw ? static_cast<std::size_t>(d) : 0, acc{0});
    std::vector<acc> db_sum(want_db ? static_cast<std::size_t>(d) : 0, acc{0});
    for (index_t r = 0; r < n; ++r) {
      const acc mu = mean(r), rs = rstd(r);
      if (want_dx) {
        acc sg = 0, sgx = 0;
        for (index_t j = 0; j < d; ++j) {
          const acc g = static_cast<acc>(w(j)) * static_cast<acc>(dy(r, j));
          sg += g;
          sgx += g * (static_cast<acc>(x(r, j)) - mu) * rs;
        }
        const acc mg = d > 0 ? sg / static_cast<acc>(d) : acc{0};
        const acc mgx = d > 0 ? sgx / static_cast<acc>(d) : acc{0};
        for (index_t j = 0; j < d; ++j) {
          const acc xh = (static_cast<acc>(x(r, j)) - mu) * rs;
          const acc g = static_cast<acc>(w(j)) * static_cast<acc>(dy(r, j));
          dx(r, j) += static_cast<T>(rs * (g - mg - xh * mgx));
        }
      }
      for (index_t j = 0; j < d; ++j) {
        if (want_dw)
          dw_sum[static_cast<std::size_t>(j)] += static_cast<acc>(dy(r, j)) * (static_cast<acc>(x(r, j)) - mu) * rs;
        if (want_db) db_sum[static_cast<std::size_t>(j)] += static_cast<acc>(dy(r, j));
      }
    }
    for (index_t j = 0; j < d; ++j) {
      if (want_dw) dw(j) += static_cast<T>(dw_sum[static_cast<std::size_t>(j)]);
      if (want_db) db(j) += static_cast<T>(db_sum[static_cast<std::size_t>(j)]);
    }
  }
};

}  // namespace slim::backend::detail
