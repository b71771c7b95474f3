// slim — what every nn module shares: the step context (training or not, the seed and step that key
// dropout), growable scratch buffers, the backend's thread pool, and two small row helpers (broadcast a
// bias, sum columns) that are deterministic at any thread count.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "slim/backend/tags.hpp"
#include "slim/core/error.hpp"
#include "slim/core/philox.hpp"
#include "slim/core/tensor.hpp"
#include "slim/core/thread_pool.hpp"

namespace slim::nn {

/// The state of one forward/backward pass. Dropout draws from Philox under a key derived from
/// (seed, step, layer), so the mask of each layer is fixed by the run's seed and the step number only.
struct step_context {
  bool training = false;
  std::uint64_t seed = 0;
  std::uint64_t step = 0;
};

/// The Philox key of dropout layer `layer` at this step: one Philox block of (step, layer) under the seed.
inline std::uint64_t dropout_key(const step_context& ctx, std::uint32_t layer) noexcept {
  const philox_block b = philox4x32_10(
      philox_block{{static_cast<std::uint32_t>(ctx.step), static_cast<std::uint32_t>(ctx.step >> 32), layer, 0xd20u}},
      static_cast<std::uint32_t>(ctx.seed), static_cast<std::uint32_t>(ctx.seed >> 32));
  return static_cast<std::uint64_t>(b.v[0]) | (static_cast<std::uint64_t>(b.v[1]) << 32);
}

/// A reusable (rows, cols) scratch matrix: grows its storage when asked for more and keeps it, so a
/// training loop allocates only in its first steps. Contents after `resize` are unspecified.
template <class T>
class buffer {
 public:
  matrix_view<T> resize(index_t rows, index_t cols) {
    const index_t n = checked_size(std::array<index_t, 2>{rows, cols}, "slim::nn::buffer", "shape");
    if (n > store_.size()) {
      // A quarter of headroom, so a slightly larger shape later (a longer batch) reuses the storage. Only the n
      // elements in use are written here: the headroom stays unwritten, address space rather than resident
      // memory, until a shape needs it (zeroing all of it cost a training step ~40 MiB of RSS).
      require(n <= std::numeric_limits<index_t>::max() - n / 4, "slim::nn::buffer", "shape (", rows, ", ", cols,
              ") is too large");
      store_ = tensor<T, 1>({n + n / 4}, uninitialized);
      std::memset(store_.data(), 0, static_cast<std::size_t>(n) * sizeof(T));
    }
    rows_ = rows;
    cols_ = cols;
    return view();
  }
  /// resize, then every element 0.
  matrix_view<T> zeros(index_t rows, index_t cols) {
    resize(rows, cols);
    if (rows * cols != 0) std::memset(store_.data(), 0, static_cast<std::size_t>(rows * cols) * sizeof(T));
    return view();
  }
  matrix_view<T> view() noexcept { return {store_.data(), {rows_, cols_}}; }
  matrix_view<const T> view() const noexcept { return {store_.data(), {rows_, cols_}}; }
  T* data() noexcept { return store_.data(); }
  index_t rows() const noexcept { return rows_; }
  index_t cols() const noexcept { return cols_; }

 private:
  tensor<T, 1> store_;
  index_t rows_ = 0, cols_ = 0;
};

/// The thread pool a CPU backend object carries (nullptr for backends without one).
template <class Backend>
thread_pool* pool_of(const Backend& be) noexcept {
  if constexpr (requires { be.pool; })
    return be.pool;
  else
    return nullptr;
}

/// A copy of the backend object without its pool: for kernels called from inside a parallel loop.
template <class Backend>
Backend serial(Backend be) noexcept {
  if constexpr (requires { be.pool; }) be.pool = nullptr;
  return be;
}

/// Rows per task in the row helpers below: fixed by the shape, never by the thread count.
inline index_t rows_per_task(index_t cols) noexcept {
  return std::max<index_t>(16, 16384 / std::max<index_t>(1, cols));
}

/// y[n] += b for every row n.                                                           y (N,D), b (D)
template <class Backend, class T>
void add_bias_rows(const Backend& be, vector_view<in_t<T>> b, matrix_view<T> y) {
  const index_t d = y.extent(1);
  const T* bp = b.data_handle();
  parallel_for(pool_of(be), y.extent(0), rows_per_task(d), [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      T* ys = &y(r, 0);
      for (index_t c = 0; c < d; ++c) ys[c] += bp[c];
    }
  });
}

