// slim — kernels<backend::cuda>: the CUDA kernel set, for .cu files compiled by nvcc. One op family per
// header in backend/cuda/; this header assembles them (first cut: gemm through cuBLAS, and the SiLU / SwiGLU
// activations — docs/kernels.md lists the contract every op follows). Ops take device views
// (`tensor_view<T, R, device_space>`) and a `backend::cuda` tag object from a `backend::cuda_context`; they
// are queued on its stream and return before the GPU has finished (see `backend::synchronize`).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/kernels.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include "slim/backend/cuda/activation.cuh"
#include "slim/backend/cuda/gemm.cuh"
#include "slim/backend/cuda/memory.cuh"
#include "slim/backend/cuda/runtime.cuh"
#include "slim/backend/kernels.hpp"

namespace slim {

template <>
struct kernels<backend::cuda> : backend::detail::cuda_gemm, backend::detail::cuda_activation {};

}  // namespace slim
