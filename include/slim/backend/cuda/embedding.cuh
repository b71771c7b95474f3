// slim — CUDA kernels: embedding gather / scatter-add (forward beside backward). See docs/kernels.md.
// The ids live on the device, so they are checked there first: a bad id is reported (slim::error naming its
// position, as on the CPU) before any output is written, at the cost of one stream synchronisation per call.
// Backward adds the rows in n order, one thread per column walking the ids, so repeated ids accumulate in the
// same order as the CPU backends — deterministic, and free of atomics.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/embedding.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include <concepts>
#include <cstdint>
#include <limits>
#include <string>

#include "slim/backend/cuda/common.cuh"
#include "slim/backend/scalar/embedding.hpp"

namespace slim::backend::cuda_detail {

template <class T>
__global__ void embedding_forward_kernel(index_t n, index_t d, const T* table, index_t ldt, const std::int32_t* ids,
                                         index_t ids_stride, T* out, index_t ldo) {
  for (index_t t = blockIdx.x * index_t{blockDim.x} + threadIdx.x; t < n * d; t += index_t{gridDim.x} * blockDim.x) {
    const index_t r = t / d, c = t % d;
    out[r * ldo + c] = table[static_cast<index_t>(ids[r * ids_stride]) * ldt + c];
  }
}

template <class T>
__global__ void embedding_backward_kernel(index_t n, index_t d, const std::int32_t* ids, index_t ids_stride,
                                          const T* dout, index_t ldo, T* dtable, index_t ldt) {
  for (index_t c = blockIdx.x * index_t{blockDim.x} + threadIdx.x; c < d; c += index_t{gridDim.x} * blockDim.x)
    for (index_t r = 0; r < n; ++r) dtable[static_cast<index_t>(ids[r * ids_stride]) * ldt + c] += dout[r * ldo + c];
}

/// Shapes of table (V,D), ids (N), rows (N,D); then every id against [0,V) on the device.
template <class T, class U>
void check_embedding(const backend::cuda& be, const char* where, const matrix_view<T, device_space>& table,
                     const vector_view<const std::int32_t, device_space>& ids,
                     const matrix_view<U, device_space>& rows, const char* table_name, const char* rows_name) {
  detail::check_embedding_shapes(where, table, ids, rows, table_name, rows_name);
  const index_t vocab = table.extent(0);
  require(vocab <= std::numeric_limits<std::int32_t>::max(), where, table_name, " has more rows than int32 ids reach");
  const auto r = check_int32(be, ids.extent(0), ids.data_handle(), ids.stride(0),
                             in_range{static_cast<std::int32_t>(vocab)}, never{});
  if (r.any_bad) {
    const auto n = static_cast<index_t>(r.first_bad);
    throw error(where, "ids[" + std::to_string(n) + "]",
                "id " + std::to_string(read_int32(be, ids.data_handle() + n * ids.stride(0))) + " lies outside [0, " +
                    std::to_string(vocab) + ")");
  }
}

}  // namespace slim::backend::cuda_detail

namespace slim::backend::detail {

struct cuda_embedding {
  template <class T>
  using dmatrix = matrix_view<T, device_space>;

  /// out[n] = table[ids[n]].   table (V,D); ids (N) int32; out (N,D)
  template <std::floating_point T>
  static void embedding_forward(const backend::cuda& be, dmatrix<in_t<T>> table,
                                vector_view<const std::int32_t, device_space> ids, dmatrix<T> out) {
    using namespace cuda_detail;
    cuda_detail::check_embedding(be, "slim::kernels<cuda>::embedding_forward", table, ids, out, "table", "out");
    const index_t n = ids.extent(0), d = table.extent(1);
    if (n * d == 0) return;
    constexpr int threads = 256;
    embedding_forward_kernel<T><<<flat_blocks(n * d, threads), threads, 0, stream_of(be)>>>(
        n, d, table.data_handle(), table.stride(0), ids.data_handle(), ids.stride(0), out.data_handle(),
        out.stride(0));
    check_launch("embedding_forward_kernel", __FILE__, __LINE__);
  }

  /// dtable[ids[n]] += dout[n], rows added in n order.   ids (N) int32; dout (N,D); dtable (V,D)
  template <std::floating_point T>
  static void embedding_backward(const backend::cuda& be, vector_view<const std::int32_t, device_space> ids,
                                 dmatrix<in_t<T>> dout, dmatrix<T> dtable) {
    using namespace cuda_detail;
    cuda_detail::check_embedding(be, "slim::kernels<cuda>::embedding_backward", dtable, ids, dout, "dtable", "dout");
    const index_t n = ids.extent(0), d = dtable.extent(1);
    if (n * d == 0) return;
    constexpr int threads = 128;
    embedding_backward_kernel<T><<<flat_blocks(d, threads), threads, 0, stream_of(be)>>>(
        n, d, ids.data_handle(), ids.stride(0), dout.data_handle(), dout.stride(0), dtable.data_handle(),
        dtable.stride(0));
    check_launch("embedding_backward_kernel", __FILE__, __LINE__);
  }
};

}  // namespace slim::backend::detail
