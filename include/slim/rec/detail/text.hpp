// slim — item text for the dataset loaders: UTF-8 checks and repair, Latin-1 conversion, and the composed
// description "Title (Year). Genres: A, B" kept beside each item id.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slim/rec/dataset.hpp"
#include "slim/rec/detail/options.hpp"
#include "slim/rec/detail/reader.hpp"
#include "slim/text/unicode.hpp"

namespace slim::rec::detail {

/// Byte offset of the first ill-formed UTF-8 unit in `s` (strict decoding, see slim/text/unicode.hpp), or npos.
inline std::size_t first_invalid_utf8(std::string_view s) noexcept {
  namespace u = slim::text::unicode;
  for (std::size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const auto unit = u::decode_utf8(s, i);
    if (unit.status != u::utf8_status::ok) return i;
    i += unit.length;
  }
  return std::string_view::npos;
}

/// Latin-1 (ISO-8859-1) bytes as UTF-8: byte b becomes code point U+00bb.
inline std::string latin1_to_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out += ch;
    } else {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

/// Text field of a UTF-8 format: returned as it is when well-formed; otherwise repaired (each ill-formed unit
/// becomes U+FFFD, counted once per field in `report.text_repaired`) or an error naming the byte offset.
inline std::string utf8_field(const line_reader& in, const text_line& line, std::string_view value, std::size_t field,
                              std::string_view name, text_policy policy, load_report& report) {
  const std::size_t bad = first_invalid_utf8(value);
  if (bad == std::string_view::npos) return std::string(value);
  if (policy == text_policy::error)
    in.fail_field(line, field, name,
                  cat("not valid UTF-8 at byte ", bad, " of the field (", quote(value.substr(bad, 4)), ")"));
  ++report.text_repaired;
  return slim::text::unicode::to_valid_utf8(value);
}

/// The tokens of `list` (separated by any byte of `separators`, empty ones left out) joined by ", ".
inline std::string join_list(std::string_view list, std::string_view separators) {
  std::string out;
  std::size_t i = 0;
  while (i < list.size()) {
    const std::size_t end = list.find_first_of(separators, i);
    const std::string_view token = list.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
    if (!token.empty()) {
      if (!out.empty()) out += ", ";
      out += token;
    }
    if (end == std::string_view::npos) break;
    i = end + 1;
  }
  return out;
}

/// An item's description: `title`, then ". Label: value" for each non-empty value in order
/// ("Toy Story (1995). Genres: Animation, Children's, Comedy").
inline std::string describe_item(std::string_view title,
                                 const std::vector<std::pair<std::string_view, std::string>>& parts) {
  std::string out(title);
  for (const auto& [label, value] : parts) {
    if (value.empty()) continue;
    if (!out.empty()) out += ". ";
    out += label;
    out += ": ";
    out += value;
  }
  return out;
}

}  // namespace slim::rec::detail
