// slim — CUDA kernels: Adam / AdamW steps with PyTorch's semantics (bias corrections in double on the host,
// as PyTorch forms them; the update in T on the device). See docs/kernels.md.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/optimizer.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include <concepts>
#include <cstdint>

#include "slim/backend/cuda/common.cuh"
#include "slim/backend/scalar/optimizer.hpp"

namespace slim::backend::cuda_detail {

template <class T, bool Decoupled>
__global__ void adam_kernel(index_t n, T* param, const T* grad, T* m, T* v, T lr, T b1, T b2, T eps, T wd,
                            T step_size, T bc2_sqrt) {
  for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < n; i += index_t{gridDim.x} * blockDim.x) {
    T theta = param[i], g = grad[i];
    if constexpr (Decoupled)
      theta *= T(1) - lr * wd;
    else
      g += wd * theta;
    const T mi = b1 * m[i] + (T(1) - b1) * g;
    const T vi = b2 * v[i] + (T(1) - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const T denom = sqrt(vi) / bc2_sqrt + eps;
    param[i] = theta - step_size * (mi / denom);
  }
}

}  // namespace slim::backend::cuda_detail

namespace slim::backend::detail {

struct cuda_optimizer {
  template <class T>
  using dvector = vector_view<T, device_space>;

  /// g' = g + wd·θ; m = β₁m + (1−β₁)g'; v = β₂v + (1−β₂)g'²; θ −= (lr/bc₁)·m/(√v/√bc₂ + ε).   all (P), t ≥ 1
  template <std::floating_point T>
  static void adam_step(const backend::cuda& be, dvector<T> param, dvector<in_t<T>> grad, dvector<T> m, dvector<T> v,
                        const adam_config& cfg, std::int64_t step) {
    update<T, false>(be, "slim::kernels<cuda>::adam_step", param, grad, m, v, cfg, step);
  }
  /// θ −= lr·wd·θ (decoupled), then the Adam step with wd = 0.   all (P), t ≥ 1
  template <std::floating_point T>
  static void adamw_step(const backend::cuda& be, dvector<T> param, dvector<in_t<T>> grad, dvector<T> m, dvector<T> v,
                         const adam_config& cfg, std::int64_t step) {
    update<T, true>(be, "slim::kernels<cuda>::adamw_step", param, grad, m, v, cfg, step);
  }

 private:
  template <class T, bool Decoupled>
  static void update(const backend::cuda& be, const char* where, dvector<T> param, dvector<const T> grad,
                     dvector<T> m, dvector<T> v, const adam_config& cfg, std::int64_t step) {
    using namespace cuda_detail;
    const adam_scalars s =
        check_adam<T>(where, host_shape(param), host_shape(grad), host_shape(m), host_shape(v), cfg, step);
    const index_t n = param.extent(0);
    if (n == 0) return;
    constexpr int threads = 256;
    adam_kernel<T, Decoupled><<<flat_blocks(n, threads), threads, 0, stream_of(be)>>>(
        n, param.data_handle(), grad.data_handle(), m.data_handle(), v.data_handle(), static_cast<T>(cfg.lr),
        static_cast<T>(cfg.beta1), static_cast<T>(cfg.beta2), static_cast<T>(cfg.eps),
        static_cast<T>(cfg.weight_decay), static_cast<T>(s.step_size), static_cast<T>(s.bias_correction2_sqrt));
    check_launch(Decoupled ? "adam_kernel<adamw>" : "adam_kernel<adam>", __FILE__, __LINE__);
  }
};

}  // namespace slim::backend::detail
