// slim — a GEMM right-hand side packed once and multiplied many times: `packed_matrix<W>`.
//
// A CPU GEMM spends part of every call copying B into the column panels its micro-kernel reads. When the
// same B meets many left-hand sides — a catalogue's itemsᵀ scored block of users after block of users, a
// frozen weight applied token after token — that copy can be made once. `kernels<B>::pack_b(be, b)` returns
// `kernels<B>::packed_b` (a packed_matrix of the backend's panel width) and
// `kernels<B>::gemm(be, α, a, packed, col0, β, c)` multiplies by its columns [col0, col0 + N).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/core/tensor.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim {

/// A float matrix B (K, N) in column panels of width W: panel q is columns q·W .. q·W + W − 1 as a dense
/// K × W row-major block (element (p, q·W + j) at panel(q)[p·W + j]); the columns past N in the last panel
/// are zero. The values are exact copies of B's.
template <index_t W>
class packed_matrix {
  static_assert(W >= 1, "slim::packed_matrix: the panel width must be positive");

 public:
  static constexpr index_t panel_width = W;

  packed_matrix() = default;

  /// Copies `b` (any strides; K, N ≥ 0) into panels. Throws slim::error naming `where` when b has no data.
  explicit packed_matrix(matrix_view<const float> b, const char* where = "slim::pack_b")
      : rows_(b.extent(0)), cols_(b.extent(1)) {
    if (b.data_handle() == nullptr && b.size() != 0) throw error(where, "b", "has no data");
    const index_t panels = (cols_ + W - 1) / W;
    data_.assign(static_cast<std::size_t>(panels * rows_ * W), 0.0f);
    for (index_t q = 0; q < panels; ++q) {
      float* d = data_.data() + q * rows_ * W;
      const index_t cols = std::min(W, cols_ - q * W);
      for (index_t p = 0; p < rows_; ++p)
        for (index_t j = 0; j < cols; ++j) d[p * W + j] = b(p, q * W + j);
    }
  }

  index_t rows() const noexcept { return rows_; }  ///< K
  index_t cols() const noexcept { return cols_; }  ///< N
  bool empty() const noexcept { return rows_ == 0 || cols_ == 0; }
  /// Panel q: K × W floats, row-major.
  const float* panel(index_t q) const noexcept { return data_.data() + q * rows_ * W; }
  /// Element (p, j) = B(p, j).
  float operator()(index_t p, index_t j) const noexcept { return panel(j / W)[p * W + j % W]; }

  /// Checks that columns [col0, col0 + n) of this matrix can be the B of C (m, n) = A (m, k) · B: the
  /// depths agree, the range lies inside, and col0 starts a panel. Throws slim::error naming `where`.
  void require_columns(index_t k, index_t col0, index_t n, const char* where) const {
    if (k != rows_)
      throw error(where, "b",
                  "the packed matrix has " + std::to_string(rows_) + " rows, a has " + std::to_string(k) + " columns");
    if (col0 < 0 || n < 0 || col0 > cols_ || n > cols_ - col0)
      throw error(where, "col0", "columns [" + std::to_string(col0) + ", " + std::to_string(col0 + n) +
                                     ") do not lie inside the packed matrix's " + std::to_string(cols_));
    if (col0 % W != 0)
      throw error(where, "col0",
                  "column " + std::to_string(col0) + " does not start a panel (panels are " + std::to_string(W) +
                      " columns wide)");
  }

 private:
  index_t rows_ = 0, cols_ = 0;
  std::vector<float, aligned_allocator<float>> data_;
};

/// Kernels K multiply by a packed right-hand side of element type T (the CPU backends, for float).
template <class K, class T>
concept packs_rhs = std::is_same_v<T, float> && requires { typename K::packed_b; };

/// An optional packed copy of a weight: std::optional<K::packed_b> where K packs (packs_rhs), else an empty
/// stand-in, so a layer can hold one whatever its backend.
template <class K, class T>
struct optional_packed {
  struct type {
    void reset() noexcept {}
    explicit operator bool() const noexcept { return false; }
  };
};
template <class K, class T>
requires packs_rhs<K, T>
struct optional_packed<K, T> {
  using type = std::optional<typename K::packed_b>;
};
template <class K, class T>
using optional_packed_t = typename optional_packed<K, T>::type;

}  // namespace slim
