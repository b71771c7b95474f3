// slim — xsimd kernels: SiLU, GELU (tanh and erf forms) and SwiGLU (forward beside backward), float only;
// other element types fall back to Base (scalar). The formulas are those of activation_math (scalar header)
// with xsimd's exp / erfc. The (N,D) views are cut into tiles of about 32K elements that depend on the shape
// only and spread over be.pool; every element is computed by one task, so results do not depend on the
// thread count.
// Forward outputs of 32 MiB or more are written with streaming stores (no read of the destination before
// it is overwritten); values are the same either way.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <xsimd/xsimd.hpp>

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "slim/backend/scalar/activation.hpp"
#include "slim/core/thread_pool.hpp"

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
    const bool stream = streams(y);
    for_each_segment(be, x.extent(0), x.extent(1), stream, [&](index_t r, index_t j0, index_t j1) {
      const float* xr = row(x, r) + j0;
      const index_t len = j1 - j0;
      store_blocks(row(y, r) + j0, len, stream, [&](index_t j, index_t m) {
        if (j + ahead < len) __builtin_prefetch(xr + j + ahead);
        return silu(load(xr + j, m));
      });
    });
  }
  /// dx += dy·σ(x)(1 + x(1−σ(x))).                                                      x,dy,dx (N,D)
  static void silu_backward(const simd<Arch>& be, matrix_view<const float> x, matrix_view<const float> dy,
                            matrix_view<float> dx) {
    check_activation<1>("silu_backward", {"x", "dy", "dx"}, x, dy, dx);
    for_each_segment(be, x.extent(0), x.extent(1), [&](index_t r, index_t j0, index_t j1) {
      const float* xr = row(x, r);
      const float* dyr = row(dy, r);
      float* dxr = row(dx, r);
      for_each_block(j0, j1, [&](index_t j, index_t m) {
        store(dxr + j, m, xsimd::fma(load(dyr + j, m), silu_grad(load(xr + j, m)), load(dxr + j, m)));
      });
    });
  }

  /// tanh: y = ½x(1+tanh(√(2/π)(x+0.044715x³))); erf: y = ½x(1+erf(x/√2)).           x,y (N,D); y may be x
  static void gelu_forward(const simd<Arch>& be, matrix_view<const float> x, gelu_approximation approx,
                           matrix_view<float> y) {
    check_activation<1>("gelu_forward", {"x", "y"}, x, y);
    check_gelu_approximation("gelu_forward", approx);
    const bool tanh_form = approx == gelu_approximation::tanh;
    const bool stream = streams(y);
    for_each_segment(be, x.extent(0), x.extent(1), stream, [&](index_t r, index_t j0, index_t j1) {
      const float* xr = row(x, r) + j0;
      float* yr = row(y, r) + j0;
      const index_t len = j1 - j0;
      if (tanh_form)
        store_blocks(yr, len, stream, [&](index_t j, index_t m) {
          if (j + ahead < len) __builtin_prefetch(xr + j + ahead);
          return gelu_tanh(load(xr + j, m));
        });
      else
        store_blocks(yr, len, stream, [&](index_t j, index_t m) {
          if (j + ahead < len) __builtin_prefetch(xr + j + ahead);
          return gelu_erf(load(xr + j, m));
        });
    });
  }
  /// dx += dy·gelu′(x) (see activation_math::gelu_grad).                                 x,dy,dx (N,D)
  static void gelu_backward(const simd<Arch>& be, matrix_view<const float> x, matrix_view<const float> dy,
                            gelu_approximation approx, matrix_view<float> dx) {
    check_activation<1>("gelu_backward", {"x", "dy", "dx"}, x, dy, dx);
    check_gelu_approximation("gelu_backward", approx);
    const bool tanh_form = approx == gelu_approximation::tanh;
    for_each_segment(be, x.extent(0), x.extent(1), [&](index_t r, index_t j0, index_t j1) {
      const float* xr = row(x, r);
      const float* dyr = row(dy, r);
      float* dxr = row(dx, r);
      if (tanh_form)
        for_each_block(j0, j1, [&](index_t j, index_t m) {
          store(dxr + j, m, xsimd::fma(load(dyr + j, m), gelu_tanh_grad(load(xr + j, m)), load(dxr + j, m)));
        });
      else
        for_each_block(j0, j1, [&](index_t j, index_t m) {
          store(dxr + j, m, xsimd::fma(load(dyr + j, m), gelu_erf_grad(load(xr + j, m)), load(dxr + j, m)));
        });
    });
  }

  /// y = silu(gate)⊙up.                                                     gate,up,y (N,D); y may be gate or up
  static void swiglu_forward(const simd<Arch>& be, matrix_view<const float> gate, matrix_view<const float> up,
                             matrix_view<float> y) {
    check_activation<1>("swiglu_forward", {"gate", "up", "y"}, gate, up, y);
    const bool stream = streams(y);
    for_each_segment(be, gate.extent(0), gate.extent(1), stream, [&](index_t r, index_t j0, index_t j1) {
      const float* gr = row(gate, r) + j0;
      const float* ur = row(up, r) + j0;
      const index_t len = j1 - j0;
      store_blocks(row(y, r) + j0, len, stream, [&](index_t j, index_t m) {
        if (j + ahead < len) {
          __builtin_prefetch(gr + j + ahead);
          __builtin_prefetch(ur + j + ahead);
        }
        return silu(load(gr + j, m)) * load(ur + j, m);
      });
    });
  }
  /// dgate += dy⊙up⊙σ(g)(1 + g(1−σ(g))); dup += dy⊙silu(g).                     all (N,D)
  static void swiglu_backward(const simd<Arch>& be, matrix_view<const float> gate, matrix_view<const float> up,
                              matrix_view<const float> dy, matrix_view<float> dgate, matrix_view<float> dup) {
    check_activation<2>("swiglu_backward", {"gate", "up", "dy", "dgate", "dup"}, gate, up, dy, dgate, dup);
    for_each_segment(be, gate.extent(0), gate.extent(1), [&](index_t r, index_t j0, index_t j1) {
      const float* gr = row(gate, r);
      const float* ur = row(up, r);
      const float* dyr = row(dy, r);
      float* dgr = row(dgate, r);
      float* dur = row(dup, r);
      for_each_block(j0, j1, [&](index_t j, index_t m) {
        const batch g = load(gr + j, m), d = load(dyr + j, m);
        const batch s = sigmoid(g);
        const batch grad = s * (batch(1.0f) + g * (batch(1.0f) - s));
        store(dgr + j, m, xsimd::fma(d * load(ur + j, m), grad, load(dgr + j, m)));
        store(dur + j, m, xsimd::fma(d, g * s, load(dur + j, m)));
      });
    });
  }

 private:
  using batch = xsimd::batch<float, Arch>;
  static constexpr index_t width = static_cast<index_t>(batch::size);
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
  static batch load(const float* p, index_t m) noexcept {
    if (m == width) return batch::load_unaligned(p);
    alignas(64) float buf[batch::size] = {};
    std::copy(p, p + m, buf);
    return batch::load_aligned(buf);
  }
  static void store(float* p, index_t m, const batch& v) noexcept {
    if (m == width) return v.store_unaligned(p);
    alignas(64) float buf[batch::size];
    v.store_aligned(buf);
    std::copy(buf, buf + m, p);
  }
  /// Outputs of at least this many bytes are written with streaming (non-temporal) stores: they would not
  /// stay in cache anyway, and streaming skips reading each destination line before it is overwritten.
  static constexpr index_t stream_bytes = index_t{32} << 20;
  template <class View>
  static bool streams(const View& out) noexcept {
    return out.size() * static_cast<index_t>(sizeof(float)) >= stream_bytes;
  }
  /// out[j, j+m) = f(j, m) over [0, d) in blocks; with `stream`, full blocks at register-aligned addresses use
  /// streaming stores. Block boundaries do not change any value (f is elementwise).
  template <class F>
  static void store_blocks(float* out, index_t d, bool stream, F&& f) {
    index_t j = 0;
    if (stream) {
      constexpr auto bytes = static_cast<std::uintptr_t>(sizeof(float) * batch::size);
      const auto misalign = reinterpret_cast<std::uintptr_t>(out) % bytes;
      const index_t head = std::min(d, misalign ? static_cast<index_t>((bytes - misalign) / sizeof(float)) : 0);
      if (head > 0) store(out, head, f(0, head));
      for (j = head; j + width <= d; j += width) stream_store(out + j, f(j, width));
    }
    for (; j + width <= d; j += width) store(out + j, width, f(j, width));
    if (j < d) store(out + j, d - j, f(j, d - j));
  }
  static void stream_store(float* p, const batch& v) noexcept {
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>)
      _mm512_stream_ps(p, v);
    else if constexpr (batch::size == 8 && std::is_base_of_v<xsimd::avx, Arch>)
      _mm256_stream_ps(p, v);
    else if constexpr (batch::size == 4 && std::is_base_of_v<xsimd::sse2, Arch>)
      _mm_stream_ps(p, v);
    else
      v.store_aligned(p);
