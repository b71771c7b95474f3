// slim — scalar reference kernels: GRU cell (forward beside backward). See docs/kernels.md.
//
// Gate order (r, z, n) as in PyTorch: columns [0,H) of gx and gh belong to r, [H,2H) to z, [2H,3H) to n.
// gx = x·W_ihᵀ + b_ih and gh = h·W_hhᵀ + b_hh come from GEMMs; these kernels do the elementwise rest.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>

#include "slim/backend/common.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::detail {

/// Validates gx, gh (N,3H) and h (N,H) with unit inner strides; returns H.
template <class T>
index_t check_gru(const char* where, matrix_view<const T> gx, matrix_view<const T> gh, matrix_view<const T> h) {
  require_valid(h, where, "h");
  const index_t n = h.extent(0), hidden = h.extent(1);
  require_shape(gx, {n, 3 * hidden}, where, "gx");
  require_shape(gh, {n, 3 * hidden}, where, "gh");
  require(gx.has_unit_inner_stride() && gh.has_unit_inner_stride() && h.has_unit_inner_stride(), where,
          "gx, gh and h need unit column strides");
  return hidden;
}

/// Checks an output or gradient view of the given shape with a unit inner stride.
template <class T>
void check_gru_output(matrix_view<T> x, index_t rows, index_t cols, const char* where, const char* name) {
  require_shape(x, {rows, cols}, where, name);
  require(x.has_unit_inner_stride(), where, name, " needs a unit column stride");
}

struct scalar_gru {
  /// r = σ(gx_r+gh_r), z = σ(gx_z+gh_z), n = tanh(gx_n + r⊙gh_n), h' = (1−z)⊙n + z⊙h.
  /// gx,gh (N,3H); h,h_out (N,H).
  template <class T>
  static void gru_cell_forward(const backend::scalar&, matrix_view<in_t<T>> gx, matrix_view<in_t<T>> gh,
                               matrix_view<in_t<T>> h, matrix_view<T> h_out) {
    constexpr const char* where = "slim::gru_cell_forward";
    const index_t hidden = check_gru<T>(where, gx, gh, h);
    check_gru_output(h_out, h.extent(0), hidden, where, "h_out");
    for (index_t i = 0; i < h.extent(0); ++i)
      for (index_t c = 0; c < hidden; ++c) {
        const T r = T(1) / (T(1) + std::exp(-(gx(i, c) + gh(i, c))));
        const T z = T(1) / (T(1) + std::exp(-(gx(i, hidden + c) + gh(i, hidden + c))));
        const T nn = std::tanh(gx(i, 2 * hidden + c) + r * gh(i, 2 * hidden + c));
        h_out(i, c) = (T(1) - z) * nn + z * h(i, c);
      }
  }

  /// Gates recomputed from gx, gh; with dn = dh'⊙(1−z)⊙(1−n²): dgx_n += dn, dgh_n += dn⊙r,
  /// dgx_r = dgh_r += dn⊙gh_n⊙r(1−r), dgx_z = dgh_z += dh'⊙(h−n)⊙z(1−z), dh += dh'⊙z.
  /// Shapes as forward, dh_out (N,H); an empty dgx, dgh or dh is skipped.
  template <class T>
  static void gru_cell_backward(const backend::scalar&, matrix_view<in_t<T>> gx, matrix_view<in_t<T>> gh,
                                matrix_view<in_t<T>> h, matrix_view<in_t<T>> dh_out, matrix_view<T> dgx,
                                matrix_view<T> dgh, matrix_view<T> dh) {
    constexpr const char* where = "slim::gru_cell_backward";
    const index_t hidden = check_gru<T>(where, gx, gh, h);
    const index_t rows = h.extent(0);
    check_gru_output(dh_out, rows, hidden, where, "dh_out");
    const bool want_dgx = !dgx.empty(), want_dgh = !dgh.empty(), want_dh = !dh.empty();
    if (want_dgx) check_gru_output(dgx, rows, 3 * hidden, where, "dgx");
    if (want_dgh) check_gru_output(dgh, rows, 3 * hidden, where, "dgh");
    if (want_dh) check_gru_output(dh, rows, hidden, where, "dh");
    for (index_t i = 0; i < rows; ++i)
      for (index_t c = 0; c < hidden; ++c) {
        const T r = T(1) / (T(1) + std::exp(-(gx(i, c) + gh(i, c))));
        const T z = T(1) / (T(1) + std::exp(-(gx(i, hidden + c) + gh(i, hidden + c))));
        const T ghn = gh(i, 2 * hidden + c);
        const T nn = std::tanh(gx(i, 2 * hidden + c) + r * ghn);
        const T g = dh_out(i, c);
        const T dn = g * (T(1) - z) * (T(1) - nn * nn);  // through tanh
        const T dr = dn * ghn * r * (T(1) - r);          // through σ of the r gate
        const T dz = g * (h(i, c) - nn) * z * (T(1) - z);
        if (want_dgx) {
          dgx(i, c) += dr;
          dgx(i, hidden + c) += dz;
          dgx(i, 2 * hidden + c) += dn;
        }
        if (want_dgh) {
          dgh(i, c) += dr;
          dgh(i, hidden + c) += dz;
          dgh(i, 2 * hidden + c) += dn * r;
        }
        if (want_dh) dh(i, c) += g * z;
      }
  }
};

}  // namespace slim::backend::detail
