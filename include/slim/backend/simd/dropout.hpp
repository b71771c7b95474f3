// slim — xsimd kernels: dropout (forward beside backward), float only; other element types fall back to Base
// (scalar). The mask is the scalar kernel's bit for bit: Philox4x32-10 is evaluated several blocks per
// register with the block's four words in four adjacent lanes, so its output comes out in stream order, and
// the test u ≥ p is made exactly on the 24-bit integer behind u (k·2⁻²⁴ ≥ p ⟺ k ≥ ⌈p·2²⁴⌉). The view is cut
// into tiles that depend on the shape only (simd/tiles.hpp). A forward output of 32 MiB or more is written
// with streaming stores; values are the same either way.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <xsimd/xsimd.hpp>

#include "slim/backend/simd/row_io.hpp"
#include "slim/backend/simd/tiles.hpp"

#include "slim/backend/scalar/dropout.hpp"
#include "slim/core/philox.hpp"

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace slim::backend::detail {

/// Philox4x32-10 words 4·b0 … 4·b0 + 64·steps − 1 of stream `seed` (blocks b0 … b0 + 16·steps − 1, block b with
/// counter (b low, b high, 0, 0) and key (seed low, seed high), as slim::philox_u32 defines them), shifted
/// right by 8 (the 24 bits uniform01 uses) and written to out in stream order, 64 per step.
/// On x86 a register holds whole blocks (words v0..v3 in adjacent lanes): one round is a 32×32→64 multiply
/// of lanes 0 and 2, a lane shuffle, a 64-bit shift and two xors; 64 words' worth of registers are in flight
/// at once so that the rounds' latency is hidden.
template <class Arch>
struct philox_lanes {
  static constexpr index_t words_per_step = 64;

  static void top24(std::uint64_t seed, std::uint64_t b0, index_t steps, std::int32_t* out) noexcept {
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>)
      return x86<__m512i, Arch>(seed, b0, steps, out);
    else if constexpr (std::is_base_of_v<xsimd::avx2, Arch>)
      return x86<__m256i, Arch>(seed, b0, steps, out);
    else if constexpr (std::is_base_of_v<xsimd::sse2, Arch>)
      return x86<__m128i, Arch>(seed, b0, steps, out);
#endif
    for (index_t k = 0; k < 16 * steps; ++k) {
      const std::uint64_t b = b0 + static_cast<std::uint64_t>(k);
      const philox_block o =
          philox4x32_10(philox_block{{static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32), 0u, 0u}},
                        static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
      for (int w = 0; w < 4; ++w) out[4 * k + w] = static_cast<std::int32_t>(o.v[w] >> 8);
    }
  }

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
  // V is the register type; A (= Arch) keeps these templates uninstantiated unless the arch is enabled.
  template <class V, class A>
  static void x86(std::uint64_t seed, std::uint64_t b0, index_t steps, std::int32_t* out) noexcept {
    constexpr int per_reg = static_cast<int>(sizeof(V) / 16);  // blocks per register
    constexpr int regs = 16 / per_reg;                         // registers per step of 16 blocks
    constexpr long long m0 = 0xD2511F53, m1 = 0xCD9E8D57, w0 = 0x9E3779B9, w1 = 0xBB67AE85;
    const auto k0 = static_cast<long long>(static_cast<std::uint32_t>(seed));
    const auto k1 = static_cast<long long>(static_cast<std::uint32_t>(seed >> 32));
    const V mul = pair<V>(m0, m1);  // 32-bit lanes (m0, 0, m1, 0) per block
    V keys[10];
    for (int r = 0; r < 10; ++r)
      keys[r] = pair<V>((k0 + r * w0) & 0xFFFFFFFFLL, (k1 + r * w1) & 0xFFFFFFFFLL);  // (k0, 0, k1, 0)
    const V step = pair<V>(16, 0);
    V ctr[regs];
    for (int q = 0; q < regs; ++q) ctr[q] = counters<V>(b0 + static_cast<std::uint64_t>(q * per_reg));
    for (index_t g = 0; g < steps; ++g) {
      V v[regs];
      for (int q = 0; q < regs; ++q) v[q] = ctr[q];
      for (int r = 0; r < 10; ++r)
        for (int q = 0; q < regs; ++q) {
          // (lo0, hi0, lo1, hi1) = (m0·v0, m1·v2); next = (hi1 ^ v1 ^ k0, lo1, hi0 ^ v3 ^ k1, lo0), where
          // (v1, 0, v3, 0) is v shifted right by 32 in each 64-bit lane
          const V prod = mul_epu32(v[q], mul);
          v[q] = bxor(bxor(shuffle<0x1B>(prod), srli64_32(v[q])), keys[r]);
        }
      for (int q = 0; q < regs; ++q) {
        storeu(out + 64 * g + 4 * per_reg * q, srli8(v[q]));
        ctr[q] = add64(ctr[q], step);
      }
    }
  }

  /// 64-bit lanes (a, b, a, b, ...): 32-bit lanes (a, 0, b, 0) per 128 bits when a, b < 2³².
  template <class V>
  static V pair(long long a, long long b) noexcept {
    if constexpr (sizeof(V) == 64)
      return _mm512_set_epi64(b, a, b, a, b, a, b, a);
    else if constexpr (sizeof(V) == 32)
      return _mm256_set_epi64x(b, a, b, a);
    else
      return _mm_set_epi64x(b, a);
  }
  /// Counters of blocks b, b+1, ...: 64-bit lanes (b, 0, b+1, 0, ...).
  template <class V>
  static V counters(std::uint64_t b) noexcept {
    const auto c = [&](int k) { return static_cast<long long>(b + static_cast<std::uint64_t>(k)); };
    if constexpr (sizeof(V) == 64)
      return _mm512_set_epi64(0, c(3), 0, c(2), 0, c(1), 0, c(0));
    else if constexpr (sizeof(V) == 32)
      return _mm256_set_epi64x(0, c(1), 0, c(0));
    else
      return _mm_set_epi64x(0, c(0));
  }
  template <class V>
  static V mul_epu32(V a, V b) noexcept {
    if constexpr (sizeof(V) == 64)
      return _mm512_mul_epu32(a, b);
    else if constexpr (sizeof(V) == 32)
      return _mm256_mul_epu32(a, b);
    else
      return _mm_mul_epu32(a, b);
  }
  template <int imm, class V>
  static V shuffle(V a) noexcept {
    if constexpr (sizeof(V) == 64)
      return _mm512_shuffle_epi32(a, static_cast<_MM_PERM_ENUM>(imm));
    else if constexpr (sizeof(V) == 32)
      return _mm256_shuffle_epi32(a, imm);
    else
      return _mm_shuffle_epi32(a, imm);
  }
  template <class V>
  static V bxor(V a, V b) noexcept {
    if constexpr (sizeof(V) == 64)
      return _mm512_xor_si512(a, b);
    else if constexpr (sizeof(V) == 32)
      return _mm256_xor_si256(a, b);
    else
      return _mm_xor_si128(a, b);
  }
  template <class V>
  static V srli64_32(V a) noexcept {
    if constexpr (sizeof(V) == 64)
      return _mm512_srli_epi64(a, 32);
    else if constexpr (sizeof(V) == 32)
      return _mm256_srli_epi64(a, 32);
    else
      return _mm_srli_epi64(a, 32);
  }
  template <class V>
  static V add64(V a, V b) noexcept {
    if constexpr (sizeof(V) == 64)
      return _mm512_add_epi64(a, b);
    else if constexpr (sizeof(V) == 32)
      return _mm256_add_epi64(a, b);
    else
      return _mm_add_epi64(a, b);
  }
  template <class V>
  static V srli8(V a) noexcept {
    if constexpr (sizeof(V) == 64)
      return _mm512_srli_epi32(a, 8);
    else if constexpr (sizeof(V) == 32)
      return _mm256_srli_epi32(a, 8);
    else
      return _mm_srli_epi32(a, 8);
  }
  template <class V>
  static void storeu(std::int32_t* p, V a) noexcept {
    if constexpr (sizeof(V) == 64)
      _mm512_storeu_si512(p, a);
    else if constexpr (sizeof(V) == 32)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), a);
    else
      _mm_storeu_si128(reinterpret_cast<__m128i*>(p), a);
  }
