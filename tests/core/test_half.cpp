// bf16 and f16 against IEEE 754 itself. Every reference value here is computed from the format's definition
// in double (sign, biased exponent, significand; round to nearest, ties to even), never by calling the
// conversions under test: all 65,536 encodings of each format, every rounding boundary between consecutive
// finite values, overflow, subnormals, signed zeros and the NaN policy.
#include <algorithm>
#include <bit>
#include <catch2/catch.hpp>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "slim/core/half.hpp"

namespace {

/// A binary interchange format with `exp_bits` exponent and `man_bits` stored significand bits.
struct format {
  const char* name;
  int exp_bits;
  int man_bits;

  int bias() const { return (1 << (exp_bits - 1)) - 1; }
  std::uint16_t exp_mask() const { return static_cast<std::uint16_t>(((1u << exp_bits) - 1u) << man_bits); }
  std::uint16_t man_mask() const { return static_cast<std::uint16_t>((1u << man_bits) - 1u); }
  std::uint16_t quiet_bit() const { return static_cast<std::uint16_t>(1u << (man_bits - 1)); }
  std::uint16_t inf_bits() const { return exp_mask(); }
  std::uint16_t max_finite_bits() const { return static_cast<std::uint16_t>(exp_mask() - 1u); }
  bool is_nan(std::uint16_t b) const { return (b & exp_mask()) == exp_mask() && (b & man_mask()) != 0; }

  /// The value an encoding denotes, from the IEEE definition (NaN for NaN encodings).
  double decode(std::uint16_t b) const {
    const bool negative = (b & 0x8000u) != 0;
    const int e = (b & exp_mask()) >> man_bits;
    const int m = b & man_mask();
    double v;
    if (e == (1 << exp_bits) - 1)
      v = m ? std::numeric_limits<double>::quiet_NaN() : HUGE_VAL;
    else if (e == 0)
      v = std::ldexp(static_cast<double>(m), 1 - bias() - man_bits);  // subnormal
    else
      v = std::ldexp(static_cast<double>(m + (1 << man_bits)), e - bias() - man_bits);  // normal
    return negative ? -v : v;
  }
  /// 2^(emax+1): the value the next encoding after the largest finite one would have without an exponent limit.
  double beyond_max() const { return std::ldexp(1.0, (1 << exp_bits) - 2 - bias() + 1); }
};

constexpr format bf16_format{"bf16", 8, 7};
constexpr format f16_format{"f16", 5, 10};

template <class H>
constexpr format format_of() {
  if constexpr (std::is_same_v<H, slim::bf16>)
    return bf16_format;
  else
    return f16_format;
}

template <class H>
std::uint16_t round_to(float x) {
  return H::from_float(x);
}
template <class H>
float widen(std::uint16_t b) {
  return static_cast<float>(H::from_bits(b));
}

std::string hex(std::uint32_t v, int digits) {
  std::ostringstream os;
  os << "0x" << std::hex;
  os.width(digits);
  os.fill('0');
  os << v;
  return os.str();
}

/// Counts failures of a many-case loop and keeps the first few for the report (one CHECK per loop keeps
/// Catch2's bookkeeping out of a 65,536-iteration loop).
struct failures {
  std::size_t count = 0;
  std::string first;
  void add(const std::string& what) {
    if (count++ < 8) first += "  " + what + "\n";
  }
};
#define CHECK_NO_FAILURES(f)                                    \
  do {                                                          \
    INFO((f).count << " failures; first ones:\n" << (f).first); \
    CHECK((f).count == 0);                                      \
  } while (0)

/// Reference rounding of x to the format: nearest representable value, ties to the even significand,
/// overflow to ±Inf at or beyond the midpoint between the largest finite value and 2^(emax+1). Table lookup
/// over the decoded positive encodings (`table[b]` is the value of encoding b, ascending).
std::uint16_t reference_round(const format& f, const std::vector<double>& table, float x) {
  const std::uint16_t sign = std::signbit(x) ? 0x8000u : 0u;
  const double a = std::fabs(static_cast<double>(x));
  const std::size_t max = f.max_finite_bits();
  const double overflow = (table[max] + f.beyond_max()) / 2;  // ties go to Inf: the max's significand is odd
  if (a >= overflow) return static_cast<std::uint16_t>(sign | f.inf_bits());
  const std::size_t hi =
      static_cast<std::size_t>(std::upper_bound(table.begin(), table.begin() + max + 1, a) - table.begin());
  const std::size_t lo = hi - 1;  // table[0] == 0 <= a, so hi >= 1
  if (table[lo] == a || hi > max) return static_cast<std::uint16_t>(sign | lo);
  const double dlo = a - table[lo], dhi = table[hi] - a;
  const std::size_t pick = dlo < dhi ? lo : dhi < dlo ? hi : (lo % 2 == 0 ? lo : hi);
  return static_cast<std::uint16_t>(sign | pick);
}

std::vector<double> positive_table(const format& f) {
  std::vector<double> t(f.max_finite_bits() + 1u);
  for (std::size_t b = 0; b < t.size(); ++b) t[b] = f.decode(static_cast<std::uint16_t>(b));
  return t;
}

}  // namespace

