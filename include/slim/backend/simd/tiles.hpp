// slim — how the elementwise xsimd kernels (activation, dropout) cut an (N,D) view into work: tiles of about
// 32K elements that depend on the shape only, spread over be.pool, every element in one task, so results do
// not depend on the thread count; within a row segment, blocks of one register.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>

#include "slim/backend/simd/row_io.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/thread_pool.hpp"

namespace slim::backend::detail {

template <class Arch>
struct elementwise_tiles {
  static constexpr index_t width = row_io<Arch>::width;

  /// Calls f(j, m) for consecutive blocks [j, j+m) of [j0, j1), m = width except for the last.
  template <class F>
  static void for_each_block(index_t j0, index_t j1, F&& f) {
    index_t j = j0;
    for (; j + width <= j1; j += width) f(j, width);
    if (j < j1) f(j, j1 - j);
  }

  /// Calls f(r, j0, j1) on row segments covering the (n,d) view, in tiles of about 32K elements (column
  /// blocks when rows are long, groups of rows when they are short) run in parallel on be.pool; with
  /// `stream`, each task ends with a store fence.
  template <class F>
  static void for_each_segment(const simd<Arch>& be, index_t n, index_t d, bool stream, F&& f) {
    if (n <= 0 || d <= 0) return;
    constexpr index_t tile = 32768;
    const index_t cols = std::min(d, tile);
    const index_t col_blocks = (d + cols - 1) / cols;
    const index_t rows = std::max<index_t>(1, tile / cols);
    const index_t row_blocks = chunk_count(n, rows);
    parallel_for(be.pool, row_blocks * col_blocks, 1, [&](index_t t0, index_t t1) {
      for (index_t t = t0; t < t1; ++t) {
        const index_t rb = t / col_blocks, cb = t % col_blocks;
        const index_t j0 = cb * cols, j1 = std::min(d, j0 + cols);
        for (index_t r = rb * rows; r < std::min(n, (rb + 1) * rows); ++r) f(r, j0, j1);
      }
      if (stream) row_io<Arch>::stream_fence();
    });
  }
  /// The same without streaming stores.
  template <class F>
  static void for_each_segment(const simd<Arch>& be, index_t n, index_t d, F&& f) {
    for_each_segment(be, n, d, false, f);
  }
};

}  // namespace slim::backend::detail