#endif
};

template <class Arch, class Base>
struct simd_dropout : Base {
  using Base::dropout_backward;
  using Base::dropout_forward;

  /// keep = philox_uniform(seed, offset + n·D + d) ≥ p; y = keep ? x/(1−p) : 0; p = 0 copies.
  ///                                                                             x,y (N,D); y may be x
  static void dropout_forward(const simd<Arch>& be, matrix_view<const float> x, float p, std::uint64_t seed,
                              std::uint64_t offset, matrix_view<float> y) {
    check_dropout<float>("dropout_forward", "x", "y", x, p, y);
    apply<false>(be, x, p, seed, offset, y);
  }

  /// dx += keep ? dy/(1−p) : 0, the mask recomputed from (seed, offset).                     dy,dx (N,D)
  static void dropout_backward(const simd<Arch>& be, matrix_view<const float> dy, float p, std::uint64_t seed,
                               std::uint64_t offset, matrix_view<float> dx) {
    check_dropout<float>("dropout_backward", "dy", "dx", dy, p, dx);
    apply<true>(be, dy, p, seed, offset, dx);
  }

 private:
  using batch = xsimd::batch<float, Arch>;
  using io = row_io<Arch>;
  using tiles = elementwise_tiles<Arch>;
  using ibatch = xsimd::batch<std::int32_t, Arch>;
  static constexpr index_t width = static_cast<index_t>(batch::size);
  static constexpr index_t span = 1024;  // elements whose random words are drawn at once
  static constexpr index_t words = philox_lanes<Arch>::words_per_step;
  static constexpr index_t ahead = 512;  // elements read ahead by software prefetch

