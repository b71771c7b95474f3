// slim — Philox4x32-10, the counter-based generator of Salmon et al. (SC'11, "Parallel random numbers:
// as easy as 1, 2, 3"). A value is a pure function of (key, counter), so the scalar, SIMD and CUDA
// backends draw the same stream element for element, and a dropout mask can be recomputed in backward.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

#include "slim/core/config.hpp"

namespace slim {

/// Four 32-bit words: one Philox counter or one Philox output block.
struct philox_block {
  std::uint32_t v[4];
};

namespace detail {
SLIM_HOST_DEVICE constexpr void philox_mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi,
                                               std::uint32_t& lo) noexcept {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}
/// The largest float below a finite `x` (std::nextafter(x, -inf), which is not constexpr in C++20).
constexpr float float_below(float x) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  if ((u & 0x7fffffffu) == 0) return -std::bit_cast<float>(1u);  // ±0 -> -denorm_min
  return std::bit_cast<float>((u & 0x80000000u) ? u + 1 : u - 1);
}
}  // namespace detail

/// Philox4x32 with 10 rounds: out = philox(counter, key). Bit-exact with Random123's philox4x32_R(10,...).
SLIM_HOST_DEVICE constexpr philox_block philox4x32_10(philox_block ctr, std::uint32_t key0,
                                                      std::uint32_t key1) noexcept {
  constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;  // multipliers
  constexpr std::uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;  // Weyl key increments
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key0 += w0;
      key1 += w1;
    }
    std::uint32_t hi0 = 0, lo0 = 0, hi1 = 0, lo1 = 0;
    detail::philox_mulhilo(m0, ctr.v[0], hi0, lo0);
    detail::philox_mulhilo(m1, ctr.v[2], hi1, lo1);
    ctr = philox_block{{hi1 ^ ctr.v[1] ^ key0, lo1, hi0 ^ ctr.v[3] ^ key1, lo0}};
  }
  return ctr;
}

/// Element `index` of the stream named by `seed`: a 32-bit word. Element i lives in lane i%4 of the
/// block with counter (i/4 low word, i/4 high word, 0, 0) and key (seed low word, seed high word).
SLIM_HOST_DEVICE constexpr std::uint32_t philox_u32(std::uint64_t seed, std::uint64_t index) noexcept {
  const std::uint64_t b = index >> 2;
  const philox_block out = philox4x32_10(
      philox_block{{static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32), 0u, 0u}},
      static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  return out.v[index & 3];
}

/// Maps a 32-bit word to a float uniform in [0, 1) with 24 random bits (exact in float).
SLIM_HOST_DEVICE constexpr float uniform01(std::uint32_t x) noexcept {
  return static_cast<float>(x >> 8) * (1.0f / 16777216.0f);
}

/// Element `index` of stream `seed`, uniform in [0, 1).
SLIM_HOST_DEVICE constexpr float philox_uniform(std::uint64_t seed, std::uint64_t index) noexcept {
  return uniform01(philox_u32(seed, index));
}

/// Sequential host-side reader of one Philox stream: element `position` onward of stream `seed`.
/// Use one per purpose (weights, sampling, shuffles) with distinct seeds so streams never overlap.
class philox_stream {
 public:
  explicit constexpr philox_stream(std::uint64_t seed, std::uint64_t position = 0) noexcept
      : seed_{seed}, pos_{position} {}

  constexpr std::uint32_t next_u32() noexcept { return philox_u32(seed_, pos_++); }
  constexpr std::uint64_t next_u64() noexcept {
    const std::uint64_t lo = next_u32();
    return lo | (static_cast<std::uint64_t>(next_u32()) << 32);
  }
  /// Uniform in [0, 1).
  constexpr float uniform() noexcept { return uniform01(next_u32()); }
  /// Uniform in [lo, hi) for finite lo < hi. `lo + (hi - lo) * u` can round up to `hi` (e.g. [1, 2) with
  /// u = 1 - 2^-24); such a draw is returned as the largest float below `hi`.
  constexpr float uniform(float lo, float hi) noexcept {
    const float r = lo + (hi - lo) * uniform();
    return r < hi ? r : detail::float_below(hi);
  }
  /// Uniform integer in [0, n) without modulo bias (Lemire's multiply-shift with rejection).
  /// n == 0 stands for 2^32: the whole 32-bit range (one word, as next_u32()).
  constexpr std::uint32_t below(std::uint32_t n) noexcept {
    if (n == 0) return next_u32();
    std::uint64_t m = static_cast<std::uint64_t>(next_u32()) * n;
    auto low = static_cast<std::uint32_t>(m);
    if (low < n) {
      const std::uint32_t threshold = static_cast<std::uint32_t>(-n) % n;
      while (low < threshold) {
        m = static_cast<std::uint64_t>(next_u32()) * n;
        low = static_cast<std::uint32_t>(m);
      }
    }
    return static_cast<std::uint32_t>(m >> 32);
  }
  /// Standard normal by Box–Muller (uses two elements).
  float normal() noexcept {
    const float u1 = 1.0f - uniform();  // (0, 1]
    const float u2 = uniform();
    return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.28318530717958647692f * u2);
  }
  constexpr std::uint64_t seed() const noexcept { return seed_; }
  constexpr std::uint64_t position() const noexcept { return pos_; }

 private:
  std::uint64_t seed_;
  std::uint64_t pos_;
};

}  // namespace slim