#else
    v.store_aligned(p);
#endif
  }
  /// Orders a task's streaming stores before whatever follows it.
  static void stream_fence() noexcept {
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
    _mm_sfence();
#endif
  }
  /// Calls f(j, m) for consecutive blocks [j, j+m) of [j0, j1), m = width except for the last.
  template <class F>
  static void for_each_block(index_t j0, index_t j1, F&& f) {
    index_t j = j0;
    for (; j + width <= j1; j += width) f(j, width);
    if (j < j1) f(j, j1 - j);
  }
  /// Calls f(r, j0, j1) on row segments covering the (n,d) view, in tiles of about 32K elements (column
  /// blocks when rows are long, groups of rows when they are short) run in parallel on be.pool; with
  /// `stream`, each task ends with a store fence.
  template <class F>
  static void for_each_segment(const simd<Arch>& be, index_t n, index_t d, F&& f) {
    for_each_segment(be, n, d, false, f);
  }
  template <class F>
  static void for_each_segment(const simd<Arch>& be, index_t n, index_t d, bool stream, F&& f) {
    if (n <= 0 || d <= 0) return;
    constexpr index_t tile = 32768;
    const index_t cols = std::min(d, tile);
    const index_t col_blocks = (d + cols - 1) / cols;
    const index_t rows = std::max<index_t>(1, tile / cols);
    const index_t row_blocks = chunk_count(n, rows);
    parallel_for(be.pool, row_blocks * col_blocks, 1, [&](index_t t0, index_t t1) {
      for (index_t t = t0; t < t1; ++t) {
        const index_t rb = t / col_blocks, cb = t % col_blocks;
        const index_t j0 = cb * cols, j1 = std::min(d, j0 + cols);
        for (index_t r = rb * rows; r < std::min(n, (rb + 1) * rows); ++r) f(r, j0, j1);
      }
      if (stream) stream_fence();
    });
  }
};

}  // namespace slim::backend::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
