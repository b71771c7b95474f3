// slim — CUDA kernels: per-row top-k (forward beside backward). See docs/kernels.md. Same order as the CPU:
// larger first, ties by lower column, NaN below every number. Forward: one block per row picks the k entries
// one at a time, each the best of those ranking after the previous pick (a block-wide arg-max per pick, so
// O(k·L) per row — right for sampling and evaluation cut-offs, not for k in the thousands). Backward: one
// thread per row adds its k gradients in order, so repeated indices accumulate as on the CPU.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/topk.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include <concepts>
#include <cstdint>
#include <limits>
#include <string>

#include "slim/backend/cuda/common.cuh"
#include "slim/backend/scalar/topk.hpp"

namespace slim::backend::cuda_detail {

/// True when (a, column ia) ranks before (b, column ib); column −1 ranks after everything (no candidate).
template <class T>
__device__ inline bool ranks_before(T a, index_t ia, T b, index_t ib) {
  if (ib < 0) return ia >= 0;
  if (ia < 0) return false;
  const bool na = isnan(a), nb = isnan(b);
  if (na != nb) return nb;
  if (!na && a != b) return a > b;
  return ia < ib;
}

template <class T>
__global__ void topk_forward_kernel(index_t rows, index_t cols, index_t k, const T* x, index_t ldx, T* values,
                                    index_t ldv, std::int32_t* indices, index_t ldi) {
  __shared__ T best_v[32];
  __shared__ index_t best_i[32];
  __shared__ T prev_v;
  __shared__ index_t prev_i;
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  const unsigned warps = (blockDim.x + 31u) >> 5;
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * ldx;
    for (index_t j = 0; j < k; ++j) {
      // the best candidate of this thread among the entries ranking after the previous pick
      T v = T(0);
      index_t i = -1;
      const bool first = j == 0;
      const T pv = first ? T(0) : prev_v;
      const index_t pi = first ? index_t{-1} : prev_i;
      for (index_t c = threadIdx.x; c < cols; c += blockDim.x) {
        const T xc = xr[c];
        if (!first && !ranks_before(pv, pi, xc, c)) continue;  // ranks at or before the previous pick
        if (ranks_before(xc, c, v, i)) {
          v = xc;
          i = c;
        }
      }
      for (int o = 16; o > 0; o >>= 1) {
        const T ov = __shfl_xor_sync(0xffffffffu, v, o);
        const index_t oi = __shfl_xor_sync(0xffffffffu, i, o);
        if (ranks_before(ov, oi, v, i)) {
          v = ov;
          i = oi;
        }
      }
      __syncthreads();  // everyone has read prev_v / prev_i and the previous best_*
      if (lane == 0) {
        best_v[warp] = v;
        best_i[warp] = i;
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        T bv = best_v[0];
        index_t bi = best_i[0];
        for (unsigned w = 1; w < warps; ++w)
          if (ranks_before(best_v[w], best_i[w], bv, bi)) {
            bv = best_v[w];
            bi = best_i[w];
          }
        values[r * ldv + j] = bv;
        indices[r * ldi + j] = static_cast<std::int32_t>(bi);
        prev_v = bv;
        prev_i = bi;
      }
      __syncthreads();
    }
  }
}

template <class T>
__global__ void topk_backward_kernel(index_t rows, index_t k, const std::int32_t* indices, index_t ldi,
                                     const T* dvalues, index_t ldv, T* dx, index_t ldx) {
  for (index_t r = blockIdx.x * index_t{blockDim.x} + threadIdx.x; r < rows; r += index_t{gridDim.x} * blockDim.x)
    for (index_t j = 0; j < k; ++j) dx[r * ldx + indices[r * ldi + j]] += dvalues[r * ldv + j];
}

