// slim — CUDA kernels: fused softmax cross-entropy from logits (forward beside backward). See
// docs/kernels.md. One block per row. The targets live on the device: they are checked there first (a bad
// target throws slim::error naming its position before anything is written), which also counts the rows
// forward returns — one stream synchronisation per call.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/cross_entropy.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include <concepts>
#include <cstdint>
#include <limits>
#include <string>

#include "slim/backend/cuda/common.cuh"
#include "slim/backend/scalar/cross_entropy.hpp"

namespace slim::backend::cuda_detail {

template <class T>
__global__ void cross_entropy_forward_kernel(index_t rows, index_t vocab, const T* logits, index_t ld,
                                             const std::int32_t* targets, index_t ts, std::int32_t ignore, T* loss,
                                             index_t ls, T* lse, index_t es) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* x = logits + r * ld;
    T m = neg_inf;
    for (index_t c = threadIdx.x; c < vocab; c += blockDim.x) m = max(m, x[c]);
    m = block_reduce(m, max_op{}, neg_inf);
    T s = 0;
    for (index_t c = threadIdx.x; c < vocab; c += blockDim.x) s += exp(x[c] - m);
    s = block_reduce(s, sum_op{}, T(0));
    if (threadIdx.x == 0) {
      const T l = m + log(s);
      lse[r * es] = l;
      const std::int32_t t = targets[r * ts];
      loss[r * ls] = t == ignore ? T(0) : l - x[t];
    }
  }
}

template <class T>
__global__ void cross_entropy_backward_kernel(index_t rows, index_t vocab, const T* logits, index_t ld,
                                              const std::int32_t* targets, index_t ts, const T* lse, index_t es,
                                              std::int32_t ignore, const T* dloss, index_t ds, T* dlogits,
                                              index_t ldd) {
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const std::int32_t t = targets[r * ts];
    if (t == ignore) continue;
    const T* x = logits + r * ld;
    T* g = dlogits + r * ldd;
    const T l = lse[r * es], dl = dloss[r * ds];
    for (index_t c = threadIdx.x; c < vocab; c += blockDim.x)
      g[c] += dl * (exp(x[c] - l) - (c == t ? T(1) : T(0)));
  }
}

/// Shapes of logits (N,V) and targets (N), then every target on the device; returns the counted rows.
template <class T>
index_t check_cross_entropy(const backend::cuda& be, const char* where, const matrix_view<const T, device_space>& logits,
                            const vector_view<const std::int32_t, device_space>& targets, std::int32_t ignore_index) {
  detail::check_cross_entropy_shapes<T>(where, logits, targets);
  const index_t vocab = logits.extent(1);
  require(vocab <= std::numeric_limits<std::int32_t>::max(), where, "rows of ", vocab,
          " logits do not fit int32 targets");
  const auto r = check_int32(be, targets.extent(0), targets.data_handle(), targets.stride(0),
                             in_range_or{static_cast<std::int32_t>(vocab), ignore_index}, not_equal{ignore_index});
  if (r.any_bad) {
    const auto n = static_cast<index_t>(r.first_bad);
    throw error(where, "targets[" + std::to_string(n) + "]",
                "target " + std::to_string(read_int32(be, targets.data_handle() + n * targets.stride(0))) +
                    " lies outside [0, " + std::to_string(vocab) + ") and is not ignore_index " +
                    std::to_string(ignore_index));
  }
  return static_cast<index_t>(r.count);
}

}  // namespace slim::backend::cuda_detail

namespace slim::backend::detail {

struct cuda_cross_entropy {
  template <class T>
  using dmatrix = matrix_view<T, device_space>;
  template <class T>
  using dvector = vector_view<T, device_space>;

  /// lse[n] = log Σ exp(logits[n]) (every row); loss[n] = lse[n] − logits[n,tₙ], 0 where tₙ = ignore_index.
  /// Returns the number of rows counted (waits for the stream).   logits (N,V); targets (N); loss, lse (N)
  template <std::floating_point T>
  static index_t cross_entropy_forward(const backend::cuda& be, dmatrix<in_t<T>> logits,
                                       dvector<const std::int32_t> targets, std::int32_t ignore_index, dvector<T> loss,
                                       dvector<T> lse) {
    using namespace cuda_detail;
    constexpr const char* where = "slim::kernels<cuda>::cross_entropy_forward";
    const index_t rows = logits.extent(0), vocab = logits.extent(1);
    require_valid(logits, where, "logits");
    require_shape(loss, {rows}, where, "loss");
    require_shape(lse, {rows}, where, "lse");
    const index_t counted = cuda_detail::check_cross_entropy<T>(be, where, logits, targets, ignore_index);
    if (rows == 0) return counted;
    cross_entropy_forward_kernel<T><<<row_blocks(rows), row_threads, 0, stream_of(be)>>>(
        rows, vocab, logits.data_handle(), logits.stride(0), targets.data_handle(), targets.stride(0), ignore_index,
        loss.data_handle(), loss.stride(0), lse.data_handle(), lse.stride(0));
    check_launch("cross_entropy_forward_kernel", __FILE__, __LINE__);
    return counted;
  }

  /// dlogits[n] += dloss[n]·(softmax(logits[n]) − onehot(tₙ)); ignored rows untouched.
  template <std::floating_point T>
  static void cross_entropy_backward(const backend::cuda& be, dmatrix<in_t<T>> logits,
                                     dvector<const std::int32_t> targets, dvector<in_t<T>> lse,
                                     std::int32_t ignore_index, dvector<in_t<T>> dloss, dmatrix<T> dlogits) {
    using namespace cuda_detail;
    constexpr const char* where = "slim::kernels<cuda>::cross_entropy_backward";
    const index_t rows = logits.extent(0), vocab = logits.extent(1);
    require_valid(logits, where, "logits");
    require_shape(lse, {rows}, where, "lse");
    require_shape(dloss, {rows}, where, "dloss");
    require_shape(dlogits, {rows, vocab}, where, "dlogits");
    require(dlogits.has_unit_inner_stride(), where, "dlogits need a unit column stride");
    cuda_detail::check_cross_entropy<T>(be, where, logits, targets, ignore_index);
    if (rows == 0 || vocab == 0) return;
    cross_entropy_backward_kernel<T><<<row_blocks(rows), row_threads, 0, stream_of(be)>>>(
        rows, vocab, logits.data_handle(), logits.stride(0), targets.data_handle(), targets.stride(0),
        lse.data_handle(), lse.stride(0), ignore_index, dloss.data_handle(), dloss.stride(0), dlogits.data_handle(),
        dlogits.stride(0));
    check_launch("cross_entropy_backward_kernel", __FILE__, __LINE__);
  }
};

}  // namespace slim::backend::detail
