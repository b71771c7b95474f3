// slim — CUDA kernels: RMSNorm and LayerNorm over the last dimension (forward beside backward). See
// docs/kernels.md. One block per row for the row statistics and dx; the weight gradients are column sums over
// the rows, taken by a second kernel in a fixed order (deterministic, no atomics). Accumulation in T (float on
// the device: the scalar oracle accumulates in double, hence the tests' tolerances).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/norm.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include <concepts>

#include "slim/backend/cuda/common.cuh"
#include "slim/backend/scalar/norm.hpp"

namespace slim::backend::cuda_detail {

template <class T>
__device__ T reciprocal_sqrt(T v) {
  return T(1) / sqrt(v);
}

template <class T>
__global__ void rmsnorm_forward_kernel(index_t n, index_t d, dmat<const T> x, dvec<const T> w, T eps, dmat<T> y,
                                       dvec<T> rstd) {
  for (index_t r = blockIdx.x; r < n; r += gridDim.x) {
    const T* xr = x.row(r);
    T ss = 0;
    for (index_t j = threadIdx.x; j < d; j += blockDim.x) ss += xr[j] * xr[j];
    ss = block_reduce(ss, sum_op{}, T(0));
    const T rs = reciprocal_sqrt((d > 0 ? ss / static_cast<T>(d) : T(0)) + eps);
    T* yr = y.row(r);
    for (index_t j = threadIdx.x; j < d; j += blockDim.x) yr[j] = xr[j] * rs * w[j];
    if (rstd.p != nullptr && threadIdx.x == 0) rstd[r] = rs;
  }
}

template <class T>
__global__ void rmsnorm_backward_dx_kernel(index_t n, index_t d, dmat<const T> x, dvec<const T> w, dvec<const T> rstd,
                                           dmat<const T> dy, dmat<T> dx) {
  for (index_t r = blockIdx.x; r < n; r += gridDim.x) {
    const T* xr = x.row(r);
    const T* gr = dy.row(r);
    const T rs = rstd[r];
    T dot = 0;
    for (index_t j = threadIdx.x; j < d; j += blockDim.x) dot += xr[j] * w[j] * gr[j];
    dot = block_reduce(dot, sum_op{}, T(0));
    const T c = d > 0 ? rs * rs * rs * dot / static_cast<T>(d) : T(0);
    T* out = dx.row(r);
    for (index_t j = threadIdx.x; j < d; j += blockDim.x) out[j] += rs * w[j] * gr[j] - c * xr[j];
  }
}

/// Column sums over the rows: each block owns 32 columns, its 8 warps-rows stride over the rows, and the
/// partial sums are added in a fixed order. Term(r, j) is supplied by `Term`.
constexpr int colsum_x = 32, colsum_y = 8;

template <class T, class Term>
__global__ void column_sum_kernel(index_t n, index_t d, Term term, dvec<T> out) {
  __shared__ T partial[colsum_y][colsum_x + 1];
  for (index_t j0 = blockIdx.x * index_t{colsum_x}; j0 < d; j0 += index_t{gridDim.x} * colsum_x) {
    const index_t j = j0 + threadIdx.x;
    T s = 0;
    if (j < d)
      for (index_t r = threadIdx.y; r < n; r += colsum_y) s += term(r, j);
    partial[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && j < d) {
      T total = 0;
      for (int k = 0; k < colsum_y; ++k) total += partial[k][threadIdx.x];
      out[j] += total;
    }
    __syncthreads();
  }
}

template <class T, class Term>
void launch_column_sum(const backend::cuda& be, index_t n, index_t d, Term term, dvec<T> out, const char* name) {
  const auto blocks = static_cast<unsigned>(std::clamp<index_t>((d + colsum_x - 1) / colsum_x, 1, 65535));
  column_sum_kernel<T, Term><<<blocks, dim3(colsum_x, colsum_y), 0, stream_of(be)>>>(n, d, term, out);
  check_launch(name, __FILE__, __LINE__);
}

template <class T>
struct rms_dw_term {  // dy ⊙ x · rstd
  dmat<const T> x, dy;
  dvec<const T> rstd;
  __device__ T operator()(index_t r, index_t j) const { return dy.row(r)[j] * x.row(r)[j] * rstd[r]; }
};

template <class T>
__global__ void layernorm_forward_kernel(index_t n, index_t d, dmat<const T> x, dvec<const T> w, dvec<const T> b,
                                         T eps, dmat<T> y, dvec<T> mean, dvec<T> rstd) {
  for (index_t r = blockIdx.x; r < n; r += gridDim.x) {
    const T* xr = x.row(r);
    T s = 0;
    for (index_t j = threadIdx.x; j < d; j += blockDim.x) s += xr[j];
    s = block_reduce(s, sum_op{}, T(0));
    const T mu = d > 0 ? s / static_cast<T>(d) : T(0);
    T ss = 0;
    for (index_t j = threadIdx.x; j < d; j += blockDim.x) {
      const T c = xr[j] - mu;
      ss += c * c;
    }
    ss = block_reduce(ss, sum_op{}, T(0));
    const T rs = reciprocal_sqrt((d > 0 ? ss / static_cast<T>(d) : T(0)) + eps);
    T* yr = y.row(r);
    for (index_t j = threadIdx.x; j < d; j += blockDim.x) yr[j] = (xr[j] - mu) * rs * w[j] + b[j];
    if (threadIdx.x == 0) {
      if (mean.p != nullptr) mean[r] = mu;
      if (rstd.p != nullptr) rstd[r] = rs;
    }
  }
}

template <class T>
__global__ void layernorm_backward_dx_kernel(index_t n, index_t d, dmat<const T> x, dvec<const T> w,
                                             dvec<const T> mean, dvec<const T> rstd, dmat<const T> dy, dmat<T> dx) {
  for (index_t r = blockIdx.x; r < n; r += gridDim.x) {
    const T* xr = x.row(r);
    const T* gr = dy.row(r);
    const T mu = mean[r], rs = rstd[r];
    T sg = 0, sgx = 0;
    for (index_t j = threadIdx.x; j < d; j += blockDim.x) {
      const T g = w[j] * gr[j];
      sg += g;
      sgx += g * (xr[j] - mu) * rs;
    }
    sg = block_reduce(sg, sum_op{}, T(0));
    sgx = block_reduce(sgx, sum_op{}, T(0));
    const T mg = d > 0 ? sg / static_cast<T>(d) : T(0), mgx = d > 0 ? sgx / static_cast<T>(d) : T(0);
    T* out = dx.row(r);
    for (index_t j = threadIdx.x; j < d; j += blockDim.x) {
      const T xh = (xr[j] - mu) * rs;
      out[j] += rs * (w[j] * gr[j] - mg - xh * mgx);
    }
  }
}

template <class T>
struct ln_dw_term {  // dy ⊙ (x − μ)·rstd
  dmat<const T> x, dy;
  dvec<const T> mean, rstd;
  __device__ T operator()(index_t r, index_t j) const { return dy.row(r)[j] * (x.row(r)[j] - mean[r]) * rstd[r]; }
};
template <class T>
struct ln_db_term {  // dy
  dmat<const T> dy;
  __device__ T operator()(index_t r, index_t j) const { return dy.row(r)[j]; }
};

}  // namespace slim::backend::cuda_detail