  /// accumulate = false: b = mask(a); true: b += mask(a).
  template <bool accumulate>
  static void apply(const simd<Arch>& be, matrix_view<const float> a, float p, std::uint64_t seed, std::uint64_t offset,
                    matrix_view<float> b) {
    const index_t n = a.extent(0), d = a.extent(1);
    const batch scale(1.0f / (1.0f - p));
    // keep iff k·2⁻²⁴ ≥ p ⟺ k ≥ ⌈p·2²⁴⌉ for the integer k = word >> 8 (p·2²⁴ is exact in double)
    const ibatch threshold(static_cast<std::int32_t>(std::ceil(static_cast<double>(p) * 16777216.0)));
    const bool stream = !accumulate && io::streams(b);
    tiles::for_each_segment(be, n, d, stream, [&](index_t r, index_t j0, index_t j1) {
      const float* ar = a.data_handle() + r * a.stride(0);
      float* br = b.data_handle() + r * b.stride(0);
      if (p == 0.0f) {
        if constexpr (accumulate)
          tiles::for_each_block(
              j0, j1, [&](index_t j, index_t m) { io::store(br + j, m, io::load(br + j, m) + io::load(ar + j, m)); });
        else
          io::store_blocks(br + j0, j1 - j0, stream, [&](index_t j, index_t m) { return io::load(ar + j0 + j, m); });
        return;
      }
      alignas(64) std::int32_t k[span + 2 * words];
      const std::uint64_t row = offset + static_cast<std::uint64_t>(r) * static_cast<std::uint64_t>(d);
      for (index_t c0 = j0; c0 < j1; c0 += span) {
        const index_t c1 = std::min(j1, c0 + span);
        const std::uint64_t e0 = row + static_cast<std::uint64_t>(c0);
        const index_t skip = static_cast<index_t>(e0 & 3);
        // words for elements e0 − skip … e0 + (c1 − c0) + width: every lane a block loads is initialised
        philox_lanes<Arch>::top24(seed, e0 >> 2, (skip + (c1 - c0) + width + words - 1) / words, k);
        auto masked = [&](index_t j, index_t m) {  // j relative to c0
          if (c0 + j + ahead < j1) __builtin_prefetch(ar + c0 + j + ahead);
          const auto keep = ibatch::load_unaligned(k + skip + j) >= threshold;
          const ibatch bits = xsimd::bitwise_cast<ibatch>(io::load(ar + c0 + j, m) * scale);
          return xsimd::bitwise_cast<batch>(xsimd::select(keep, bits, ibatch(0)));  // dropped: +0.0f
        };
        if constexpr (accumulate)
          tiles::for_each_block(
              c0, c1, [&](index_t j, index_t m) { io::store(br + j, m, io::load(br + j, m) + masked(j - c0, m)); });
        else
          io::store_blocks(br + c0, c1 - c0, stream, masked);
      }
    });
  }
};

}  // namespace slim::backend::detail