// Compile-time spot checks: the conversions are constexpr, and a few well-known encodings hold.
static_assert(slim::f16::from_float(1.0f) == 0x3c00);
static_assert(slim::f16::from_float(-2.0f) == 0xc000);
static_assert(slim::f16::from_float(65504.0f) == 0x7bff);
static_assert(slim::f16::to_float(0x3555) == 0.333251953125f);
static_assert(slim::bf16::from_float(1.0f) == 0x3f80);
static_assert(slim::bf16::from_float(-3.0f) == 0xc040);
static_assert(static_cast<float>(slim::bf16::from_bits(0x4049)) == 3.140625f);
static_assert(sizeof(slim::bf16) == 2 && sizeof(slim::f16) == 2);
static_assert(std::is_trivially_copyable_v<slim::bf16> && std::is_trivially_copyable_v<slim::f16>);
static_assert(!std::is_convertible_v<float, slim::f16>, "float -> f16 rounds: it must be explicit");

TEMPLATE_TEST_CASE("every 16-bit encoding widens to the value IEEE 754 defines for it", "[half]", slim::bf16,
                   slim::f16) {
  constexpr format f = format_of<TestType>();
  failures bad;
  for (std::uint32_t b = 0; b <= 0xffffu; ++b) {
    const auto bits = static_cast<std::uint16_t>(b);
    const float got = widen<TestType>(bits);
    const double want = f.decode(bits);
    const bool ok = std::isnan(want) ? std::isnan(got) && std::signbit(got) == ((bits & 0x8000u) != 0)
                                     : static_cast<double>(got) == want && std::signbit(got) == std::signbit(want);
    if (!ok) bad.add(hex(bits, 4) + " widened to " + std::to_string(got) + ", IEEE value " + std::to_string(want));
  }
  CHECK_NO_FAILURES(bad);
}

TEMPLATE_TEST_CASE("every 16-bit encoding survives float and back; NaN stays NaN with its sign", "[half]", slim::bf16,
                   slim::f16) {
  constexpr format f = format_of<TestType>();
  failures bad;
  std::size_t nans = 0;
  for (std::uint32_t b = 0; b <= 0xffffu; ++b) {
    const auto bits = static_cast<std::uint16_t>(b);
    const std::uint16_t back = round_to<TestType>(widen<TestType>(bits));
    if (!f.is_nan(bits)) {
      if (back != bits) bad.add(hex(bits, 4) + " came back as " + hex(back, 4));
      continue;
    }
    ++nans;
    // Policy: a NaN stays a NaN of the same sign, quiet; a quiet NaN keeps its payload bit for bit.
    const bool quiet_input = (bits & f.quiet_bit()) != 0;
    const bool ok = f.is_nan(back) && (back & 0x8000u) == (bits & 0x8000u) && (back & f.quiet_bit()) != 0 &&
                    (!quiet_input || back == bits);
    if (!ok) bad.add("NaN " + hex(bits, 4) + " came back as " + hex(back, 4));
  }
  CHECK(nans == 2u * f.man_mask());  // both signs, every non-zero significand
  CHECK_NO_FAILURES(bad);
}