namespace slim::backend::detail {

struct cuda_norm {
  template <class T>
  using dmatrix = matrix_view<T, device_space>;
  template <class T>
  using dvector = vector_view<T, device_space>;

  /// rstd = 1/√(mean(x²)+ε), y = x·rstd·w.   x,y (N,D), w (D), rstd (N) or absent; y may be x
  template <std::floating_point T>
  static void rmsnorm_forward(const backend::cuda& be, dmatrix<in_t<T>> x, dvector<in_t<T>> w,
                              std::type_identity_t<T> eps, dmatrix<T> y, dvector<T> rstd) {
    using namespace cuda_detail;
    check_rmsnorm_forward<T>(host_shape(x), host_shape(w), eps, host_shape(y), host_shape(rstd));
    const index_t n = x.extent(0), d = x.extent(1);
    if (n == 0) return;
    rmsnorm_forward_kernel<T><<<row_blocks(n), row_threads, 0, stream_of(be)>>>(n, d, mat_of(x), vec_of(w), eps,
                                                                               mat_of(y), vec_of(rstd));
    check_launch("rmsnorm_forward_kernel", __FILE__, __LINE__);
  }

  /// dx += rstd·(w⊙dy) − x·rstd³·mean(x⊙w⊙dy); dw += Σₙ dy⊙x·rstd.   dx, dw may be absent
  template <std::floating_point T>
  static void rmsnorm_backward(const backend::cuda& be, dmatrix<in_t<T>> x, dvector<in_t<T>> w,
                               dvector<in_t<T>> rstd, dmatrix<in_t<T>> dy, dmatrix<T> dx, dvector<T> dw) {
    using namespace cuda_detail;
    check_rmsnorm_backward<T>(host_shape(x), host_shape(w), host_shape(rstd), host_shape(dy), host_shape(dx),
                              host_shape(dw));
    const index_t n = x.extent(0), d = x.extent(1);
    if (n == 0 || d == 0) return;
    if (!absent(dx)) {
      rmsnorm_backward_dx_kernel<T><<<row_blocks(n), row_threads, 0, stream_of(be)>>>(
          n, d, mat_of(x), vec_of(w), vec_of(rstd), mat_of(dy), mat_of(dx));
      check_launch("rmsnorm_backward_dx_kernel", __FILE__, __LINE__);
    }
    if (!absent(dw))
      launch_column_sum(be, n, d, rms_dw_term<T>{mat_of(x), mat_of(dy), vec_of(rstd)}, vec_of(dw),
                        "column_sum_kernel<rms_dw_term>");
  }

