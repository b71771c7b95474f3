// slim — Unicode character classes and UTF-8 decoding/encoding for the tokenizers.
//
// Character classes come from the generated tables in unicode_tables.hpp (tools/unicode/gen_tables.py, from
// the Unicode Character Database; the version is `unicode_version`). Lookups are a direct table for
// U+0000..U+00FF and a binary search over category runs above.
//
// Invalid-UTF-8 policy (one policy for the whole text layer, stated here once):
//   * Decoding is strict (Unicode 15, table 3-7): overlong forms, surrogates (U+D800..U+DFFF), code points
//     above U+10FFFF, stray continuation bytes and truncated sequences are ill-formed.
//   * An ill-formed sequence is consumed as its *maximal subpart* (the longest prefix of a well-formed
//     sequence, at least one byte) — the same unit Python's errors="replace", WHATWG and ICU replace with
//     one U+FFFD. `decode_utf8` reports it with status `invalid` (or `truncated` when the input ended inside
//     an otherwise well-formed sequence) and code point U+FFFD.
//   * Tokenizers never throw on text: a pre-tokeniser treats each ill-formed unit as one character of class
//     "other" (like U+FFFD, neither letter, number nor whitespace) and byte-level BPE encodes its raw bytes,
//     so `decode(encode(s)) == s` holds for every byte string. `to_valid_utf8` replaces each unit by U+FFFD
//     where valid text is required (display, JSON output, the streaming decoder).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "slim/text/unicode_tables.hpp"

namespace slim::text::unicode {

/// Version of the Unicode Character Database behind every class below.
inline constexpr std::string_view unicode_version = tables::unicode_version;

/// The replacement character U+FFFD that stands for an ill-formed UTF-8 unit.
inline constexpr char32_t replacement_character = 0xFFFD;

/// Unicode general category (UAX #44). Numeric values are fixed by tools/unicode/gen_tables.py.
enum class general_category : std::uint8_t {
  Cn,  // unassigned
  Lu,
  Ll,
  Lt,
  Lm,
  Lo,
  Mn,
  Mc,
  Me,
  Nd,
  Nl,
  No,
  Pc,
  Pd,
  Ps,
  Pe,
  Pi,
  Pf,
  Po,
  Sm,
  Sc,
  Sk,
  So,
  Zs,
  Zl,
  Zp,
  Cc,
  Cf,
  Cs,
  Co,
};

/// General category of a code point; values above U+10FFFF are Cn.
inline general_category category(char32_t cp) noexcept {
  if (cp < 256) return static_cast<general_category>(tables::latin1_category[cp]);
  if (cp > 0x10FFFF) return general_category::Cn;
  // Last run whose first code point is <= cp.
  const std::uint32_t key = (static_cast<std::uint32_t>(cp) << 5) | 31u;
  std::size_t lo = 0, hi = std::size(tables::category_runs);
  while (hi - lo > 1) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (tables::category_runs[mid] <= key)
      lo = mid;
    else
      hi = mid;
  }
  return static_cast<general_category>(tables::category_runs[lo] & 31u);
}

namespace detail {
inline bool in_ranges(const std::uint32_t* pairs, std::size_t n_values, char32_t cp) noexcept {
  std::size_t lo = 0, hi = n_values / 2;  // number of [first, last] pairs
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (cp < pairs[2 * mid])
      hi = mid;
    else if (cp > pairs[2 * mid + 1])
      lo = mid + 1;
    else
      return true;
  }
  return false;
}
}  // namespace detail

