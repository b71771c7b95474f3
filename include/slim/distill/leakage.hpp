// slim — the leakage guard: removes every mention of a user's held-out (validation / test) items from a
// rationale before it is distilled or embedded, and counts what it removed.
// SPDX-License-Identifier: Apache-2.0
//
// A mention is a held-out item's title written anywhere in the text, compared case-insensitively (ASCII)
// at word boundaries; besides the title as catalogued, its core is also looked for: the title without
// trailing "(...)" / "[...]" groups ("Toy Story (1995)" -> "Toy Story") and, for a trailing article, the
// article moved to the front ("Sound of Music, The" -> "The Sound of Music"). An occurrence that continues
// into the longer title of another catalogue item ("Halo" inside "Halo 2") is that other item, not a mention.
// A list line ("1. X", "2) X", "(3) X", "[4. X]", "- X", "* X", "• X") holding a mention is dropped whole, and
// the numbered lines after it in the same list are renumbered (a gap would tell that a held-out item was
// there, and at which rank); in any other line the mention is cut out, with its separator when it stands in
// a ';'-separated list ("MOVIE: A; X; C" -> "MOVIE: A; C"). Not caught: misspelt or abbreviated titles, and
// item ids.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"
#include "slim/prompt/catalogue.hpp"
#include "slim/rec/dataset.hpp"

namespace slim::distill {

/// What scrub_held_out found and removed.
struct leak_report {
  std::int64_t mentions = 0;       ///< held-out title occurrences found (in list lines and elsewhere)
  std::int64_t lines_dropped = 0;  ///< list lines dropped whole because they held a mention
  std::int64_t cut = 0;            ///< occurrences cut out of other lines
  std::int64_t items = 0;          ///< distinct held-out items mentioned

