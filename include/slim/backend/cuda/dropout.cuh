// slim — CUDA kernels: dropout (forward beside backward) on the CPU backends' Philox stream: element (n,d)
// is kept iff philox_uniform(seed, offset + n·D + d) ≥ p, so the GPU draws the same mask as scalar and simd,
// and backward recomputes it. See docs/kernels.md.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/dropout.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include <concepts>
#include <cstdint>

#include "slim/backend/cuda/common.cuh"
#include "slim/backend/scalar/dropout.hpp"
#include "slim/core/philox.hpp"

namespace slim::backend::cuda_detail {

/// A product rounded on its own (never contracted into a following add).
__device__ inline float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double mul_rn(double a, double b) { return __dmul_rn(a, b); }

template <class T, bool Backward>
__global__ void dropout_kernel(index_t n, index_t d, const T* a, index_t lda, float p, T scale, std::uint64_t seed,
                               std::uint64_t offset, T* b, index_t ldb) {
  const index_t total = n * d;
  for (index_t t = blockIdx.x * index_t{blockDim.x} + threadIdx.x; t < total; t += index_t{gridDim.x} * blockDim.x) {
    const index_t r = t / d, j = t % d;
    const T v = a[r * lda + j];
    T& out = b[r * ldb + j];
    const bool keep = p == 0.0f || philox_uniform(seed, offset + static_cast<std::uint64_t>(t)) >= p;
    const T kept = p == 0.0f ? v : mul_rn(v, scale);  // rounded before the += of backward, as on the CPU
    if constexpr (Backward) {
      if (keep) out += kept;
    } else {
      out = keep ? kept : T(0);
    }
  }
}

template <class T, bool Backward>
void launch_dropout(const backend::cuda& be, const matrix_view<const T, device_space>& a, float p, std::uint64_t seed,
                    std::uint64_t offset, const matrix_view<T, device_space>& b) {
  const index_t n = a.extent(0), d = a.extent(1);
  if (n * d == 0) return;
  const T scale = T(1) / (T(1) - static_cast<T>(p));
  constexpr int threads = 256;
  dropout_kernel<T, Backward><<<flat_blocks(n * d, threads), threads, 0, stream_of(be)>>>(
      n, d, a.data_handle(), a.stride(0), p, scale, seed, offset, b.data_handle(), b.stride(0));
  check_launch(Backward ? "dropout_kernel<backward>" : "dropout_kernel<forward>", __FILE__, __LINE__);
}

}  // namespace slim::backend::cuda_detail

namespace slim::backend::detail {

struct cuda_dropout {
  template <class T>
  using dmatrix = matrix_view<T, device_space>;

  /// keep = philox_uniform(seed, offset + n·D + d) ≥ p; y = keep ? x/(1−p) : 0; p = 0 copies.   x,y (N,D)
  template <std::floating_point T>
  static void dropout_forward(const backend::cuda& be, dmatrix<in_t<T>> x, float p, std::uint64_t seed,
                              std::uint64_t offset, dmatrix<T> y) {
    check_dropout<T>("dropout_forward", "x", "y", cuda_detail::host_shape(x), p, cuda_detail::host_shape(y));
    cuda_detail::launch_dropout<T, false>(be, x, p, seed, offset, y);
  }
  /// dx += keep ? dy/(1−p) : 0, the mask recomputed from (seed, offset).   dy,dx (N,D)
  template <std::floating_point T>
  static void dropout_backward(const backend::cuda& be, dmatrix<in_t<T>> dy, float p, std::uint64_t seed,
                               std::uint64_t offset, dmatrix<T> dx) {
    check_dropout<T>("dropout_backward", "dy", "dx", cuda_detail::host_shape(dy), p, cuda_detail::host_shape(dx));
    cuda_detail::launch_dropout<T, true>(be, dy, p, seed, offset, dx);
  }
};

}  // namespace slim::backend::detail
