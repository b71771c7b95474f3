// slim — 16-bit floating-point storage types. `bf16` (bfloat16: 1 sign, 8 exponent, 7 mantissa bits) and
// `f16` (IEEE 754 binary16: 1, 5, 10). Both are storage only: arithmetic happens in float. Conversion from
// float rounds to nearest, ties to even; NaN stays NaN (quiet, sign kept) and ±Inf stays ±Inf.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <bit>
#include <cstdint>

#include "slim/core/config.hpp"

namespace slim {

/// bfloat16 storage: the upper half of an IEEE float.
class bf16 {
 public:
  constexpr bf16() noexcept = default;
  /// Round-to-nearest-even from float; NaN becomes a quiet NaN with the same sign.
  explicit constexpr bf16(float f) noexcept : bits_{from_float(f)} {}
  explicit constexpr operator float() const noexcept { return std::bit_cast<float>(std::uint32_t{bits_} << 16); }

  static constexpr bf16 from_bits(std::uint16_t b) noexcept {
    bf16 h;
    h.bits_ = b;
    return h;
  }
  constexpr std::uint16_t bits() const noexcept { return bits_; }

  static constexpr std::uint16_t from_float(float f) noexcept {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
    const std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);  // ties to even; Inf stays Inf
    return static_cast<std::uint16_t>((u + rounding) >> 16);
  }

 private:
  std::uint16_t bits_ = 0;
};

/// IEEE 754 binary16 storage (subnormals included).
class f16 {
 public:
  constexpr f16() noexcept = default;
  /// Round-to-nearest-even from float, overflow to ±Inf, underflow through subnormals to ±0.
  explicit constexpr f16(float f) noexcept : bits_{from_float(f)} {}
  explicit constexpr operator float() const noexcept { return to_float(bits_); }

  static constexpr f16 from_bits(std::uint16_t b) noexcept {
    f16 h;
    h.bits_ = b;
    return h;
  }
  constexpr std::uint16_t bits() const noexcept { return bits_; }

  static constexpr std::uint16_t from_float(float f) noexcept {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    const std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
    const std::uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN
    if (a >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: Inf
    if (a >= 0x38800000u) {  // normal half: rebias exponent, round mantissa 23 -> 10 bits
      const std::uint32_t r = a + 0x0fffu + ((a >> 13) & 1u) - 0x38000000u;
      return static_cast<std::uint16_t>(sign | (r >> 13));
    }
    if (a < 0x33000000u) return sign;  // below half the smallest subnormal (2^-25): ±0
    // subnormal half: value = m * 2^-24, m = round(a_value * 2^24)
    const std::uint32_t exp = a >> 23;                      // 102 .. 112
    const std::uint32_t mant = (a & 0x7fffffu) | 0x800000u;  // implicit bit
    const std::uint32_t shift = 126u - exp;                 // 14 .. 24
    const std::uint32_t half_ulp = 1u << (shift - 1);
    std::uint32_t m = mant >> shift;
    const std::uint32_t rest = mant & ((1u << shift) - 1u);
    if (rest > half_ulp || (rest == half_ulp && (m & 1u))) ++m;
    return static_cast<std::uint16_t>(sign | m);
  }
  static constexpr float to_float(std::uint16_t h) noexcept {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1fu;
    std::uint32_t mant = h & 0x3ffu;
    if (exp == 0x1fu) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));  // Inf / NaN
    if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
    if (mant == 0) return std::bit_cast<float>(sign);
    int e = 113;  // normalise the subnormal
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    return std::bit_cast<float>(sign | (static_cast<std::uint32_t>(e) << 23) | ((mant & 0x3ffu) << 13));
  }

 private:
  std::uint16_t bits_ = 0;
};

/// Converts storage or float to float (identity for float and double narrowing-free use in templates).
constexpr float to_float(bf16 h) noexcept { return static_cast<float>(h); }
constexpr float to_float(f16 h) noexcept { return static_cast<float>(h); }
constexpr float to_float(float f) noexcept { return f; }

}  // namespace slim
