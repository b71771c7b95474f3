// slim — xsimd kernels: GRU cell (forward beside backward). Ops not defined here fall back to Base (scalar).
// Vectorised over the hidden units, rows split over the pool; every element is computed by one task.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <xsimd/xsimd.hpp>

#include "slim/backend/scalar/gru.hpp"

namespace slim::backend::detail {

template <class Arch, class Base>
struct simd_gru : Base {
  using Base::gru_cell_backward;
  using Base::gru_cell_forward;

  /// r = σ(gx_r+gh_r), z = σ(gx_z+gh_z), n = tanh(gx_n + r⊙gh_n), h' = (1−z)⊙n + z⊙h.
  /// gx,gh (N,3H); h,h_out (N,H).
  static void gru_cell_forward(const backend::simd<Arch>& be, matrix_view<const float> gx, matrix_view<const float> gh,
                               matrix_view<const float> h, matrix_view<float> h_out) {
    constexpr const char* where = "slim::gru_cell_forward";
    const index_t hidden = check_gru<float>(where, gx, gh, h);
    check_gru_output(h_out, h.extent(0), hidden, where, "h_out");
    parallel_for(be.pool, h.extent(0), grain(hidden), [&](index_t r0, index_t r1) {
      for (index_t i = r0; i < r1; ++i) {
        const float *ax = &gx(i, 0), *ah = &gh(i, 0), *hp = &h(i, 0);
        float* out = &h_out(i, 0);
        for_each_column(hidden, [&](index_t c, auto tag) {
          using V = decltype(tag);
          const V r = sigmoid(V::load_unaligned(ax + c) + V::load_unaligned(ah + c));
          const V z = sigmoid(V::load_unaligned(ax + hidden + c) + V::load_unaligned(ah + hidden + c));
          const V nn = tanh(V::load_unaligned(ax + 2 * hidden + c) + r * V::load_unaligned(ah + 2 * hidden + c));
          ((V(1.0f) - z) * nn + z * V::load_unaligned(hp + c)).store_unaligned(out + c);
        });
      }
    });
  }

  /// Gates recomputed from gx, gh; with dn = dh'⊙(1−z)⊙(1−n²): dgx_n += dn, dgh_n += dn⊙r,
  /// dgx_r = dgh_r += dn⊙gh_n⊙r(1−r), dgx_z = dgh_z += dh'⊙(h−n)⊙z(1−z), dh += dh'⊙z.
  /// Shapes as forward, dh_out (N,H); an empty dgx, dgh or dh is skipped.
  static void gru_cell_backward(const backend::simd<Arch>& be, matrix_view<const float> gx, matrix_view<const float> gh,
                                matrix_view<const float> h, matrix_view<const float> dh_out, matrix_view<float> dgx,
                                matrix_view<float> dgh, matrix_view<float> dh) {
    constexpr const char* where = "slim::gru_cell_backward";
    const index_t hidden = check_gru<float>(where, gx, gh, h);
    const index_t rows = h.extent(0);
    check_gru_output(dh_out, rows, hidden, where, "dh_out");
    const bool want_dgx = !dgx.empty(), want_dgh = !dgh.empty(), want_dh = !dh.empty();
    if (want_dgx) check_gru_output(dgx, rows, 3 * hidden, where, "dgx");
    if (want_dgh) check_gru_output(dgh, rows, 3 * hidden, where, "dgh");
    if (want_dh) check_gru_output(dh, rows, hidden, where, "dh");
    parallel_for(be.pool, rows, grain(hidden), [&](index_t r0, index_t r1) {
      for (index_t i = r0; i < r1; ++i) {
        const float *ax = &gx(i, 0), *ah = &gh(i, 0), *hp = &h(i, 0), *g = &dh_out(i, 0);
        float* ox = want_dgx ? &dgx(i, 0) : nullptr;
        float* oh = want_dgh ? &dgh(i, 0) : nullptr;
        float* od = want_dh ? &dh(i, 0) : nullptr;
        for_each_column(hidden, [&](index_t c, auto tag) {
          using V = decltype(tag);
          const V one(1.0f);
          const V r = sigmoid(V::load_unaligned(ax + c) + V::load_unaligned(ah + c));
          const V z = sigmoid(V::load_unaligned(ax + hidden + c) + V::load_unaligned(ah + hidden + c));
          const V ghn = V::load_unaligned(ah + 2 * hidden + c);
          const V nn = tanh(V::load_unaligned(ax + 2 * hidden + c) + r * ghn);
          const V gv = V::load_unaligned(g + c);
          const V dn = gv * (one - z) * (one - nn * nn);
          const V dr = dn * ghn * r * (one - r);
          const V dz = gv * (V::load_unaligned(hp + c) - nn) * z * (one - z);
          if (ox) {
            (V::load_unaligned(ox + c) + dr).store_unaligned(ox + c);
            (V::load_unaligned(ox + hidden + c) + dz).store_unaligned(ox + hidden + c);
            (V::load_unaligned(ox + 2 * hidden + c) + dn).store_unaligned(ox + 2 * hidden + c);
          }
          if (oh) {
            (V::load_unaligned(oh + c) + dr).store_unaligned(oh + c);
            (V::load_unaligned(oh + hidden + c) + dz).store_unaligned(oh + hidden + c);
            (V::load_unaligned(oh + 2 * hidden + c) + dn * r).store_unaligned(oh + 2 * hidden + c);
          }
          if (od) (V::load_unaligned(od + c) + gv * z).store_unaligned(od + c);
        });
      }
    });
  }

 private:
  using batch = xsimd::batch<float, Arch>;
  static constexpr index_t width = static_cast<index_t>(batch::size);

  /// Rows per task: about 16K hidden units of work.
  static index_t grain(index_t hidden) { return std::max<index_t>(1, 16384 / std::max<index_t>(1, hidden)); }

  /// A one-lane stand-in for a batch, so the tail runs the same expression as the body.
  struct lane {
    float x;
    lane(float v) : x(v) {}  // NOLINT(google-explicit-constructor): mirrors batch's broadcast
    static lane load_unaligned(const float* p) { return lane(*p); }
    void store_unaligned(float* p) const { *p = x; }
    friend lane operator+(lane a, lane b) { return lane(a.x + b.x); }
    friend lane operator-(lane a, lane b) { return lane(a.x - b.x); }
    friend lane operator*(lane a, lane b) { return lane(a.x * b.x); }
  };
  static batch sigmoid(const batch& x) { return batch(1.0f) / (batch(1.0f) + xsimd::exp(-x)); }
  static lane sigmoid(lane x) { return lane(1.0f / (1.0f + std::exp(-x.x))); }
  static batch tanh(const batch& x) { return xsimd::tanh(x); }
  static lane tanh(lane x) { return lane(std::tanh(x.x)); }

  /// Calls f(c, batch{}) for each full vector of columns, then f(c, lane{}) for the tail.
  template <class F>
  static void for_each_column(index_t n, F&& f) {
    index_t c = 0;
    for (; c + width <= n; c += width) f(c, batch(0.0f));
    for (; c < n; ++c) f(c, lane(0.0f));
  }
};

}  // namespace slim::backend::detail
