// slim — the rationale parser: splits an LLM's answer into its reasoning steps (or its labelled blocks) and
// finds the catalogue items it mentions. It never throws on text: every input gives a `parsed_rationale`
// whose `status` says how much structure was found.
//
// Structure, tried in this order (the first that applies wins; lines are '\n'-separated, markdown
// decoration — '#', '>', '*', '_', a leading '[' or '(' — is skipped around markers):
//   1. step headers: "Step 1:", "**Step 2 -**", "### Step 3.", "[Step 1]" (the keyword tolerates one wrong
//      last letter: GPT-3 wrote "Steq 1:"); numbers must increase, a repeated or smaller number is text;
//   2. field blocks: upper-case "KEY: value" lines (agent4rec's LIKE / REASON / MOVIE, TASTE / REASON) when a
//      key repeats: each occurrence of the first repeated key, or a key already in the current block, opens
//      a block; keys that occur once (HIGH RATINGS:) are document fields; a value continues on the next
//      lines until a blank line or the next field;
//   3. label headers: "Preferences:", "**Recommended genres**", "### Recommendations" — a short label (at
//      most six words) whose words say the step: category / brand / genre -> 2, preference / summary /
//      taste / profile / interest -> 1, recommend / suggest / item / product / movie / game / title -> 3
//      (checked in that order); at least two, in increasing order;
//   4. numbered steps: "1." "1)" "(1)" lines — those that look like headings (end in ':' or bold, or start
//      with a label as in 3) numbered 1, 2, ...; else the least-indented numbered lines when they are
//      exactly 1..expected_steps (or restart at 1 after it: a list written flat) and are not all bare titles;
//   5. inline markers "(1) ... (2) ... (3)" in order;
//   6. field lines without a repeated key: one block.
// Otherwise the text is `unstructured`. Inside a step, a line beginning "Answer:" separates an echoed
// question from the answer (chained prompts such as NIR's). Status `complete`: steps 1..expected_steps all
// present, or every block holds every repeated key; `partial`: structure with gaps.
//
// Mentions (with a catalogue): list items ("1. X", "- X", "[1. X]", several "[n. X]" on one line) and the
// ';'-separated values of list fields (MOVIE:) are written titles: the whole item is looked up; failing
// that, its parts split at " - ", " – ", " — ", " -> ", " | " (adjacent parts re-joined where that matches,
// for titles that contain a dash), then "Title: description"; parts that match become mentions, parts that
// look like titles (every content word capitalised, at most 15 words) but match nothing become unmatched
// mentions, other parts are scanned as prose. Prose (every other line, and the values of other fields)
// is scanned for catalogue titles written out in full (title_catalogue::scan). The answer's parts an
// echoed question holds are not scanned.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slim/prompt/catalogue.hpp"

namespace slim::prompt {

/// Which structure the parser found.
enum class rationale_format : std::uint8_t { none, steps, blocks };

/// How complete that structure is.
enum class parse_status : std::uint8_t {
  complete,      ///< steps 1..expected_steps all present, or every block complete
  partial,       ///< structure found, with gaps (missing steps, blocks missing a key)
  unstructured,  ///< text, but no step or block structure
  empty,         ///< nothing but whitespace
};

inline const char* to_string(parse_status s) noexcept {
  switch (s) {
    case parse_status::complete:
      return "complete";
    case parse_status::partial:
      return "partial";
    case parse_status::unstructured:
      return "unstructured";
    case parse_status::empty:
      return "empty";
  }
  return "?";
}

/// One reasoning step.
struct rationale_step {
  int number = 0;                  ///< as written (1-based)
  std::string label;               ///< the rest of the header line when it is a heading ("Summary of preferences")
  std::string question;            ///< text before an "Answer:" line inside the step ("" when none)
  std::string text;                ///< the step's answer, trimmed
  std::size_t begin = 0, end = 0;  ///< bytes of the whole step (header included) in the input
  std::size_t text_begin = 0, text_end = 0;  ///< bytes of `text` in the input
};

/// One "KEY: value" field.
struct rationale_field {
  std::string key;                             ///< as written ("LIKE", "HIGH RATINGS")
  std::string value;                           ///< trimmed; continuation lines joined with '\n'
  std::size_t begin = 0, end = 0;              ///< bytes of the line(s) in the input
  std::size_t value_begin = 0, value_end = 0;  ///< bytes of the value in the input
};

/// A group of fields (one LIKE / REASON / MOVIE triple).
struct rationale_block {
  std::vector<rationale_field> fields;
  /// The first field with `key`, or nullptr.
  const rationale_field* find(std::string_view key) const noexcept {
    for (const auto& f : fields)
      if (f.key == key) return &f;
    return nullptr;
  }
};

/// Where a mention was found.
enum class mention_source : std::uint8_t { list_item, field_list, prose };

/// An item title the text mentions.
struct item_mention {
  std::string text;                ///< as written
  std::size_t begin = 0, end = 0;  ///< bytes in the input
  int step = 0;                    ///< step number it lies in (0: outside every step)
  int block = -1;                  ///< block index it lies in (-1: none)
  mention_source source = mention_source::prose;
  title_match match;  ///< kind none: no catalogue item reached the threshold

