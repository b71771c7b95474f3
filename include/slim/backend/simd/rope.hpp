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
    const bool stream = !backward && a.data_handle() != b.data_handle() && streams(b);
    parallel_for(be.pool, n, grain, [&](index_t r0, index_t r1) {
      alignas(64) float cs[block + batch::size] = {}, sn[block + batch::size] = {};  // padded for unaligned reads
      for (index_t r = r0; r < r1; ++r) {
        const batch vp(static_cast<float>(pos(r)));
        for (index_t i0 = 0; i0 < half; i0 += block) {
          const index_t cnt = std::min(block, half - i0);
          for (index_t k = 0; k < cnt; k += width) {
            const auto [s, c] = xsimd::sincos(vp * load(f + i0 + k, std::min(width, cnt - k)));
            c.store_aligned(cs + k);
            s.store_aligned(sn + k);
          }
          for (index_t hd = 0; hd < heads; ++hd) {
            const float* ar = a.data_handle() + r * a.stride(0) + hd * a.stride(1) + i0;
            float* br = b.data_handle() + r * b.stride(0) + hd * b.stride(1) + i0;
            if (stream) {
              auto at = [](const float* t, index_t k) { return batch::load_unaligned(t + k); };
              store_blocks(br, cnt, true, [&](index_t k, index_t m) {
                return xsimd::fms(load(ar + k, m), at(cs, k), load(ar + half + k, m) * at(sn, k));
              });
              store_blocks(br + half, cnt, true, [&](index_t k, index_t m) {
                return xsimd::fma(load(ar + half + k, m), at(cs, k), load(ar + k, m) * at(sn, k));
              });
              continue;
            }
            for (index_t k = 0; k < cnt; k += width) {
              const index_t m = std::min(width, cnt - k);
              const batch c = batch::load_aligned(cs + k), s = batch::load_aligned(sn + k);
              const batch lo = load(ar + k, m), hi = load(ar + half + k, m);
              if constexpr (backward) {
                store(br + k, m, load(br + k, m) + xsimd::fma(lo, c, hi * s));
                store(br + half + k, m, load(br + half + k, m) + xsimd::fms(hi, c, lo * s));
              } else {
                store(br + k, m, xsimd::fms(lo, c, hi * s));
                store(br + half + k, m, xsimd::fma(hi, c, lo * s));
              }
            }
          }
        }
      }
      if (stream) stream_fence();
    });
  }

  /// Outputs of at least this many bytes are written with streaming (non-temporal) stores: they would not
  /// stay in cache anyway, and streaming skips reading each destination line before it is overwritten.
  static constexpr index_t stream_bytes = index_t{32} << 20;
  template <class View>
  static bool streams(const View& out) noexcept {
    return out.size() * static_cast<index_t>(sizeof(float)) >= stream_bytes;
  }
  /// out[j, j+m) = f(j, m) over [0, d) in blocks; with `stream`, full blocks at register-aligned addresses use
  /// streaming stores. Block boundaries do not change any value (f is elementwise).
  template <class F>
  static void store_blocks(float* out, index_t d, bool stream, F&& f) {
    index_t j = 0;
    if (stream) {
      constexpr auto bytes = static_cast<std::uintptr_t>(sizeof(float) * batch::size);
      const auto misalign = reinterpret_cast<std::uintptr_t>(out) % bytes;
      const index_t head = std::min(d, misalign ? static_cast<index_t>((bytes - misalign) / sizeof(float)) : 0);
      if (head > 0) store(out, head, f(0, head));
      for (j = head; j + width <= d; j += width) stream_store(out + j, f(j, width));
    }
    for (; j + width <= d; j += width) store(out + j, width, f(j, width));
    if (j < d) store(out + j, d - j, f(j, d - j));
  }
  static void stream_store(float* p, const batch& v) noexcept {
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>)
      _mm512_stream_ps(p, v);
    else if constexpr (batch::size == 8 && std::is_base_of_v<xsimd::avx, Arch>)
      _mm256_stream_ps(p, v);
    else if constexpr (batch::size == 4 && std::is_base_of_v<xsimd::sse2, Arch>)
      _mm_stream_ps(p, v);
    else
      v.store_aligned(p);
#else
    v.store_aligned(p);
#endif
  }
  /// Orders a task's streaming stores before whatever follows it.
  static void stream_fence() noexcept {
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
    _mm_sfence();
#endif
  }
  static batch load(const float* p, index_t m) noexcept {
    if (m == width) return batch::load_unaligned(p);
    alignas(64) float buf[batch::size] = {};
    std::copy(p, p + m, buf);
    return batch::load_aligned(buf);
  }
  static void store(float* p, index_t m, const batch& v) noexcept {
    if (m == width) return v.store_unaligned(p);
    alignas(64) float buf[batch::size];
    v.store_aligned(buf);
    std::copy(buf, buf + m, p);
  }
};

}  // namespace slim::backend::detail
