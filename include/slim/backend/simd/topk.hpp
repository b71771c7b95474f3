// slim — xsimd kernels: per-row top-k (forward beside backward). Ops not defined here fall back to Base
// (scalar). Keys are 64-bit integers whose order is the top-k order (value, then lower column). For k > L/4
// the forward partitions all keys of a row (nth_element) and sorts the first k. Otherwise it keeps the k
// best seen so far in a min-heap whose root, the worst of them, is the threshold: a row is scanned a vector
// at a time, and a vector is looked at lane by lane only when one of its lanes beats the threshold, so a row
// costs about L/W comparisons plus O(k·log(L/k)·log k) heap work on unsorted input. Columns are scanned in
// increasing order, so an equal value never displaces a kept one.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "slim/backend/scalar/topk.hpp"

namespace slim::backend::detail {

template <class Arch, class Base>
struct simd_topk : Base {
  using Base::topk_backward;
  using Base::topk_forward;

  /// values[n] = the k largest of x[n] in descending order, indices[n] their columns.
  /// x (N,L); values, indices (N,k) (indices int32); 1 ≤ k ≤ min(L, 1000).
  static void topk_forward(const backend::simd<Arch>& be, matrix_view<const float> x, index_t k,
                           matrix_view<float> values, matrix_view<std::int32_t> indices) {
    check_topk<float>("slim::topk_forward", x, k, values, indices);
    const index_t cols = x.extent(1);
    const index_t grain = std::max<index_t>(1, 65536 / cols);
    parallel_for(be.pool, x.extent(0), grain, [&](index_t n0, index_t n1) {
      std::vector<std::uint64_t> heap;
      for (index_t n = n0; n < n1; ++n) {
        const float* row = &x(n, 0);
        select_row(row, cols, k, heap);
        for (index_t j = 0; j < k; ++j) {
          const index_t c = key_column(heap[static_cast<std::size_t>(j)]);
          values(n, j) = row[c];
          indices(n, j) = static_cast<std::int32_t>(c);
        }
      }
    });
  }

  /// dx[n, indices[n,j]] += dvalues[n,j]. indices, dvalues (N,k); dx (N,L); an index outside [0,L) throws.
  static void topk_backward(const backend::simd<Arch>& be, matrix_view<const std::int32_t> indices,
                            matrix_view<const float> dvalues, matrix_view<float> dx) {
    check_topk_backward<float>("slim::topk_backward", indices, dvalues, dx);
    const index_t grain = std::max<index_t>(1, 4096 / std::max<index_t>(1, indices.extent(1)));
    parallel_for(be.pool, indices.extent(0), grain, [&](index_t n0, index_t n1) {
      for (index_t n = n0; n < n1; ++n)
        for (index_t j = 0; j < indices.extent(1); ++j) dx(n, indices(n, j)) += dvalues(n, j);
    });
  }

 private:
  using batch = xsimd::batch<float, Arch>;
  static constexpr index_t width = static_cast<index_t>(batch::size);

  /// A 64-bit key whose unsigned order is the top-k order: the value's bits mapped to a monotone unsigned
  /// integer (NaN lowest, −0 as +0) above the inverted column (lower column, larger key).
  static std::uint64_t rank_key(float x, index_t column) noexcept {
    std::uint32_t u = 0;
    if (!std::isnan(x)) {
      u = std::bit_cast<std::uint32_t>(x == 0.0f ? 0.0f : x);
      u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);  // −inf → 0x007fffff > 0 (NaN), +inf highest
    }
    return (static_cast<std::uint64_t>(u) << 32) | (0xffffffffu - static_cast<std::uint32_t>(column));
  }
  static index_t key_column(std::uint64_t key) noexcept {
    return static_cast<index_t>(0xffffffffu - static_cast<std::uint32_t>(key));
  }

  /// Restores the min-heap property below the root after the root was replaced.
  static void sift_down(std::uint64_t* heap, index_t n) noexcept {
    const std::uint64_t top = heap[0];
    index_t i = 0;
    for (;;) {
      index_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && heap[child + 1] < heap[child]) ++child;
      if (heap[child] >= top) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = top;
  }

  /// Leaves the k best of row[0, cols) in `heap` as keys, best first.
  static void select_row(const float* row, index_t cols, index_t k, std::vector<std::uint64_t>& heap) {
    if (4 * k > cols) {  // most of the row is kept: partition all keys instead of filtering a stream
      heap.resize(static_cast<std::size_t>(cols));
      for (index_t c = 0; c < cols; ++c) heap[static_cast<std::size_t>(c)] = rank_key(row[c], c);
      std::nth_element(heap.begin(), heap.begin() + (k - 1), heap.end(), std::greater<>{});
      std::sort(heap.begin(), heap.begin() + k, std::greater<>{});
      return;
    }
    heap.resize(static_cast<std::size_t>(k));
    for (index_t c = 0; c < k; ++c) heap[static_cast<std::size_t>(c)] = rank_key(row[c], c);
    std::make_heap(heap.begin(), heap.end(), std::greater<>{});  // root: the worst key kept
    std::uint64_t* h = heap.data();
    // The root's value is the threshold: a later column enters only with a strictly greater value (an equal
    // one has a higher column), and any number beats a NaN root. Equivalent to key > root, and cheaper.
    float threshold = row[key_column(h[0])];
    auto offer = [&](index_t c) {
      const float x = row[c];
      if (std::isnan(threshold) ? std::isnan(x) : !(x > threshold)) return;
      h[0] = rank_key(x, c);
      sift_down(h, k);
      threshold = row[key_column(h[0])];
    };
    index_t c = k;
    for (; c + width <= cols; c += width) {
      const batch xv = batch::load_unaligned(row + c);
      const bool maybe = std::isnan(threshold) ? xsimd::any(xv == xv) : xsimd::any(xv > batch(threshold));
      if (!maybe) continue;
      for (index_t l = 0; l < width; ++l) offer(c + l);
    }
    for (; c < cols; ++c) offer(c);
    std::sort(heap.begin(), heap.end(), std::greater<>{});
  }
};

}  // namespace slim::backend::detail
