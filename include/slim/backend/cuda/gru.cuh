// slim — CUDA kernels: the GRU cell's elementwise part (forward beside backward), PyTorch's gate order
// (r, z, n). gx = x·W_ihᵀ + b_ih and gh = h·W_hhᵀ + b_hh come from GEMMs. See docs/kernels.md.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/gru.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include <concepts>

#include "slim/backend/cuda/common.cuh"
#include "slim/backend/scalar/gru.hpp"

namespace slim::backend::cuda_detail {

template <class T>
__device__ inline T gru_sigmoid(T x) {
  return T(1) / (T(1) + exp(-x));
}

template <class T>
__global__ void gru_forward_kernel(index_t rows, index_t hidden, dmat<const T> gx, dmat<const T> gh,
                                   dmat<const T> h, dmat<T> h_out) {
  for (index_t t = blockIdx.x * index_t{blockDim.x} + threadIdx.x; t < rows * hidden;
       t += index_t{gridDim.x} * blockDim.x) {
    const index_t i = t / hidden, c = t % hidden;
    const T r = gru_sigmoid(gx(i, c) + gh(i, c));
    const T z = gru_sigmoid(gx(i, hidden + c) + gh(i, hidden + c));
    const T nn = tanh(gx(i, 2 * hidden + c) + r * gh(i, 2 * hidden + c));
    h_out(i, c) = (T(1) - z) * nn + z * h(i, c);
  }
}

template <class T>
__global__ void gru_backward_kernel(index_t rows, index_t hidden, dmat<const T> gx, dmat<const T> gh,
                                    dmat<const T> h, dmat<const T> dh_out, dmat<T> dgx, dmat<T> dgh,
                                    dmat<T> dh) {
  for (index_t t = blockIdx.x * index_t{blockDim.x} + threadIdx.x; t < rows * hidden;
       t += index_t{gridDim.x} * blockDim.x) {
    const index_t i = t / hidden, c = t % hidden;
    const T r = gru_sigmoid(gx(i, c) + gh(i, c));
    const T z = gru_sigmoid(gx(i, hidden + c) + gh(i, hidden + c));
    const T ghn = gh(i, 2 * hidden + c);
    const T nn = tanh(gx(i, 2 * hidden + c) + r * ghn);
    const T g = dh_out(i, c);
    const T dn = g * (T(1) - z) * (T(1) - nn * nn);
    const T dr = dn * ghn * r * (T(1) - r);
    const T dz = g * (h(i, c) - nn) * z * (T(1) - z);
    if (dgx.p != nullptr) {
      dgx(i, c) += dr;
      dgx(i, hidden + c) += dz;
      dgx(i, 2 * hidden + c) += dn;
    }
    if (dgh.p != nullptr) {
      dgh(i, c) += dr;
      dgh(i, hidden + c) += dz;
      dgh(i, 2 * hidden + c) += dn * r;
    }
    if (dh.p != nullptr) dh(i, c) += g * z;
  }
}

}  // namespace slim::backend::cuda_detail

namespace slim::backend::detail {

struct cuda_gru {
  template <class T>
  using dmatrix = matrix_view<T, device_space>;

  /// r = σ(gx_r+gh_r), z = σ(gx_z+gh_z), n = tanh(gx_n + r⊙gh_n), h' = (1−z)⊙n + z⊙h.   gx,gh (N,3H); h,h_out (N,H)
  template <std::floating_point T>
  static void gru_cell_forward(const backend::cuda& be, dmatrix<in_t<T>> gx, dmatrix<in_t<T>> gh, dmatrix<in_t<T>> h,
                               dmatrix<T> h_out) {
    using namespace cuda_detail;
    constexpr const char* where = "slim::kernels<cuda>::gru_cell_forward";
    const index_t hidden = check_gru<T>(where, host_shape(gx), host_shape(gh), host_shape(h));
    check_gru_output(host_shape(h_out), h.extent(0), hidden, where, "h_out");
    const index_t rows = h.extent(0);
    if (rows * hidden == 0) return;
    constexpr int threads = 256;
    gru_forward_kernel<T><<<flat_blocks(rows * hidden, threads), threads, 0, stream_of(be)>>>(
        rows, hidden, mat_of(gx), mat_of(gh), mat_of(h), mat_of(h_out));
    check_launch("gru_forward_kernel", __FILE__, __LINE__);
  }

  /// Gradients of the above (gates recomputed); an empty dgx, dgh or dh is skipped.   dh_out (N,H)
  template <std::floating_point T>
  static void gru_cell_backward(const backend::cuda& be, dmatrix<in_t<T>> gx, dmatrix<in_t<T>> gh, dmatrix<in_t<T>> h,
                                dmatrix<in_t<T>> dh_out, dmatrix<T> dgx, dmatrix<T> dgh, dmatrix<T> dh) {
    using namespace cuda_detail;
    constexpr const char* where = "slim::kernels<cuda>::gru_cell_backward";
    const index_t hidden = check_gru<T>(where, host_shape(gx), host_shape(gh), host_shape(h));
    const index_t rows = h.extent(0);
    check_gru_output(host_shape(dh_out), rows, hidden, where, "dh_out");
    if (!dgx.empty()) check_gru_output(host_shape(dgx), rows, 3 * hidden, where, "dgx");
    if (!dgh.empty()) check_gru_output(host_shape(dgh), rows, 3 * hidden, where, "dgh");
    if (!dh.empty()) check_gru_output(host_shape(dh), rows, hidden, where, "dh");
    if (rows * hidden == 0) return;
    constexpr int threads = 256;
    gru_backward_kernel<T><<<flat_blocks(rows * hidden, threads), threads, 0, stream_of(be)>>>(
        rows, hidden, mat_of(gx), mat_of(gh), mat_of(h), mat_of(dh_out), mat_of(dgx),
        mat_of(dgh), mat_of(dh));
    check_launch("gru_backward_kernel", __FILE__, __LINE__);
  }
};

}  // namespace slim::backend::detail
