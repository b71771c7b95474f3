// slim — in-register transposes for packing transposed GEMM operands (gemm_pack.hpp). A transposed view
// (a weight W (N,K) used as Wᵀ, an activation used as Aᵀ) has contiguous columns where the packed panels
// want contiguous rows: these helpers load square blocks, transpose them in registers and hand back rows,
// so packing costs about as much as for a plain operand. Only data moves: values are bit-exact (bf16 is
// widened exactly). AVX-512: 16×16 blocks in 64 shuffles; AVX2: 8×8 blocks in 24; other architectures
// pack transposed operands with scalar code.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <xsimd/xsimd.hpp>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>  // every x86 intrinsic is declared whatever the flags; used only for the arch named
#endif

#include "slim/core/config.hpp"
#include "slim/core/half.hpp"

namespace slim::backend::detail {

/// The transposing block of architecture `Arch`: `size`×`size` floats; `size` = 0 when there is none.
template <class Arch, class = void>
struct gemm_transpose_block {
  static constexpr index_t size = 0;
};

#if defined(__x86_64__) || defined(__i386__)
template <class Arch>
struct gemm_transpose_block<Arch, std::enable_if_t<std::is_base_of_v<xsimd::avx512f, Arch>>> {
  static constexpr index_t size = 16;
  using reg = __m512;

  /// 16 consecutive elements from `p` as floats; only the first `count` are read (the rest are 0).
  template <class T>
  static reg load(const T* p, index_t count) noexcept {
    if constexpr (std::is_same_v<T, float>) {
      if (count >= 16) return _mm512_loadu_ps(p);
      return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1u), p);
    } else {
      static_assert(std::is_same_v<T, bf16>, "gemm_transpose_block: float or bf16 elements");
      __m256i h;
      if (count >= 16) {
        h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      } else {  // a short row: through a zeroed buffer (AVX-512F alone has no 16-bit masked load)
        alignas(32) std::uint16_t part[16] = {};
        std::memcpy(part, p, sizeof(std::uint16_t) * static_cast<std::size_t>(count));
        h = _mm256_load_si256(reinterpret_cast<const __m256i*>(part));
      }
      const __mmask16 all = 0xffff;  // (zero-masked forms: see transpose())
      return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(all, _mm512_maskz_cvtepu16_epi32(all, h), 16));
    }
  }

  /// Transposes r[0..15] (row i = r[i]) in place: afterwards r[j] holds column j. (The masked forms with a
  /// full mask are the plain instructions; GCC 12 warns falsely about the unmasked intrinsics' undefined
  /// pass-through operand, so they are avoided.)
  static void transpose(reg* r) noexcept {
    constexpr __mmask16 all16 = 0xffff;
    constexpr __mmask8 all8 = 0xff;
    reg t[16], u[16];
    for (int i = 0; i < 8; ++i) {  // within 128-bit lanes: pairs of rows interleaved
      const reg a = r[2 * i], b = r[2 * i + 1];
      t[2 * i] = _mm512_mask_unpacklo_ps(a, all16, a, b);
      t[2 * i + 1] = _mm512_mask_unpackhi_ps(a, all16, a, b);
    }
    for (int i = 0; i < 4; ++i) {  // within lanes: u[4i+j] lane L = column 4L+j of rows 4i..4i+3
      const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
      const __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
      u[4 * i] = _mm512_castpd_ps(_mm512_mask_unpacklo_pd(a, all8, a, b));
      u[4 * i + 1] = _mm512_castpd_ps(_mm512_mask_unpackhi_pd(a, all8, a, b));
      u[4 * i + 2] = _mm512_castpd_ps(_mm512_mask_unpacklo_pd(c, all8, c, d));
      u[4 * i + 3] = _mm512_castpd_ps(_mm512_mask_unpackhi_pd(c, all8, c, d));
    }
    for (int j = 0; j < 4; ++j) {  // across lanes: gather lane L of the four row groups
      const reg v = lanes<even>(u[j], u[4 + j]), w = lanes<odd>(u[j], u[4 + j]);
      const reg v2 = lanes<even>(u[8 + j], u[12 + j]), w2 = lanes<odd>(u[8 + j], u[12 + j]);
      r[j] = lanes<even>(v, v2);
      r[8 + j] = lanes<odd>(v, v2);
      r[4 + j] = lanes<even>(w, w2);
      r[12 + j] = lanes<odd>(w, w2);
    }
  }

  static constexpr int even = 0x88;  // 128-bit lanes 0, 2 of x, then lanes 0, 2 of y
  static constexpr int odd = 0xdd;   // lanes 1, 3 of x, then of y
  template <int imm>
  static reg lanes(reg x, reg y) noexcept {
    return _mm512_mask_shuffle_f32x4(x, __mmask16(0xffff), x, y, imm);
  }

  static reg zero() noexcept { return _mm512_setzero_ps(); }
  static void store(float* p, reg v) noexcept { _mm512_storeu_ps(p, v); }
};

template <class Arch>
struct gemm_transpose_block<
    Arch, std::enable_if_t<std::is_base_of_v<xsimd::avx2, Arch> && !std::is_base_of_v<xsimd::avx512f, Arch>>> {
  static constexpr index_t size = 8;
  using reg = __m256;

  /// 8 consecutive elements from `p` as floats; only the first `count` are read (the rest are 0).
  template <class T>
  static reg load(const T* p, index_t count) noexcept {
    if constexpr (std::is_same_v<T, float>) {
      if (count >= 8) return _mm256_loadu_ps(p);
      const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), lane));
    } else {
      static_assert(std::is_same_v<T, bf16>, "gemm_transpose_block: float or bf16 elements");
      __m128i h;
      if (count >= 8) {
        h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      } else {
        alignas(16) std::uint16_t part[8] = {};
        std::memcpy(part, p, sizeof(std::uint16_t) * static_cast<std::size_t>(count));
        h = _mm_load_si128(reinterpret_cast<const __m128i*>(part));
      }
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));  // bf16 → float, exact
    }
  }

  /// Transposes r[0..7] (row i = r[i]) in place: afterwards r[j] holds column j.
  static void transpose(reg* r) noexcept {
    reg t[8], u[8];
    for (int i = 0; i < 4; ++i) {  // within 128-bit lanes: pairs of rows interleaved
      t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; ++i) {  // within lanes: u[4i+j] lane L = column 4L+j of rows 4i..4i+3
      u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
      u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
      u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
      u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
    }
    for (int j = 0; j < 4; ++j) {  // across lanes: low lanes give columns 0-3, high lanes 4-7
      r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
      r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
  }

  static reg zero() noexcept { return _mm256_setzero_ps(); }
  static void store(float* p, reg v) noexcept { _mm256_storeu_ps(p, v); }
};
#endif

}  // namespace slim::backend::detail