/// \p{L}: general category Lu, Ll, Lt, Lm or Lo.
inline bool is_letter(char32_t cp) noexcept {
  const auto c = category(cp);
  return c >= general_category::Lu && c <= general_category::Lo;
}
/// \p{N}: general category Nd, Nl or No.
inline bool is_number(char32_t cp) noexcept {
  const auto c = category(cp);
  return c >= general_category::Nd && c <= general_category::No;
}
/// \p{M}: general category Mn, Mc or Me.
inline bool is_mark(char32_t cp) noexcept {
  const auto c = category(cp);
  return c >= general_category::Mn && c <= general_category::Me;
}
/// \p{P}: general category Pc, Pd, Ps, Pe, Pi, Pf or Po.
inline bool is_punctuation(char32_t cp) noexcept {
  const auto c = category(cp);
  return c >= general_category::Pc && c <= general_category::Po;
}
/// The White_Space property — what `\s` matches in Oniguruma (HF tokenizers) and Rust's regex (tiktoken).
inline bool is_white_space(char32_t cp) noexcept {
  if (cp < 128) return cp == ' ' || (cp >= 9 && cp <= 13);
  return detail::in_ranges(tables::white_space_ranges, std::size(tables::white_space_ranges), cp);
}
/// The derived Alphabetic property (letters, Nl, Other_Alphabetic marks).
inline bool is_alphabetic(char32_t cp) noexcept {
  if (cp < 128) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return detail::in_ranges(tables::alphabetic_ranges, std::size(tables::alphabetic_ranges), cp);
}
/// Alphabetic or \p{N} — Rust's `char::is_alphanumeric`, which HF's `single_word` added tokens use.
inline bool is_alphanumeric(char32_t cp) noexcept { return is_alphabetic(cp) || is_number(cp); }

// ---- UTF-8 --------------------------------------------------------------------------------------------

/// Outcome of decoding one unit of UTF-8.
enum class utf8_status : std::uint8_t {
  ok,         ///< a well-formed sequence
  invalid,    ///< an ill-formed unit (maximal subpart); more input cannot make it valid
  truncated,  ///< the input ended inside an otherwise well-formed sequence; more bytes may complete it
};

/// One decoded unit: the code point (U+FFFD unless ok) and the bytes it occupies (1..4).
struct utf8_unit {
  char32_t code_point;
  std::uint32_t length;
  utf8_status status;
};

/// Decodes the unit that starts at `s[pos]` (requires pos < s.size()).
inline utf8_unit decode_utf8(std::string_view s, std::size_t pos) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
  const std::size_t avail = s.size() - pos;
  const unsigned b0 = p[0];
  if (b0 < 0x80) return {b0, 1, utf8_status::ok};
  std::uint32_t need;             // continuation bytes after the lead
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte (table 3-7)
  char32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {replacement_character, 1, utf8_status::invalid};  // 80..C1, F5..FF never start a sequence
  }
  for (std::uint32_t k = 1; k <= need; ++k) {
    if (k >= avail) return {replacement_character, k, utf8_status::truncated};
    const unsigned b = p[k];
    const unsigned klo = k == 1 ? lo : 0x80, khi = k == 1 ? hi : 0xBF;
    if (b < klo || b > khi) return {replacement_character, k, utf8_status::invalid};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, need + 1, utf8_status::ok};
}

/// Appends the UTF-8 form of `cp`; a surrogate or a value above U+10FFFF is written as U+FFFD.
inline void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = replacement_character;
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp <= 0x10FFFF) {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    append_utf8(out, replacement_character);
  }
}

/// True when `s` is well-formed UTF-8 throughout.
inline bool is_valid_utf8(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    const auto u = decode_utf8(s, i);
    if (u.status != utf8_status::ok) return false;
    i += u.length;
  }
  return true;
}

/// Number of trailing bytes of `s` that begin a well-formed sequence the input cut short (0..3): the
/// bytes a streaming decoder holds back until the next piece arrives.
inline std::size_t incomplete_utf8_suffix(std::string_view s) noexcept {
  // A truncated sequence is at most 3 bytes long and starts at a lead byte among the last 3 bytes.
  const std::size_t n = s.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto b = static_cast<unsigned char>(s[n - back]);
    if (b < 0x80) return 0;  // ASCII ends every sequence before it
    if (b >= 0xC0) {         // a lead byte (or an invalid one)
      const auto u = decode_utf8(s, n - back);
      return u.status == utf8_status::truncated && u.length == back ? back : 0;
    }
  }
  return 0;
}

/// Copy of `s` with each ill-formed unit replaced by U+FFFD (well-formed input is returned unchanged).
inline std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto u = decode_utf8(s, i);
    if (u.status == utf8_status::ok)
      out.append(s.data() + i, u.length);
    else
      append_utf8(out, replacement_character);
    i += u.length;
  }
  return out;
}

}  // namespace slim::text::unicode
