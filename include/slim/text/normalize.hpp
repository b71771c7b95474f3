// slim — Unicode normalisation (NFD, NFC), lower-casing and accent stripping, from the generated UCD tables.
//
// * NFD / NFC follow UAX #15 with the Unicode version of unicode_tables.hpp: full canonical decomposition
//   (Hangul syllables algorithmically), the canonical ordering algorithm (each run of non-starters sorted
//   stably by canonical combining class), and canonical composition (primary composites only: pairs listed
//   in Full_Composition_Exclusion never compose; Hangul L+V and LV+T algorithmically). Compatibility forms
//   (NFKD, NFKC) are not provided. tests/text/test_normalize.cpp checks every line of the UCD's
//   NormalizationTest.txt.
// * `append_lowercase` is the full lowercase mapping of one code point — the simple mapping of
//   UnicodeData.txt unless SpecialCasing.txt has an unconditional one (only U+0130 → "i̇"). It is what Rust's
//   `char::to_lowercase` returns and what HF tokenizers' BertNormalizer applies per character. `to_lower`
//   maps each character on its own, so unlike Python's str.lower there is no context-dependent Final_Sigma
//   rule: "ΣΑΣ" becomes "σασ", not "σας".
// * `strip_accents` is NFD followed by dropping every character of general category Mn.
// Text in UTF-8 follows the invalid-UTF-8 policy of unicode.hpp: each ill-formed unit becomes U+FFFD (these
// functions produce valid UTF-8). Cost: linear in the input (a run of k combining marks sorts in O(k log k)).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

#include "slim/text/unicode.hpp"
#include "slim/text/unicode_tables.hpp"

namespace slim::text::unicode {

/// The normalisation forms slim implements.
enum class normalization_form : std::uint8_t { nfd, nfc };

namespace detail {

// Hangul syllable arithmetic (Unicode 15, section 3.12).
inline constexpr char32_t hangul_s_base = 0xAC00, hangul_l_base = 0x1100, hangul_v_base = 0x1161,
                          hangul_t_base = 0x11A7;
inline constexpr char32_t hangul_l_count = 19, hangul_v_count = 21, hangul_t_count = 28;
inline constexpr char32_t hangul_n_count = hangul_v_count * hangul_t_count;  // 588
inline constexpr char32_t hangul_s_count = hangul_l_count * hangul_n_count;  // 11172

/// The one-level canonical mapping of `cp` as (first, second); first = 0 when it has none, second = 0 for a
/// one-character mapping. Hangul syllables are not in the table (see `append_canonical_decomposition`).
inline void canonical_mapping(char32_t cp, char32_t& first, char32_t& second) noexcept {
  first = second = 0;
  if (cp < 0xC0) return;  // nothing below U+00C0 decomposes
  const auto* table = tables::canonical_decompositions;
  const std::size_t n = std::size(tables::canonical_decompositions);
  std::size_t lo = 0, hi = n;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    const auto key = static_cast<char32_t>(table[mid] >> 42);
    if (key < cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == n || static_cast<char32_t>(table[lo] >> 42) != cp) return;
  first = static_cast<char32_t>((table[lo] >> 21) & 0x1FFFFF);
  second = static_cast<char32_t>(table[lo] & 0x1FFFFF);
}

}  // namespace detail

/// Canonical combining class of `cp` (0 for starters and for values above U+10FFFF).
inline std::uint8_t combining_class(char32_t cp) noexcept {
  if (cp < 0x300) return 0;  // the first non-zero class is U+0300
  if (cp > 0x10FFFF) return 0;
  const std::uint32_t key = (static_cast<std::uint32_t>(cp) << 8) | 0xFFu;
  std::size_t lo = 0, hi = std::size(tables::combining_class_runs);
  while (hi - lo > 1) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (tables::combining_class_runs[mid] <= key)
      lo = mid;
    else
      hi = mid;
  }
  return static_cast<std::uint8_t>(tables::combining_class_runs[lo] & 0xFFu);
}

