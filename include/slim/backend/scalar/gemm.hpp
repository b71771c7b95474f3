// slim — scalar reference kernels: gemm (forward beside backward). See docs/kernels.md.
//
// Convention: C = α·op(A)·op(B) + β·C, where a transposed operand is simply a transposed view
// (`slim::transpose(v)`): every operand may have any strides in both dimensions. β = 0 means C's old
// contents are ignored (NaN and Inf included); α = 0 or K = 0 means C = β·C without reading A or B.
// C must not overlap A or B, and a stride of 0 in C (over an extent > 1) is rejected.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <string>
#include <type_traits>

#include "slim/backend/common.hpp"
#include "slim/backend/packed_matrix.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/half.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::detail {

/// Validates a gemm call C (M,N) = op(A) (M,K) · op(B) (K,N) and returns nothing; throws slim::error
/// naming `where` and the argument on null data, negative extents, mismatched shapes or a C that writes
/// one element twice (stride 0).
template <class TA, class TB, class TC, std::size_t R>
void gemm_require(const tensor_view<const TA, R>& a, const tensor_view<const TB, R>& b, const tensor_view<TC, R>& c,
                  const char* where) {
  require_valid(a, where, "a");
  require_valid(b, where, "b");
  require_valid(c, where, "c");
  constexpr std::size_t m = R - 2, k = R - 1;
  if (a.extent(k) != b.extent(m))
    throw error(where, "b",
                "shape " + shape_string(b) + " does not chain with a " + shape_string(a) + " (a's columns " +
                    std::to_string(a.extent(k)) + " must equal b's rows " + std::to_string(b.extent(m)) + ")");
  std::array<index_t, R> want{};
  for (std::size_t r = 0; r + 2 < R; ++r) want[r] = c.extent(r);
  want[m] = a.extent(m);
  want[k] = b.extent(k);
  require_shape(c, want, where, "c");
  for (std::size_t r = 0; r < R && !c.empty(); ++r)
    if (c.stride(r) == 0 && c.extent(r) > 1)
      throw error(where, "c", "stride 0 in dimension " + std::to_string(r) + " would write one element twice");
}

/// Validates gemm against a packed B: C (M,N) = A (M,K) · B[:, col0, col0+N); throws slim::error naming
/// `where` and the argument on null data, mismatched shapes, a column range outside B or not starting a
/// panel, or a C that writes one element twice.
template <index_t W>
void gemm_require_packed(const matrix_view<const float>& a, const packed_matrix<W>& b, index_t col0,
                         const matrix_view<float>& c, const char* where) {
  require_valid(a, where, "a");
  require_valid(c, where, "c");
  require_shape(c, {a.extent(0), c.extent(1)}, where, "c");
  b.require_columns(a.extent(1), col0, c.extent(1), where);
  for (std::size_t r = 0; r < 2 && !c.empty(); ++r)
    if (c.stride(r) == 0 && c.extent(r) > 1)
      throw error(where, "c", "stride 0 in dimension " + std::to_string(r) + " would write one element twice");
}

/// bf16 operands widen to float; float and double pass through.
template <class T>
constexpr auto gemm_widen(T x) noexcept {
  if constexpr (std::is_same_v<T, bf16>)
    return static_cast<float>(x);
  else
    return x;
}

/// The reference loop: c(i,j) = α·Σₖ a(i,k)·b(k,j) + β·c(i,j), summed in TC in ascending k.
template <class TC, class TA, class TB>
void gemm_loops(TC alpha, const matrix_view<const TA>& a, const matrix_view<const TB>& b, TC beta,
                const matrix_view<TC>& c) {
  const index_t m = c.extent(0), n = c.extent(1), kk = a.extent(1);
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      TC acc = 0;
      if (alpha != TC(0))
        for (index_t p = 0; p < kk; ++p)
          acc += static_cast<TC>(gemm_widen(a(i, p))) * static_cast<TC>(gemm_widen(b(p, j)));
      const TC ab = alpha * acc;
      c(i, j) = beta == TC(0) ? ab : ab + beta * c(i, j);
    }
}