  bool matched() const noexcept { return match.kind != match_kind::none; }
};

/// What the parser found.
struct parsed_rationale {
  parse_status status = parse_status::empty;
  rationale_format format = rationale_format::none;
  std::vector<rationale_step> steps;
  std::vector<rationale_block> blocks;
  std::vector<rationale_field> fields;  ///< fields outside blocks (keys that occur once)
  std::string preamble;                 ///< text before the first step or field
  std::string trailer;                  ///< block format: text after / between fields that belongs to none
  std::vector<item_mention> mentions;

  /// The step numbered `n`, or nullptr.
  const rationale_step* step(int n) const noexcept {
    for (const auto& s : steps)
      if (s.number == n) return &s;
    return nullptr;
  }
};

/// Parser settings.
struct parse_options {
  int expected_steps = 3;        ///< SLIM: preferences, categories / genres, items
  double match_threshold = 0.8;  ///< lowest title_match score that counts as a match
  bool prose_mentions = true;    ///< scan prose for catalogue titles
  std::vector<std::string> list_fields = {"MOVIE",  "MOVIES",  "ITEM",     "ITEMS", "TITLE",
                                          "TITLES", "PRODUCT", "PRODUCTS", "GAME",  "GAMES"};
};

namespace detail {

struct line_span {
  std::size_t begin = 0, end = 0;  // without '\n' and a trailing '\r'
};

inline std::vector<line_span> split_lines(std::string_view t) {
  std::vector<line_span> lines;
  std::size_t b = 0;
  while (b <= t.size()) {
    std::size_t e = t.find('\n', b);
    if (e == std::string_view::npos) e = t.size();
    std::size_t ce = e;
    if (ce > b && t[ce - 1] == '\r') --ce;
    lines.push_back({b, ce});
    if (e == t.size()) break;
    b = e + 1;
  }
  return lines;
}

inline bool is_blank(std::string_view s) noexcept {
  for (const char c : s)
    if (c != ' ' && c != '\t' && c != '\r') return false;
  return true;
}

inline bool ascii_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool ascii_digit(char c) noexcept { return c >= '0' && c <= '9'; }
inline char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

/// Position after spaces and markdown decoration starting at `p` (below `e`).
inline std::size_t skip_decor(std::string_view t, std::size_t p, std::size_t e, bool brackets) noexcept {
  while (p < e) {
    const char c = t[p];
    if (c == ' ' || c == '\t' || c == '#' || c == '>' || c == '*' || c == '_' || c == '`' ||
        (brackets && (c == '[' || c == '(')))
      ++p;
    else
      break;
  }
  return p;
}

/// Range [b, e) trimmed of spaces.
inline void trim_range(std::string_view t, std::size_t& b, std::size_t& e) noexcept {
  while (b < e && (t[b] == ' ' || t[b] == '\t' || t[b] == '\n' || t[b] == '\r')) ++b;
  while (e > b && (t[e - 1] == ' ' || t[e - 1] == '\t' || t[e - 1] == '\n' || t[e - 1] == '\r')) --e;
}

/// Which SLIM step a heading names (0: none).
inline int classify_label(std::string_view label) {
  std::string l;
  for (const char c : label) l += lower(c);
  auto has = [&](std::string_view w) { return l.find(w) != std::string::npos; };
  if (has("categor") || has("brand") || has("genre")) return 2;
  if (has("preferen") || has("summar") || has("taste") || has("profile") || has("interest")) return 1;
  if (has("recommend") || has("suggest") || has("item") || has("product") || has("movie") || has("game") ||
      has("title"))
    return 3;
  return 0;
}

/// A label: 1..6 words of letters, spaces, '/', '&', '-', '\'' starting with an upper-case letter.
inline bool is_label(std::string_view s) {
  if (s.empty() || !(s[0] >= 'A' && s[0] <= 'Z')) return false;
  std::size_t words = 0;
  bool in = false;
  for (const char c : s) {
    if (ascii_alpha(c) || c == '\'' || c == '-') {
      if (!in) ++words;
      in = true;
    } else if (c == ' ' || c == '/' || c == '&') {
      in = false;
    } else {
      return false;
    }
  }
  return words >= 1 && words <= 6;
}

struct header {
  std::size_t line = 0;
  int number = 0;
  std::size_t text_begin = 0;  // where the step's text starts
  std::string label;
};

/// Heading text of [b, e): trimmed of spaces, '*', '_', '#', ':' at both ends.
inline std::string heading_text(std::string_view t, std::size_t b, std::size_t e) {
  while (b < e && (t[b] == ' ' || t[b] == '*' || t[b] == '_' || t[b] == '#' || t[b] == '\t')) ++b;
  while (e > b && (t[e - 1] == ' ' || t[e - 1] == '*' || t[e - 1] == '_' || t[e - 1] == ':' || t[e - 1] == '\t' ||
                   t[e - 1] == ']'))
    --e;
  return std::string(t.substr(b, e - b));
}

/// Whether the line [b, e) is a heading line (ends in ':' or '**', or is a markdown header).
inline bool heading_line(std::string_view t, std::size_t b, std::size_t e) {
  std::size_t tb = b, te = e;
  trim_range(t, tb, te);
  if (tb >= te) return false;
  if (t[tb] == '#') return true;
  if (t[te - 1] == ':') return true;
  if (te - tb >= 4 && t.substr(te - 2, 2) == "**") return true;
  if (te - tb >= 3 && t.substr(te - 3, 3) == "**:") return true;
  return false;
}

/// The number word or digits at p: 1..99, or one..nine; advances p.
inline int read_number(std::string_view t, std::size_t& p, std::size_t e) noexcept {
  if (p < e && ascii_digit(t[p])) {
    int n = 0;
    std::size_t k = p;
    while (k < e && ascii_digit(t[k]) && k - p < 2) n = n * 10 + (t[k++] - '0');
    if (k < e && ascii_digit(t[k])) return 0;
    p = k;
    return n;
  }
  static constexpr std::string_view words[] = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
  for (int i = 0; i < 9; ++i) {
    const std::string_view w = words[i];
    if (p + w.size() > e) continue;
    bool same = true;
    for (std::size_t j = 0; j < w.size() && same; ++j) same = lower(t[p + j]) == w[j];
    if (same && (p + w.size() == e || !ascii_alpha(t[p + w.size()]))) {
      p += w.size();
      return i + 1;
    }
  }
  return 0;
}

/// "Step 1:" and its variants at the start of line [b, e).
inline std::optional<header> step_header(std::string_view t, std::size_t b, std::size_t e, std::size_t line) {
  std::size_t p = skip_decor(t, b, e, true);
  std::size_t w = p;
  while (w < e && ascii_alpha(t[w])) ++w;
  if (w - p != 4 || lower(t[p]) != 's' || lower(t[p + 1]) != 't' || lower(t[p + 2]) != 'e') return std::nullopt;
  p = w;
  while (p < e && (t[p] == ' ' || t[p] == '\t')) ++p;
  const int n = read_number(t, p, e);
  if (n <= 0) return std::nullopt;
  bool closed = false;  // "[Step 1]", "(Step 1)": the bracket ends the marker
  while (p < e && (t[p] == '*' || t[p] == '_' || t[p] == ')' || t[p] == ']')) {
    closed = closed || t[p] == ')' || t[p] == ']';
    ++p;
  }
  while (p < e && t[p] == ' ') ++p;
  if (p < e && !closed) {
    const std::string_view rest = t.substr(p, e - p);
    if (rest[0] == ':' || rest[0] == '.' || rest[0] == ')' || rest[0] == '-')
      ++p;
    else if (rest.substr(0, 3) == "\xE2\x80\x93" || rest.substr(0, 3) == "\xE2\x80\x94")
      p += 3;
    else
      return std::nullopt;  // "Step 1 is to ..." is prose
  }
  header h;
  h.line = line;
  h.number = n;
  std::size_t lb = p, le = e;
  trim_range(t, lb, le);
  const bool heading = lb >= le || heading_line(t, b, e);
  if (heading) h.label = heading_text(t, lb, le);
  h.text_begin = heading ? e : lb;
  return h;
}

/// "Preferences:" / "**Recommended genres**" / "### Recommendations" at the start of line [b, e).
inline std::optional<header> label_header(std::string_view t, std::size_t b, std::size_t e, std::size_t line) {
  const std::size_t p = skip_decor(t, b, e, false);
  if (p >= e) return std::nullopt;
  std::size_t colon = p;
  while (colon < e && t[colon] != ':' && t[colon] != '\n') ++colon;
  std::size_t text_begin;
  std::string label;
  if (colon < e) {
    label = heading_text(t, p, colon);
    text_begin = colon + 1;
    std::size_t tb = text_begin, te = e;
    trim_range(t, tb, te);
    text_begin = tb >= te ? e : tb;
  } else if (heading_line(t, b, e) || (e - p >= 2 && t.substr(e - 2, 2) == "**")) {
    label = heading_text(t, p, e);
    text_begin = e;
  } else {
    return std::nullopt;
  }
  if (!is_label(label)) return std::nullopt;
  const int n = classify_label(label);
  if (n == 0) return std::nullopt;
  return header{line, n, text_begin, label};
}

struct numbered {
  std::size_t line = 0;
  int number = 0;
  std::size_t indent = 0;
  std::size_t text_begin = 0, text_end = 0;
};

/// "1. x", "1) x", "(1) x", "[1. x]" at the start of line [b, e).
inline std::optional<numbered> numbered_line(std::string_view t, std::size_t b, std::size_t e, std::size_t line) {
  std::size_t p = b, indent = 0;
  while (p < e && (t[p] == ' ' || t[p] == '\t')) {
    indent += t[p] == '\t' ? 4 : 1;
    ++p;
  }
  while (p + 1 < e && t[p] == '*' && t[p + 1] == '*') p += 2;  // "**1. Title**"
  char opener = 0;
  if (p < e && (t[p] == '(' || t[p] == '[')) opener = t[p++];
  if (p >= e || !ascii_digit(t[p])) return std::nullopt;
  int n = 0;
  std::size_t k = p;
  while (k < e && ascii_digit(t[k]) && k - p < 3) n = n * 10 + (t[k++] - '0');
  if (k < e && ascii_digit(t[k])) return std::nullopt;
  if (k >= e) return std::nullopt;
  const char c = t[k];
  if (opener == '(' ? c != ')' : opener == '[' ? (c != '.' && c != ']') : (c != '.' && c != ')')) return std::nullopt;
  ++k;
  if (k < e && t[k] != ' ' && t[k] != '\t' && t[k] != '*') return std::nullopt;  // "1.5", "3.14"
  std::size_t tb = k, te = e;
  trim_range(t, tb, te);
  if (n <= 0) return std::nullopt;
  return numbered{line, n, indent, tb, te};
}

struct field_line_info {
  std::string key;
  std::size_t value_begin = 0;
};

/// "KEY: value" (upper-case key of 2..24 characters) at the start of line [b, e).
inline std::optional<field_line_info> field_line(std::string_view t, std::size_t b, std::size_t e) {
  std::size_t p = b;
  while (p < e && (t[p] == ' ' || t[p] == '*')) ++p;
  const std::size_t kb = p;
  std::size_t letters = 0;
  while (p < e && p - kb <= 24 &&
         ((t[p] >= 'A' && t[p] <= 'Z') || t[p] == ' ' || t[p] == '_' || t[p] == '-' || ascii_digit(t[p]))) {
    letters += (t[p] >= 'A' && t[p] <= 'Z') ? 1 : 0;
    ++p;
  }
  if (letters < 2 || p >= e || t[p] != ':' || !(t[kb] >= 'A' && t[kb] <= 'Z')) return std::nullopt;
  std::size_t ke = p;
  while (ke > kb && (t[ke - 1] == ' ' || t[ke - 1] == '*')) --ke;
  ++p;
  while (p < e && t[p] == '*') ++p;
  if (p < e && t[p] != ' ' && t[p] != '\t') return std::nullopt;  // "TIME:12" is not a field
  return field_line_info{std::string(t.substr(kb, ke - kb)), p};
}

/// "- x", "* x", "• x", "+ x" at the start of [b, e): the item's start, or npos.
inline std::size_t bullet_item(std::string_view t, std::size_t b, std::size_t e) noexcept {
  std::size_t p = b;
  while (p < e && (t[p] == ' ' || t[p] == '\t')) ++p;
  std::size_t after = std::string_view::npos;
  if (p + 1 < e && (t[p] == '-' || t[p] == '*' || t[p] == '+') && (t[p + 1] == ' ' || t[p + 1] == '\t'))
    after = p + 2;
  else if (t.substr(p, 3) == "\xE2\x80\xA2")  // •
    after = p + 3;
  return after;
}

/// Whether `s` reads like a title: 1..15 words, every content word capitalised.
inline bool looks_like_title(std::string_view s) {
  const auto w = title_words(s);
  if (w.empty() || w.size() > 15) return false;
  for (std::size_t j = 0; j < w.size(); ++j) {
    if (j > 0 && title_catalogue::is_minor_word(w[j].text)) continue;
    if (!w[j].capitalised) {
      // a word of a caseless script (CJK) counts as capitalised
      const auto u = text::unicode::decode_utf8(s, w[j].begin);
      const auto c = text::unicode::category(u.code_point);
      if (c == text::unicode::general_category::Ll) return false;
      if (c == text::unicode::general_category::Lu || c == text::unicode::general_category::Lt) continue;
      if (u.code_point < 0x80) return false;
    }
  }
  return true;
}

/// The mention finder for one parse.
class mention_finder {
 public:
  mention_finder(std::string_view text, const title_catalogue* cat, const parse_options& opt,
                 std::vector<item_mention>& out)
      : t_(text), cat_(cat), opt_(opt), out_(out) {}