TEMPLATE_TEST_CASE("every rounding boundary between consecutive values rounds to nearest, ties to even", "[half]",
                   slim::bf16, slim::f16) {
  // For each pair (a, b = a + 1 encoding) of consecutive finite magnitudes — and (max finite, +Inf), whose
  // "value" is 2^(emax+1) for rounding purposes — and both signs:
  //   * the exact midpoint (computed in double; exactly representable in float) goes to the even one;
  //   * the floats just below / above the midpoint go to a / b;
  //   * the quarter points go to a / b.
  constexpr format f = format_of<TestType>();
  failures bad;
  std::size_t pairs = 0;
  for (std::uint32_t a = 0; a <= f.max_finite_bits(); ++a) {
    const std::uint32_t b = a + 1;
    const double va = f.decode(static_cast<std::uint16_t>(a));
    const double vb = b == f.inf_bits() ? f.beyond_max() : f.decode(static_cast<std::uint16_t>(b));
    const double mid = (va + vb) / 2;
    const std::uint32_t even = (a % 2 == 0) ? a : b;  // the last encoding bit is the significand's last bit
    for (const std::uint32_t sign : {0u, 0x8000u}) {
      ++pairs;
      const double s = sign ? -1.0 : 1.0;
      const float m = static_cast<float>(s * mid);
      if (static_cast<double>(m) != s * mid) {
        bad.add("midpoint of " + hex(a | sign, 4) + " and " + hex(b | sign, 4) + " is not a float");
        continue;
      }
      const float toward_a = std::nextafter(m, 0.0f);
      const float toward_b = std::nextafter(m, static_cast<float>(s * HUGE_VAL));
      const auto q1 = static_cast<float>(s * (va + (vb - va) / 4));
      const auto q3 = static_cast<float>(s * (va + 3 * (vb - va) / 4));
      struct probe {
        float x;
        std::uint32_t want;
        const char* what;
      };
      for (const probe& p : {probe{m, even | sign, "midpoint"}, probe{toward_a, a | sign, "below midpoint"},
                             probe{toward_b, b | sign, "above midpoint"}, probe{q1, a | sign, "quarter point"},
                             probe{q3, b | sign, "three-quarter point"}}) {
        const std::uint16_t got = round_to<TestType>(p.x);
        if (got != p.want)
          bad.add(std::string(p.what) + " " + hex(std::bit_cast<std::uint32_t>(p.x), 8) + " between " +
                  hex(a | sign, 4) + " and " + hex(b | sign, 4) + ": got " + hex(got, 4) + ", want " + hex(p.want, 4));
      }
    }
  }
  CHECK(pairs == 2u * (f.max_finite_bits() + 1u));
  CHECK_NO_FAILURES(bad);
}

TEMPLATE_TEST_CASE("random floats round like the IEEE reference", "[half]", slim::bf16, slim::f16) {
  // Between boundaries: arbitrary bit patterns (every exponent), and floats concentrated on the format's
  // own range, each against a nearest-value search over the decoded encodings.
  constexpr format f = format_of<TestType>();
  const std::vector<double> table = positive_table(f);
  std::mt19937 gen(20240229u);
  failures bad;
  for (int i = 0; i < 200000; ++i) {
    std::uint32_t u = gen();
    if (i % 2) {  // exponent within (format's subnormal range - 3, format's max exponent + 2)
      const int lo = std::max(0, 127 - f.bias() - f.man_bits - 3), hi = std::min(256, 127 + f.bias() + 2);
      const auto e = static_cast<std::uint32_t>(lo + static_cast<int>(gen() % static_cast<std::uint32_t>(hi - lo)));
      u = (u & 0x807fffffu) | (e << 23);
    }
    const float x = std::bit_cast<float>(u);
    if (std::isnan(x)) continue;
    const std::uint16_t got = round_to<TestType>(x), want = reference_round(f, table, x);
    if (got != want) bad.add(hex(u, 8) + ": got " + hex(got, 4) + ", want " + hex(want, 4));
  }
  CHECK_NO_FAILURES(bad);
}

