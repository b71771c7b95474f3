// slim — packing for the simd SGEMM: copies a block of A into MR-row panels and a block of B into
// NR-column panels in the order the micro-kernel reads them, from any strides (so all four transposes
// reach the kernel in the same form), widening bf16 to float on the way. Only data moves: packed values
// are bit-exact copies.
//
// bf16: this code targets CPUs without AVX-512 BF16 (e.g. Ice Lake): bf16 operands are widened to float
// while packing (a 16-bit shift) and every FMA runs in float.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "slim/backend/simd/gemm_transpose.hpp"
#include "slim/core/config.hpp"
#include "slim/core/half.hpp"

namespace slim::backend::detail {

template <class T>
inline float gemm_to_float(T x) noexcept {
  if constexpr (std::is_same_v<T, bf16>)
    return static_cast<float>(x);
  else
    return x;
}

/// A strided matrix operand: element (i, j) is data[i·rs + j·cs].
template <class T>
struct gemm_operand {
  const T* data;
  index_t rs, cs;
};

/// Packs rows [i0, i0+rows) × columns [p0, p0+kc) of `a` as one panel: dst[r·ld + p] = a(i0+r, p0+p).
/// Rows ≥ `rows` of the panel are left as they are: the micro-kernel for `rows` rows never reads them.
template <class Arch, index_t ld, class TA>
inline void gemm_pack_a_panel(const gemm_operand<TA>& a, index_t i0, index_t rows, index_t p0, index_t kc,
                              float* dst) noexcept {
  const TA* base = a.data + i0 * a.rs + p0 * a.cs;
  if (a.cs == 1) {  // rows contiguous (A as stored): one copy per row
    for (index_t r = 0; r < rows; ++r) {
      const TA* src = base + r * a.rs;
      float* d = dst + r * ld;
      if constexpr (std::is_same_v<TA, float>)
        std::memcpy(d, src, sizeof(float) * static_cast<std::size_t>(kc));
      else
        for (index_t p = 0; p < kc; ++p) d[p] = gemm_to_float(src[p]);
    }
    return;
  }
  index_t p_done = 0;
  if (a.rs == 1) {  // columns contiguous (a transposed view): transpose square blocks in registers
    using tb = gemm_transpose_block<Arch>;
    if constexpr (tb::size > 0) {
      constexpr index_t s = tb::size;
      for (; p_done + s <= kc; p_done += s)
        for (index_t r0 = 0; r0 < rows; r0 += s) {
          const index_t count = std::min(s, rows - r0);
          typename tb::reg v[s];
          for (index_t t = 0; t < s; ++t) v[t] = tb::load(base + (p_done + t) * a.cs + r0, count);
          tb::transpose(v);  // v[r] = row r0 + r, columns p_done .. p_done + s
          for (index_t r = 0; r < count; ++r) tb::store(dst + (r0 + r) * ld + p_done, v[r]);
        }
    }
    for (index_t p = p_done; p < kc; ++p) {
      const TA* src = base + p * a.cs;
      for (index_t r = 0; r < rows; ++r) dst[r * ld + p] = gemm_to_float(src[r]);
    }
    return;
  }
  for (index_t r = 0; r < rows; ++r)
    for (index_t p = 0; p < kc; ++p) dst[r * ld + p] = gemm_to_float(base[r * a.rs + p * a.cs]);
}

/// Packs rows [p0, p0+kc) × columns [j0 + q0·nr, j0 + q1·nr) ∩ [j0, j0 + nc) of `b` as panels q0..q1-1:
/// panel q at dst + q·nr·kc holds dst[p·nr + j] = b(p0+p, j0+q·nr+j), columns past nc set to 0 (the
/// micro-kernel computes all nr columns; the padding lands nowhere). Rows of B are read in order, so the
/// hardware prefetchers see one stream per row rather than one short burst per panel.
template <class Arch, index_t nr, class TB>
inline void gemm_pack_b_panels(const gemm_operand<TB>& b, index_t p0, index_t kc, index_t j0, index_t nc, index_t q0,
                               index_t q1, float* dst) noexcept {
  const TB* base = b.data + p0 * b.rs + j0 * b.cs;
  if (b.cs == 1) {  // rows contiguous (B as stored)
    for (index_t p = 0; p < kc; ++p) {
      const TB* src = base + p * b.rs;
      for (index_t q = q0; q < q1; ++q) {
        const index_t cols = std::min(nr, nc - q * nr);
        float* d = dst + q * nr * kc + p * nr;
        const TB* s = src + q * nr;
        if constexpr (std::is_same_v<TB, float>) {
          if (cols == nr) {
            std::memcpy(d, s, sizeof(float) * nr);
            continue;
          }
        }
        index_t j = 0;
        for (; j < cols; ++j) d[j] = gemm_to_float(s[j]);
        for (; j < nr; ++j) d[j] = 0.0f;
      }
    }
    return;
  }
  for (index_t q = q0; q < q1; ++q) {
    const index_t cols = std::min(nr, nc - q * nr);
    const TB* col0 = base + q * nr * b.cs;
    float* d = dst + q * nr * kc;
    index_t p_done = 0;
    if (b.rs == 1) {  // columns contiguous (a transposed view, e.g. a weight W used as Wᵀ)
      using tb = gemm_transpose_block<Arch>;
      if constexpr (tb::size > 0 && nr % tb::size == 0) {
        constexpr index_t s = tb::size;
        for (; p_done + s <= kc; p_done += s)
          for (index_t jj = 0; jj < nr; jj += s) {
            typename tb::reg v[s];
            for (index_t t = 0; t < s; ++t)
              v[t] = jj + t < cols ? tb::load(col0 + (jj + t) * b.cs + p_done, s) : tb::zero();
            tb::transpose(v);  // v[i] = row p_done + i, columns jj .. jj + s (0 past cols)
            for (index_t i = 0; i < s; ++i) tb::store(d + (p_done + i) * nr + jj, v[i]);
          }
      }
    }
    for (index_t p = p_done; p < kc; ++p) {
      index_t j = 0;
      for (; j < cols; ++j) d[p * nr + j] = gemm_to_float(col0[p * b.rs + j * b.cs]);
      for (; j < nr; ++j) d[p * nr + j] = 0.0f;
    }
  }
}

}  // namespace slim::backend::detail
