// slim — scalar reference kernels: SiLU, GELU (tanh and erf forms) and SwiGLU (forward beside backward).
// See docs/kernels.md. Elementwise over (N,D) views; σ(x) = 1/(1+e^(−x)).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cmath>
#include <cstddef>

#include "slim/backend/common.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/error.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::detail {

/// Shared by the CPU backends: every view has the shape of the first and a unit innermost stride; the
/// last `outputs` views are outputs, whose rows must not overlap (the simd backend writes them in parallel).
template <std::size_t outputs, class T0, class... T>
void check_activation(const char* where, std::array<const char*, 1 + sizeof...(T)> names, const matrix_view<T0>& first,
                      const matrix_view<T>&... rest) {
  const std::array<index_t, 2> shape{first.extent(0), first.extent(1)};
  std::size_t k = 0;
  auto one = [&](const auto& v) {
    const char* name = names[k++];
    require_shape(v, shape, where, name);
    if (!v.has_unit_inner_stride()) throw error(where, name, "the innermost stride must be 1");
    const index_t s0 = v.stride(0) < 0 ? -v.stride(0) : v.stride(0);
    if (k > names.size() - outputs && v.extent(0) > 1 && v.extent(1) > 0 && s0 < v.extent(1))
      throw error(where, name, "an output's rows overlap");
  };
  one(first);
  (one(rest), ...);
}

/// The formulas once, in T, for the scalar kernels (and the simd backends' non-float fallbacks). GELU is
/// evaluated in forms without cancellation for negative x: ½(1+tanh u) = 1/(1+e^(−2u)) and
/// ½(1+erf z) = ½·erfc(−z) (the same functions; 1 + tanh/erf would lose all digits as y → 0⁻).
template <class T>
struct activation_math {
  static T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }
  static T silu(T x) { return x * sigmoid(x); }
  /// d silu / dx = σ(x)(1 + x(1 − σ(x)))
  static T silu_grad(T x) {
    const T s = sigmoid(x);
    return s * (T(1) + x * (T(1) - s));
  }
  static constexpr T sqrt_2_over_pi = T(0.79788456080286535587989211986876);  // √(2/π)
  static constexpr T inv_sqrt2 = T(0.70710678118654752440084436210485);       // 1/√2
  static constexpr T inv_sqrt_2pi = T(0.39894228040143267793994605993438);    // 1/√(2π)
  static constexpr T gelu_c = T(0.044715);
  /// u = √(2/π)(x + c·x³) of the tanh form
  static T gelu_u(T x) { return sqrt_2_over_pi * (x + gelu_c * x * x * x); }
  /// tanh: ½x(1+tanh u) = x/(1+e^(−2u)); erf: ½x(1+erf(x/√2)) = ½x·erfc(−x/√2)
  static T gelu(T x, gelu_approximation a) {
    if (a == gelu_approximation::tanh) return x / (T(1) + std::exp(T(-2) * gelu_u(x)));
    return T(0.5) * x * std::erfc(-x * inv_sqrt2);
  }
  /// tanh: σ₂ + 2x·σ₂(1−σ₂)·√(2/π)(1+3c·x²) with σ₂ = ½(1+tanh u) = 1/(1+e), 1−σ₂ = e·σ₂ (1 when e = ∞),
  /// e = e^(−2u);  erf: ½erfc(−x/√2) + x·φ(x), φ(x) = e^(−x²/2)/√(2π)
  static T gelu_grad(T x, gelu_approximation a) {
    if (a == gelu_approximation::tanh) {
      const T e = std::exp(T(-2) * gelu_u(x));
      const T s2 = T(1) / (T(1) + e);
      const T one_minus = std::isinf(e) ? T(1) : e * s2;
      return s2 + T(2) * x * s2 * one_minus * sqrt_2_over_pi * (T(1) + T(3) * gelu_c * x * x);
    }
    return T(0.5) * std::erfc(-x * inv_sqrt2) + x * inv_sqrt_2pi * std::exp(T(-0.5) * x * x);
  }
};