/// True when `cp` has a canonical decomposition (Hangul syllables included).
inline bool has_canonical_decomposition(char32_t cp) noexcept {
  if (cp - detail::hangul_s_base < detail::hangul_s_count) return true;
  char32_t a, b;
  detail::canonical_mapping(cp, a, b);
  return a != 0;
}

/// Appends the full canonical decomposition of `cp` to `out` (`cp` itself when it has none), before
/// canonical ordering.
template <class U32String>
void append_canonical_decomposition(char32_t cp, U32String& out) {
  if (const char32_t s = cp - detail::hangul_s_base; s < detail::hangul_s_count) {
    out.push_back(detail::hangul_l_base + s / detail::hangul_n_count);
    out.push_back(detail::hangul_v_base + (s % detail::hangul_n_count) / detail::hangul_t_count);
    if (const char32_t t = s % detail::hangul_t_count; t != 0) out.push_back(detail::hangul_t_base + t);
    return;
  }
  char32_t a, b;
  detail::canonical_mapping(cp, a, b);
  if (a == 0) {
    out.push_back(cp);
    return;
  }
  append_canonical_decomposition(a, out);  // mappings nest at most a few levels deep
  if (b != 0) append_canonical_decomposition(b, out);
}

/// The primary composite of `a` followed by `b`, or 0 when they do not compose (Hangul included).
inline char32_t compose_pair(char32_t a, char32_t b) noexcept {
  if (const char32_t l = a - detail::hangul_l_base, v = b - detail::hangul_v_base;
      l < detail::hangul_l_count && v < detail::hangul_v_count)
    return detail::hangul_s_base + (l * detail::hangul_v_count + v) * detail::hangul_t_count;
  if (const char32_t s = a - detail::hangul_s_base, t = b - detail::hangul_t_base;
      s < detail::hangul_s_count && s % detail::hangul_t_count == 0 && t != 0 && t < detail::hangul_t_count)
    return a + t;
  if (a > 0x1FFFFF || b > 0x1FFFFF) return 0;
  const std::uint64_t key = (static_cast<std::uint64_t>(a) << 21) | b;
  const auto* table = tables::canonical_compositions;
  const std::size_t n = std::size(tables::canonical_compositions);
  std::size_t lo = 0, hi = n;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if ((table[mid] >> 21) < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == n || (table[lo] >> 21) != key) return 0;
  return static_cast<char32_t>(table[lo] & 0x1FFFFF);
}

