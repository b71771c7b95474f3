// slim — CUDA kernels: row softmax with scale and causal mask (forward beside backward). See docs/kernels.md.
// One block per row of a (Bt,S,L) view; the row maximum is subtracted before exp, masked entries are 0, and a
// row with nothing visible (or only −∞ inputs) is all 0, as on the CPU.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/softmax.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include <cmath>
#include <concepts>
#include <limits>

#include "slim/backend/cuda/common.cuh"
#include "slim/backend/scalar/softmax.hpp"

namespace slim::backend::cuda_detail {

/// Rows of a (Bt,S,L) view with unit inner stride: row (b, i) starts at p + b·s0 + i·s1.
template <class T>
struct rows3 {
  T* p;
  index_t s0, s1;
  __device__ T* row(index_t b, index_t i) const { return p + b * s0 + i * s1; }
};
template <class T>
rows3<T> rows3_of(const tensor_view<T, 3, device_space>& v) {
  return {v.data_handle(), v.stride(0), v.stride(1)};
}

template <class T>
__global__ void softmax_forward_kernel(index_t bt, index_t s, index_t l, rows3<const T> x, T scale, bool causal,
                                       rows3<T> y) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  for (index_t row = blockIdx.x; row < bt * s; row += gridDim.x) {
    const index_t b = row / s, i = row % s;
    const T* xr = x.row(b, i);
    T* yr = y.row(b, i);
    index_t lim = l;
    if (causal) {
      lim = i + (l - s) + 1;
      lim = lim < 0 ? 0 : (lim > l ? l : lim);
    }
    T m = neg_inf;
    for (index_t j = threadIdx.x; j < lim; j += blockDim.x) m = max(m, scale * xr[j]);
    m = block_reduce(m, max_op{}, neg_inf);
    if (m == neg_inf) {
      __syncthreads();  // every thread has read its x before any y (y may be x) is written
      for (index_t j = threadIdx.x; j < l; j += blockDim.x) yr[j] = T(0);
      continue;
    }
    T sum = 0;
    for (index_t j = threadIdx.x; j < lim; j += blockDim.x) {
      const T e = exp(scale * xr[j] - m);
      yr[j] = e;
      sum += e;
    }
    sum = block_reduce(sum, sum_op{}, T(0));
    for (index_t j = threadIdx.x; j < lim; j += blockDim.x) yr[j] = yr[j] / sum;
    for (index_t j = lim + threadIdx.x; j < l; j += blockDim.x) yr[j] = T(0);
  }
}

template <class T>
__global__ void softmax_backward_kernel(index_t bt, index_t s, index_t l, rows3<const T> y, rows3<const T> dy,
                                        T scale, rows3<T> dx) {
  for (index_t row = blockIdx.x; row < bt * s; row += gridDim.x) {
    const index_t b = row / s, i = row % s;
    const T* yr = y.row(b, i);
    const T* gr = dy.row(b, i);
    T dot = 0;
    for (index_t j = threadIdx.x; j < l; j += blockDim.x) dot += yr[j] * gr[j];
    dot = block_reduce(dot, sum_op{}, T(0));
    T* out = dx.row(b, i);
    for (index_t j = threadIdx.x; j < l; j += blockDim.x) out[j] += scale * yr[j] * (gr[j] - dot);
  }
}

}  // namespace slim::backend::cuda_detail

namespace slim::backend::detail {

struct cuda_softmax {
  template <class T>
  using dbatch = tensor_view<T, 3, device_space>;

  /// y = softmax(scale·x) per row; causal: column j visible iff j ≤ i + (L−S).   x,y (Bt,S,L); y may be x
  template <std::floating_point T>
  static void softmax_forward(const backend::cuda& be, dbatch<in_t<T>> x, std::type_identity_t<T> scale, bool causal,
                              dbatch<T> y) {
    using namespace cuda_detail;
    check_softmax_forward<T>(host_shape(x), scale, host_shape(y));
    const index_t bt = x.extent(0), s = x.extent(1), l = x.extent(2);
    if (bt * s == 0 || l == 0) return;
    softmax_forward_kernel<T><<<row_blocks(bt * s), row_threads, 0, stream_of(be)>>>(bt, s, l, rows3_of(x), scale,
                                                                                    causal, rows3_of(y));
    check_launch("softmax_forward_kernel", __FILE__, __LINE__);
  }

  /// dx += scale·y⊙(dy − Σ y⊙dy) per row.   (Bt,S,L)
  template <std::floating_point T>
  static void softmax_backward(const backend::cuda& be, dbatch<in_t<T>> y, dbatch<in_t<T>> dy,
                               std::type_identity_t<T> scale, dbatch<T> dx) {
    using namespace cuda_detail;
    check_softmax_backward<T>(host_shape(y), host_shape(dy), scale, host_shape(dx));
    const index_t bt = y.extent(0), s = y.extent(1), l = y.extent(2);
    if (bt * s == 0 || l == 0) return;
    softmax_backward_kernel<T><<<row_blocks(bt * s), row_threads, 0, stream_of(be)>>>(bt, s, l, rows3_of(y),
                                                                                     rows3_of(dy), scale, rows3_of(dx));
    check_launch("softmax_backward_kernel", __FILE__, __LINE__);
  }
};

}  // namespace slim::backend::detail
