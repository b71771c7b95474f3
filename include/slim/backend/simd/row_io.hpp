// slim — row I/O shared by the row-wise xsimd kernels (norm, rope, softmax, activation, dropout): partial
// loads and stores for row tails, and streaming stores for outputs too large to stay in cache.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "slim/core/config.hpp"

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace slim::backend::detail {

/// Loads and stores of one float row segment of at most one register (`m` ≤ width elements).
template <class Arch>
struct row_io {
  using batch = xsimd::batch<float, Arch>;
  static constexpr index_t width = static_cast<index_t>(batch::size);

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
};

}  // namespace slim::backend::detail
