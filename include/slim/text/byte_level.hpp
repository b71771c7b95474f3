// slim — the byte-level alphabet of GPT-2-style BPE vocabularies.
//
// Byte-level vocabularies spell every byte as one printable character so that tokens are text: the bytes
// '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves (as code points), the 68 others (controls,
// space, 0x7F..0xA0, 0xAD) take U+0100, U+0101, ... in byte order. So " hello" is spelled "Ġhello".
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "slim/text/unicode.hpp"

namespace slim::text::byte_level {

namespace detail {
struct alphabet_tables {
  std::array<char32_t, 256> to_char{};
  std::array<std::int16_t, 256 + 68> to_byte{};  // -1: not in the alphabet
  constexpr alphabet_tables() {
    for (auto& v : to_byte) v = -1;
    char32_t next = 256;
    for (unsigned b = 0; b < 256; ++b) {
      const bool self = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[b] = self ? static_cast<char32_t>(b) : next++;
      to_byte[to_char[b]] = static_cast<std::int16_t>(b);
    }
  }
};
inline constexpr alphabet_tables alphabet{};
}  // namespace detail

/// The character that spells byte `b`.
inline constexpr char32_t byte_to_char(std::uint8_t b) noexcept { return detail::alphabet.to_char[b]; }

/// The byte that character `c` spells, or nothing when `c` is not in the alphabet.
inline constexpr std::optional<std::uint8_t> char_to_byte(char32_t c) noexcept {
  if (c >= detail::alphabet.to_byte.size() || detail::alphabet.to_byte[c] < 0) return std::nullopt;
  return static_cast<std::uint8_t>(detail::alphabet.to_byte[c]);
}

/// Spells raw bytes in the byte-level alphabet ("\x20hi" -> "Ġhi").
inline std::string encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char b : bytes) unicode::append_utf8(out, byte_to_char(static_cast<std::uint8_t>(b)));
  return out;
}

/// The bytes a byte-level token spells, or nothing when `text` is not entirely in the alphabet (or not
/// well-formed UTF-8).
inline std::optional<std::string> decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto u = unicode::decode_utf8(text, i);
    if (u.status != unicode::utf8_status::ok) return std::nullopt;
    const auto b = char_to_byte(u.code_point);
    if (!b) return std::nullopt;
    out += static_cast<char>(*b);
    i += u.length;
  }
  return out;
}

}  // namespace slim::text::byte_level
