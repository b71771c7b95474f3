// slim — xsimd kernels: rotary position embedding (forward beside backward), float only; other element types
// fall back to Base (scalar). Per row, cos θ and sin θ are computed once for a block of frequencies (θ formed
// exactly as the scalar kernel forms it: one rounded float product) and applied to every head. Rows are split
// over be.pool; every element is computed by one task, so results do not depend on the thread count.
// Out of place, an output of 32 MiB or more is written with streaming stores; values are the same either way.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <xsimd/xsimd.hpp>

#include "slim/backend/simd/row_io.hpp"

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "slim/backend/scalar/rope.hpp"
#include "slim/core/thread_pool.hpp"

namespace slim::backend::detail {

template <class Arch, class Base>
struct simd_rope : Base {
  using Base::rope_backward;
  using Base::rope_forward;

  /// θᵢ = pos·inv_freqᵢ, h = Dh/2: yᵢ = xᵢcosθᵢ − x_{i+h}sinθᵢ, y_{i+h} = x_{i+h}cosθᵢ + xᵢsinθᵢ.
  ///                                        x,y (N,H,Dh), pos (N) int32, inv_freq (Dh/2); y may be x
  static void rope_forward(const simd<Arch>& be, tensor_view<const float, 3> x, vector_view<const std::int32_t> pos,
                           vector_view<const float> inv_freq, tensor_view<float, 3> y) {
    check_rope<float>("rope_forward", "x", "y", x, pos, inv_freq, y);
    rotate<false>(be, x, pos, inv_freq, y);
  }

  /// dx += Rᵀ·dy: dxᵢ += dyᵢcosθᵢ + dy_{i+h}sinθᵢ, dx_{i+h} += dy_{i+h}cosθᵢ − dyᵢsinθᵢ.   shapes as forward
  static void rope_backward(const simd<Arch>& be, tensor_view<const float, 3> dy, vector_view<const std::int32_t> pos,
                            vector_view<const float> inv_freq, tensor_view<float, 3> dx) {
    check_rope<float>("rope_backward", "dy", "dx", dy, pos, inv_freq, dx);
    rotate<true>(be, dy, pos, inv_freq, dx);
  }

 private:
  using batch = xsimd::batch<float, Arch>;
  using io = row_io<Arch>;
  static constexpr index_t width = static_cast<index_t>(batch::size);
  static constexpr index_t block = 64;  // frequencies whose cos/sin are held at once (a multiple of width)
  static_assert(block % static_cast<index_t>(batch::size) == 0);

  /// Backward = false: b = R·a (b overwritten). Backward = true: b += Rᵀ·a.
  template <bool backward>
  static void rotate(const simd<Arch>& be, tensor_view<const float, 3> a, vector_view<const std::int32_t> pos,
                     vector_view<const float> inv_freq, tensor_view<float, 3> b) {
    const index_t n = a.extent(0), heads = a.extent(1), half = a.extent(2) / 2;
    const index_t grain = std::max<index_t>(1, index_t{32768} / std::max<index_t>(heads * half * 2, 1));
    const float* f = inv_freq.data_handle();
    // out of place, a large output is written with streaming stores (lower half, then upper half)
    const bool stream = !backward && a.data_handle() != b.data_handle() && io::streams(b);
    parallel_for(be.pool, n, grain, [&](index_t r0, index_t r1) {
      alignas(64) float cs[block + batch::size] = {}, sn[block + batch::size] = {};  // padded for unaligned reads
      for (index_t r = r0; r < r1; ++r) {
        const batch vp(static_cast<float>(pos(r)));
        for (index_t i0 = 0; i0 < half; i0 += block) {
          const index_t cnt = std::min(block, half - i0);
          for (index_t k = 0; k < cnt; k += width) {
            const auto [s, c] = xsimd::sincos(vp * io::load(f + i0 + k, std::min(width, cnt - k)));
            c.store_aligned(cs + k);
            s.store_aligned(sn + k);
          }
          for (index_t hd = 0; hd < heads; ++hd) {
            const float* ar = a.data_handle() + r * a.stride(0) + hd * a.stride(1) + i0;
            float* br = b.data_handle() + r * b.stride(0) + hd * b.stride(1) + i0;
            if (stream) {
              auto at = [](const float* t, index_t k) { return batch::load_unaligned(t + k); };
              io::store_blocks(br, cnt, true, [&](index_t k, index_t m) {
                return xsimd::fms(io::load(ar + k, m), at(cs, k), io::load(ar + half + k, m) * at(sn, k));
              });
              io::store_blocks(br + half, cnt, true, [&](index_t k, index_t m) {
                return xsimd::fma(io::load(ar + half + k, m), at(cs, k), io::load(ar + k, m) * at(sn, k));
              });
              continue;
            }
            for (index_t k = 0; k < cnt; k += width) {
              const index_t m = std::min(width, cnt - k);
              const batch c = batch::load_aligned(cs + k), s = batch::load_aligned(sn + k);
              const batch lo = io::load(ar + k, m), hi = io::load(ar + half + k, m);
              if constexpr (backward) {
                io::store(br + k, m, io::load(br + k, m) + xsimd::fma(lo, c, hi * s));
                io::store(br + half + k, m, io::load(br + half + k, m) + xsimd::fms(hi, c, lo * s));
              } else {
                io::store(br + k, m, xsimd::fms(lo, c, hi * s));
                io::store(br + half + k, m, xsimd::fma(hi, c, lo * s));
              }
            }
          }
        }
      }
      if (stream) io::stream_fence();
    });
  }

};

}  // namespace slim::backend::detail
