// slim — scalar reference kernels: embedding gather / scatter-add (forward beside backward). See docs/kernels.md.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>

#include "slim/backend/common.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::detail {

/// The shapes alone: table (V,D), ids (N), rows (N,D), unit inner strides (any memory space: reads no data;
/// the CUDA backend checks the ids themselves on the device).
template <class T, class U, class S>
void check_embedding_shapes(const char* where, const tensor_view<T, 2, S>& table,
                            const tensor_view<const std::int32_t, 1, S>& ids, const tensor_view<U, 2, S>& rows,
                            const char* table_name, const char* rows_name) {
  require_valid(table, where, table_name);
  require_valid(ids, where, "ids");
  require_shape(rows, {ids.extent(0), table.extent(1)}, where, rows_name);
  require(table.has_unit_inner_stride() && rows.has_unit_inner_stride(), where, table_name, " and ", rows_name,
          " need unit column strides");
}

/// Validates table (V,D), rows (N,D) (unit inner strides) and every id against [0,V) before any data is
/// touched; throws naming the first position n whose id is out of range.
template <class T, class U>
void check_embedding(const char* where, matrix_view<T> table, vector_view<const std::int32_t> ids, matrix_view<U> rows,
                     const char* table_name, const char* rows_name) {
  check_embedding_shapes(where, table, ids, rows, table_name, rows_name);
  const index_t vocab = table.extent(0);
  for (index_t n = 0; n < ids.extent(0); ++n)
    if (ids(n) < 0 || ids(n) >= vocab)
      throw error(where, "ids[" + std::to_string(n) + "]",
                  "id " + std::to_string(ids(n)) + " lies outside [0, " + std::to_string(vocab) + ")");
}

struct scalar_embedding {
  /// out[n] = table[ids[n]]. table (V,D); ids (N) int32; out (N,D).
  template <class T>
  static void embedding_forward(const backend::scalar&, matrix_view<in_t<T>> table, vector_view<const std::int32_t> ids,
                                matrix_view<T> out) {
    check_embedding("slim::embedding_forward", table, ids, out, "table", "out");
    for (index_t n = 0; n < ids.extent(0); ++n)
      for (index_t c = 0; c < table.extent(1); ++c) out(n, c) = table(ids(n), c);
  }

  /// dtable[ids[n]] += dout[n], rows added in n order. ids (N) int32; dout (N,D); dtable (V,D).
  template <class T>
  static void embedding_backward(const backend::scalar&, vector_view<const std::int32_t> ids, matrix_view<in_t<T>> dout,
                                 matrix_view<T> dtable) {
    check_embedding("slim::embedding_backward", dtable, ids, dout, "dtable", "dout");
    for (index_t n = 0; n < ids.extent(0); ++n)
      for (index_t c = 0; c < dtable.extent(1); ++c) dtable(ids(n), c) += dout(n, c);
  }
};

}  // namespace slim::backend::detail