  int step = 0;
  int block = -1;

  /// Lines of [b, e): list items as written titles, other lines as prose.
  void region(std::size_t b, std::size_t e) {
    std::size_t p = b;
    while (p < e) {
      std::size_t le = t_.find('\n', p);
      if (le == std::string_view::npos || le > e) le = e;
      line(p, le);
      p = le + 1;
    }
  }

  /// One item of a list field (MOVIE: a; b; c), already cut at ';'.
  void field_item(std::size_t b, std::size_t e) { item(b, e, mention_source::field_list); }

  /// Prose in [b, e).
  void prose(std::size_t b, std::size_t e) {
    if (!cat_ || !opt_.prose_mentions || b >= e) return;
    for (const auto& m : cat_->scan(t_, b, e)) {
      if (m.match.score < opt_.match_threshold) continue;
      push(m.begin, m.end, mention_source::prose, m.match);
    }
  }

 private:
  void line(std::size_t b, std::size_t e) {
    // several "[n. x]" entries on one line (GPT-3 in NIR)
    std::vector<std::size_t> starts;
    for (std::size_t p = b; p + 2 < e; ++p)
      if (t_[p] == '[' && ascii_digit(t_[p + 1])) {
        std::size_t k = p + 1;
        while (k < e && ascii_digit(t_[k])) ++k;
        if (k < e && (t_[k] == '.' || t_[k] == ')')) starts.push_back(p);
      }
    if (starts.size() >= 2) {
      for (std::size_t i = 0; i < starts.size(); ++i) {
        std::size_t ib = starts[i] + 1;
        while (ib < e && ascii_digit(t_[ib])) ++ib;
        ++ib;  // '.' or ')'
        std::size_t ie = i + 1 < starts.size() ? starts[i + 1] : e;
        const std::size_t close = t_.rfind(']', ie == 0 ? 0 : ie - 1);
        if (close != std::string_view::npos && close >= ib) ie = close;
        item(ib, ie, mention_source::list_item);
      }
      return;
    }
    if (const auto n = numbered_line(t_, b, e, 0)) {
      item(n->text_begin, n->text_end, mention_source::list_item);
      return;
    }
    if (const std::size_t a = bullet_item(t_, b, e); a != std::string_view::npos) {
      item(a, e, mention_source::list_item);
      return;
    }
    prose(b, e);
  }

