// slim — xsimd kernels: SiLU, GELU (tanh and erf forms) and SwiGLU (forward beside backward), float only;
// other element types fall back to Base (scalar). The formulas are those of activation_math (scalar header)
// with xsimd's exp / erfc. The (N,D) views are cut into tiles that depend on the shape only (simd/tiles.hpp),
// so results do not depend on the thread count.
// Forward outputs of 32 MiB or more are written with streaming stores (no read of the destination before
// it is overwritten); values are the same either way.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>
#include <xsimd/xsimd.hpp>

#include "slim/backend/simd/row_io.hpp"
#include "slim/backend/simd/tiles.hpp"

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "slim/backend/scalar/activation.hpp"

// g++ 12.2 reports `__Y` "is used uninitialized" inside the AVX-512 intrinsics that xsimd::exp inlines here
// (the self-initialised _mm512_undefined_* placeholders): a known g++ 12 false positive that this code cannot
// avoid, so -Wuninitialized is silenced for this header only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace slim::backend::detail {

template <class Arch, class Base>
struct simd_activation : Base {
  using Base::gelu_backward;
  using Base::gelu_forward;
  using Base::silu_backward;
  using Base::silu_forward;
  using Base::swiglu_backward;
  using Base::swiglu_forward;

  /// y = x·σ(x).                                                                   x,y (N,D); y may be x
  static void silu_forward(const simd<Arch>& be, matrix_view<const float> x, matrix_view<float> y) {
    check_activation<1>("silu_forward", {"x", "y"}, x, y);
    const bool stream = io::streams(y);
    tiles::for_each_segment(be, x.extent(0), x.extent(1), stream, [&](index_t r, index_t j0, index_t j1) {
      const float* xr = row(x, r) + j0;
      const index_t len = j1 - j0;
      io::store_blocks(row(y, r) + j0, len, stream, [&](index_t j, index_t m) {
        if (j + ahead < len) __builtin_prefetch(xr + j + ahead);
        return silu(io::load(xr + j, m));
      });
    });
  }
  /// dx += dy·σ(x)(1 + x(1−σ(x))).                                                      x,dy,dx (N,D)
  static void silu_backward(const simd<Arch>& be, matrix_view<const float> x, matrix_view<const float> dy,
                            matrix_view<float> dx) {
    check_activation<1>("silu_backward", {"x", "dy", "dx"}, x, dy, dx);
    tiles::for_each_segment(be, x.extent(0), x.extent(1), [&](index_t r, index_t j0, index_t j1) {
      const float* xr = row(x, r);
      const float* dyr = row(dy, r);
      float* dxr = row(dx, r);
      tiles::for_each_block(j0, j1, [&](index_t j, index_t m) {
        io::store(dxr + j, m, xsimd::fma(io::load(dyr + j, m), silu_grad(io::load(xr + j, m)), io::load(dxr + j, m)));
      });
    });
  }

  /// tanh: y = ½x(1+tanh(√(2/π)(x+0.044715x³))); erf: y = ½x(1+erf(x/√2)).           x,y (N,D); y may be x
  static void gelu_forward(const simd<Arch>& be, matrix_view<const float> x, gelu_approximation approx,
                           matrix_view<float> y) {
    check_activation<1>("gelu_forward", {"x", "y"}, x, y);
    check_gelu_approximation("gelu_forward", approx);
    const bool tanh_form = approx == gelu_approximation::tanh;
    const bool stream = io::streams(y);
    tiles::for_each_segment(be, x.extent(0), x.extent(1), stream, [&](index_t r, index_t j0, index_t j1) {
      const float* xr = row(x, r) + j0;
      float* yr = row(y, r) + j0;
      const index_t len = j1 - j0;
      if (tanh_form)
        io::store_blocks(yr, len, stream, [&](index_t j, index_t m) {
          if (j + ahead < len) __builtin_prefetch(xr + j + ahead);
          return gelu_tanh(io::load(xr + j, m));
        });
      else
        io::store_blocks(yr, len, stream, [&](index_t j, index_t m) {
          if (j + ahead < len) __builtin_prefetch(xr + j + ahead);
          return gelu_erf(io::load(xr + j, m));
        });
    });
  }
  /// dx += dy·gelu′(x) (see activation_math::gelu_grad).                                 x,dy,dx (N,D)
  static void gelu_backward(const simd<Arch>& be, matrix_view<const float> x, matrix_view<const float> dy,
                            gelu_approximation approx, matrix_view<float> dx) {
    check_activation<1>("gelu_backward", {"x", "dy", "dx"}, x, dy, dx);
    check_gelu_approximation("gelu_backward", approx);
    const bool tanh_form = approx == gelu_approximation::tanh;
    tiles::for_each_segment(be, x.extent(0), x.extent(1), [&](index_t r, index_t j0, index_t j1) {
      const float* xr = row(x, r);
      const float* dyr = row(dy, r);
      float* dxr = row(dx, r);
      if (tanh_form)
        tiles::for_each_block(j0, j1, [&](index_t j, index_t m) {
          io::store(dxr + j, m, xsimd::fma(io::load(dyr + j, m), gelu_tanh_grad(io::load(xr + j, m)), io::load(dxr + j, m)));
        });
      else
        tiles::for_each_block(j0, j1, [&](index_t j, index_t m) {
          io::store(dxr + j, m, xsimd::fma(io::load(dyr + j, m), gelu_erf_grad(io::load(xr + j, m)), io::load(dxr + j, m)));
        });
    });
  }

