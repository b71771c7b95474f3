// slim — CUDA kernels: what the op families share. Block-wide reductions, the argument checks of the CPU
// backends applied to device views (they read shapes and strides only, never data), and a device-side check
// of ids / targets / indices that reports the first bad position before any output is touched.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/common.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "slim/backend/cuda/runtime.cuh"
#include "slim/backend/tags.hpp"
#include "slim/core/error.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::cuda_detail {

/// The same shape, strides and address as a host-space view, for the CPU backends' argument checks, which
/// read nothing but the view's metadata. Never dereferenced.
template <class T, std::size_t R>
tensor_view<T, R> host_shape(const tensor_view<T, R, device_space>& v) noexcept {
  return tensor_view<T, R>(v.data_handle(), v.extents(), v.strides());
}

/// True for a default-constructed (all extents 0) view: an optional output the caller does not want.
template <class T, std::size_t R>
bool absent(const tensor_view<T, R, device_space>& v) noexcept {
  for (std::size_t r = 0; r < R; ++r)
    if (v.extent(r) != 0) return false;
  return true;
}

/// Threads of a row-per-block kernel: a multiple of the warp size (block_reduce relies on it).
constexpr int row_threads = 256;
/// Blocks of a grid-stride launch over `n` rows (at least 1, at most 65,535: the loop covers the rest).
inline unsigned row_blocks(index_t n) { return static_cast<unsigned>(std::clamp<index_t>(n, 1, 65535)); }
/// Blocks of a grid-stride launch over `count` elements with `threads` per block.
inline unsigned flat_blocks(index_t count, int threads) {
  return static_cast<unsigned>(std::clamp<index_t>((count + threads - 1) / threads, 1, 65535));
}

struct sum_op {
  template <class T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};
struct max_op {
  template <class T>
  __device__ T operator()(T a, T b) const {
    return (b > a || b != b) ? b : a;  // NaN wins from either side: every thread gets the same result
  }
};

/// Reduces `v` over the block with `op` and returns the result to every thread. blockDim.x must be a multiple
/// of 32; every thread of the block must call it (it synchronises). Safe to call repeatedly in a loop.
template <class T, class Op>
__device__ T block_reduce(T v, Op op, T identity) {
  __shared__ T partial[32];
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();  // the previous call's readers are done with `partial`
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const unsigned warps = (blockDim.x + 31u) >> 5;
  v = lane < warps ? partial[lane] : identity;
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/// Device scratch of `n` T on the stream (stream-ordered allocator).
template <class T>
class stream_buffer {
 public:
  stream_buffer(const backend::cuda& be, index_t n) : stream_{stream_of(be)} {
    if (n > 0) SLIM_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&p_), sizeof(T) * static_cast<std::size_t>(n),
                                               stream_));
  }
  ~stream_buffer() {
    if (p_ != nullptr) cudaFreeAsync(p_, stream_);
  }
  stream_buffer(const stream_buffer&) = delete;
  stream_buffer& operator=(const stream_buffer&) = delete;
  T* get() const noexcept { return p_; }

 private:
  cudaStream_t stream_;
  T* p_ = nullptr;
};

/// A vector in device memory with a stride; null pointer = absent.
template <class T>
struct dvec {
  T* p;
  index_t s;
  __device__ T& operator[](index_t i) const { return p[i * s]; }
};
template <class T>
dvec<T> vec_of(const vector_view<T, device_space>& v) {
  return {absent(v) ? nullptr : v.data_handle(), v.stride(0)};
}
/// Rows of a matrix in device memory (unit inner stride); null pointer = absent.
template <class T>
struct dmat {
  T* p;
  index_t ld;
  __device__ T* row(index_t r) const { return p + r * ld; }
  __device__ T& operator()(index_t r, index_t c) const { return p[r * ld + c]; }
};
template <class T>
dmat<T> mat_of(const matrix_view<T, device_space>& v) {
  return {absent(v) ? nullptr : v.data_handle(), v.stride(0)};
}