/// Checks every index of an (N,k) int32 matrix against [0, cols) on the device. A template, like every kernel
/// here, so that two translation units of one program may both include this header (a plain __global__
/// function defined in a header is defined twice at link time).
template <class Index>
__global__ void topk_index_check_kernel(index_t rows, index_t k, const Index* indices, index_t ldi, Index cols,
                                        unsigned long long* first_bad) {
  for (index_t t = blockIdx.x * index_t{blockDim.x} + threadIdx.x; t < rows * k; t += index_t{gridDim.x} * blockDim.x) {
    const Index v = indices[(t / k) * ldi + t % k];
    if (v < 0 || v >= cols) atomicMin(first_bad, static_cast<unsigned long long>(t));
  }
}

}  // namespace slim::backend::cuda_detail

namespace slim::backend::detail {

struct cuda_topk {
  template <class T>
  using dmatrix = matrix_view<T, device_space>;

  /// values[n] = the k largest of x[n], descending; indices[n] their columns.   x (N,L); values, indices (N,k)
  template <std::floating_point T>
  static void topk_forward(const backend::cuda& be, dmatrix<in_t<T>> x, index_t k, dmatrix<T> values,
                           dmatrix<std::int32_t> indices) {
    using namespace cuda_detail;
    check_topk<T>("slim::kernels<cuda>::topk_forward", host_shape(x), k, host_shape(values), host_shape(indices));
    const index_t rows = x.extent(0), cols = x.extent(1);
    if (rows == 0) return;
    topk_forward_kernel<T><<<row_blocks(rows), row_threads, 0, stream_of(be)>>>(
        rows, cols, k, x.data_handle(), x.stride(0), values.data_handle(), values.stride(0), indices.data_handle(),
        indices.stride(0));
    check_launch("topk_forward_kernel", __FILE__, __LINE__);
  }

  /// dx[n, indices[n,j]] += dvalues[n,j]; an index outside [0,L) throws before anything is written.
  template <std::floating_point T>
  static void topk_backward(const backend::cuda& be, dmatrix<const std::int32_t> indices, dmatrix<in_t<T>> dvalues,
                            dmatrix<T> dx) {
    using namespace cuda_detail;
    constexpr const char* where = "slim::kernels<cuda>::topk_backward";
    require_valid(indices, where, "indices");
    require_valid(dx, where, "dx");
    require_shape(dvalues, indices.extents(), where, "dvalues");
    require(dx.extent(0) == indices.extent(0), where, "dx has ", dx.extent(0), " rows where indices has ",
            indices.extent(0));
    require(dx.has_unit_inner_stride() && indices.has_unit_inner_stride() && dvalues.has_unit_inner_stride(), where,
            "dx, indices and dvalues need unit column strides");
    require(dx.extent(1) <= std::numeric_limits<std::int32_t>::max(), where, "rows of ", dx.extent(1),
            " columns do not fit int32 indices");
    const index_t rows = indices.extent(0), k = indices.extent(1);
    if (rows * k == 0) return;
    position_check check(be);
    constexpr int threads = 256;
    topk_index_check_kernel<std::int32_t><<<flat_blocks(rows * k, threads), threads, 0, stream_of(be)>>>(
        rows, k, indices.data_handle(), indices.stride(0), static_cast<std::int32_t>(dx.extent(1)),
        check.first_bad());
    check_launch("topk_index_check_kernel", __FILE__, __LINE__);
    const auto r = check.read();
    if (r.any_bad) {
      const auto n = static_cast<index_t>(r.first_bad / static_cast<unsigned long long>(k));
      const auto j = static_cast<index_t>(r.first_bad % static_cast<unsigned long long>(k));
      throw error(where, "indices[" + std::to_string(n) + "," + std::to_string(j) + "]",
                  "index " + std::to_string(read_int32(be, indices.data_handle() + n * indices.stride(0) + j)) +
                      " lies outside [0, " + std::to_string(dx.extent(1)) + ")");
    }
    topk_backward_kernel<T><<<flat_blocks(rows, threads), threads, 0, stream_of(be)>>>(
        rows, k, indices.data_handle(), indices.stride(0), dvalues.data_handle(), dvalues.stride(0),
        dx.data_handle(), dx.stride(0));
    check_launch("topk_backward_kernel", __FILE__, __LINE__);
  }
};

}  // namespace slim::backend::detail