/// Shared by every CPU backend: checks the shapes of gemm_backward's five views, then dA += α·dC·Bᵀ and
/// dB += α·Aᵀ·dC through `Kernels::gemm` (the backend's own). An empty dA or dB is skipped.
template <class Kernels, class Be, class T>
void gemm_backward_via(const Be& be, T alpha, const matrix_view<const T>& a, const matrix_view<const T>& b,
                       const matrix_view<const T>& dc, const matrix_view<T>& da, const matrix_view<T>& db,
                       const char* where) {
  require_valid(a, where, "a");
  require_valid(b, where, "b");
  if (a.extent(1) != b.extent(0))
    throw error(where, "b",
                "shape " + shape_string(b) + " does not chain with a " + shape_string(a) + " (a's columns " +
                    std::to_string(a.extent(1)) + " must equal b's rows " + std::to_string(b.extent(0)) + ")");
  require_shape(dc, {a.extent(0), b.extent(1)}, where, "dc");
  if (!da.empty()) gemm_require(dc, transpose(b), da, where);
  if (!db.empty()) gemm_require(transpose(a), dc, db, where);
  if (!da.empty()) Kernels::gemm(be, alpha, dc, transpose(b), T(1), da);  // (M,N)·(N,K)
  if (!db.empty()) Kernels::gemm(be, alpha, transpose(a), dc, T(1), db);  // (K,M)·(M,N)
}

/// Shared by every CPU backend: checks gemm_batched_backward's shapes, then one `Kernels::gemm_backward`
/// per batch index, in batch order (so a gradient with batch stride 0 sums the batch deterministically).
template <class Kernels, class Be, class T>
void gemm_batched_backward_via(const Be& be, T alpha, const tensor_view<const T, 3>& a,
                               const tensor_view<const T, 3>& b, const tensor_view<const T, 3>& dc,
                               const tensor_view<T, 3>& da, const tensor_view<T, 3>& db) {
  constexpr const char* where = "slim::gemm_batched_backward";
  const index_t bt = dc.extent(0);
  require_valid(dc, where, "dc");
  require_shape(a, {bt, a.extent(1), a.extent(2)}, where, "a");
  require_shape(b, {bt, a.extent(2), b.extent(2)}, where, "b");
  require_shape(dc, {bt, a.extent(1), b.extent(2)}, where, "dc");
  if (!da.empty()) require_shape(da, {bt, a.extent(1), a.extent(2)}, where, "da");
  if (!db.empty()) require_shape(db, {bt, b.extent(1), b.extent(2)}, where, "db");
  for (index_t i = 0; i < bt; ++i)
    Kernels::gemm_backward(be, alpha, a[i], b[i], dc[i], da.empty() ? matrix_view<T>{} : da[i],
                           db.empty() ? matrix_view<T>{} : db[i]);
}

struct scalar_gemm {
  // ---- forward -------------------------------------------------------------------------------------
  /// C = α·A·B + β·C.  A (M,K), B (K,N), C (M,N); any strides (a transposed operand is a transposed view).
  template <class T>
  static void gemm(const backend::scalar&, std::type_identity_t<T> alpha, matrix_view<in_t<T>> a,
                   matrix_view<in_t<T>> b, std::type_identity_t<T> beta, matrix_view<T> c) {
    gemm_require(a, b, c, "slim::gemm");
    gemm_loops<T>(alpha, a, b, beta, c);
  }
  /// bf16 operands, widened to float, accumulated in float.  A (M,K), B (K,N), C (M,N) float.
  static void gemm(const backend::scalar&, float alpha, matrix_view<const bf16> a, matrix_view<const bf16> b,
                   float beta, matrix_view<float> c) {
    gemm_require(a, b, c, "slim::gemm");
    gemm_loops<float>(alpha, a, b, beta, c);
  }
  static void gemm(const backend::scalar&, float alpha, matrix_view<const bf16> a, matrix_view<const float> b,
                   float beta, matrix_view<float> c) {
    gemm_require(a, b, c, "slim::gemm");
    gemm_loops<float>(alpha, a, b, beta, c);
  }
  static void gemm(const backend::scalar&, float alpha, matrix_view<const float> a, matrix_view<const bf16> b,
                   float beta, matrix_view<float> c) {
    gemm_require(a, b, c, "slim::gemm");
    gemm_loops<float>(alpha, a, b, beta, c);
  }

