// slim — the register-blocked SGEMM micro-kernel of the simd backend (BLIS-style) and its blocking sizes.
//
// The micro-kernel multiplies a packed MR×kc panel of A (row by row, rows LDA floats apart, so packing a
// row is a plain copy and each broadcast is a fixed offset from one pointer) by a kc×NR panel of B (NR
// contiguous values per k, rows `ldb` apart: packed, or B itself when its rows are contiguous) and keeps
// the MR×NR product in registers: NR = 2 vectors, MR rows, one accumulator register per (row, vector).
// Each k loads the two B vectors once and broadcasts each A value once. Every output element is the FMA
// chain over k in ascending order starting from 0, whatever the tile, the edge or the thread; the tile
// then lands in C as α·acc (β = 0, C not read), α·acc + C (β = 1, one FMA) or α·acc + β·C.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <xsimd/xsimd.hpp>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "slim/core/config.hpp"

namespace slim::backend::detail {

/// Register and cache blocking of the simd SGEMM for one architecture (sizes for AVX-512 on Ice Lake:
/// 48 KiB L1d, 1.25 MiB L2 per core).
///   NR: two vectors (32 floats on AVX-512, 16 on AVX2, 8 on SSE2).
///   MR: rows; MR·2 accumulators + 2 B vectors + 1 broadcast must fit the register file: 14 rows with the
///       32 zmm registers of AVX-512 (28 + 3 = 31), 6 rows with 16 ymm/xmm registers (12 + 3 = 15).
///   KC: depth of a panel; the kc×NR B panel (32 KiB at 256×32) stays in L1d while MR-row panels of A
///       (14 KiB) stream past it.
///   LDA: rows of a packed A panel are KC + 16 floats apart: a multiple of 1 KiB would put all 14 rows in
///       the same few L1 sets, beside the B panel.
///   MC: rows of the packed A block (MC·LDA·4 bytes ≈ 548 KiB) that stays in L2 while the B panels pass.
///   NC: columns of a packed B block (KC·NC·4 bytes, 4 MiB), from L3.
/// Measured at 1024³ on Ice Lake (thread CPU time, OpenBLAS alongside): KC 192/256/384, MC 16/24/36/40
/// panels and MR 12/14 all land within ±3% of each other; these sizes were the best of them.
template <class Arch>
struct gemm_blocking {
  using batch = xsimd::batch<float, Arch>;
  static constexpr index_t vector = static_cast<index_t>(batch::size);
  static constexpr index_t nr = 2 * vector;
  static constexpr index_t mr = vector >= 16 ? 14 : 6;
  static constexpr index_t kc = 256;
  static constexpr index_t lda = kc + 16;  // row stride of a packed A panel (see above)
  static constexpr index_t mc = mr * 36;
  static constexpr index_t nc = 4096;
  static constexpr index_t direct_b_floats = 32 * 1024;      // K·N up to 128 KiB: B read in place (gemm.hpp)
  static constexpr index_t shared_floats = 4 * 1024 * 1024;  // panels shared by threads: up to 16 MiB
  /// Rows of A from which a B streamed from memory is prefetched ahead (gemm_micro_kernel's StreamB): with
  /// fewer, the kernel's loads already keep ahead (batch-1 decoding measured the same with and without).
  static constexpr index_t stream_b_min_rows = 4;
};

/// x·y + z, fused where the architecture or the build has FMA (xsimd 8.1 leaves AVX-512's to the compiler's
/// contraction, so it is named here; without FMA, as on SSE2 built without -mfma, a multiply and an add).
template <class Arch>
inline xsimd::batch<float, Arch> gemm_fmadd(const xsimd::batch<float, Arch>& x, const xsimd::batch<float, Arch>& y,
                                            const xsimd::batch<float, Arch>& z) noexcept {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    return _mm512_fmadd_ps(x, y, z);
  }
#if defined(__FMA__)
  // An SSE or AVX batch in a build with FMA (-march=native, say): fused by name too. Left to contraction, the
  // same source fused one way at one call site and the other way at another (β·C + α·acc has two products),
  // and the packed-B and plain-B paths stopped being bit-identical.
  else if constexpr (sizeof(xsimd::batch<float, Arch>) == 16) {
    return _mm_fmadd_ps(x, y, z);
  } else if constexpr (sizeof(xsimd::batch<float, Arch>) == 32) {
    return _mm256_fmadd_ps(x, y, z);
  }
#endif
  else
#endif
  {
    return xsimd::fma(x, y, z);
  }
}

