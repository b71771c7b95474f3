// slim — hand-written pre-tokenisers for the split patterns of byte-level BPE models (no std::regex).
//
// Each function below matches, piece by piece, exactly what the named regular expression matches under
// leftmost-first alternation with backtracking (Oniguruma in HF tokenizers, fancy-regex in tiktoken);
// `split_pattern_regex` spells the expressions out. In words:
//   gpt2    a contraction ('s 't 're 've 'm 'll 'd, case-sensitive); else an optional U+0020 and a run of
//           letters, of numbers, or of other non-space characters; else a whitespace run that leaves its
//           last character to the next piece when a non-space follows (\s+(?!\S)), or a single blank.
//   llama3  a case-insensitive contraction; else one optional non-letter, non-digit, non-CR/LF character
//           and a run of letters; else 1-3 numbers; else an optional U+0020, a run of other characters and
//           any CR/LF after it; else whitespace up to its last CR/LF; else the gpt2 whitespace rules.
//   qwen2   llama3 with single numbers instead of groups of up to three.
//
// Classes: \p{L} and \p{N} by general category, \s by the White_Space property (unicode.hpp). Under (?i),
// "s" also matches U+017F LATIN SMALL LETTER LONG S (its simple case folding); the other contraction
// letters fold only to their ASCII capitals. An ill-formed UTF-8 unit is one character of none of these
// classes (unicode.hpp states the policy). Every byte of the input lands in exactly one piece, in order.
// Cost: linear in the input; the whitespace rules look back at most one character.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "slim/text/unicode.hpp"

