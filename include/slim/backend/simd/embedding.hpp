// slim — xsimd kernels: embedding gather / scatter-add (forward beside backward). Ops not defined here fall
// back to Base (scalar). The gather splits rows over the pool; the scatter-add splits columns, and each task
// adds its columns of every dout row in n order, so every element sees the scalar oracle's sums exactly.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstring>
#include <xsimd/xsimd.hpp>

#include "slim/backend/scalar/embedding.hpp"

namespace slim::backend::detail {

template <class Arch, class Base>
struct simd_embedding : Base {
  using Base::embedding_backward;
  using Base::embedding_forward;

  /// out[n] = table[ids[n]]. table (V,D); ids (N) int32; out (N,D).
  static void embedding_forward(const backend::simd<Arch>& be, matrix_view<const float> table,
                                vector_view<const std::int32_t> ids, matrix_view<float> out) {
    check_embedding("slim::embedding_forward", table, ids, out, "table", "out");
    const index_t dim = table.extent(1);
    if (dim == 0) return;
    const index_t grain = std::max<index_t>(1, 32768 / dim);
    parallel_for(be.pool, ids.extent(0), grain, [&](index_t n0, index_t n1) {
      for (index_t n = n0; n < n1; ++n)
        std::memcpy(&out(n, 0), &table(ids(n), 0), static_cast<std::size_t>(dim) * sizeof(float));
    });
  }

  /// dtable[ids[n]] += dout[n], rows added in n order. ids (N) int32; dout (N,D); dtable (V,D).
  static void embedding_backward(const backend::simd<Arch>& be, vector_view<const std::int32_t> ids,
                                 matrix_view<const float> dout, matrix_view<float> dtable) {
    check_embedding("slim::embedding_backward", dtable, ids, dout, "dtable", "dout");
    const index_t dim = dtable.extent(1), rows = ids.extent(0);
    constexpr index_t columns_per_task = 256;  // 1 KiB of each row: a task streams its own column slice
    parallel_for(be.pool, dim, columns_per_task, [&](index_t c0, index_t c1) {
      for (index_t n = 0; n < rows; ++n) {
        const float* src = &dout(n, 0);
        float* dst = &dtable(ids(n), 0);
        index_t c = c0;
        for (; c + width <= c1; c += width)
          (batch::load_unaligned(dst + c) + batch::load_unaligned(src + c)).store_unaligned(dst + c);
        for (; c < c1; ++c) dst[c] += src[c];
      }
    });
  }

 private:
  using batch = xsimd::batch<float, Arch>;
  static constexpr index_t width = static_cast<index_t>(batch::size);
};

}  // namespace slim::backend::detail