/// db[c] += Σₙ dy[n,c]: partial sums over fixed chunks of rows, combined in chunk order.   dy (N,D), db (D)
template <class Backend, class T>
void add_column_sums(const Backend& be, matrix_view<in_t<T>> dy, vector_view<T> db) {
  const index_t n = dy.extent(0), d = dy.extent(1);
  require(db.extent(0) == d, "slim::nn::add_column_sums", "db has ", db.extent(0), " entries, dy ", d, " columns");
  if (n == 0 || d == 0) return;
  const index_t grain = std::max<index_t>(64, rows_per_task(d));
  const index_t chunks = chunk_count(n, grain);
  std::vector<T> partial(static_cast<std::size_t>(chunks * d), T(0));
  parallel_for(pool_of(be), n, grain, [&](index_t r0, index_t r1) {
    T* acc = partial.data() + (r0 / grain) * d;
    for (index_t r = r0; r < r1; ++r) {
      const T* row = &dy(r, 0);
      for (index_t c = 0; c < d; ++c) acc[c] += row[c];
    }
  });
  for (index_t k = 0; k < chunks; ++k)
    for (index_t c = 0; c < d; ++c) db(c) += partial[static_cast<std::size_t>(k * d + c)];
}

/// The elements of a view as one flat row when its rows are contiguous and back to back (so elementwise
/// work runs over long rows), else the view itself.
template <class T>
matrix_view<T> flat(matrix_view<T> m) noexcept {
  if (m.extent(0) > 1 && m.stride(0) == m.extent(1) && m.has_unit_inner_stride())
    return {m.data_handle(), {1, m.extent(0) * m.extent(1)}};
  return m;
}

/// Calls f(x_row, y_row, count) over the elements of same-shaped x and y in contiguous pieces, in parallel
/// chunks whose boundaries depend on the shape only.
template <class Backend, class X, class Y, class F>
void for_each_span(const Backend& be, matrix_view<X> x, matrix_view<Y> y, F&& f) {
  const index_t n = x.extent(0), d = x.extent(1);
  const bool dense =
      (n <= 1 || (x.stride(0) == d && y.stride(0) == d)) && x.has_unit_inner_stride() && y.has_unit_inner_stride();
  if (dense) {
    const index_t total = n * d, grain = 16384;
    parallel_for(pool_of(be), total, grain,
                 [&](index_t i0, index_t i1) { f(x.data_handle() + i0, y.data_handle() + i0, i1 - i0); });
    return;
  }
  parallel_for(pool_of(be), n, rows_per_task(d), [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) f(&x(r, 0), &y(r, 0), d);
  });
}

/// y = x (same shapes, unit inner strides).
template <class Backend, class T>
void copy_rows(const Backend& be, matrix_view<in_t<T>> x, matrix_view<T> y) {
  for_each_span(be, x, y,
                [](const T* xs, T* ys, index_t m) { std::memcpy(ys, xs, static_cast<std::size_t>(m) * sizeof(T)); });
}

/// y += x (same shapes, unit inner strides).
template <class Backend, class T>
void add_rows(const Backend& be, matrix_view<in_t<T>> x, matrix_view<T> y) {
  for_each_span(be, x, y, [](const T* xs, T* ys, index_t m) {
    for (index_t c = 0; c < m; ++c) ys[c] += xs[c];
  });
}

/// The contiguous rows [first, first + count) of a matrix view.
template <class T>
matrix_view<T> row_range(matrix_view<T> m, index_t first, index_t count) {
  return subview(m, {first, 0}, {count, m.extent(1)});
}

/// The columns [first, first + count) of a matrix view.
template <class T>
matrix_view<T> col_range(matrix_view<T> m, index_t first, index_t count) {
  return subview(m, {0, first}, {m.extent(0), count});
}

}  // namespace slim::nn
