// slim — CUDA kernels: rotary position embedding (forward beside backward), rotate-half as in HF LLaMA. See
// docs/kernels.md. One thread per (row, head, pair): θᵢ = pos·inv_freqᵢ formed in T as the oracle does.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/rope.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include <concepts>
#include <cstdint>

#include "slim/backend/cuda/common.cuh"
#include "slim/backend/scalar/rope.hpp"

namespace slim::backend::cuda_detail {

/// A (N, H, Dh) view with unit inner stride.
template <class T>
struct heads3 {
  T* p;
  index_t s0, s1;
  __device__ T& operator()(index_t r, index_t h, index_t i) const { return p[r * s0 + h * s1 + i]; }
};
template <class T>
heads3<T> heads_of(const tensor_view<T, 3, device_space>& v) {
  return {v.data_handle(), v.stride(0), v.stride(1)};
}

/// Backward = forward with the rotation transposed (sin negated) and accumulation.
template <class T, bool Backward>
__global__ void rope_kernel(index_t n, index_t heads, index_t half, heads3<const T> a, const std::int32_t* pos,
                            index_t pos_stride, const T* inv_freq, index_t freq_stride, heads3<T> b) {
  const index_t total = n * heads * half;
  for (index_t t = blockIdx.x * index_t{blockDim.x} + threadIdx.x; t < total; t += index_t{gridDim.x} * blockDim.x) {
    const index_t i = t % half, h = (t / half) % heads, r = t / (half * heads);
    const T theta = static_cast<T>(pos[r * pos_stride]) * inv_freq[i * freq_stride];
    const T c = cos(theta), s = sin(theta);
    const T x0 = a(r, h, i), x1 = a(r, h, i + half);
    if constexpr (Backward) {
      b(r, h, i) += x0 * c + x1 * s;
      b(r, h, i + half) += x1 * c - x0 * s;
    } else {
      b(r, h, i) = x0 * c - x1 * s;
      b(r, h, i + half) = x1 * c + x0 * s;
    }
  }
}

template <class T, bool Backward>
void launch_rope(const backend::cuda& be, const tensor_view<const T, 3, device_space>& a,
                 const vector_view<const std::int32_t, device_space>& pos,
                 const vector_view<const T, device_space>& inv_freq, const tensor_view<T, 3, device_space>& b) {
  const index_t n = a.extent(0), heads = a.extent(1), half = a.extent(2) / 2;
  if (n * heads * half == 0) return;
  constexpr int threads = 256;
  rope_kernel<T, Backward><<<flat_blocks(n * heads * half, threads), threads, 0, stream_of(be)>>>(
      n, heads, half, heads_of(a), pos.data_handle(), pos.stride(0), inv_freq.data_handle(), inv_freq.stride(0),
      heads_of(b));
  check_launch(Backward ? "rope_kernel<backward>" : "rope_kernel<forward>", __FILE__, __LINE__);
}

}  // namespace slim::backend::cuda_detail

namespace slim::backend::detail {

struct cuda_rope {
  /// yᵢ = xᵢcosθᵢ − x_{i+h}sinθᵢ, y_{i+h} = x_{i+h}cosθᵢ + xᵢsinθᵢ.   x,y (N,H,Dh), pos (N), inv_freq (Dh/2)
  template <std::floating_point T>
  static void rope_forward(const backend::cuda& be, tensor_view<in_t<T>, 3, device_space> x,
                           vector_view<const std::int32_t, device_space> pos,
                           vector_view<in_t<T>, device_space> inv_freq, tensor_view<T, 3, device_space> y) {
    using namespace cuda_detail;
    check_rope<T>("rope_forward", "x", "y", host_shape(x), host_shape(pos), host_shape(inv_freq), host_shape(y));
    launch_rope<T, false>(be, x, pos, inv_freq, y);
  }
  /// dx += Rᵀ·dy.   shapes as forward
  template <std::floating_point T>
  static void rope_backward(const backend::cuda& be, tensor_view<in_t<T>, 3, device_space> dy,
                            vector_view<const std::int32_t, device_space> pos,
                            vector_view<in_t<T>, device_space> inv_freq, tensor_view<T, 3, device_space> dx) {
    using namespace cuda_detail;
    check_rope<T>("rope_backward", "dy", "dx", host_shape(dy), host_shape(pos), host_shape(inv_freq),
                  host_shape(dx));
    launch_rope<T, true>(be, dy, pos, inv_freq, dx);
  }
};

}  // namespace slim::backend::detail
