// slim — added and special tokens: finding them in text with HF `tokenizers`' priority rules.
//
// Rules (HF AddedVocabulary, reproduced):
//   * Two passes. First the tokens with `normalized == false` (special tokens usually) are found in the raw
//     text; then, in the gaps between them, the tokens with `normalized == true`. (slim supports no
//     normalizer yet, so both passes see the same bytes; the split into passes still decides priority.)
//   * Within a pass, matches are leftmost-longest and non-overlapping (Aho-Corasick LeftmostLongest); a
//     match that is then discarded (single_word, or a special token while special tokens are not split)
//     does not let a shorter or later overlapping match in — the search resumes after its end.
//   * single_word: the match counts only if neither the character before it nor the one after it is
//     alphanumeric (Alphabetic or \p{N}).
//   * lstrip / rstrip: the token absorbs the whitespace (White_Space) to its left / right.
// One deliberate difference: where rstrip has absorbed whitespace that the next match would start in,
// HF emits those bytes twice; slim drops the overlapping match so every byte is encoded once.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slim/text/detail/flat_map.hpp"
#include "slim/text/tokenizer.hpp"
#include "slim/text/unicode.hpp"

namespace slim::text {

/// An added token as HF `tokenizer.json` describes it ("added_tokens" entries).
struct added_token {
  std::string content;
  token_id id = 0;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

namespace detail {

/// Byte trie over the contents of a set of added tokens, for leftmost-longest search.
class token_trie {
 public:
  struct match {
    std::size_t begin, end;
    std::int32_t value;
  };

  bool empty() const noexcept { return terminal_.size() <= 1; }

  /// Adds `key` (non-empty) with `value`; a repeated key keeps its first value.
  void add(std::string_view key, std::int32_t value) {
    if (terminal_.empty()) terminal_.push_back(-1);
    std::int32_t node = 0;
    for (const char c : key) {
      const auto b = static_cast<unsigned char>(c);
      const std::uint64_t edge = (static_cast<std::uint64_t>(node) << 8) | b;
      if (const auto* next = edges_.find(edge)) {
        node = *next;
      } else {
        const auto fresh = static_cast<std::int32_t>(terminal_.size());
        terminal_.push_back(-1);
        edges_.insert_or_assign(edge, fresh);
        node = fresh;
      }
    }
    if (node != 0 && terminal_[static_cast<std::size_t>(node)] < 0) terminal_[static_cast<std::size_t>(node)] = value;
    first_[static_cast<unsigned char>(key[0]) >> 6] |= std::uint64_t{1} << (static_cast<unsigned char>(key[0]) & 63);
  }

  /// The leftmost-longest match that begins at or after `from`, if any.
  std::optional<match> find(std::string_view s, std::size_t from) const {
    if (empty()) return std::nullopt;
    for (std::size_t i = from; i < s.size(); ++i) {
      const auto b0 = static_cast<unsigned char>(s[i]);
      if (!((first_[b0 >> 6] >> (b0 & 63)) & 1)) continue;
      std::int32_t node = 0, best = -1;
      std::size_t best_end = 0;
      for (std::size_t j = i; j < s.size(); ++j) {
        const auto* next = edges_.find((static_cast<std::uint64_t>(node) << 8) | static_cast<unsigned char>(s[j]));
        if (!next) break;
        node = *next;
        if (terminal_[static_cast<std::size_t>(node)] >= 0) {
          best = terminal_[static_cast<std::size_t>(node)];
          best_end = j + 1;
        }
      }
      if (best >= 0) return match{i, best_end, best};
    }
    return std::nullopt;
  }

 private:
  std::vector<std::int32_t> terminal_;  // per node: value, or -1
  u64_map<std::int32_t> edges_;         // (node << 8 | byte) -> child
  std::uint64_t first_[4] = {0, 0, 0, 0};
};

/// The character that ends just before byte `pos` (pos > 0); an ill-formed byte reads as U+FFFD.
inline unicode::utf8_unit char_before(std::string_view s, std::size_t pos) noexcept {
  for (std::size_t back = 1; back <= 4 && back <= pos; ++back) {
    const auto b = static_cast<unsigned char>(s[pos - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const auto u = unicode::decode_utf8(s, pos - back);
    if (u.status == unicode::utf8_status::ok && u.length == back) return u;
    break;
  }
  return {unicode::replacement_character, 1, unicode::utf8_status::invalid};
}

inline bool is_word_char(const unicode::utf8_unit& u) noexcept {
  return u.status == unicode::utf8_status::ok && unicode::is_alphanumeric(u.code_point);
}
inline bool is_space_char(const unicode::utf8_unit& u) noexcept {
  return u.status == unicode::utf8_status::ok && unicode::is_white_space(u.code_point);
}

/// The added tokens of one pass, with HF's matching rules.
class added_token_pass {
 public:
  /// Adds a token; `index` is its position in the owner's list (the one `split` is given).
  void add(const added_token& token, std::int32_t index) { trie_.add(token.content, index); }
  bool empty() const noexcept { return trie_.empty(); }

  /// Splits `s`: calls on_text(std::string_view) for each gap (non-empty) and on_token(index) for each
  /// accepted token, in order. With `split_special` false, special tokens are not matched (HF's
  /// encode_special_tokens); other added tokens still are.
  template <class OnText, class OnToken>
  void split(std::string_view s, const std::vector<added_token>& tokens, bool split_special, OnText&& on_text,
             OnToken&& on_token) const {
    std::size_t consumed = 0, from = 0;
    while (from < s.size()) {
      const auto m = trie_.find(s, from);
      if (!m) break;
      from = m->end;
      const added_token& tok = tokens[static_cast<std::size_t>(m->value)];
      if (tok.special && !split_special) continue;
      std::size_t begin = m->begin, end = m->end;
      if (tok.single_word) {
        const bool space_before = begin == 0 || !is_word_char(char_before(s, begin));
        const bool space_after = end == s.size() || !is_word_char(unicode::decode_utf8(s, end));
        if (!space_before || !space_after) continue;
      }
      if (end <= consumed) continue;  // inside whitespace an rstrip already took
      if (tok.lstrip) {
        while (begin > consumed) {
          const auto u = char_before(s, begin);
          if (!is_space_char(u)) break;
          begin -= u.length;
        }
      }
      if (begin < consumed) begin = consumed;
      if (tok.rstrip) {
        while (end < s.size()) {
          const auto u = unicode::decode_utf8(s, end);
          if (!is_space_char(u)) break;
          end += u.length;
        }
      }
      if (begin > consumed) on_text(s.substr(consumed, begin - consumed));
      on_token(m->value);
      consumed = end;
    }
    if (consumed < s.size()) on_text(s.substr(consumed));
  }

 private:
  token_trie trie_;
};

}  // namespace detail
}  // namespace slim::text
