// slim — what a prompt may show of a user: the training prefix, item titles cleaned for one line, and
// titles shortened to a token count at a token boundary.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/text/tokenizer.hpp"
#include "slim/text/unicode.hpp"

namespace slim::prompt {

/// Item id, the same type as `slim::rec::item_id` (dense 1..num_items; 0 is padding).
using item_id = std::int32_t;

/// The items a prompt may show: a user's *training prefix*, oldest first. The builders take nothing else
/// of a user, so a validation or test item cannot reach a prompt unless the caller puts it here. Construct
/// it from the training part of a split (`rec::sequence_split::train[u]`) or with `leave_out_last`.
class training_prefix {
 public:
  training_prefix() = default;
  explicit training_prefix(std::span<const item_id> train) noexcept : items_(train) {}

  /// The prefix of a whole chronological sequence without its last `held_out` items (leave-one-out: 2, the
  /// validation and the test target). A sequence no longer than `held_out` gives an empty prefix.
  static training_prefix leave_out_last(std::span<const item_id> sequence, std::size_t held_out) noexcept {
    return training_prefix(sequence.first(sequence.size() > held_out ? sequence.size() - held_out : 0));
  }

  std::span<const item_id> items() const noexcept { return items_; }
  std::size_t size() const noexcept { return items_.size(); }
  bool empty() const noexcept { return items_.empty(); }

 private:
  std::span<const item_id> items_;
};

/// A callable giving an item's title: `titles(id)` converts to std::string_view (a std::string is copied
/// before the call's full expression ends, so returning by value is fine).
template <class F>
concept TitleLookup = requires(const F& f, item_id id) {
  { f(id) } -> std::convertible_to<std::string_view>;
};

/// Titles indexed by item id (index 0, the padding slot, unused); an id outside the table throws.
class title_table {
 public:
  title_table() = default;
  explicit title_table(std::vector<std::string> titles) : titles_(std::move(titles)) {}

  std::string_view operator()(item_id id) const {
    if (id <= 0 || static_cast<std::size_t>(id) >= titles_.size())
      throw error("title_table", "item " + std::to_string(id),
                  "no such item (ids run 1.." + std::to_string(titles_.empty() ? 0 : titles_.size() - 1) + ")");
    return titles_[static_cast<std::size_t>(id)];
  }
  std::size_t size() const noexcept { return titles_.size(); }

 private:
  std::vector<std::string> titles_;
};

/// A title made fit for one line of a prompt: ill-formed UTF-8 replaced (U+FFFD), control characters and
/// whitespace runs (newlines included) turned into single spaces, ends trimmed.
inline std::string one_line(std::string_view title) {
  const std::string valid = text::unicode::to_valid_utf8(title);
  std::string out;
  out.reserve(valid.size());
  bool space = false;
  std::size_t i = 0;
  while (i < valid.size()) {
    const auto u = text::unicode::decode_utf8(valid, i);
    const char32_t cp = u.code_point;
    const bool blank = cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || text::unicode::is_white_space(cp) ||
                       cp == 0x2028 || cp == 0x2029;
    if (blank) {
      space = !out.empty();
    } else {
      if (space) out += ' ';
      space = false;
      out.append(valid, i, u.length);
    }
    i += u.length;
  }
  return out;
}

/// Result of `truncate_title`.
struct truncated_title {
  std::string text;
  bool truncated = false;
  std::size_t tokens = 0;  ///< tokens of `text` encoded alone
};

/// Shortens `title` to at most `max_tokens` tokens (encoded alone, no special tokens): when it is longer, the
/// longest prefix that ends at a token boundary, decoded back to valid UTF-8 (a character the boundary split
/// is dropped), trailing spaces trimmed, then `ellipsis`, such that the whole still fits. When not even the
/// ellipsis fits, the result is the longest fitting prefix without it (possibly empty).
template <text::Tokenizer T>
truncated_title truncate_title(const T& tok, std::string_view title, std::size_t max_tokens,
                               std::string_view ellipsis = "...") {
  const text::encode_options opts{.add_special = false, .split_special = false};
  const std::vector<text::token_id> ids = tok.encode(title, opts);
  if (ids.size() <= max_tokens) return {std::string(title), false, ids.size()};
  auto prefix_text = [&](std::size_t m) {
    std::string s = tok.decode(std::span<const text::token_id>(ids.data(), m));
    s.resize(s.size() - text::unicode::incomplete_utf8_suffix(s));
    s = text::unicode::to_valid_utf8(s);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
    return s;
  };
  for (const bool with_ellipsis : {true, false}) {
    if (with_ellipsis && ellipsis.empty()) continue;
    for (std::size_t m = max_tokens + 1; m-- > 0;) {
      std::string cand = prefix_text(m);
      if (with_ellipsis) cand += ellipsis;
      const std::size_t n = tok.encode(cand, opts).size();
      if (n <= max_tokens) return {std::move(cand), true, n};
    }
  }
  return {std::string(), true, 0};
}

}  // namespace slim::prompt
