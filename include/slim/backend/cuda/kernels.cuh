// slim — kernels<backend::cuda>: the CUDA kernel set, for .cu files compiled by nvcc. One op family per
// header in backend/cuda/; this header assembles them (gemm through cuBLAS; attention, norm, rope, softmax,
// activations, dropout, GRU cell, embedding, cross-entropy, Adam/AdamW and top-k hand-written —
// docs/kernels.md lists the contract every op follows). Ops take device views
// (`tensor_view<T, R, device_space>`) and a `backend::cuda` tag object from a `backend::cuda_context`; they
// are queued on its stream and return before the GPU has finished (see `backend::synchronize`).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/kernels.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include "slim/backend/cuda/activation.cuh"
#include "slim/backend/cuda/attention.cuh"
#include "slim/backend/cuda/cross_entropy.cuh"
#include "slim/backend/cuda/dropout.cuh"
#include "slim/backend/cuda/embedding.cuh"
#include "slim/backend/cuda/gemm.cuh"
#include "slim/backend/cuda/gru.cuh"
#include "slim/backend/cuda/memory.cuh"
#include "slim/backend/cuda/norm.cuh"
#include "slim/backend/cuda/optimizer.cuh"
#include "slim/backend/cuda/rope.cuh"
#include "slim/backend/cuda/runtime.cuh"
#include "slim/backend/cuda/softmax.cuh"
#include "slim/backend/cuda/topk.cuh"
#include "slim/backend/kernels.hpp"

namespace slim {

template <>
struct kernels<backend::cuda> : backend::detail::cuda_gemm,
                                backend::detail::cuda_activation,
                                backend::detail::cuda_attention,
                                backend::detail::cuda_norm,
                                backend::detail::cuda_rope,
                                backend::detail::cuda_softmax,
                                backend::detail::cuda_dropout,
                                backend::detail::cuda_gru,
                                backend::detail::cuda_embedding,
                                backend::detail::cuda_cross_entropy,
                                backend::detail::cuda_optimizer,
                                backend::detail::cuda_topk {};

}  // namespace slim