TEST_CASE("f16 overflows to Inf from 65520 up; just below 65520 is 65504", "[half]") {
  using slim::f16;
  CHECK(f16::from_float(65504.0f) == 0x7bff);
  CHECK(f16::from_float(65519.99609375f) == 0x7bff);  // the float just below 65520
  CHECK(f16::from_float(std::nextafter(65520.0f, 0.0f)) == 0x7bff);
  CHECK(f16::from_float(65520.0f) == 0x7c00);  // the midpoint to 2^16 ties to the even "next" value: Inf
  CHECK(f16::from_float(65536.0f) == 0x7c00);
  CHECK(f16::from_float(1.0e9f) == 0x7c00);
  CHECK(f16::from_float(FLT_MAX) == 0x7c00);
  CHECK(f16::from_float(HUGE_VALF) == 0x7c00);
  CHECK(f16::from_float(-65520.0f) == 0xfc00);
  CHECK(f16::from_float(-std::nextafter(65520.0f, 0.0f)) == 0xfbff);
  CHECK(f16::from_float(-HUGE_VALF) == 0xfc00);
  CHECK(std::isinf(static_cast<float>(f16(70000.0f))));
}

TEST_CASE("bf16 overflows to Inf only at the midpoint above its largest finite value", "[half]") {
  using slim::bf16;
  const float max = std::bit_cast<float>(0x7f7f0000u);                  // (2 - 2^-7) * 2^127
  const float mid = static_cast<float>(std::ldexp(2.0 - 0x1p-8, 127));  // halfway to 2^128
  CHECK(bf16::from_float(max) == 0x7f7f);
  CHECK(bf16::from_float(std::nextafter(mid, 0.0f)) == 0x7f7f);
  CHECK(bf16::from_float(mid) == 0x7f80);
  CHECK(bf16::from_float(FLT_MAX) == 0x7f80);
  CHECK(bf16::from_float(-FLT_MAX) == 0xff80);
  CHECK(bf16::from_float(HUGE_VALF) == 0x7f80);
  CHECK(bf16::from_float(-HUGE_VALF) == 0xff80);
}

TEST_CASE("f16 subnormals: 2^-24 steps, ties at half a step, float subnormals flush to signed zero", "[half]") {
  using slim::f16;
  CHECK(f16::to_float(0x0001) == 0x1p-24f);
  CHECK(f16::to_float(0x0002) == 0x1p-23f);
  CHECK(f16::to_float(0x03ff) == 1023 * 0x1p-24f);
  CHECK(f16::to_float(0x0400) == 0x1p-14f);  // smallest normal
  CHECK(f16::to_float(0x8001) == -0x1p-24f);
  CHECK(f16::from_float(0x1p-24f) == 0x0001);
  CHECK(f16::from_float(0x1p-25f) == 0x0000);                        // tie between 0 and 2^-24: even is 0
  CHECK(f16::from_float(std::nextafter(0x1p-25f, 1.0f)) == 0x0001);  // just above the tie
  CHECK(f16::from_float(3 * 0x1p-25f) == 0x0002);                    // tie between 1 and 2 steps: 2
  CHECK(f16::from_float(5 * 0x1p-25f) == 0x0002);                    // tie between 2 and 3 steps: 2
  CHECK(f16::from_float(1023 * 0x1p-24f) == 0x03ff);
  CHECK(f16::from_float(1023.5f * 0x1p-24f) == 0x0400);  // rounds up into the normal range
  CHECK(f16::from_float(-0x1p-24f) == 0x8001);
  CHECK(f16::from_float(1e-40f) == 0x0000);  // a float subnormal
  CHECK(f16::from_float(-1e-40f) == 0x8000);
  CHECK(f16::from_float(std::numeric_limits<float>::denorm_min()) == 0x0000);
  // bf16 shares float's exponent range, so float subnormals with few significant bits are exact in bf16.
  CHECK(static_cast<float>(slim::bf16(0x1p-130f)) == 0x1p-130f);
  CHECK(static_cast<float>(slim::bf16(0x1p-133f)) == 0x1p-133f);  // smallest bf16 subnormal
  CHECK(slim::bf16::from_float(0x1p-134f) == 0x0000);             // half of it: tie to even 0
}