/// Device scratch for a device-side argument check: the smallest bad position any thread reports (all ones:
/// none), and a count.
class position_check {
 public:
  explicit position_check(const backend::cuda& be) : stream_{stream_of(be)}, words_(be, 2) {
    SLIM_CUDA_CHECK(cudaMemsetAsync(first_bad(), 0xff, sizeof(unsigned long long), stream_));
    SLIM_CUDA_CHECK(cudaMemsetAsync(count(), 0, sizeof(unsigned long long), stream_));
  }

  unsigned long long* first_bad() const noexcept { return words_.get(); }
  unsigned long long* count() const noexcept { return words_.get() + 1; }

  struct result {
    bool any_bad;
    unsigned long long first_bad, count;
  };
  /// Waits for the stream and reads both words back.
  result read() const {
    unsigned long long host[2] = {0, 0};
    SLIM_CUDA_CHECK(cudaMemcpyAsync(host, words_.get(), sizeof(host), cudaMemcpyDeviceToHost, stream_));
    SLIM_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return {host[0] != std::numeric_limits<unsigned long long>::max(), host[0], host[1]};
  }

 private:
  cudaStream_t stream_;
  stream_buffer<unsigned long long> words_;
};

/// Reads one int32 from device memory (to name a bad id in an error message). Synchronises the stream.
inline std::int32_t read_int32(const backend::cuda& be, const std::int32_t* p) {
  std::int32_t v = 0;
  SLIM_CUDA_CHECK(cudaMemcpyAsync(&v, p, sizeof v, cudaMemcpyDeviceToHost, stream_of(be)));
  SLIM_CUDA_CHECK(cudaStreamSynchronize(stream_of(be)));
  return v;
}

/// Marks every position n < count whose value v = p[n·stride] fails `ok(v)`: first_bad = the smallest such
/// n; count += the number of n with `counted(v)`.
template <class Ok, class Counted>
__global__ void check_int32_kernel(index_t count, const std::int32_t* p, index_t stride, Ok ok, Counted counted,
                                   unsigned long long* first_bad, unsigned long long* counted_total) {
  unsigned long long mine = 0;
  for (index_t n = blockIdx.x * index_t{blockDim.x} + threadIdx.x; n < count; n += index_t{gridDim.x} * blockDim.x) {
    const std::int32_t v = p[n * stride];
    if (!ok(v)) atomicMin(first_bad, static_cast<unsigned long long>(n));
    mine += counted(v) ? 1u : 0u;
  }
  if (mine) atomicAdd(counted_total, mine);
}

/// Runs check_int32_kernel over `count` values and returns the result (synchronising the stream).
template <class Ok, class Counted>
position_check::result check_int32(const backend::cuda& be, index_t count, const std::int32_t* p, index_t stride,
                                   Ok ok, Counted counted) {
  position_check c(be);
  if (count > 0) {
    constexpr int threads = 256;
    check_int32_kernel<<<flat_blocks(count, threads), threads, 0, stream_of(be)>>>(count, p, stride, ok, counted,
                                                                                  c.first_bad(), c.count());
    check_launch("check_int32_kernel", __FILE__, __LINE__);
  }
  return c.read();
}

/// ok(v): v in [0, limit).
struct in_range {
  std::int32_t limit;
  __device__ bool operator()(std::int32_t v) const { return v >= 0 && v < limit; }
};
/// ok(v): v in [0, limit) or v == ignore.
struct in_range_or {
  std::int32_t limit, ignore;
  __device__ bool operator()(std::int32_t v) const { return v == ignore || (v >= 0 && v < limit); }
};
/// counted(v): v != ignore.
struct not_equal {
  std::int32_t ignore;
  __device__ bool operator()(std::int32_t v) const { return v != ignore; }
};
struct never {
  __device__ bool operator()(std::int32_t) const { return false; }
};

}  // namespace slim::backend::cuda_detail