  /// Trims an item: spaces, markdown, quotes, brackets and trailing , . ; ]
  void clean(std::size_t& b, std::size_t& e) const {
    for (bool changed = true; changed && b < e;) {
      changed = false;
      const std::size_t ob = b, oe = e;
      trim_range(t_, b, e);
      while (b < e && (t_[b] == '*' || t_[b] == '_' || t_[b] == '"' || t_[b] == '[' || t_[b] == '`')) ++b;
      while (e > b && (t_[e - 1] == '*' || t_[e - 1] == '_' || t_[e - 1] == '"' || t_[e - 1] == ']' ||
                       t_[e - 1] == ',' || t_[e - 1] == '.' || t_[e - 1] == ';' || t_[e - 1] == '`'))
        --e;
      if (e - b >= 3 && t_.substr(b, 3) == "\xE2\x80\x9C") b += 3;      // “
      if (e - b >= 3 && t_.substr(e - 3, 3) == "\xE2\x80\x9D") e -= 3;  // ”
      if (e - b > 4 && t_.substr(b, 4) == "and ") b += 4;               // the last of "A, B and C"
      if (e - b > 3 && t_.substr(b, 3) == "or ") b += 3;
      changed = b != ob || e != oe;
    }
  }

  title_match lookup(std::size_t b, std::size_t e, bool fuzzy_ok = true) const {
    if (!cat_) return {};
    return cat_->find(t_.substr(b, e - b), opt_.match_threshold, fuzzy_ok);
  }