TEST_CASE("signed zeros are kept both ways", "[half]") {
  using slim::bf16;
  using slim::f16;
  CHECK(f16::from_float(0.0f) == 0x0000);
  CHECK(f16::from_float(-0.0f) == 0x8000);
  CHECK(bf16::from_float(0.0f) == 0x0000);
  CHECK(bf16::from_float(-0.0f) == 0x8000);
  CHECK(std::signbit(f16::to_float(0x8000)));
  CHECK(f16::to_float(0x8000) == 0.0f);
  CHECK(std::signbit(static_cast<float>(bf16::from_bits(0x8000))));
  CHECK_FALSE(std::signbit(static_cast<float>(bf16::from_bits(0x0000))));
}

TEST_CASE("NaN policy: quiet, sign kept, leading payload bits kept; a low-payload signalling NaN is not Inf",
          "[half]") {
  using slim::bf16;
  using slim::f16;
  auto f = [](std::uint32_t u) { return std::bit_cast<float>(u); };
  // Quiet NaNs.
  CHECK(bf16::from_float(f(0x7fc00000u)) == 0x7fc0);
  CHECK(bf16::from_float(f(0xffc00000u)) == 0xffc0);
  CHECK(f16::from_float(f(0x7fc00000u)) == 0x7e00);
  CHECK(f16::from_float(f(0xffc00000u)) == 0xfe00);
  // Signalling NaN whose payload lies only in bits a 16-bit format drops: truncation would give Inf.
  CHECK(bf16::from_float(f(0x7f800001u)) == 0x7fc0);
  CHECK(bf16::from_float(f(0xff800001u)) == 0xffc0);
  CHECK(f16::from_float(f(0x7f800001u)) == 0x7e00);
  CHECK(f16::from_float(f(0xff800001u)) == 0xfe00);
  // Payload in the leading bits is kept; the quiet bit is set.
  CHECK(bf16::from_float(f(0x7fa00000u)) == 0x7fe0);
  CHECK(f16::from_float(f(0x7fa00000u)) == 0x7f00);  // float payload bit 21 -> f16 payload bit 8
  CHECK(f16::from_float(f(0x7fc02000u)) == 0x7e01);  // float payload bit 13 -> f16 payload bit 0
  // Widening keeps sign and payload (f16 payload bit k -> float payload bit k + 13).
  CHECK(std::bit_cast<std::uint32_t>(f16::to_float(0x7e01)) == 0x7fc02000u);
  CHECK(std::bit_cast<std::uint32_t>(f16::to_float(0xfc01)) == 0xff802000u);
  CHECK(std::bit_cast<std::uint32_t>(static_cast<float>(bf16::from_bits(0xffc1))) == 0xffc10000u);
  CHECK(std::isnan(static_cast<float>(f16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isnan(static_cast<float>(bf16(std::numeric_limits<float>::signaling_NaN()))));
}

TEST_CASE("to_float overloads agree with the conversions", "[half]") {
  CHECK(slim::to_float(slim::f16(1.5f)) == 1.5f);
  CHECK(slim::to_float(slim::bf16(-0.375f)) == -0.375f);
  CHECK(slim::to_float(2.25f) == 2.25f);
  CHECK(slim::f16().bits() == 0);  // default is +0
  CHECK(slim::bf16().bits() == 0);
}
