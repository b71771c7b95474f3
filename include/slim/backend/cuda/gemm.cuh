// slim — CUDA kernels: gemm through cuBLAS (forward beside backward). See docs/kernels.md.
//
// Row-major views meet column-major cuBLAS as follows: a matrix view with unit stride in dimension 1 is the
// transpose of a column-major matrix whose leading dimension is stride(0); one with unit stride in
// dimension 0 is a column-major matrix with leading dimension stride(1). Every operand and the result must
// have one of the two (any transposition of a dense or row-padded matrix does); other strides throw
// `slim::error`. When C is row-major, cuBLAS computes Cᵀ = Bᵀ·Aᵀ. f32 uses exact f32 arithmetic (the
// handle's default math mode, no TF32); bf16 operands run through cublasGemmEx with f32 accumulation; a
// bf16 operand beside an f32 one is widened to f32 first (the contract says "widened to f32").
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/gemm.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <string>
#include <type_traits>

#include "slim/backend/cuda/runtime.cuh"
#include "slim/backend/tags.hpp"
#include "slim/core/half.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::cuda_detail {

static_assert(sizeof(bf16) == 2 && alignof(bf16) == 2, "slim::bf16 must have the layout of __nv_bfloat16");

template <class T>
constexpr cudaDataType_t blas_type() {
  if constexpr (std::is_same_v<T, float>)
    return CUDA_R_32F;
  else if constexpr (std::is_same_v<T, bf16>)
    return CUDA_R_16BF;
  else
    static_assert(always_false<T>, "slim: cuda gemm takes float or bf16 operands");
}

/// A matrix view as cuBLAS sees it: X = op(M), M column-major with leading dimension `ld`.
struct blas_operand {
  bool ok = false;
  cublasOperation_t op = CUBLAS_OP_N;
  index_t ld = 1;
};

/// Describes the (rows, cols) matrix with strides (s0, s1); extent-1 dimensions ignore their stride.
inline blas_operand describe(index_t rows, index_t cols, index_t s0, index_t s1) {
  // Row-major (unit stride along a row): X = Mᵀ, M is (cols × rows) with ld = s0.
  if (cols == 1 || s1 == 1) {
    const index_t ld = rows == 1 ? std::max<index_t>(cols, 1) : s0;
    if (ld >= std::max<index_t>(cols, 1)) return {true, CUBLAS_OP_T, ld};
  }
  // Column-major (unit stride down a column): X = M, (rows × cols) with ld = s1.
  if (rows == 1 || s0 == 1) {
    const index_t ld = cols == 1 ? std::max<index_t>(rows, 1) : s1;
    if (ld >= std::max<index_t>(rows, 1)) return {true, CUBLAS_OP_N, ld};
  }
  return {};
}

inline cublasOperation_t flip(cublasOperation_t op) { return op == CUBLAS_OP_N ? CUBLAS_OP_T : CUBLAS_OP_N; }

inline int to_blas_int(index_t v, const char* where, const char* what) {
  if (v > INT_MAX) throw error(where, what, std::to_string(v) + " exceeds cuBLAS's 32-bit int");
  return static_cast<int>(v);
}

constexpr int elementwise_threads = 256;
inline unsigned grid_for(index_t work, index_t threads = elementwise_threads) {
  const index_t blocks = (work + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<index_t>(blocks, 1, index_t{1} << 20));
}

/// C[b,i,j] = β·C[b,i,j], and exactly 0 when β = 0 (old contents, NaN included, ignored). (Bt,M,N)
template <class T>
__global__ void scale_kernel(T beta, tensor_view<T, 3, device_space> c) {
  const index_t m = c.extent(1), n = c.extent(2), total = c.size();
  for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < total; i += index_t{gridDim.x} * blockDim.x) {
    const index_t col = i % n, row = (i / n) % m, b = i / (n * m);
    T& x = c(b, row, col);
    x = beta == T(0) ? T(0) : beta * x;
  }
}

/// dst[b,i,j] = float(src[b,i,j]); dst contiguous, src any strides. (Bt,R,C)
template <class Unused = void>
__global__ void widen_bf16_kernel(tensor_view<const bf16, 3, device_space> src, float* dst) {
  const index_t r = src.extent(1), c = src.extent(2), total = src.size();
  for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < total; i += index_t{gridDim.x} * blockDim.x) {
    const index_t col = i % c, row = (i / c) % r, b = i / (c * r);
    dst[i] = __uint_as_float(static_cast<unsigned>(src(b, row, col).bits()) << 16);
  }
}