namespace slim::text {

/// The split patterns slim implements by hand (see the header comment for the exact expressions).
enum class split_pattern : std::uint8_t { gpt2, llama3, qwen2 };

/// The regular expression each pattern stands for, spelled as in HF `tokenizer.json` files and tiktoken.
inline constexpr std::string_view split_pattern_regex(split_pattern p) noexcept {
  switch (p) {
    case split_pattern::gpt2:
      return R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
    case split_pattern::llama3:
      return R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    case split_pattern::qwen2:
      return R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  }
  return {};
}

namespace detail {

/// Character class as the split patterns see it.
enum class char_class : std::uint8_t { letter, number, space, other };

struct char_info {
  char32_t cp;        // U+FFFD for an ill-formed unit
  std::uint32_t len;  // bytes
  char_class cls;
};

/// Classes of U+0000..U+007F, computed once from the Unicode tables.
struct ascii_classes {
  char_class cls[128];
  constexpr ascii_classes() : cls{} {
    for (char32_t c = 0; c < 128; ++c) {
      const auto cat = static_cast<unicode::general_category>(unicode::tables::latin1_category[c]);
      if (c == ' ' || (c >= 9 && c <= 13))
        cls[c] = char_class::space;
      else if (cat >= unicode::general_category::Lu && cat <= unicode::general_category::Lo)
        cls[c] = char_class::letter;
      else if (cat >= unicode::general_category::Nd && cat <= unicode::general_category::No)
        cls[c] = char_class::number;
      else
        cls[c] = char_class::other;
    }
  }
};
inline constexpr ascii_classes ascii_class_table{};

/// Class of a decoded code point.
inline char_class classify(char32_t cp) noexcept {
  if (cp < 128) return ascii_class_table.cls[cp];
  if (unicode::is_white_space(cp)) return char_class::space;
  const auto c = unicode::category(cp);
  if (c >= unicode::general_category::Lu && c <= unicode::general_category::Lo) return char_class::letter;
  if (c >= unicode::general_category::Nd && c <= unicode::general_category::No) return char_class::number;
  return char_class::other;
}

/// char_at for a byte >= 0x80 (kept out of line so that the ASCII path of char_at inlines).
[[gnu::noinline]] inline char_info char_at_multibyte(std::string_view s, std::size_t pos) noexcept {
  const auto u = unicode::decode_utf8(s, pos);
  if (u.status != unicode::utf8_status::ok) return {u.code_point, u.length, char_class::other};
  return {u.code_point, u.length, classify(u.code_point)};
}

/// Decodes and classifies the character at byte `pos` (pos < s.size()); ill-formed units are `other`.
inline char_info char_at(std::string_view s, std::size_t pos) noexcept {
  const auto b = static_cast<unsigned char>(s[pos]);
  if (b < 128) return {b, 1, ascii_class_table.cls[b]};
  return char_at_multibyte(s, pos);
}

/// Class of the character at `pos`, or `space`-free sentinel `other`-like "none" when pos is the end.
inline bool has_class(std::string_view s, std::size_t pos, char_class c) noexcept {
  return pos < s.size() && char_at(s, pos).cls == c;
}

/// End of the run of characters of class `c` that starts at `pos`.
inline std::size_t skip_class(std::string_view s, std::size_t pos, char_class c) noexcept {
  while (pos < s.size()) {
    const auto b = static_cast<unsigned char>(s[pos]);
    if (b < 128) {  // ASCII fast path
      if (ascii_class_table.cls[b] != c) break;
      ++pos;
      continue;
    }
    const auto ch = char_at_multibyte(s, pos);
    if (ch.cls != c) break;
    pos += ch.len;
  }
  return pos;
}

/// Length of a contraction ('s 't 're 've 'm 'll 'd) at `pos`, 0 if none. `fold` applies (?i).
inline std::size_t contraction_at(std::string_view s, std::size_t pos, bool fold) noexcept {
  if (s[pos] != '\'' || pos + 1 >= s.size()) return 0;
  auto is = [&](std::size_t at, char lower) {
    if (at >= s.size()) return false;
    const char c = s[at];
    return c == lower || (fold && c == static_cast<char>(lower - 'a' + 'A'));
  };
  const std::size_t p = pos + 1;
  if (is(p, 's') || is(p, 't') || is(p, 'm') || is(p, 'd')) return 2;
  if (fold && p + 1 < s.size() && static_cast<unsigned char>(s[p]) == 0xC5 &&
      static_cast<unsigned char>(s[p + 1]) == 0xBF)
    return 3;  // 'ſ (U+017F folds to s)
  if ((is(p, 'r') || is(p, 'v')) && is(p + 1, 'e')) return 3;
  if (is(p, 'l') && is(p + 1, 'l')) return 3;
  return 0;
}

/// Scans the whitespace run at `pos`: returns its end and sets `last` to the start of its last character
/// and `last_newline_end` to the end of its last \r or \n (0 when it has none).
inline std::size_t whitespace_run(std::string_view s, std::size_t pos, std::size_t& last,
                                  std::size_t& last_newline_end) noexcept {
  last = pos;
  last_newline_end = 0;
  while (pos < s.size()) {
    const auto ch = char_at(s, pos);
    if (ch.cls != char_class::space) break;
    last = pos;
    pos += ch.len;
    if (ch.cp == '\r' || ch.cp == '\n') last_newline_end = pos;
  }
  return pos;
}

/// End of the GPT-2 piece that starts at `pos` (pos < s.size()).
inline std::size_t gpt2_piece_end(std::string_view s, std::size_t pos) noexcept {
  if (const std::size_t n = contraction_at(s, pos, false)) return pos + n;
  const auto c0 = char_at(s, pos);
  std::size_t body = pos;  // where the class run starts (after an optional leading U+0020)
  char_class cls = c0.cls;
  if (c0.cp == ' ' && pos + 1 < s.size()) {
    const auto c1 = char_at(s, pos + 1);
    if (c1.cls != char_class::space) {
      body = pos + 1;
      cls = c1.cls;
    }
  }
  if (cls != char_class::space) return skip_class(s, body, cls);  // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
  std::size_t last, nl;
  const std::size_t end = whitespace_run(s, pos, last, nl);
  if (end == s.size()) return end;  // \s+(?!\S) at the end of the text
  if (last > pos) return last;      // \s+(?!\S): leave the last blank to the next piece
  return end;                       // \s+
}

/// End of the LLaMA-3 (digits = 3) or Qwen2 (digits = 1) piece that starts at `pos`.
inline std::size_t llama3_piece_end(std::string_view s, std::size_t pos, int digits) noexcept {
  if (const std::size_t n = contraction_at(s, pos, true)) return pos + n;
  const auto c0 = char_at(s, pos);
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c0.cls == char_class::letter) return skip_class(s, pos, char_class::letter);
  if (c0.cls != char_class::number && c0.cp != '\r' && c0.cp != '\n' && has_class(s, pos + c0.len, char_class::letter))
    return skip_class(s, pos + c0.len, char_class::letter);
  // \p{N}{1,digits}
  if (c0.cls == char_class::number) {
    std::size_t end = pos + c0.len;
    for (int k = 1; k < digits && end < s.size(); ++k) {
      const auto ch = char_at(s, end);
      if (ch.cls != char_class::number) break;
      end += ch.len;
    }
    return end;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  std::size_t body = pos;
  if (c0.cp == ' ' && has_class(s, pos + 1, char_class::other)) body = pos + 1;
  if (body > pos || c0.cls == char_class::other) {
    std::size_t end = skip_class(s, body, char_class::other);
    while (end < s.size() && (s[end] == '\r' || s[end] == '\n')) ++end;
    return end;
  }
  // c0 is whitespace: \s*[\r\n]+ , \s+(?!\S) , \s+
  std::size_t last, nl;
  const std::size_t end = whitespace_run(s, pos, last, nl);
  if (nl != 0) return nl;
  if (end == s.size()) return end;
  if (last > pos) return last;
  return end;
}

}  // namespace detail

/// Calls `emit(std::string_view piece)` for each piece of `text` under `pattern`, in order. The pieces
/// are non-empty and concatenate to `text`.
template <class Emit>
void split_text(split_pattern pattern, std::string_view text, Emit&& emit) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end;
    switch (pattern) {
      case split_pattern::gpt2:
        end = detail::gpt2_piece_end(text, pos);
        break;
      case split_pattern::llama3:
        end = detail::llama3_piece_end(text, pos, 3);
        break;
      default:
        end = detail::llama3_piece_end(text, pos, 1);
        break;
    }
    emit(text.substr(pos, end - pos));
    pos = end;
  }
}

}  // namespace slim::text