  /// y = (x−μ)·rstd·w + b, rstd = 1/√(var+ε).   x,y (N,D), w,b (D), mean,rstd (N) or absent; y may be x
  template <std::floating_point T>
  static void layernorm_forward(const backend::cuda& be, dmatrix<in_t<T>> x, dvector<in_t<T>> w, dvector<in_t<T>> b,
                                std::type_identity_t<T> eps, dmatrix<T> y, dvector<T> mean, dvector<T> rstd) {
    using namespace cuda_detail;
    check_layernorm_forward<T>(host_shape(x), host_shape(w), host_shape(b), eps, host_shape(y), host_shape(mean),
                               host_shape(rstd));
    const index_t n = x.extent(0), d = x.extent(1);
    if (n == 0) return;
    layernorm_forward_kernel<T><<<row_blocks(n), row_threads, 0, stream_of(be)>>>(
        n, d, mat_of(x), vec_of(w), vec_of(b), eps, mat_of(y), vec_of(mean), vec_of(rstd));
    check_launch("layernorm_forward_kernel", __FILE__, __LINE__);
  }

  /// dx += rstd·(g − mean(g) − x̂·mean(g⊙x̂)), g = w⊙dy; dw += Σ dy⊙x̂; db += Σ dy.   dx, dw, db may be absent
  template <std::floating_point T>
  static void layernorm_backward(const backend::cuda& be, dmatrix<in_t<T>> x, dvector<in_t<T>> w,
                                 dvector<in_t<T>> mean, dvector<in_t<T>> rstd, dmatrix<in_t<T>> dy, dmatrix<T> dx,
                                 dvector<T> dw, dvector<T> db) {
    using namespace cuda_detail;
    check_layernorm_backward<T>(host_shape(x), host_shape(w), host_shape(mean), host_shape(rstd), host_shape(dy),
                                host_shape(dx), host_shape(dw), host_shape(db));
    const index_t n = x.extent(0), d = x.extent(1);
    if (n == 0 || d == 0) return;
    if (!absent(dx)) {
      layernorm_backward_dx_kernel<T><<<row_blocks(n), row_threads, 0, stream_of(be)>>>(
          n, d, mat_of(x), vec_of(w), vec_of(mean), vec_of(rstd), mat_of(dy), mat_of(dx));
      check_launch("layernorm_backward_dx_kernel", __FILE__, __LINE__);
    }
    if (!absent(dw))
      launch_column_sum(be, n, d, ln_dw_term<T>{mat_of(x), mat_of(dy), vec_of(mean), vec_of(rstd)}, vec_of(dw),
                        "column_sum_kernel<ln_dw_term>");
    if (!absent(db))
      launch_column_sum(be, n, d, ln_db_term<T>{mat_of(dy)}, vec_of(db), "column_sum_kernel<ln_db_term>");
  }
};

}  // namespace slim::backend::detail
