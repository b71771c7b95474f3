// slim — backend tags. The tag *type* selects code (`kernels<B>`); the tag *object* carries runtime state
// (a thread pool for the CPU backends, a stream and a cuBLAS handle for CUDA), as Eigen's devices do.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <concepts>
#include <string_view>

#include "slim/core/tensor_view.hpp"
#include "slim/core/thread_pool.hpp"

namespace slim::backend {

/// Plain loops over any element type (float, double): the oracle every other backend is tested against.
struct scalar {
  using memory_space = host_space;
  static constexpr std::string_view name = "scalar";
};

/// xsimd-vectorised CPU kernels for the architecture `Arch` (an xsimd arch type such as
/// `xsimd::fma3<xsimd::avx2>` or `xsimd::avx512bw`), named by the user; the translation unit must be
/// compiled with flags that enable it. Derives from `scalar` so ops not ported fall back to the oracle.
/// `pool` (optional) parallelises the ops that pay for it; results do not depend on its size.
template <class Arch>
struct simd : scalar {
  using arch = Arch;
  static constexpr std::string_view name = "simd";
  thread_pool* pool = nullptr;
};

/// CUDA device kernels; `kernels<cuda>` is defined only in `slim/backend/cuda/kernels.cuh` (nvcc).
/// `stream` is a cudaStream_t (nullptr: the legacy default stream), `blas` a cublasHandle_t; both are
/// owned by the caller (see `slim::backend::cuda_context` in the CUDA headers).
struct cuda {
  using memory_space = device_space;
  static constexpr std::string_view name = "cuda";
  void* stream = nullptr;
  void* blas = nullptr;
};

}  // namespace slim::backend

namespace slim {
/// Structural only, so it means the same in every translation unit whatever it includes.
template <class B>
concept Backend = std::copyable<B> && requires {
  typename B::memory_space;
  { B::name } -> std::convertible_to<std::string_view>;
};
}  // namespace slim