/// The micro-kernel for `Rows` ≤ MR rows (edge panels of A use their own row count, so no FMA is spent
/// on padding). `a`: packed panel, row r at a + r·LDA; `b`: NR floats per k, rows `ldb` apart; `c`: Rows×NR
/// floats, rows `ldc` apart (columns contiguous).
template <class Arch, int Rows, bool StreamB = false>
struct gemm_micro_kernel {
  using batch = xsimd::batch<float, Arch>;
  static constexpr index_t kcs = gemm_blocking<Arch>::lda;
  static constexpr index_t w = gemm_blocking<Arch>::vector;
  static constexpr index_t nr = gemm_blocking<Arch>::nr;
  /// StreamB: B is read once, from memory (a prepacked weight against a few rows of A): each k also prefetches
  /// the B row this many rows ahead, which the out-of-order window alone does not reach once the FMAs of several
  /// rows fill it. Panels read from cache (the blocked GEMM's own packing) need no prefetch.
  static constexpr index_t prefetch_rows = 48;

  static void run(index_t kc, const float* a, const float* b, index_t ldb, float alpha, float beta, float* c,
                  index_t ldc) noexcept {
    batch acc0[Rows], acc1[Rows];
    for (int r = 0; r < Rows; ++r) acc0[r] = acc1[r] = batch(0.0f);
    for (int r = 0; r < Rows; ++r) {  // the tile is read and written after the loop: start fetching it now
      __builtin_prefetch(c + r * ldc, 1);
      __builtin_prefetch(c + r * ldc + nr - 1, 1);
    }
    for (index_t p = 0; p < kc; ++p) {
      if constexpr (StreamB) {  // the address may lie past B's end: formed as an integer, never as a pointer
        const std::uintptr_t ahead = reinterpret_cast<std::uintptr_t>(b) +
                                     static_cast<std::uintptr_t>(prefetch_rows * ldb) * sizeof(float);
        __builtin_prefetch(reinterpret_cast<const void*>(ahead));
        __builtin_prefetch(reinterpret_cast<const void*>(ahead + w * sizeof(float)));
      }
      const batch b0 = batch::load_unaligned(b);
      const batch b1 = batch::load_unaligned(b + w);
      step(a, b0, b1, acc0, acc1, std::make_integer_sequence<int, Rows>{});
      ++a;
      b += ldb;
    }
    const batch va(alpha);
    if (beta == 0.0f) {
      for (int r = 0; r < Rows; ++r) {
        (va * acc0[r]).store_unaligned(c + r * ldc);
        (va * acc1[r]).store_unaligned(c + r * ldc + w);
      }
    } else if (beta == 1.0f) {
      for (int r = 0; r < Rows; ++r) {
        gemm_fmadd(va, acc0[r], batch::load_unaligned(c + r * ldc)).store_unaligned(c + r * ldc);
        gemm_fmadd(va, acc1[r], batch::load_unaligned(c + r * ldc + w)).store_unaligned(c + r * ldc + w);
      }
    } else {
      const batch vb(beta);
      for (int r = 0; r < Rows; ++r) {
        gemm_fmadd(vb, batch::load_unaligned(c + r * ldc), va * acc0[r]).store_unaligned(c + r * ldc);
        gemm_fmadd(vb, batch::load_unaligned(c + r * ldc + w), va * acc1[r]).store_unaligned(c + r * ldc + w);
      }
    }
  }

 private:
  template <int... R>
  [[gnu::always_inline]] static inline void step(const float* a, const batch& b0, const batch& b1, batch* acc0,
                                                 batch* acc1, std::integer_sequence<int, R...>) noexcept {
    ((row<R>(a, b0, b1, acc0, acc1)), ...);
  }
  template <int R>
  [[gnu::always_inline]] static inline void row(const float* a, const batch& b0, const batch& b1, batch* acc0,
                                                batch* acc1) noexcept {
    const batch ar(a[R * kcs]);
    acc0[R] = gemm_fmadd(ar, b0, acc0[R]);
    acc1[R] = gemm_fmadd(ar, b1, acc1[R]);
  }
};

template <class Arch, bool StreamB, int... R>
inline void gemm_micro_select(std::integer_sequence<int, R...>, index_t rows, index_t kc, const float* a,
                              const float* b, index_t ldb, float alpha, float beta, float* c, index_t ldc) noexcept {
  ((rows == R + 1 ? (gemm_micro_kernel<Arch, R + 1, StreamB>::run(kc, a, b, ldb, alpha, beta, c, ldc), 0) : 0), ...);
}

/// Calls the micro-kernel for `rows` (1..MR) rows; `stream_b`: B comes from memory once (see gemm_micro_kernel).
template <class Arch>
inline void gemm_micro_dispatch(index_t rows, index_t kc, const float* a, const float* b, index_t ldb, float alpha,
                                float beta, float* c, index_t ldc, bool stream_b) noexcept {
  constexpr auto all = std::make_integer_sequence<int, static_cast<int>(gemm_blocking<Arch>::mr)>{};
  if (stream_b && rows >= gemm_blocking<Arch>::stream_b_min_rows)
    gemm_micro_select<Arch, true>(all, rows, kc, a, b, ldb, alpha, beta, c, ldc);
  else
    gemm_micro_select<Arch, false>(all, rows, kc, a, b, ldb, alpha, beta, c, ldc);
}

}  // namespace slim::backend::detail
