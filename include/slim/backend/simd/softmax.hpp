// slim — xsimd kernels: row softmax with scale and causal mask (forward beside backward), float only; other
// element types fall back to Base (scalar). Rows are split over be.pool in chunks that depend on the shape
// only; within a row the max, the sum and the dot product run in a fixed order (four vector accumulators,
// then a horizontal reduction), so results do not depend on the thread count.
// Memory: a row is read from memory once (exp values go to a per-thread row buffer, the next row is
// prefetched meanwhile); an output of 32 MiB or more is written with streaming stores. Neither changes a value.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "slim/backend/simd/row_io.hpp"

#include "slim/backend/scalar/softmax.hpp"
#include "slim/core/tensor.hpp"
#include "slim/core/thread_pool.hpp"

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace slim::backend::detail {

template <class Arch, class Base>
struct simd_softmax : Base {
  using Base::softmax_backward;
  using Base::softmax_forward;

  /// y = softmax(scale·x) per row over L; causal: column j visible iff j ≤ i + (L−S); masked → 0.
  ///                                                                      x,y (Bt,S,L); y may be x
  static void softmax_forward(const simd<Arch>& be, tensor_view<const float, 3> x, float scale, bool causal,
                              tensor_view<float, 3> y) {
    check_softmax_forward<float>(x, scale, y);
    const index_t s = x.extent(1), l = x.extent(2);
    const float neg_inf = -std::numeric_limits<float>::infinity();
    const bool stream = io::streams(y);
    parallel_for(be.pool, x.extent(0) * s, rows_per_task(l), [&](index_t q0, index_t q1) {
      float* e = row_scratch(l);  // exp(scale·x − m) of one row, then written to y normalised
      for (index_t q = q0; q < q1; ++q) {
        const index_t b = q / s, i = q % s;
        const float* xr = x.data_handle() + b * x.stride(0) + i * x.stride(1);
        float* yr = y.data_handle() + b * y.stride(0) + i * y.stride(1);
        const index_t lim = softmax_visible(causal, i, s, l);
        // the next row of this task is fetched from memory while this one is computed in cache
        const float* next =
            q + 1 < q1 ? x.data_handle() + (q + 1) / s * x.stride(0) + (q + 1) % s * x.stride(1) : nullptr;
        const batch vs(scale);
        // pass 1: m = max scale·x over the visible prefix
        batch m0(neg_inf), m1(neg_inf), m2(neg_inf), m3(neg_inf);
        index_t j = 0;
        for (; j + 4 * width <= lim; j += 4 * width) {
          m0 = xsimd::max(m0, vs * batch::load_unaligned(xr + j));
          m1 = xsimd::max(m1, vs * batch::load_unaligned(xr + j + width));
          m2 = xsimd::max(m2, vs * batch::load_unaligned(xr + j + 2 * width));
          m3 = xsimd::max(m3, vs * batch::load_unaligned(xr + j + 3 * width));
        }
        for (; j < lim; j += width) {
          const index_t m = std::min(width, lim - j);
          m0 = xsimd::max(m0, xsimd::select(lane_below(m), vs * io::load(xr + j, m), batch(neg_inf)));
        }
        const float mx = horizontal_max(xsimd::max(xsimd::max(m0, m1), xsimd::max(m2, m3)));
        if (mx == neg_inf) {  // nothing visible, or every visible input is −∞
          io::store_blocks(yr, l, stream, [&](index_t, index_t) { return batch(0.0f); });
          continue;
        }
        // pass 2: e = exp(scale·x − m) and their sum; masked columns get e = 0
        const batch vm(mx);
        batch s0(0.0f), s1(0.0f);
        j = 0;
        for (; j + 2 * width <= lim; j += 2 * width) {
          if (next)
            for (index_t k = 0; k < 2 * width; k += line) __builtin_prefetch(next + j + k);
          const batch e0 = xsimd::exp(xsimd::fms(vs, batch::load_unaligned(xr + j), vm));
          const batch e1 = xsimd::exp(xsimd::fms(vs, batch::load_unaligned(xr + j + width), vm));
          e0.store_unaligned(e + j);
          e1.store_unaligned(e + j + width);
          s0 += e0;
          s1 += e1;
        }
        for (; j < lim; j += width) {
          const index_t m = std::min(width, lim - j);
          const batch ev = xsimd::select(lane_below(m), xsimd::exp(xsimd::fms(vs, io::load(xr + j, m), vm)), batch(0.0f));
          io::store(e + j, m, ev);
          s0 += ev;
        }
        std::fill(e + lim, e + l, 0.0f);
        // pass 3: y = e / Σe
        const batch inv(1.0f / xsimd::hadd(s0 + s1));
        io::store_blocks(yr, l, stream, [&](index_t k, index_t m) { return io::load(e + k, m) * inv; });
      }
      if (stream) io::stream_fence();
    });
  }

  /// dx += scale·y⊙(dy − Σ y⊙dy) per row (masked entries have y = 0 and get nothing).   (Bt,S,L)
  static void softmax_backward(const simd<Arch>& be, tensor_view<const float, 3> y, tensor_view<const float, 3> dy,
                               float scale, tensor_view<float, 3> dx) {
    check_softmax_backward<float>(y, dy, scale, dx);
    const index_t s = y.extent(1), l = y.extent(2);
    parallel_for(be.pool, y.extent(0) * s, rows_per_task(l), [&](index_t q0, index_t q1) {
      for (index_t q = q0; q < q1; ++q) {
        const index_t b = q / s, i = q % s;
        const float* yr = y.data_handle() + b * y.stride(0) + i * y.stride(1);
        const float* dyr = dy.data_handle() + b * dy.stride(0) + i * dy.stride(1);
        float* dxr = dx.data_handle() + b * dx.stride(0) + i * dx.stride(1);
        const bool more = q + 1 < q1;  // the next row's y and dy are fetched while this row is in cache
        const float* next_y = more ? y.data_handle() + (q + 1) / s * y.stride(0) + (q + 1) % s * y.stride(1) : nullptr;
        const float* next_dy =
            more ? dy.data_handle() + (q + 1) / s * dy.stride(0) + (q + 1) % s * dy.stride(1) : nullptr;
        batch s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
        index_t j = 0;
        for (; j + 4 * width <= l; j += 4 * width) {
          s0 = xsimd::fma(batch::load_unaligned(yr + j), batch::load_unaligned(dyr + j), s0);
          s1 = xsimd::fma(batch::load_unaligned(yr + j + width), batch::load_unaligned(dyr + j + width), s1);
          s2 = xsimd::fma(batch::load_unaligned(yr + j + 2 * width), batch::load_unaligned(dyr + j + 2 * width), s2);
          s3 = xsimd::fma(batch::load_unaligned(yr + j + 3 * width), batch::load_unaligned(dyr + j + 3 * width), s3);
        }
        for (; j < l; j += width) {
          const index_t m = std::min(width, l - j);
          s0 = xsimd::fma(io::load(yr + j, m), io::load(dyr + j, m), s0);
        }
        const batch dot(xsimd::hadd((s0 + s1) + (s2 + s3)));
        const batch vs(scale);
        for_each_block(l, [&](index_t k, index_t m) {
          if (more) {
            __builtin_prefetch(next_y + k);
            __builtin_prefetch(next_dy + k);
          }
          io::store(dxr + k, m, xsimd::fma(vs * io::load(yr + k, m), io::load(dyr + k, m) - dot, io::load(dxr + k, m)));
        });
      }
    });
  }

 private:
  using batch = xsimd::batch<float, Arch>;
  using io = row_io<Arch>;
  static constexpr index_t width = static_cast<index_t>(batch::size);
  static constexpr index_t line = 64 / static_cast<index_t>(sizeof(float));  // floats per cache line

  /// Rows per parallel task: about 32K elements.
  static index_t rows_per_task(index_t l) noexcept {
    return std::max<index_t>(1, index_t{32768} / std::max<index_t>(l, 1));
  }

  /// xsimd 8.1 has no horizontal max: fold the lanes in a fixed order.
  static float horizontal_max(const batch& v) noexcept {
    alignas(64) float lanes[batch::size];
    v.store_aligned(lanes);
    float m = lanes[0];
    for (std::size_t k = 1; k < batch::size; ++k) m = std::max(m, lanes[k]);
    return m;
  }
  /// A float buffer of at least n elements owned by the calling thread (reused across calls).
  static float* row_scratch(index_t n) {
    thread_local std::vector<float, aligned_allocator<float>> buf;
    if (static_cast<index_t>(buf.size()) < n) buf.resize(static_cast<std::size_t>(n));
    return buf.data();
  }
  template <class F>
  static void for_each_block(index_t d, F&& f) {
    index_t j = 0;
    for (; j + width <= d; j += width) f(j, width);
    if (j < d) f(j, d - j);
  }
  static xsimd::batch_bool<float, Arch> lane_below(index_t m) noexcept {
    alignas(64) float idx[batch::size];
    for (std::size_t k = 0; k < batch::size; ++k) idx[k] = static_cast<float>(k);
    return batch::load_aligned(idx) < batch(static_cast<float>(m));
  }
};

}  // namespace slim::backend::detail