  /// B packed once for many products (backend/packed_matrix.hpp); the scalar layout is Bᵀ, row by row.
  using packed_b = packed_matrix<1>;
  /// Copies B (K,N), any strides, into a packed_b.
  static packed_b pack_b(const backend::scalar&, matrix_view<const float> b) { return packed_b(b, "slim::pack_b"); }
  /// C = α·A·B[:, col0 : col0+N] + β·C with B packed; the same sums, in the same order, as gemm on B itself.
  /// A (M,K), packed B (K, ≥ col0+N), C (M,N).
  static void gemm(const backend::scalar&, float alpha, matrix_view<const float> a, const packed_b& b, index_t col0,
                   float beta, matrix_view<float> c) {
    gemm_require_packed(a, b, col0, c, "slim::gemm");
    const index_t m = c.extent(0), n = c.extent(1), kk = a.extent(1);
    for (index_t i = 0; i < m; ++i)
      for (index_t j = 0; j < n; ++j) {
        float acc = 0;
        if (alpha != 0.0f) {
          const float* col = b.panel(col0 + j);
          for (index_t p = 0; p < kk; ++p) acc += a(i, p) * col[p];
        }
        const float ab = alpha * acc;
        c(i, j) = beta == 0.0f ? ab : ab + beta * c(i, j);
      }
  }

  /// C[i] = α·A[i]·B[i] + β·C[i] for every batch index i; a batch stride of 0 in A or B broadcasts one
  /// matrix over the batch.  A (Bt,M,K), B (Bt,K,N), C (Bt,M,N).
  template <class T>
  static void gemm_batched(const backend::scalar& be, std::type_identity_t<T> alpha, tensor_view<in_t<T>, 3> a,
                           tensor_view<in_t<T>, 3> b, std::type_identity_t<T> beta, tensor_view<T, 3> c) {
    gemm_require(a, b, c, "slim::gemm_batched");
    require_shape(a, {c.extent(0), a.extent(1), a.extent(2)}, "slim::gemm_batched", "a");
    require_shape(b, {c.extent(0), b.extent(1), b.extent(2)}, "slim::gemm_batched", "b");
    for (index_t i = 0; i < c.extent(0); ++i) gemm<T>(be, alpha, a[i], b[i], beta, c[i]);
  }

  // ---- backward ------------------------------------------------------------------------------------
  /// dA += α·dC·Bᵀ, dB += α·Aᵀ·dC.  A (M,K), B (K,N), dC (M,N), dA (M,K), dB (K,N); an empty dA or dB
  /// (e.g. a default-constructed view) is skipped.
  template <class T>
  static void gemm_backward(const backend::scalar& be, std::type_identity_t<T> alpha, matrix_view<in_t<T>> a,
                            matrix_view<in_t<T>> b, matrix_view<in_t<T>> dc, matrix_view<T> da, matrix_view<T> db) {
    gemm_backward_via<scalar_gemm>(be, static_cast<T>(alpha), a, b, dc, da, db, "slim::gemm_backward");
  }

  /// Backward of gemm_batched: dA[i] += α·dC[i]·B[i]ᵀ, dB[i] += α·A[i]ᵀ·dC[i], in batch order. A gradient
  /// with batch stride 0 (the gradient of a broadcast operand) receives the sum over the batch.
  /// Shapes as gemm_batched; an empty dA or dB is skipped.
  template <class T>
  static void gemm_batched_backward(const backend::scalar& be, std::type_identity_t<T> alpha, tensor_view<in_t<T>, 3> a,
                                    tensor_view<in_t<T>, 3> b, tensor_view<in_t<T>, 3> dc, tensor_view<T, 3> da,
                                    tensor_view<T, 3> db) {
    gemm_batched_backward_via<scalar_gemm>(be, static_cast<T>(alpha), a, b, dc, da, db);
  }
};

}  // namespace slim::backend::detail
