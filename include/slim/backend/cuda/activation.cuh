// slim — CUDA kernels: activation (forward beside backward). See docs/kernels.md.
//
// Elementwise over (N,D) device views whose rows may be padded (row stride >= D) but whose innermost stride
// is 1. When every view is contiguous the op runs over one flat row of N·D elements. Element types: float
// and double, with the same formulas as the scalar oracle.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/activation.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include <cuda_runtime.h>

#include <algorithm>
#include <concepts>
#include <type_traits>

#include "slim/backend/cuda/runtime.cuh"
#include "slim/backend/scalar/activation.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::cuda_detail {

/// Rows of a device matrix: element (i, j) at p[i·ld + j].
template <class T>
struct device_rows {
  T* p;
  index_t ld;
  __device__ T& operator()(index_t i, index_t j) const { return p[i * ld + j]; }
};

/// The (n, d) iteration space of an elementwise launch: (1, N·D) when every view is contiguous.
struct rows_shape {
  index_t n, d;
};

template <class T>
__device__ inline T sigmoid(T x) {
  if constexpr (std::is_same_v<T, float>)
    return 1.0f / (1.0f + expf(-x));
  else
    return T(1) / (T(1) + ::exp(-x));
}

constexpr int activation_threads = 256;

inline dim3 rows_grid(rows_shape s) {
  const index_t bx = std::clamp<index_t>((s.d + activation_threads - 1) / activation_threads, 1, 4096);
  const index_t by = std::clamp<index_t>(s.n, 1, 65535);
  return dim3(static_cast<unsigned>(bx), static_cast<unsigned>(by));
}

/// Applies `op` to the elements (i, j) of every view: rows by a grid-stride loop in y, columns in x.
template <class Op, class... Rows>
__global__ void rows_kernel(rows_shape s, Op op, Rows... rows) {
  for (index_t i = blockIdx.y; i < s.n; i += gridDim.y)
    for (index_t j = blockIdx.x * index_t{blockDim.x} + threadIdx.x; j < s.d; j += index_t{gridDim.x} * blockDim.x)
      op(rows(i, j)...);
}

/// Launches rows_kernel<Op> over the iteration space `s` on the backend's stream and checks the launch.
template <class Op, class... Rows>
void launch_rows(const backend::cuda& be, rows_shape s, Rows... rows) {
  rows_kernel<Op, Rows...><<<rows_grid(s), activation_threads, 0, stream_of(be)>>>(s, Op{}, rows...);
  check_launch(Op::name, __FILE__, __LINE__);
}

// The per-element formulas (inputs first, outputs last), shared by forward and backward launches.
struct silu_forward_op {
  static constexpr const char* name = "rows_kernel<silu_forward_op>";
  template <class T>
  __device__ void operator()(T x, T& y) const {
    y = x * sigmoid(x);
  }
};
struct silu_backward_op {
  static constexpr const char* name = "rows_kernel<silu_backward_op>";
  template <class T>
  __device__ void operator()(T x, T dy, T& dx) const {
    const T sg = sigmoid(x);
    dx += dy * (sg * (T(1) + x * (T(1) - sg)));
  }
};
struct swiglu_forward_op {
  static constexpr const char* name = "rows_kernel<swiglu_forward_op>";
  template <class T>
  __device__ void operator()(T gate, T up, T& y) const {
    y = gate * sigmoid(gate) * up;
  }
};
struct swiglu_backward_op {
  static constexpr const char* name = "rows_kernel<swiglu_backward_op>";
  template <class T>
  __device__ void operator()(T gate, T up, T dy, T& dgate, T& dup) const {
    const T sg = sigmoid(gate);
    dgate += dy * up * (sg * (T(1) + gate * (T(1) - sg)));
    dup += dy * (gate * sg);
  }
};