inline void check_gelu_approximation(const char* where, gelu_approximation a) {
  if (a != gelu_approximation::tanh && a != gelu_approximation::erf)
    throw error(where, "approx", "not a gelu_approximation value");
}

struct scalar_activation {
  /// y = x·σ(x).                                                                   x,y (N,D); y may be x
  template <class T>
  static void silu_forward(const scalar&, matrix_view<in_t<T>> x, matrix_view<T> y) {
    check_activation<1>("silu_forward", {"x", "y"}, x, y);
    for (index_t r = 0; r < x.extent(0); ++r)
      for (index_t j = 0; j < x.extent(1); ++j) y(r, j) = activation_math<T>::silu(x(r, j));
  }
  /// dx += dy·σ(x)(1 + x(1−σ(x))).                                                      x,dy,dx (N,D)
  template <class T>
  static void silu_backward(const scalar&, matrix_view<in_t<T>> x, matrix_view<in_t<T>> dy, matrix_view<T> dx) {
    check_activation<1>("silu_backward", {"x", "dy", "dx"}, x, dy, dx);
    for (index_t r = 0; r < x.extent(0); ++r)
      for (index_t j = 0; j < x.extent(1); ++j) dx(r, j) += dy(r, j) * activation_math<T>::silu_grad(x(r, j));
  }

  /// tanh: y = ½x(1+tanh(√(2/π)(x+0.044715x³))); erf: y = ½x(1+erf(x/√2)).           x,y (N,D); y may be x
  template <class T>
  static void gelu_forward(const scalar&, matrix_view<in_t<T>> x, gelu_approximation approx, matrix_view<T> y) {
    check_activation<1>("gelu_forward", {"x", "y"}, x, y);
    check_gelu_approximation("gelu_forward", approx);
    for (index_t r = 0; r < x.extent(0); ++r)
      for (index_t j = 0; j < x.extent(1); ++j) y(r, j) = activation_math<T>::gelu(x(r, j), approx);
  }
  /// dx += dy·gelu′(x) (see activation_math::gelu_grad).                                 x,dy,dx (N,D)
  template <class T>
  static void gelu_backward(const scalar&, matrix_view<in_t<T>> x, matrix_view<in_t<T>> dy, gelu_approximation approx,
                            matrix_view<T> dx) {
    check_activation<1>("gelu_backward", {"x", "dy", "dx"}, x, dy, dx);
    check_gelu_approximation("gelu_backward", approx);
    for (index_t r = 0; r < x.extent(0); ++r)
      for (index_t j = 0; j < x.extent(1); ++j) dx(r, j) += dy(r, j) * activation_math<T>::gelu_grad(x(r, j), approx);
  }

  /// y = silu(gate)⊙up.                                                     gate,up,y (N,D); y may be gate or up
  template <class T>
  static void swiglu_forward(const scalar&, matrix_view<in_t<T>> gate, matrix_view<in_t<T>> up, matrix_view<T> y) {
    check_activation<1>("swiglu_forward", {"gate", "up", "y"}, gate, up, y);
    for (index_t r = 0; r < gate.extent(0); ++r)
      for (index_t j = 0; j < gate.extent(1); ++j) y(r, j) = activation_math<T>::silu(gate(r, j)) * up(r, j);
  }
  /// dgate += dy⊙up⊙σ(g)(1 + g(1−σ(g))); dup += dy⊙silu(g).                     all (N,D)
  template <class T>
  static void swiglu_backward(const scalar&, matrix_view<in_t<T>> gate, matrix_view<in_t<T>> up,
                              matrix_view<in_t<T>> dy, matrix_view<T> dgate, matrix_view<T> dup) {
    check_activation<2>("swiglu_backward", {"gate", "up", "dy", "dgate", "dup"}, gate, up, dy, dgate, dup);
    for (index_t r = 0; r < gate.extent(0); ++r)
      for (index_t j = 0; j < gate.extent(1); ++j) {
        const T g = gate(r, j), u = up(r, j), d = dy(r, j);
        dgate(r, j) += d * u * activation_math<T>::silu_grad(g);
        dup(r, j) += d * activation_math<T>::silu(g);
      }
  }
};

}  // namespace slim::backend::detail