/// Stream-ordered scratch memory (cudaMallocAsync / cudaFreeAsync on the backend's stream).
class stream_scratch {
 public:
  stream_scratch(std::size_t bytes, cudaStream_t stream) : stream_{stream} {
    if (bytes) SLIM_CUDA_CHECK(cudaMallocAsync(&p_, bytes, stream));
  }
  stream_scratch(const stream_scratch&) = delete;
  stream_scratch& operator=(const stream_scratch&) = delete;
  ~stream_scratch() {
    if (p_) (void)cudaFreeAsync(p_, stream_);
  }
  void* get() const noexcept { return p_; }

 private:
  void* p_ = nullptr;
  cudaStream_t stream_;
};

/// A bf16 operand widened into a contiguous f32 copy in stream-ordered scratch; a batch stride of 0 stays a
/// broadcast (one batch is widened).
class widened {
 public:
  widened(tensor_view<const bf16, 3, device_space> x, cudaStream_t stream)
      : storage_{static_cast<std::size_t>(batches(x) * x.extent(1) * x.extent(2)) * sizeof(float), stream} {
    const tensor_view<const bf16, 3, device_space> src(x.data_handle(), {batches(x), x.extent(1), x.extent(2)},
                                                       x.strides());
    float* dst = static_cast<float*>(storage_.get());
    if (src.size() > 0)
      SLIM_CUDA_LAUNCH(widen_bf16_kernel<>, grid_for(src.size()), elementwise_threads, 0, stream, src, dst);
    const index_t plane = x.extent(1) * x.extent(2);
    view_ = {dst, x.extents(), {batches(x) == 1 ? 0 : plane, x.extent(2), 1}};
  }
  tensor_view<const float, 3, device_space> view() const noexcept { return view_; }

 private:
  static index_t batches(const tensor_view<const bf16, 3, device_space>& x) {
    return (x.extent(0) > 1 && x.stride(0) == 0) ? 1 : x.extent(0);
  }
  stream_scratch storage_;
  tensor_view<const float, 3, device_space> view_;
};

/// Throws unless A (M,K), B (K,N) and C (M,N) chain.
template <class TA, class TB, std::size_t R>
void require_chain(const tensor_view<const TA, R, device_space>& a, const tensor_view<const TB, R, device_space>& b,
                   const tensor_view<float, R, device_space>& c, const char* where) {
  require_valid(a, where, "a");
  require_valid(b, where, "b");
  constexpr std::size_t m = R - 2, k = R - 1;
  if (a.extent(k) != b.extent(m))
    throw error(where, "b",
                "shape " + shape_string(b) + " does not chain with a " + shape_string(a) + " (a's columns " +
                    std::to_string(a.extent(k)) + " must equal b's rows " + std::to_string(b.extent(m)) + ")");
  std::array<index_t, R> want = c.extents();
  for (std::size_t r = 0; r + 2 < R; ++r) want[r] = a.extent(r);
  want[m] = a.extent(m);
  want[k] = b.extent(k);
  require_shape(c, want, where, "c");
}

inline std::string stride_problem(const char* what, index_t rows, index_t cols, index_t s0, index_t s1) {
  return std::string("strides (") + std::to_string(s0) + "," + std::to_string(s1) + ") of a " + std::to_string(rows) +
         "x" + std::to_string(cols) + " matrix: cuBLAS " + what +
         " with unit stride in one dimension and a leading dimension >= the other extent";
}