/// GELU in the CPU backends' cancellation-free forms: tanh: x/(1+e^(−2u)), u = √(2/π)(x+0.044715x³);
/// erf: ½x·erfc(−x/√2). Gradients as activation_math::gelu_grad.
template <class T>
struct gelu_constants {
  static constexpr T sqrt_2_over_pi = T(0.79788456080286535587989211986876);
  static constexpr T inv_sqrt2 = T(0.70710678118654752440084436210485);
  static constexpr T inv_sqrt_2pi = T(0.39894228040143267793994605993438);
  static constexpr T c = T(0.044715);
};
template <class T>
__device__ inline T gelu_tanh_value(T x) {
  using k = gelu_constants<T>;
  return x / (T(1) + exp(T(-2) * (k::sqrt_2_over_pi * (x + k::c * x * x * x))));
}
template <class T>
__device__ inline T gelu_tanh_grad(T x) {
  using k = gelu_constants<T>;
  const T e = exp(T(-2) * (k::sqrt_2_over_pi * (x + k::c * x * x * x)));
  const T s2 = T(1) / (T(1) + e);
  const T one_minus = isinf(e) ? T(1) : e * s2;
  return s2 + T(2) * x * s2 * one_minus * k::sqrt_2_over_pi * (T(1) + T(3) * k::c * x * x);
}
template <class T>
__device__ inline T gelu_erf_value(T x) {
  return T(0.5) * x * erfc(-x * gelu_constants<T>::inv_sqrt2);
}
template <class T>
__device__ inline T gelu_erf_grad(T x) {
  using k = gelu_constants<T>;
  return T(0.5) * erfc(-x * k::inv_sqrt2) + x * k::inv_sqrt_2pi * exp(T(-0.5) * x * x);
}
struct gelu_tanh_forward_op {
  static constexpr const char* name = "rows_kernel<gelu_tanh_forward_op>";
  template <class T>
  __device__ void operator()(T x, T& y) const {
    y = gelu_tanh_value(x);
  }
};
struct gelu_tanh_backward_op {
  static constexpr const char* name = "rows_kernel<gelu_tanh_backward_op>";
  template <class T>
  __device__ void operator()(T x, T dy, T& dx) const {
    dx += dy * gelu_tanh_grad(x);
  }
};
struct gelu_erf_forward_op {
  static constexpr const char* name = "rows_kernel<gelu_erf_forward_op>";
  template <class T>
  __device__ void operator()(T x, T& y) const {
    y = gelu_erf_value(x);
  }
};
struct gelu_erf_backward_op {
  static constexpr const char* name = "rows_kernel<gelu_erf_backward_op>";
  template <class T>
  __device__ void operator()(T x, T dy, T& dx) const {
    dx += dy * gelu_erf_grad(x);
  }
};

/// Checks that `v` is a (n, d) view with unit inner stride and non-negative row stride >= d.
template <class T>
void require_rows(const matrix_view<T, device_space>& v, index_t n, index_t d, const char* where, const char* name) {
  require_shape(v, {n, d}, where, name);
  if (!v.has_unit_inner_stride())
    throw error(where, name, "innermost stride " + std::to_string(v.stride(1)) + " (1 is required)");
  if (n > 1 && v.stride(0) < d)
    throw error(where, name, "row stride " + std::to_string(v.stride(0)) + " < row length " + std::to_string(d));
}

template <class T>
device_rows<T> rows_of(const matrix_view<T, device_space>& v) {
  return {v.data_handle(), v.stride(0)};
}

/// The iteration space for views of extents (n, d): flat when all of them are contiguous.
template <class... V>
rows_shape iteration_space(index_t n, index_t d, const V&... views) {
  if ((views.is_contiguous() && ...)) return {1, n * d};
  return {n, d};
}

}  // namespace slim::backend::cuda_detail

namespace slim::backend::detail {

struct cuda_activation {
  template <class T>
  using dmatrix = matrix_view<T, device_space>;

  /// y = x·σ(x)   x, y (N,D)
  template <std::floating_point T>
  static void silu_forward(const backend::cuda& be, dmatrix<in_t<T>> x, dmatrix<T> y) {
    constexpr const char* where = "slim::kernels<cuda>::silu_forward";
    require_valid(x, where, "x");
    const index_t n = x.extent(0), d = x.extent(1);
    cuda_detail::require_rows(x, n, d, where, "x");
    cuda_detail::require_rows(y, n, d, where, "y");
    if (n * d == 0) return;
    const auto s = cuda_detail::iteration_space(n, d, x, y);
    cuda_detail::launch_rows<cuda_detail::silu_forward_op>(be, s, cuda_detail::rows_of(x), cuda_detail::rows_of(y));
  }
  /// dx += dy·σ(x)·(1 + x·(1−σ(x)))   x, dy, dx (N,D)
  template <std::floating_point T>
  static void silu_backward(const backend::cuda& be, dmatrix<in_t<T>> x, dmatrix<in_t<T>> dy, dmatrix<T> dx) {
    constexpr const char* where = "slim::kernels<cuda>::silu_backward";
    require_valid(x, where, "x");
    const index_t n = x.extent(0), d = x.extent(1);
    cuda_detail::require_rows(x, n, d, where, "x");
    cuda_detail::require_rows(dy, n, d, where, "dy");
    cuda_detail::require_rows(dx, n, d, where, "dx");
    if (n * d == 0) return;
    const auto s = cuda_detail::iteration_space(n, d, x, dy, dx);
    cuda_detail::launch_rows<cuda_detail::silu_backward_op>(be, s, cuda_detail::rows_of(x), cuda_detail::rows_of(dy),
                                                            cuda_detail::rows_of(dx));
  }