/// The canonical ordering algorithm on `s[from..]`: sorts each run of non-starters by combining class,
/// keeping the order of equal classes.
template <class U32String>
void canonical_order(U32String& s, std::size_t from = 0) {
  const std::size_t n = s.size();
  std::size_t i = from;
  while (i < n) {
    if (combining_class(s[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    while (j < n && combining_class(s[j]) != 0) ++j;
    if (j - i > 1) {
      std::stable_sort(s.begin() + static_cast<std::ptrdiff_t>(i), s.begin() + static_cast<std::ptrdiff_t>(j),
                       [](char32_t x, char32_t y) { return combining_class(x) < combining_class(y); });
    }
    i = j;
  }
}

/// Canonical composition of `s` (which must be in NFD) in place: NFD → NFC.
template <class U32String>
void canonical_compose(U32String& s) {
  if (s.size() < 2) return;
  std::size_t starter = 0, kept = 1;
  int last_class = combining_class(s[0]);
  if (last_class != 0) last_class = 256;  // a leading non-starter: nothing composes with it
  for (std::size_t i = 1; i < s.size(); ++i) {
    const char32_t c = s[i];
    const int cls = combining_class(c);
    // `c` is blocked from the starter unless it follows it directly (last_class 0) or every character kept
    // in between has a lower class.
    if (last_class == 0 || last_class < cls) {
      if (const char32_t composite = compose_pair(s[starter], c); composite != 0) {
        s[starter] = composite;
        continue;
      }
    }
    if (cls == 0) starter = kept;
    last_class = cls;
    s[kept++] = c;
  }
  s.resize(kept);
}

/// Normalises code points in place.
template <class U32String>
void normalize_in_place(U32String& s, normalization_form form) {
  U32String out;
  out.reserve(s.size() + s.size() / 4);
  for (const char32_t c : s) append_canonical_decomposition(c, out);
  canonical_order(out);
  if (form == normalization_form::nfc) canonical_compose(out);
  s.swap(out);
}

/// Decodes UTF-8 into code points; each ill-formed unit becomes U+FFFD.
inline std::u32string decode_to_code_points(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto u = decode_utf8(text, i);
    out.push_back(u.code_point);
    i += u.length;
  }
  return out;
}

/// Encodes code points as UTF-8 (surrogates and values above U+10FFFF as U+FFFD).
inline std::string encode_code_points(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size() + cps.size() / 2);
  for (const char32_t c : cps) append_utf8(out, c);
  return out;
}

/// `text` in normalisation form `form` (ill-formed UTF-8 units become U+FFFD first).
inline std::string normalize(std::string_view text, normalization_form form) {
  bool ascii = true;
  for (const char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) return std::string(text);  // ASCII is invariant under NFD and NFC
  std::u32string cps = decode_to_code_points(text);
  normalize_in_place(cps, form);
  return encode_code_points(cps);
}

/// `text` in NFD.
inline std::string to_nfd(std::string_view text) { return normalize(text, normalization_form::nfd); }
/// `text` in NFC.
inline std::string to_nfc(std::string_view text) { return normalize(text, normalization_form::nfc); }

// ---- case ----------------------------------------------------------------------------------------------

/// The simple lowercase mapping of `cp` (UnicodeData.txt), `cp` itself when it has none.
inline char32_t simple_lowercase(char32_t cp) noexcept {
  if (cp < 0x80) return cp - U'A' < 26 ? cp + 32 : cp;
  const auto* runs = tables::lowercase_runs;
  std::size_t lo = 0, hi = std::size(tables::lowercase_runs);
  while (lo < hi) {  // first run whose `last` is >= cp
    const std::size_t mid = lo + (hi - lo) / 2;
    if (runs[mid].last < cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == std::size(tables::lowercase_runs)) return cp;
  const auto& r = runs[lo];
  if (cp < r.first || (cp - r.first) % r.stride != 0) return cp;
  return static_cast<char32_t>(static_cast<std::int64_t>(cp) + r.delta);
}

/// Appends the full lowercase mapping of `cp` (1 to 3 code points; Rust's char::to_lowercase).
template <class U32String>
void append_lowercase(char32_t cp, U32String& out) {
  for (const auto& sc : tables::special_lowercase) {
    if (sc.code_point == cp) {
      for (const std::uint32_t m : sc.mapping)
        if (m != 0) out.push_back(static_cast<char32_t>(m));
      return;
    }
  }
  out.push_back(simple_lowercase(cp));
}

/// Appends the full lowercase mapping of `cp` to `out` as UTF-8.
inline void append_lowercase_utf8(char32_t cp, std::string& out) {
  for (const auto& sc : tables::special_lowercase) {
    if (sc.code_point == cp) {
      for (const std::uint32_t m : sc.mapping)
        if (m != 0) append_utf8(out, static_cast<char32_t>(m));
      return;
    }
  }
  append_utf8(out, simple_lowercase(cp));
}

/// Each character of `text` replaced by its full lowercase mapping (no Final_Sigma context rule).
inline std::string to_lower(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      out += static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b);
      ++i;
      continue;
    }
    const auto u = decode_utf8(text, i);
    i += u.length;
    append_lowercase_utf8(u.code_point, out);
  }
  return out;
}

/// NFD of `text` without the characters of general category Mn (nonspacing marks): "Café" → "Cafe".
inline std::string strip_accents(std::string_view text) {
  std::u32string cps = decode_to_code_points(text);
  normalize_in_place(cps, normalization_form::nfd);
  std::string out;
  out.reserve(text.size());
  for (const char32_t c : cps)
    if (category(c) != general_category::Mn) append_utf8(out, c);
  return out;
}

}  // namespace slim::text::unicode