  void push(std::size_t b, std::size_t e, mention_source src, const title_match& m) {
    item_mention x;
    x.text.assign(t_.substr(b, e - b));
    x.begin = b;
    x.end = e;
    x.step = step;
    x.block = block;
    x.source = src;
    x.match = m;
    out_.push_back(std::move(x));
  }

  /// A part that did not match: an unmatched mention if it reads like a title, else prose.
  void leftover(std::size_t b, std::size_t e, mention_source src) {
    if (b >= e) return;
    const std::size_t before = out_.size();
    prose(b, e);
    if (out_.size() == before && looks_like_title(t_.substr(b, e - b))) push(b, e, src, {});
  }

  void item(std::size_t b, std::size_t e, mention_source src) {
    clean(b, e);
    if (b >= e) return;
    if (e - b > max_item_bytes) {  // no list of titles is this long: read it as prose (keeps the work linear)
      prose(b, e);
      return;
    }
    // parts at " - " and friends
    static constexpr std::string_view seps[] = {
        " - ", " \xE2\x80\x93 ", " \xE2\x80\x94 ", " -> ", " \xE2\x86\x92 ", " | ", ", ", "; "};
    std::vector<std::pair<std::size_t, std::size_t>> parts;  // [b, e) of each part
    std::size_t p = b, part_begin = b;
    while (p < e) {
      std::size_t hit = 0;
      for (const std::string_view s : seps)
        if (p + s.size() <= e && t_.substr(p, s.size()) == s) {
          hit = s.size();
          break;
        }
      if (hit) {
        parts.emplace_back(part_begin, p);
        p += hit;
        part_begin = p;
      } else {
        ++p;
      }
    }
    parts.emplace_back(part_begin, e);
    if (parts.size() >= 2) {
      // the longest run of parts (up to max_run) that matches exactly; failing that, one or two parts fuzzily
      // — two at a score of 0.9 or more ("Misérables, Les" against a catalogue's mojibake). A fuzzy match of a
      // longer run ("Title A - Title B" to "Title A") is the classic false positive.
      constexpr std::size_t max_run = 8;
      constexpr double two_part_fuzzy = 0.9;
      for (std::size_t i = 0; i < parts.size();) {
        std::size_t taken = 0;
        for (const bool fuzzy : {false, true}) {
          const std::size_t longest =
              fuzzy ? std::min<std::size_t>(2, parts.size() - i) : std::min(max_run, parts.size() - i);
          for (std::size_t len = longest; len >= 1 && !taken; --len) {
            std::size_t pb = parts[i].first, pe = parts[i + len - 1].second;
            clean(pb, pe);
            if (pb >= pe) continue;
            const auto m = lookup(pb, pe, fuzzy);
            if (m.kind == match_kind::none || (fuzzy && m.kind != match_kind::fuzzy)) continue;
            if (fuzzy && len == 2 && m.score < two_part_fuzzy) continue;
            push(pb, pe, src, m);
            taken = len;
          }
          if (taken) break;
        }
        if (!taken) {
          std::size_t pb = parts[i].first, pe = parts[i].second;
          clean(pb, pe);
          leftover(pb, pe, src);
          taken = 1;
        }
        i += taken;
      }
      return;
    }
    if (const auto m = lookup(b, e); m.kind != match_kind::none) {
      push(b, e, src, m);
      return;
    }
    // "Title: description"
    for (std::size_t c = b; c + 1 < e; ++c) {
      if (t_[c] != ':' || t_[c + 1] != ' ') continue;
      std::size_t lb = b, le = c;
      clean(lb, le);
      if (lb < le)
        if (const auto m = lookup(lb, le); m.kind != match_kind::none && m.kind != match_kind::fuzzy) {
          push(lb, le, src, m);
          prose(c + 1, e);
          return;
        }
    }
    leftover(b, e, src);
  }

