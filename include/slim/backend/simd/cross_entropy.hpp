// slim — xsimd kernels: fused softmax cross-entropy (forward beside backward). Ops not defined here fall back
// to Base (scalar). Two passes over each row (max, then Σ exp(x − max)), rows split over the pool.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <xsimd/xsimd.hpp>

#include "slim/backend/scalar/cross_entropy.hpp"

namespace slim::backend::detail {

template <class Arch, class Base>
struct simd_cross_entropy : Base {
  using Base::cross_entropy_backward;
  using Base::cross_entropy_forward;

  /// lse[n] = log Σ_v exp(logits[n,v]) (every row); loss[n] = lse[n] − logits[n,tₙ], 0 where tₙ = ignore_index.
  /// Returns the number of rows counted. logits (N,V); targets (N) int32; loss, lse (N).
  static index_t cross_entropy_forward(const backend::simd<Arch>& be, matrix_view<const float> logits,
                                       vector_view<const std::int32_t> targets, std::int32_t ignore_index,
                                       vector_view<float> loss, vector_view<float> lse) {
    constexpr const char* where = "slim::cross_entropy_forward";
    const index_t counted = check_cross_entropy<float>(where, logits, targets, ignore_index);
    const index_t rows = logits.extent(0), vocab = logits.extent(1);
    require_shape(loss, {rows}, where, "loss");
    require_shape(lse, {rows}, where, "lse");
    parallel_for(be.pool, rows, grain(vocab), [&](index_t n0, index_t n1) {
      for (index_t n = n0; n < n1; ++n) {
        const float* x = &logits(n, 0);
        const float l = log_sum_exp(x, vocab);
        lse(n) = l;
        loss(n) = targets(n) == ignore_index ? 0.0f : l - x[targets(n)];
      }
    });
    return counted;
  }

  /// dlogits[n] += dloss[n]·(softmax(logits[n]) − onehot(tₙ)); rows with tₙ = ignore_index are untouched.
  /// logits, dlogits (N,V); targets (N) int32; lse, dloss (N).
  static void cross_entropy_backward(const backend::simd<Arch>& be, matrix_view<const float> logits,
                                     vector_view<const std::int32_t> targets, vector_view<const float> lse,
                                     std::int32_t ignore_index, vector_view<const float> dloss,
                                     matrix_view<float> dlogits) {
    constexpr const char* where = "slim::cross_entropy_backward";
    check_cross_entropy<float>(where, logits, targets, ignore_index);
    const index_t rows = logits.extent(0), vocab = logits.extent(1);
    require_shape(lse, {rows}, where, "lse");
    require_shape(dloss, {rows}, where, "dloss");
    require_shape(dlogits, {rows, vocab}, where, "dlogits");
    require(dlogits.has_unit_inner_stride(), where, "dlogits need a unit column stride");
    parallel_for(be.pool, rows, grain(vocab), [&](index_t n0, index_t n1) {
      for (index_t n = n0; n < n1; ++n) {
        const std::int32_t t = targets(n);
        if (t == ignore_index) continue;
        const float* x = &logits(n, 0);
        float* dx = &dlogits(n, 0);
        const float g = dloss(n), shift = lse(n);
        const float before = dx[t];  // the one-hot column gets g·(p − 1) in one step, as the oracle does
        const batch gv(g), sv(shift);
        index_t c = 0;
        for (; c + width <= vocab; c += width)
          xsimd::fma(gv, xsimd::exp(batch::load_unaligned(x + c) - sv), batch::load_unaligned(dx + c))
              .store_unaligned(dx + c);
        for (; c < vocab; ++c) dx[c] += g * std::exp(x[c] - shift);
        dx[t] = before + g * (std::exp(x[t] - shift) - 1.0f);
      }
    });
  }

 private:
  using batch = xsimd::batch<float, Arch>;
  static constexpr index_t width = static_cast<index_t>(batch::size);

  /// Rows per task: about 64K logits of work.
  static index_t grain(index_t vocab) { return std::max<index_t>(1, 65536 / std::max<index_t>(1, vocab)); }

  static float log_sum_exp(const float* x, index_t n) {
    constexpr float neg_inf = -std::numeric_limits<float>::infinity();
    batch mv(neg_inf);
    index_t c = 0;
    for (; c + width <= n; c += width) mv = xsimd::max(mv, batch::load_unaligned(x + c));
    alignas(64) float lanes[batch::size];
    mv.store_aligned(lanes);
    float mx = neg_inf;
    for (float v : lanes) mx = std::max(mx, v);
    for (index_t t = c; t < n; ++t) mx = std::max(mx, x[t]);
    const batch shift(mx);
    batch sv(0.0f);
    for (c = 0; c + width <= n; c += width) sv += xsimd::exp(batch::load_unaligned(x + c) - shift);
    float sum = xsimd::hadd(sv);
    for (; c < n; ++c) sum += std::exp(x[c] - mx);
    return mx + std::log(sum);
  }
};

}  // namespace slim::backend::detail