  /// y = silu(gate)⊙up.                                                     gate,up,y (N,D); y may be gate or up
  static void swiglu_forward(const simd<Arch>& be, matrix_view<const float> gate, matrix_view<const float> up,
                             matrix_view<float> y) {
    check_activation<1>("swiglu_forward", {"gate", "up", "y"}, gate, up, y);
    const bool stream = io::streams(y);
    tiles::for_each_segment(be, gate.extent(0), gate.extent(1), stream, [&](index_t r, index_t j0, index_t j1) {
      const float* gr = row(gate, r) + j0;
      const float* ur = row(up, r) + j0;
      const index_t len = j1 - j0;
      io::store_blocks(row(y, r) + j0, len, stream, [&](index_t j, index_t m) {
        if (j + ahead < len) {
          __builtin_prefetch(gr + j + ahead);
          __builtin_prefetch(ur + j + ahead);
        }
        return silu(io::load(gr + j, m)) * io::load(ur + j, m);
      });
    });
  }
  /// dgate += dy⊙up⊙σ(g)(1 + g(1−σ(g))); dup += dy⊙silu(g).                     all (N,D)
  static void swiglu_backward(const simd<Arch>& be, matrix_view<const float> gate, matrix_view<const float> up,
                              matrix_view<const float> dy, matrix_view<float> dgate, matrix_view<float> dup) {
    check_activation<2>("swiglu_backward", {"gate", "up", "dy", "dgate", "dup"}, gate, up, dy, dgate, dup);
    tiles::for_each_segment(be, gate.extent(0), gate.extent(1), [&](index_t r, index_t j0, index_t j1) {
      const float* gr = row(gate, r);
      const float* ur = row(up, r);
      const float* dyr = row(dy, r);
      float* dgr = row(dgate, r);
      float* dur = row(dup, r);
      tiles::for_each_block(j0, j1, [&](index_t j, index_t m) {
        const batch g = io::load(gr + j, m), d = io::load(dyr + j, m);
        const batch s = sigmoid(g);
        const batch grad = s * (batch(1.0f) + g * (batch(1.0f) - s));
        io::store(dgr + j, m, xsimd::fma(d * io::load(ur + j, m), grad, io::load(dgr + j, m)));
        io::store(dur + j, m, xsimd::fma(d, g * s, io::load(dur + j, m)));
      });
    });
  }

 private:
  using batch = xsimd::batch<float, Arch>;
  using io = row_io<Arch>;
  using tiles = elementwise_tiles<Arch>;
  static constexpr index_t ahead = 512;  // elements read ahead by software prefetch
  using math = activation_math<float>;

  static batch sigmoid(const batch& x) noexcept { return batch(1.0f) / (batch(1.0f) + xsimd::exp(-x)); }
  static batch silu(const batch& x) noexcept { return x * sigmoid(x); }
  static batch silu_grad(const batch& x) noexcept {
    const batch s = sigmoid(x);
    return s * (batch(1.0f) + x * (batch(1.0f) - s));
  }
  static batch gelu_u(const batch& x) noexcept {
    return batch(math::sqrt_2_over_pi) * xsimd::fma(batch(math::gelu_c) * x * x, x, x);
  }
  static batch gelu_tanh(const batch& x) noexcept { return x / (batch(1.0f) + xsimd::exp(batch(-2.0f) * gelu_u(x))); }
  static batch gelu_tanh_grad(const batch& x) noexcept {
    const batch e = xsimd::exp(batch(-2.0f) * gelu_u(x));
    const batch s2 = batch(1.0f) / (batch(1.0f) + e);
    const batch one_minus = xsimd::select(e == batch(std::numeric_limits<float>::infinity()), batch(1.0f), e * s2);
    const batch poly = xsimd::fma(batch(3.0f * math::gelu_c) * x, x, batch(1.0f));
    return xsimd::fma(batch(2.0f * math::sqrt_2_over_pi) * x * s2 * one_minus, poly, s2);
  }
  static batch gelu_erf(const batch& x) noexcept { return batch(0.5f) * x * xsimd::erfc(x * batch(-math::inv_sqrt2)); }
  static batch gelu_erf_grad(const batch& x) noexcept {
    const batch pdf = batch(math::inv_sqrt_2pi) * xsimd::exp(batch(-0.5f) * x * x);
    return xsimd::fma(x, pdf, batch(0.5f) * xsimd::erfc(x * batch(-math::inv_sqrt2)));
  }

  template <class V>
  static auto row(const V& v, index_t r) noexcept {
    return v.data_handle() + r * v.stride(0);
  }
};

}  // namespace slim::backend::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