  static constexpr std::size_t max_item_bytes = 4096;
  std::string_view t_;
  const title_catalogue* cat_;
  const parse_options& opt_;
  std::vector<item_mention>& out_;
};

/// Cuts "question ... Answer: answer" inside a step's text range.
inline void split_answer(std::string_view t, rationale_step& s) {
  const std::size_t b = s.text_begin, e = s.text_end;
  std::size_t p = b;
  while (p < e) {
    std::size_t le = t.find('\n', p);
    if (le == std::string_view::npos || le > e) le = e;
    std::size_t q = p;
    while (q < le && (t[q] == ' ' || t[q] == '\t' || t[q] == '*')) ++q;
    if (le - q >= 7 && lower(t[q]) == 'a' && lower(t[q + 1]) == 'n' && lower(t[q + 2]) == 's' &&
        lower(t[q + 3]) == 'w' && lower(t[q + 4]) == 'e' && lower(t[q + 5]) == 'r' &&
        (t[q + 6] == ':' ||
         (t[q + 6] == '*' && le - q >= 8 && t.substr(q + 6, 3).find(':') != std::string_view::npos))) {
      std::size_t qb = b, qe = p;
      trim_range(t, qb, qe);
      s.question.assign(t.substr(qb, qe - qb));
      std::size_t ab = t.find(':', q) + 1, ae = e;
      while (ab < ae && t[ab] == '*') ++ab;
      trim_range(t, ab, ae);
      s.text_begin = ab;
      s.text_end = ae;
      return;
    }
    p = le + 1;
  }
}

}  // namespace detail

/// Parses an LLM answer (see the file comment). `catalogue` may be null: then steps and blocks are found and
/// title-like list items are reported unmatched, but prose is not scanned.
inline parsed_rationale parse_rationale(std::string_view text, const title_catalogue* catalogue = nullptr,
                                        const parse_options& options = {}) {
  using namespace detail;
  parsed_rationale r;
  if (std::all_of(text.begin(), text.end(), [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; })) {
    r.status = parse_status::empty;
    return r;
  }
  const std::vector<line_span> lines = split_lines(text);
  mention_finder finder(text, catalogue, options, r.mentions);
  const int expected = std::max(1, options.expected_steps);

  // ---- steps from headers --------------------------------------------------------------------------
  auto build_steps = [&](const std::vector<header>& hs) {
    for (std::size_t i = 0; i < hs.size(); ++i) {
      rationale_step s;
      s.number = hs[i].number;
      s.label = hs[i].label;
      s.begin = lines[hs[i].line].begin;
      s.end = i + 1 < hs.size() ? lines[hs[i + 1].line].begin : text.size();
      s.text_begin = std::min(hs[i].text_begin, s.end);
      s.text_end = s.end;
      trim_range(text, s.text_begin, s.text_end);
      split_answer(text, s);
      s.text.assign(text.substr(s.text_begin, s.text_end - s.text_begin));
      r.steps.push_back(std::move(s));
    }
    std::size_t pb = 0, pe = r.steps.front().begin;
    trim_range(text, pb, pe);
    r.preamble.assign(text.substr(pb, pe - pb));
    r.format = rationale_format::steps;
    bool all = true;
    for (int n = 1; n <= expected; ++n) all = all && r.step(n) != nullptr;
    r.status = all ? parse_status::complete : parse_status::partial;
    finder.step = 0;
    finder.region(0, r.steps.front().begin);
    for (const auto& s : r.steps) {
      finder.step = s.number;
      finder.region(s.text_begin, s.text_end);
    }
  };
  auto accept_increasing = [](const std::vector<header>& cands) {
    std::vector<header> hs;
    int last = 0;
    for (const auto& h : cands)
      if (h.number > last) {
        hs.push_back(h);
        last = h.number;
      }
    return hs;
  };

  // 1. "Step N"
  {
    std::vector<header> cands;
    for (std::size_t i = 0; i < lines.size(); ++i)
      if (auto h = step_header(text, lines[i].begin, lines[i].end, i)) cands.push_back(std::move(*h));
    if (!cands.empty()) {
      build_steps(accept_increasing(cands));
      return r;
    }
  }

  // 2. field blocks (and 6. a single block)
  std::vector<rationale_field> fields;
  std::vector<std::pair<std::size_t, std::size_t>> loose;  // non-field text ranges (lines)
  {
    constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
    std::size_t open = none;  // the field whose value continues on the next line
    for (const auto& ln : lines) {
      const std::string_view s = text.substr(ln.begin, ln.end - ln.begin);
      if (auto f = field_line(text, ln.begin, ln.end)) {
        rationale_field x;
        x.key = f->key;
        x.begin = ln.begin;
        x.end = ln.end;
        x.value_begin = f->value_begin;
        x.value_end = ln.end;
        open = fields.size();
        fields.push_back(std::move(x));
      } else if (is_blank(s)) {
        open = none;
      } else if (open != none) {
        fields[open].end = ln.end;
        fields[open].value_end = ln.end;
      } else {
        loose.emplace_back(ln.begin, ln.end);
      }
    }
    for (auto& f : fields) {
      trim_range(text, f.value_begin, f.value_end);
      f.value.assign(text.substr(f.value_begin, f.value_end - f.value_begin));
    }
  }
  std::vector<std::string> repeated;  // keys that occur more than once, in order of first occurrence
  {
    std::map<std::string, std::size_t, std::less<>> count;
    for (const auto& f : fields) ++count[f.key];
    for (const auto& f : fields)
      if (count[f.key] >= 2 && std::find(repeated.begin(), repeated.end(), f.key) == repeated.end())
        repeated.push_back(f.key);
  }
  auto build_blocks = [&] {
    r.format = rationale_format::blocks;
    const bool single = repeated.empty();
    for (auto& f : fields) {
      const bool in_blocks = single || std::find(repeated.begin(), repeated.end(), f.key) != repeated.end();
      if (!in_blocks) {
        r.fields.push_back(f);
        continue;
      }
      const bool opens = r.blocks.empty() || (!single && f.key == repeated.front()) || r.blocks.back().find(f.key);
      if (opens) r.blocks.emplace_back();
      r.blocks.back().fields.push_back(f);
    }
    bool complete = !r.blocks.empty();
    for (const auto& b : r.blocks)
      for (const auto& k : repeated) complete = complete && b.find(k) != nullptr;
    r.status = complete ? parse_status::complete : parse_status::partial;
    const std::size_t first = fields.front().begin;
    for (const auto& [b, e] : loose) {
      std::string& dst = b < first ? r.preamble : r.trailer;
      if (!dst.empty()) dst += '\n';
      dst.append(text.substr(b, e - b));
    }
    // mentions
    for (const auto& [b, e] : loose) {
      finder.block = -1;
      finder.prose(b, e);
    }
    auto scan_field = [&](const rationale_field& f, int block) {
      finder.block = block;
      const bool list =
          std::find(options.list_fields.begin(), options.list_fields.end(), f.key) != options.list_fields.end();
      if (!list) {
        finder.prose(f.value_begin, f.value_end);
        return;
      }
      std::size_t p = f.value_begin;
      while (p <= f.value_end) {
        std::size_t q = text.find(';', p);
        if (q == std::string_view::npos || q > f.value_end) q = f.value_end;
        finder.field_item(p, q);
        p = q + 1;
      }
    };
    for (std::size_t k = 0; k < r.blocks.size(); ++k)
      for (const auto& f : r.blocks[k].fields) scan_field(f, static_cast<int>(k));
    for (const auto& f : r.fields) scan_field(f, -1);
    std::sort(r.mentions.begin(), r.mentions.end(),
              [](const item_mention& a, const item_mention& b) { return a.begin < b.begin; });
  };
  if (!repeated.empty()) {
    build_blocks();
    return r;
  }

  // 3. label headers
  {
    std::vector<header> cands;
    for (std::size_t i = 0; i < lines.size(); ++i)
      if (auto h = label_header(text, lines[i].begin, lines[i].end, i)) cands.push_back(std::move(*h));
    auto hs = accept_increasing(cands);
    if (hs.size() >= 2) {
      build_steps(hs);
      return r;
    }
  }

  // 4. numbered steps
  {
    std::vector<numbered> nums;
    for (std::size_t i = 0; i < lines.size(); ++i)
      if (auto n = numbered_line(text, lines[i].begin, lines[i].end, i)) nums.push_back(*n);
    auto to_header = [&](const numbered& n) {
      header h;
      h.line = n.line;
      h.number = n.number;
      h.text_begin = n.text_begin;
      const std::size_t e = lines[n.line].end;
      if (heading_line(text, n.text_begin, e)) {
        h.label = heading_text(text, n.text_begin, e);
        h.text_begin = e;
      } else {
        std::size_t c = n.text_begin;
        while (c < e && text[c] != ':') ++c;
        if (c < e) {
          const std::string lab = heading_text(text, n.text_begin, c);
          if (is_label(lab) && classify_label(lab)) {
            h.label = lab;
            h.text_begin = c + 1;
          }
        }
      }
      return h;
    };
    std::vector<header> heads;
    int last = 0;
    for (const auto& n : nums) {
      const header h = to_header(n);
      if (h.label.empty() || n.number != last + 1) continue;
      heads.push_back(h);
      last = n.number;
    }
    if (heads.size() >= 2) {
      build_steps(heads);
      return r;
    }
    if (!nums.empty()) {
      std::size_t min_indent = nums.front().indent;
      for (const auto& n : nums) min_indent = std::min(min_indent, n.indent);
      std::vector<numbered> top;
      for (const auto& n : nums)
        if (n.indent == min_indent) top.push_back(n);
      std::size_t run = 0;
      while (run < top.size() && top[run].number == static_cast<int>(run) + 1) ++run;
      const bool shaped = run == static_cast<std::size_t>(expected) && (top.size() == run || top[run].number == 1);
      bool all_titles = true;
      for (std::size_t k = 0; k < run && all_titles; ++k)
        all_titles = looks_like_title(text.substr(top[k].text_begin, top[k].text_end - top[k].text_begin));
      if (shaped && !all_titles) {
        std::vector<header> hs;
        for (std::size_t k = 0; k < run; ++k) hs.push_back(to_header(top[k]));
        build_steps(hs);
        return r;
      }
    }
  }

  // 5. inline "(1) ... (2) ... (3)"
  {
    std::vector<std::size_t> at;
    std::size_t from = 0;
    for (int n = 1; n <= expected; ++n) {
      const std::string mark = "(" + std::to_string(n) + ")";
      std::size_t p = from;
      for (;;) {
        p = text.find(mark, p);
        if (p == std::string_view::npos) break;
        if (p == 0 || text[p - 1] == ' ' || text[p - 1] == '\n' || text[p - 1] == '\t') break;
        p += mark.size();
      }
      if (p == std::string_view::npos) break;
      at.push_back(p);
      from = p + mark.size();
    }
    if (at.size() == static_cast<std::size_t>(expected) && expected >= 2) {
      r.format = rationale_format::steps;
      r.status = parse_status::complete;
      for (std::size_t k = 0; k < at.size(); ++k) {
        rationale_step s;
        s.number = static_cast<int>(k) + 1;
        s.begin = at[k];
        s.end = k + 1 < at.size() ? at[k + 1] : text.size();
        s.text_begin = at[k] + 2 + std::to_string(k + 1).size();
        s.text_end = s.end;
        trim_range(text, s.text_begin, s.text_end);
        s.text.assign(text.substr(s.text_begin, s.text_end - s.text_begin));
        r.steps.push_back(std::move(s));
      }
      std::size_t pb = 0, pe = at.front();
      trim_range(text, pb, pe);
      r.preamble.assign(text.substr(pb, pe - pb));
      finder.step = 0;
      finder.region(0, at.front());
      for (const auto& s : r.steps) {
        finder.step = s.number;
        finder.region(s.text_begin, s.text_end);
      }
      return r;
    }
  }

  // 6. fields without a repeated key: one block
  if (fields.size() >= 2) {
    build_blocks();
    return r;
  }

  r.status = parse_status::unstructured;
  r.format = rationale_format::none;
  std::size_t pb = 0, pe = text.size();
  trim_range(text, pb, pe);
  r.preamble.assign(text.substr(pb, pe - pb));
  finder.region(0, text.size());
  return r;
}

/// A parser bound to a catalogue and options.
class rationale_parser {
 public:
  explicit rationale_parser(const title_catalogue* catalogue = nullptr, parse_options options = {})
      : catalogue_(catalogue), options_(std::move(options)) {}
  parsed_rationale operator()(std::string_view text) const { return parse_rationale(text, catalogue_, options_); }
  const parse_options& options() const noexcept { return options_; }

 private:
  const title_catalogue* catalogue_;
  parse_options options_;
};

}  // namespace slim::prompt