  /// tanh: y = ½x(1+tanh(√(2/π)(x+0.044715x³))); erf: y = ½x(1+erf(x/√2)).   x, y (N,D)
  template <std::floating_point T>
  static void gelu_forward(const backend::cuda& be, dmatrix<in_t<T>> x, gelu_approximation approx, dmatrix<T> y) {
    constexpr const char* where = "slim::kernels<cuda>::gelu_forward";
    require_valid(x, where, "x");
    check_gelu_approximation(where, approx);
    const index_t n = x.extent(0), d = x.extent(1);
    cuda_detail::require_rows(x, n, d, where, "x");
    cuda_detail::require_rows(y, n, d, where, "y");
    if (n * d == 0) return;
    const auto s = cuda_detail::iteration_space(n, d, x, y);
    if (approx == gelu_approximation::tanh)
      cuda_detail::launch_rows<cuda_detail::gelu_tanh_forward_op>(be, s, cuda_detail::rows_of(x),
                                                                  cuda_detail::rows_of(y));
    else
      cuda_detail::launch_rows<cuda_detail::gelu_erf_forward_op>(be, s, cuda_detail::rows_of(x),
                                                                 cuda_detail::rows_of(y));
  }
  /// dx += dy·gelu′(x)   x, dy, dx (N,D)
  template <std::floating_point T>
  static void gelu_backward(const backend::cuda& be, dmatrix<in_t<T>> x, dmatrix<in_t<T>> dy,
                            gelu_approximation approx, dmatrix<T> dx) {
    constexpr const char* where = "slim::kernels<cuda>::gelu_backward";
    require_valid(x, where, "x");
    check_gelu_approximation(where, approx);
    const index_t n = x.extent(0), d = x.extent(1);
    cuda_detail::require_rows(x, n, d, where, "x");
    cuda_detail::require_rows(dy, n, d, where, "dy");
    cuda_detail::require_rows(dx, n, d, where, "dx");
    if (n * d == 0) return;
    const auto s = cuda_detail::iteration_space(n, d, x, dy, dx);
    if (approx == gelu_approximation::tanh)
      cuda_detail::launch_rows<cuda_detail::gelu_tanh_backward_op>(be, s, cuda_detail::rows_of(x),
                                                                   cuda_detail::rows_of(dy), cuda_detail::rows_of(dx));
    else
      cuda_detail::launch_rows<cuda_detail::gelu_erf_backward_op>(be, s, cuda_detail::rows_of(x),
                                                                  cuda_detail::rows_of(dy), cuda_detail::rows_of(dx));
  }

  /// y = silu(gate)⊙up   gate, up, y (N,D)
  template <std::floating_point T>
  static void swiglu_forward(const backend::cuda& be, dmatrix<in_t<T>> gate, dmatrix<in_t<T>> up, dmatrix<T> y) {
    constexpr const char* where = "slim::kernels<cuda>::swiglu_forward";
    require_valid(gate, where, "gate");
    const index_t n = gate.extent(0), d = gate.extent(1);
    cuda_detail::require_rows(gate, n, d, where, "gate");
    cuda_detail::require_rows(up, n, d, where, "up");
    cuda_detail::require_rows(y, n, d, where, "y");
    if (n * d == 0) return;
    const auto s = cuda_detail::iteration_space(n, d, gate, up, y);
    cuda_detail::launch_rows<cuda_detail::swiglu_forward_op>(be, s, cuda_detail::rows_of(gate),
                                                             cuda_detail::rows_of(up), cuda_detail::rows_of(y));
  }
  /// dgate += dy⊙up⊙σ(g)·(1 + g·(1−σ(g))), dup += dy⊙silu(gate)   all (N,D)
  template <std::floating_point T>
  static void swiglu_backward(const backend::cuda& be, dmatrix<in_t<T>> gate, dmatrix<in_t<T>> up, dmatrix<in_t<T>> dy,
                              dmatrix<T> dgate, dmatrix<T> dup) {
    constexpr const char* where = "slim::kernels<cuda>::swiglu_backward";
    require_valid(gate, where, "gate");
    const index_t n = gate.extent(0), d = gate.extent(1);
    cuda_detail::require_rows(gate, n, d, where, "gate");
    cuda_detail::require_rows(up, n, d, where, "up");
    cuda_detail::require_rows(dy, n, d, where, "dy");
    cuda_detail::require_rows(dgate, n, d, where, "dgate");
    cuda_detail::require_rows(dup, n, d, where, "dup");
    if (n * d == 0) return;
    const auto s = cuda_detail::iteration_space(n, d, gate, up, dy, dgate, dup);
    cuda_detail::launch_rows<cuda_detail::swiglu_backward_op>(be, s, cuda_detail::rows_of(gate),
                                                              cuda_detail::rows_of(up), cuda_detail::rows_of(dy),
                                                              cuda_detail::rows_of(dgate), cuda_detail::rows_of(dup));
  }
};

}  // namespace slim::backend::detail