/// C[b] = α·A[b]·B[b] + β·C[b] for every batch b. A (Bt,M,K), B (Bt,K,N), C (Bt,M,N); batch stride 0 of A or
/// B broadcasts. The shared engine of gemm, gemm_batched and gemm_backward: every argument is checked
/// before anything is queued on the stream; `check_only` stops there.
template <class TA, class TB>
void gemm_engine(const backend::cuda& be, const char* where, float alpha, tensor_view<const TA, 3, device_space> a,
                 tensor_view<const TB, 3, device_space> b, float beta, tensor_view<float, 3, device_space> c,
                 bool check_only = false) {
  require_chain(a, b, c, where);
  const index_t batch = a.extent(0), m = a.extent(1), k = a.extent(2);
  require_shape(b, {batch, k, b.extent(2)}, where, "b");
  const index_t n = b.extent(2);
  if (batch == 0 || m == 0 || n == 0) return;
  // C: cuBLAS writes it, so its layout is always checked, and batches must not overlap.
  const blas_operand dc = describe(m, n, c.stride(1), c.stride(2));
  if (!dc.ok) throw error(where, "c", stride_problem("writes", m, n, c.stride(1), c.stride(2)));
  if (batch > 1) {
    const index_t span = (m - 1) * (c.stride(1) < 0 ? -c.stride(1) : c.stride(1)) +
                         (n - 1) * (c.stride(2) < 0 ? -c.stride(2) : c.stride(2)) + 1;
    if (c.stride(0) < span)
      throw error(where, "c",
                  "batch stride " + std::to_string(c.stride(0)) + " < " + std::to_string(span) +
                      ": batches of C would overlap");
  }
  const cudaStream_t stream = stream_of(be);
  if (k == 0 || alpha == 0.0f) {  // C = β·C without reading A or B (NaN in A or B does not propagate)
    if (check_only) return;
    SLIM_CUDA_LAUNCH(scale_kernel<float>, grid_for(c.size()), elementwise_threads, 0, stream, beta, c);
    return;
  }
  // A and B: a bf16 operand beside an f32 one is widened into a dense copy, so only the other one's
  // layout matters.
  constexpr bool widen_a = !std::is_same_v<TA, TB> && std::is_same_v<TA, bf16>;
  constexpr bool widen_b = !std::is_same_v<TA, TB> && std::is_same_v<TB, bf16>;
  if (batch > 1 && (a.stride(0) < 0 || b.stride(0) < 0))
    throw error(where, a.stride(0) < 0 ? "a" : "b", "negative batch stride (cuBLAS needs batch strides >= 0)");
  const blas_operand da = describe(m, k, a.stride(1), a.stride(2));
  const blas_operand db = describe(k, n, b.stride(1), b.stride(2));
  if (!widen_a && !da.ok) throw error(where, "a", stride_problem("reads", m, k, a.stride(1), a.stride(2)));
  if (!widen_b && !db.ok) throw error(where, "b", stride_problem("reads", k, n, b.stride(1), b.stride(2)));
  cublasHandle_t h = blas_of(be);
  if (h == nullptr) throw error(where, "backend", "no cuBLAS handle (make the tag with slim::backend::cuda_context)");
  if (check_only) return;
  if constexpr (widen_a) {
    const widened wa(a, stream);
    gemm_engine<float, float>(be, where, alpha, wa.view(), b, beta, c);
  } else if constexpr (widen_b) {
    const widened wb(b, stream);
    gemm_engine<float, float>(be, where, alpha, a, wb.view(), beta, c);
  } else {
    // Column-major C: C = op_a(Ma)·op_b(Mb). Row-major C: Cᵀ = flip(op_b)(Mb)·flip(op_a)(Ma).
    const bool row_major_c = dc.op == CUBLAS_OP_T;
    const blas_operand& first = row_major_c ? db : da;
    const blas_operand& second = row_major_c ? da : db;
    const cublasOperation_t op1 = row_major_c ? flip(db.op) : da.op;
    const cublasOperation_t op2 = row_major_c ? flip(da.op) : db.op;
    const void* p1 = row_major_c ? static_cast<const void*>(b.data_handle()) : a.data_handle();
    const void* p2 = row_major_c ? static_cast<const void*>(a.data_handle()) : b.data_handle();
    const index_t stride1 = row_major_c ? b.stride(0) : a.stride(0);
    const index_t stride2 = row_major_c ? a.stride(0) : b.stride(0);
    const int im = to_blas_int(row_major_c ? n : m, where, "rows"),
              in = to_blas_int(row_major_c ? m : n, where, "columns"), ik = to_blas_int(k, where, "inner dimension"),
              il1 = to_blas_int(first.ld, where, "leading dimension"),
              il2 = to_blas_int(second.ld, where, "leading dimension"),
              ilc = to_blas_int(dc.ld, where, "leading dimension of c"), ib = to_blas_int(batch, where, "batch");
    SLIM_CUBLAS_CHECK(cublasSetStream(h, stream));
    SLIM_CUBLAS_CHECK(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
    constexpr cudaDataType_t type = blas_type<TA>();
    if (batch == 1) {
      SLIM_CUBLAS_CHECK(cublasGemmEx(h, op1, op2, im, in, ik, &alpha, p1, type, il1, p2, type, il2, &beta,
                                     c.data_handle(), CUDA_R_32F, ilc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    } else {
      SLIM_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          h, op1, op2, im, in, ik, &alpha, p1, type, il1, static_cast<long long>(stride1), p2, type, il2,
          static_cast<long long>(stride2), &beta, c.data_handle(), CUDA_R_32F, ilc, static_cast<long long>(c.stride(0)),
          ib, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
  }
}

/// Swaps the two inner dimensions of a batch of matrices (each matrix transposed; no data moves).
template <class T>
tensor_view<T, 3, device_space> transpose_inner(const tensor_view<T, 3, device_space>& x) {
  return {x.data_handle(), {x.extent(0), x.extent(2), x.extent(1)}, {x.stride(0), x.stride(2), x.stride(1)}};
}

/// A matrix view as a batch of one.
template <class T>
tensor_view<T, 3, device_space> as_batch(matrix_view<T, device_space> x) {
  return {x.data_handle(), {1, x.extent(0), x.extent(1)}, {0, x.stride(0), x.stride(1)}};
}

}  // namespace slim::backend::cuda_detail

namespace slim::backend::detail {

struct cuda_gemm {
  template <class T>
  using dmatrix = matrix_view<T, device_space>;
  template <class T>
  using dbatch = tensor_view<T, 3, device_space>;
  template <class T>
  static constexpr bool is_operand =
      std::is_same_v<std::remove_const_t<T>, float> || std::is_same_v<std::remove_const_t<T>, bf16>;

  /// C = α·A·B + β·C (β = 0 ignores C's old contents).   A (M,K), B (K,N), C (M,N); f32 or bf16 operands,
  /// f32 C and accumulation. Each view needs unit stride in one dimension (any transposed view qualifies).
  static void gemm(const backend::cuda& be, float alpha, dmatrix<const float> a, dmatrix<const float> b, float beta,
                   dmatrix<float> c) {
    engine(be, alpha, a, b, beta, c);
  }
  static void gemm(const backend::cuda& be, float alpha, dmatrix<const bf16> a, dmatrix<const bf16> b, float beta,
                   dmatrix<float> c) {
    engine(be, alpha, a, b, beta, c);
  }
  static void gemm(const backend::cuda& be, float alpha, dmatrix<const bf16> a, dmatrix<const float> b, float beta,
                   dmatrix<float> c) {
    engine(be, alpha, a, b, beta, c);
  }
  static void gemm(const backend::cuda& be, float alpha, dmatrix<const float> a, dmatrix<const bf16> b, float beta,
                   dmatrix<float> c) {
    engine(be, alpha, a, b, beta, c);
  }

  /// dA += α·dC·Bᵀ, dB += α·Aᵀ·dC; an empty dA or dB (size 0) is skipped.   shapes as gemm
  template <class TA, class TB>
  requires(is_operand<TA>&& is_operand<TB>) static void gemm_backward(const backend::cuda& be, float alpha,
                                                                      dmatrix<TA> a, dmatrix<TB> b,
                                                                      dmatrix<const float> dc, dmatrix<float> da,
                                                                      dmatrix<float> db) {
    using A = std::remove_const_t<TA>;
    using B = std::remove_const_t<TB>;
    constexpr const char* where = "slim::kernels<cuda>::gemm_backward";
    require_valid(a, where, "a");
    require_valid(b, where, "b");
    require_shape(b, {a.extent(1), b.extent(1)}, where, "b");
    require_shape(dc, {a.extent(0), b.extent(1)}, where, "dc");
    const dmatrix<const B> bt = transpose(dmatrix<const B>(b));
    const dmatrix<const A> at = transpose(dmatrix<const A>(a));
    using cuda_detail::as_batch;
    // Check both products before queueing either.
    for (const bool check_only : {true, false}) {
      if (!da.empty()) {
        if (check_only) require_shape(da, a.extents(), where, "da");
        cuda_detail::gemm_engine<float, B>(be, where, alpha, as_batch(dc), as_batch(bt), 1.0f, as_batch(da),
                                           check_only);  // (M,N)·(N,K)
      }
      if (!db.empty()) {
        if (check_only) require_shape(db, b.extents(), where, "db");
        cuda_detail::gemm_engine<A, float>(be, where, alpha, as_batch(at), as_batch(dc), 1.0f, as_batch(db),
                                           check_only);  // (K,M)·(M,N)
      }
    }
  }

  /// Backward of gemm_batched: dA[i] += α·dC[i]·B[i]ᵀ, dB[i] += α·A[i]ᵀ·dC[i]. A gradient with batch stride 0
  /// (of a broadcast operand) receives the batch's sum, one batch after another on the stream (deterministic);
  /// other gradients go through one strided-batched call. Shapes as gemm_batched; an empty dA or dB is skipped.
  template <class TA, class TB>
  requires(is_operand<TA>&& is_operand<TB>) static void gemm_batched_backward(const backend::cuda& be, float alpha,
                                                                              dbatch<TA> a, dbatch<TB> b,
                                                                              dbatch<const float> dc, dbatch<float> da,
                                                                              dbatch<float> db) {
    using A = std::remove_const_t<TA>;
    using B = std::remove_const_t<TB>;
    constexpr const char* where = "slim::kernels<cuda>::gemm_batched_backward";
    require_valid(dc, where, "dc");
    const index_t bt = dc.extent(0);
    require_shape(a, {bt, a.extent(1), a.extent(2)}, where, "a");
    require_shape(b, {bt, a.extent(2), b.extent(2)}, where, "b");
    require_shape(dc, {bt, a.extent(1), b.extent(2)}, where, "dc");
    if (!da.empty()) require_shape(da, a.extents(), where, "da");
    if (!db.empty()) require_shape(db, b.extents(), where, "db");
    if (bt == 0) return;
    const dbatch<const A> at = cuda_detail::transpose_inner(dbatch<const A>(a));
    const dbatch<const B> btr = cuda_detail::transpose_inner(dbatch<const B>(b));
    // Accumulates x·y into g, by batch when g broadcasts (its batch stride is 0), else in one call.
    auto accumulate = [&](auto x, auto y, dbatch<float> g, bool check_only) {
      using X = typename decltype(x)::value_type;
      using Y = typename decltype(y)::value_type;
      if (bt == 1 || g.stride(0) != 0) {
        cuda_detail::gemm_engine<X, Y>(be, where, alpha, x, y, 1.0f, g, check_only);
        return;
      }
      for (index_t i = 0; i < (check_only ? 1 : bt); ++i)  // every batch has the layout of the first
        cuda_detail::gemm_engine<X, Y>(be, where, alpha, cuda_detail::as_batch(x[i]), cuda_detail::as_batch(y[i]), 1.0f,
                                       cuda_detail::as_batch(g[i]), check_only);
    };
    for (const bool check_only : {true, false}) {            // check both products before queueing either
      if (!da.empty()) accumulate(dc, btr, da, check_only);  // (Bt,M,N)·(Bt,N,K)
      if (!db.empty()) accumulate(at, dc, db, check_only);   // (Bt,K,M)·(Bt,M,N)
    }
  }

  /// C[i] = α·A[i]·B[i] + β·C[i]; a batch stride of 0 in A or B broadcasts.   A (Bt,M,K), B (Bt,K,N), C (Bt,M,N)
  static void gemm_batched(const backend::cuda& be, float alpha, dbatch<const float> a, dbatch<const float> b,
                           float beta, dbatch<float> c) {
    cuda_detail::gemm_engine(be, "slim::kernels<cuda>::gemm_batched", alpha, a, b, beta, c);
  }
  static void gemm_batched(const backend::cuda& be, float alpha, dbatch<const bf16> a, dbatch<const bf16> b, float beta,
                           dbatch<float> c) {
    cuda_detail::gemm_engine(be, "slim::kernels<cuda>::gemm_batched", alpha, a, b, beta, c);
  }
  static void gemm_batched(const backend::cuda& be, float alpha, dbatch<const bf16> a, dbatch<const float> b,
                           float beta, dbatch<float> c) {
    cuda_detail::gemm_engine(be, "slim::kernels<cuda>::gemm_batched", alpha, a, b, beta, c);
  }
  static void gemm_batched(const backend::cuda& be, float alpha, dbatch<const float> a, dbatch<const bf16> b,
                           float beta, dbatch<float> c) {
    cuda_detail::gemm_engine(be, "slim::kernels<cuda>::gemm_batched", alpha, a, b, beta, c);
  }

 private:
  template <class TA, class TB>
  static void engine(const backend::cuda& be, float alpha, dmatrix<const TA> a, dmatrix<const TB> b, float beta,
                     dmatrix<float> c) {
    constexpr const char* where = "slim::kernels<cuda>::gemm";
    cuda_detail::require_chain(a, b, c, where);  // in 2-d terms, for the messages
    cuda_detail::gemm_engine(be, where, alpha, cuda_detail::as_batch(a), cuda_detail::as_batch(b), beta,
                             cuda_detail::as_batch(c));
  }
};

}  // namespace slim::backend::detail