  bool clean() const noexcept { return mentions == 0; }
  leak_report& operator+=(const leak_report& o) noexcept {
    mentions += o.mentions;
    lines_dropped += o.lines_dropped;
    cut += o.cut;
    items += o.items;
    return *this;
  }
  friend bool operator==(const leak_report&, const leak_report&) = default;
};

/// The held-out items of user `u`: valid[u] and test[u] where they are not 0.
inline std::vector<rec::item_id> held_out_items(const rec::sequence_split& s, index_t u) {
  require(u >= 0 && u < s.num_users(), "slim::distill::held_out_items", "user ", u, " is outside [0, ", s.num_users(),
          ")");
  std::vector<rec::item_id> out;
  for (const rec::item_id i : {s.valid[static_cast<std::size_t>(u)], s.test[static_cast<std::size_t>(u)]})
    if (i != 0 && std::find(out.begin(), out.end(), i) == out.end()) out.push_back(i);
  return out;
}

namespace detail {

inline char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
/// Letters, digits and every byte of a multi-byte UTF-8 sequence count as word characters.
inline bool word_byte(char c) noexcept {
  const auto b = static_cast<unsigned char>(c);
  return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b >= 0x80;
}

inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

/// The forms of a title searched for: as catalogued, without trailing groups, with a trailing article in front.
inline std::vector<std::string> title_forms(std::string_view title) {
  std::vector<std::string> forms;
  auto add = [&](std::string_view f) {
    f = trim(f);
    if (!f.empty() && std::find(forms.begin(), forms.end(), f) == forms.end()) forms.emplace_back(f);
  };
  add(title);
  std::string_view core = trim(title);
  while (!core.empty() && (core.back() == ')' || core.back() == ']')) {
    const char open = core.back() == ')' ? '(' : '[';
    const std::size_t at = core.rfind(open);
    if (at == std::string_view::npos || at == 0) break;
    core = trim(core.substr(0, at));
  }
  add(core);
  if (const std::size_t comma = core.rfind(", "); comma != std::string_view::npos) {
    const std::string_view article = core.substr(comma + 2);
    if (prompt::detail::is_trailing_article(article))
      add(std::string(article) + " " + std::string(core.substr(0, comma)));
  }
  // longer forms first, so "Toy Story (1995)" is taken whole before "Toy Story"
  std::sort(forms.begin(), forms.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return forms;
}

/// Whether `line` at [b, e) starts a list item (after spaces).
inline bool list_line(std::string_view line) noexcept {
  std::size_t p = 0;
  while (p < line.size() && (line[p] == ' ' || line[p] == '\t')) ++p;
  while (p + 1 < line.size() && line[p] == '*' && line[p + 1] == '*') p += 2;
  if (p >= line.size()) return false;
  if (line.substr(p, 3) == "\xE2\x80\xA2") return true;  // •
  if ((line[p] == '-' || line[p] == '*' || line[p] == '+') && p + 1 < line.size() && line[p + 1] == ' ') return true;
  if (line[p] == '(' || line[p] == '[') ++p;
  const std::size_t digits = p;
  while (p < line.size() && line[p] >= '0' && line[p] <= '9') ++p;
  return p > digits && p - digits <= 3 && p < line.size() && (line[p] == '.' || line[p] == ')');
}

/// Case-insensitive occurrence of `form` in `text` at `at` with word boundaries on both sides.
inline bool occurs_at(std::string_view text, std::size_t at, std::string_view form) noexcept {
  if (at + form.size() > text.size()) return false;
  for (std::size_t j = 0; j < form.size(); ++j)
    if (ascii_lower(text[at + j]) != ascii_lower(form[j])) return false;
  if (word_byte(form.front()) && at > 0 && word_byte(text[at - 1])) return false;
  const std::size_t e = at + form.size();
  if (word_byte(form.back()) && e < text.size() && word_byte(text[e])) return false;
  return true;
}

/// Whether the occurrence [b, e) of item `id` in `line` continues into another item's longer title.
inline bool longer_title(std::string_view line, std::size_t b, std::size_t e, rec::item_id id,
                         const prompt::title_catalogue& titles) {
  std::size_t p = e;
  for (int words = 0; words < 4 && p < line.size(); ++words) {
    while (p < line.size() && (line[p] == ' ' || line[p] == ':' || line[p] == '-' || line[p] == ',')) ++p;
    if (p >= line.size() || !word_byte(line[p])) return false;
    while (p < line.size() && (word_byte(line[p]) || line[p] == '\'' || line[p] == '.')) ++p;
    const prompt::title_match m = titles.find(line.substr(b, p - b), 1.0, false);
    if (m.kind == prompt::match_kind::exact && m.id != id && titles.title(m.id) != titles.title(id)) return true;
  }
  return false;
}

struct occurrence {
  std::size_t begin, end;
  rec::item_id id;
};

/// The held-out mentions in one line, left to right, without overlaps.
inline std::vector<occurrence> find_mentions(std::string_view line, std::span<const rec::item_id> held_out,
                                             const std::vector<std::vector<std::string>>& forms,
                                             const prompt::title_catalogue& titles) {
  std::vector<occurrence> found;
  for (std::size_t at = 0; at < line.size(); ++at) {
    if (at > 0 && word_byte(line[at - 1]) && word_byte(line[at])) continue;  // words start at a boundary
    bool hit = false;
    for (std::size_t k = 0; k < held_out.size() && !hit; ++k)
      for (const std::string& f : forms[k])
        if (occurs_at(line, at, f) && !longer_title(line, at, at + f.size(), held_out[k], titles)) {
          found.push_back({at, at + f.size(), held_out[k]});
          at += f.size() - 1;
          hit = true;
          break;
        }
  }
  return found;
}

inline std::vector<std::vector<std::string>> forms_of(std::span<const rec::item_id> held_out,
                                                      const prompt::title_catalogue& titles) {
  std::vector<std::vector<std::string>> forms;
  for (const rec::item_id i : held_out)
    forms.push_back(i == 0 ? std::vector<std::string>{} : title_forms(titles.title(i)));
  return forms;
}

/// Where the number of a numbered list line starts and ends ([b, e) of its digits), or {0, 0} for a line that
/// is not one (bullets included).
inline std::pair<std::size_t, std::size_t> list_number(std::string_view line) noexcept {
  if (!list_line(line)) return {0, 0};
  std::size_t p = 0;
  while (p < line.size() && (line[p] == ' ' || line[p] == '\t')) ++p;
  while (p + 1 < line.size() && line[p] == '*' && line[p + 1] == '*') p += 2;
  if (p < line.size() && (line[p] == '(' || line[p] == '[')) ++p;
  const std::size_t b = p;
  while (p < line.size() && line[p] >= '0' && line[p] <= '9') ++p;
  return {b, p};
}

template <class F>
void for_each_line(std::string_view text, F&& f) {
  std::size_t b = 0;
  while (b <= text.size()) {
    std::size_t e = text.find('\n', b);
    const bool last = e == std::string_view::npos;
    if (last) e = text.size();
    f(text.substr(b, e - b), last);
    if (last) break;
    b = e + 1;
  }
}

}  // namespace detail

/// Removes every mention of a held-out item from `rationale` (see the file comment) and counts them. Items
/// that are 0 or have no title in `titles` are skipped.
inline leak_report scrub_held_out(std::string& rationale, std::span<const rec::item_id> held_out,
                                  const prompt::title_catalogue& titles) {
  leak_report report;
  const auto forms = detail::forms_of(held_out, titles);
  std::vector<rec::item_id> named;
  std::string out;
  out.reserve(rationale.size());
  bool first = true;
  int shift = 0;  // numbered lines dropped so far in the current list
  detail::for_each_line(rationale, [&](std::string_view line, bool) {
    const auto found = detail::find_mentions(line, held_out, forms, titles);
    for (const auto& o : found)
      if (std::find(named.begin(), named.end(), o.id) == named.end()) named.push_back(o.id);
    report.mentions += static_cast<std::int64_t>(found.size());
    const auto [nb, ne] = detail::list_number(line);
    if (!found.empty() && detail::list_line(line)) {
      ++report.lines_dropped;
      shift += ne > nb;
      return;
    }
    if (!first) out += '\n';
    first = false;
    if (!detail::list_line(line)) shift = 0;  // a line that is not a list item ends the list
    std::size_t p = 0;
    if (ne > nb && shift > 0) {  // renumber: the list reads 1, 2, 3 ... without the dropped lines
      int n = 0;
      for (std::size_t k = nb; k < ne; ++k) n = n * 10 + (line[k] - '0');
      out.append(line.substr(0, nb));
      out += std::to_string(std::max(1, n - shift));
      p = ne;
    }
    for (const auto& o : found) {
      std::size_t e = o.end;
      out.append(line.substr(p, o.begin - p));
      // a title in a ';'-separated list ("MOVIE: A; X; C") takes its separator with it
      std::size_t k = out.size();
      while (k > 0 && out[k - 1] == ' ') --k;
      if (k > 0 && (out[k - 1] == ';' || out[k - 1] == ':')) {
        std::size_t q = e;
        while (q < line.size() && line[q] == ' ') ++q;
        if (q < line.size() && line[q] == ';') {
          e = q + 1;
          while (e < line.size() && line[e] == ' ') ++e;
        } else if (q == line.size() && out[k - 1] == ';') {
          out.resize(k - 1);
          e = q;
        }
      }
      // "like X and Y" -> "like and Y": one space where two would meet
      if ((out.empty() || out.back() == ' ') && e < line.size() && line[e] == ' ') ++e;
      p = e;
      ++report.cut;
    }
    out.append(line.substr(p));
  });
  report.items = static_cast<std::int64_t>(named.size());
  rationale = std::move(out);
  return report;
}

/// Whether `text` mentions any held-out item (the same matching as scrub_held_out).
inline bool mentions_any(std::string_view text, std::span<const rec::item_id> held_out,
                         const prompt::title_catalogue& titles) {
  const auto forms = detail::forms_of(held_out, titles);
  bool any = false;
  detail::for_each_line(text, [&](std::string_view line, bool) {
    any = any || !detail::find_mentions(line, held_out, forms, titles).empty();
  });
  return any;
}

}  // namespace slim::distill
