// slim — item titles as a catalogue that text can be matched against: title normalisation, exact and fuzzy
// lookup of a title someone wrote, and a scan of free text for the catalogue's titles.
//
// Normalisation (the same for catalogue titles and written ones):
//   * trailing groups in parentheses or brackets come off: a four-digit year (1870..2099) becomes the
//     title's year, anything else an alternative title ("Seven (Se7en)", "Run Lola Run (Lola rennt) (1998)");
//   * a trailing article after a comma moves to the front ("Sound of Music, The" -> "The Sound of Music",
//     "Misérables, Les" -> "Les Misérables"; English, French, Spanish, Italian, German articles);
//   * words: letters and digits, lower-cased, Latin-1 and Latin Extended-A letters folded to ASCII
//     ("é" -> "e", "ß" -> "ss"); apostrophes and periods inside a word are dropped ("Bug's" -> "bugs",
//     "L.A." -> "la"); "&" is the word "and"; the mojibake "ï¿½" and U+FFFD are dropped; every other
//     character separates words;
//   * a leading English article (the, a, an) is dropped when more words follow.
// Lookup of a written title: the normalised words equal a title's -> score 1 (a year that contradicts the
// catalogue's: 0.9); equal to an alternative title or to the part before a colon of exactly one item
// ("Speed 2" for "Speed 2: Cruise Control") -> 0.9; otherwise fuzzy: candidates by character-trigram Dice,
// score = 1 - Levenshtein distance / longer length over the normalised text (minus 0.1 for a contradicting
// year). Ties go to the lower item id. Results below the caller's threshold are "no match".
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "slim/prompt/history.hpp"
#include "slim/text/unicode.hpp"

namespace slim::prompt {

/// One normalised word of a text, with where it came from.
struct title_word {
  std::string text;       ///< normalised ("bugs")
  std::size_t begin = 0;  ///< byte range in the source
  std::size_t end = 0;
  bool capitalised = false;  ///< the source word starts with an upper-case letter or a digit
};

/// A title in normalised form.
struct title_key {
  std::vector<std::string> words;
  int year = 0;                                 ///< 0: none written
  std::vector<std::vector<std::string>> akas;   ///< alternative titles (from trailing parentheses)
  std::vector<std::vector<std::string>> parts;  ///< shorter names: before the first ':' or " - ", after the last " - "
  bool article_moved = false;                   ///< a trailing ", Article" was moved to the front
};

/// How a written title was matched.
enum class match_kind : std::uint8_t { none, exact, alias, fuzzy };

/// A catalogue match: item id (0: none) and score in [0, 1].
struct title_match {
  item_id id = 0;
  double score = 0;
  match_kind kind = match_kind::none;
  bool ambiguous = false;  ///< several items share the normalised title and the year did not decide
};

namespace detail {

/// ASCII letter of each Latin Extended-A code point U+0100..U+017F, 16 per row.
inline constexpr std::string_view latin_ext_a_fold =
    "aaaaaaccccccccdd"
    "ddeeeeeeeeeegggg"
    "gggghhhhiiiiiiii"
    "iiiijjkkklllllll"
    "lllnnnnnnnnnoooo"
    "oooorrrrrrssssss"
    "ssttttttuuuuuuuu"
    "uuuuwwyyyzzzzzzs";
static_assert(latin_ext_a_fold.size() == 0x80);

/// Appends the folded lower-case form of a letter or digit `cp` (spelled by `bytes`) to `out`.
inline void append_folded(std::string& out, char32_t cp, std::string_view bytes) {
  if (cp < 0x80) {
    out += static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
  } else if (cp >= 0xC0 && cp <= 0xFF) {
    // clang-format off
    static constexpr const char* latin1[64] = {  // U+00C0..U+00FF, 16 per row; "" for × and ÷ (never letters)
        "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
        "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "ss",
        "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
        "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "y"};
    // clang-format on
    out += latin1[cp - 0xC0];
  } else if (cp >= 0x100 && cp < 0x180) {
    out += latin_ext_a_fold[cp - 0x100];
  } else {
    out.append(bytes);
  }
}

inline bool is_apostrophe(char32_t cp) noexcept { return cp == '\'' || cp == 0x2019 || cp == 0x2018 || cp == 0x02BC; }

}  // namespace detail

/// The normalised words of `s[from, to)` (see the file comment), each with its byte range in `s` and its
/// capitalisation. `from` should not fall inside a word.
inline std::vector<title_word> title_words(std::string_view s, std::size_t from = 0,
                                           std::size_t to = std::string_view::npos) {
  using namespace text::unicode;
  std::vector<title_word> words;
  title_word cur;
  bool in_word = false;
  auto finish = [&] {
    if (in_word && !cur.text.empty()) words.push_back(std::move(cur));
    cur = {};
    in_word = false;
  };
  s = s.substr(0, std::min(to, s.size()));
  std::size_t i = std::min(from, s.size());
  while (i < s.size()) {
    const auto u = decode_utf8(s, i);
    const char32_t cp = u.status == utf8_status::ok ? u.code_point : replacement_character;
    const std::size_t len = u.length ? u.length : 1;
    // the mojibake of U+FFFD read as Latin-1 ("ï¿½") and U+FFFD itself: dropped, word continues
    if (cp == replacement_character) {
      i += len;
      continue;
    }
    if (s.substr(i, 6) == "\xC3\xAF\xC2\xBF\xC2\xBD") {
      i += 6;
      continue;
    }
    if (is_alphanumeric(cp) || is_mark(cp)) {
      if (!in_word) {
        in_word = true;
        cur.begin = i;
        const auto c = category(cp);
        cur.capitalised = c == general_category::Lu || c == general_category::Lt || c == general_category::Nd;
      }
      const bool combining_accent = cp >= 0x300 && cp < 0x370;  // "e" + U+0301 folds like "é"
      if (!combining_accent) detail::append_folded(cur.text, cp, s.substr(i, len));
      cur.end = i + len;
      i += len;
      continue;
    }
    if (in_word && (detail::is_apostrophe(cp) || cp == '.')) {  // inside a word: dropped, word continues
      const std::size_t next = i + len;
      if (next < s.size()) {
        const auto v = decode_utf8(s, next);
        if (v.status == utf8_status::ok && is_alphanumeric(v.code_point)) {
          i = next;
          continue;
        }
      }
    }
    finish();
    if (cp == '&') words.push_back({"and", i, i + 1, false});
    i += len;
  }
  finish();
  return words;
}

namespace detail {

inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

inline bool is_year(std::string_view s, int& year) noexcept {
  if (s.size() != 4) return false;
  int y = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    y = y * 10 + (c - '0');
  }
  if (y < 1870 || y > 2099) return false;
  year = y;
  return true;
}

inline bool is_trailing_article(std::string_view w) noexcept {
  std::string l;
  for (const char c : w) l += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  static constexpr std::string_view articles[] = {"the", "a",   "an",  "les", "la",  "le", "l'",  "il",
                                                  "el",  "los", "las", "lo",  "gli", "i",  "das", "der",
                                                  "die", "den", "une", "un",  "det", "de"};
  return std::find(std::begin(articles), std::end(articles), l) != std::end(articles);
}

/// Moves a trailing ", The" (any article above) to the front.
inline std::string front_article(std::string_view t) {
  const std::size_t comma = t.rfind(", ");
  if (comma == std::string_view::npos || comma == 0) return std::string(t);
  const std::string_view rest = trim(t.substr(comma + 2));
  if (rest.empty() || rest.find(' ') != std::string_view::npos || !is_trailing_article(rest)) return std::string(t);
  std::string out(rest);
  if (out.back() != '\'') out += ' ';
  out.append(t.substr(0, comma));
  return out;
}

inline std::vector<std::string> key_words(std::string_view t) {
  std::vector<std::string> w;
  for (auto& tw : title_words(front_article(trim(t)))) w.push_back(std::move(tw.text));
  while (w.size() > 1 && (w[0] == "the" || w[0] == "a" || w[0] == "an")) w.erase(w.begin());
  return w;
}

inline std::string join(const std::vector<std::string>& w) {
  std::string s;
  for (const auto& x : w) {
    if (!s.empty()) s += ' ';
    s += x;
  }
  return s;
}

/// Levenshtein distance over bytes.
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

/// Distinct byte trigrams of " " + s + " ".
inline std::vector<std::uint32_t> trigrams(std::string_view s) {
  std::string p = " ";
  p.append(s);
  p += ' ';
  std::vector<std::uint32_t> g;
  for (std::size_t i = 0; i + 3 <= p.size(); ++i)
    g.push_back(static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])) << 16 |
                static_cast<std::uint32_t>(static_cast<unsigned char>(p[i + 1])) << 8 |
                static_cast<unsigned char>(p[i + 2]));
  std::sort(g.begin(), g.end());
  g.erase(std::unique(g.begin(), g.end()), g.end());
  return g;
}

}  // namespace detail

/// The normalised form of a title (see the file comment).
inline title_key normalize_title(std::string_view title) {
  title_key k;
  std::string_view t = detail::trim(title);
  // a '(' never closed (a title cut short, as some of MovieLens-100K's are): the rest is an alternative title
  if (const std::size_t open = t.rfind('(');
      open != std::string_view::npos && open > 0 && t.find(')', open) == std::string_view::npos) {
    auto w = detail::key_words(t.substr(open + 1));
    if (!w.empty()) k.akas.push_back(std::move(w));
    t = detail::trim(t.substr(0, open));
  }
  for (int round = 0; round < 4 && !t.empty(); ++round) {
    const char close = t.back();
    if (close != ')' && close != ']') break;
    const char open = close == ')' ? '(' : '[';
    int depth = 0;
    std::size_t pos = std::string_view::npos;
    for (std::size_t i = t.size(); i-- > 0;) {
      if (t[i] == close)
        ++depth;
      else if (t[i] == open && --depth == 0) {
        pos = i;
        break;
      }
    }
    if (pos == std::string_view::npos || pos == 0) break;  // unbalanced, or the whole title is in parentheses
    const std::string_view inner = detail::trim(t.substr(pos + 1, t.size() - pos - 2));
    int year = 0;
    if (detail::is_year(inner, year)) {
      if (k.year == 0) k.year = year;
    } else if (!inner.empty()) {
      auto w = detail::key_words(inner);
      if (!w.empty()) k.akas.push_back(std::move(w));
    }
    t = detail::trim(t.substr(0, pos));
  }
  k.article_moved = detail::front_article(t) != t;
  k.words = detail::key_words(t);
  auto add_part = [&](std::string_view part) {
    auto w = detail::key_words(part);
    if (!w.empty() && w.size() < k.words.size()) k.parts.push_back(std::move(w));
  };
  if (const std::size_t colon = t.find(':'); colon != std::string_view::npos && colon > 0) add_part(t.substr(0, colon));
  if (const std::size_t dash = t.find(" - "); dash != std::string_view::npos && dash > 0) add_part(t.substr(0, dash));
  if (const std::size_t dash = t.rfind(" - "); dash != std::string_view::npos && dash > 0) add_part(t.substr(dash + 3));
  return k;
}

/// Item titles prepared for matching. Build once (`add` each item), then look up from many threads.
class title_catalogue {
 public:
  title_catalogue() = default;

  /// A catalogue of `titles(id)` for id in [first, last].
  template <TitleLookup F>
  static title_catalogue from_lookup(const F& titles, item_id first, item_id last) {
    title_catalogue c;
    for (item_id id = first; id <= last; ++id) c.add(id, std::string_view(titles(id)));
    return c;
  }

  /// Adds an item (a title that normalises to no words is skipped).
  void add(item_id id, std::string_view title) {
    title_key k = normalize_title(title);
    if (k.words.empty()) return;
    const auto e = static_cast<std::int32_t>(entries_.size());
    const std::string key = detail::join(k.words);
    auto [it, fresh] = exact_.try_emplace(key, std::vector<std::int32_t>{});
    it->second.push_back(e);
    if (fresh) {
      const auto kidx = static_cast<std::int32_t>(keys_.size());
      keys_.push_back(key);
      const auto grams = detail::trigrams(key);
      key_grams_.push_back(grams.size());
      for (const std::uint32_t g : grams) grams_[g].push_back(kidx);
      add_scan_key(k.words, kidx);
      // "Misérables, Les" is written that way in prose too: also scan for the words without the moved article
      if (k.article_moved && k.words.size() > 1 && detail::is_trailing_article(k.words.front()))
        add_scan_key(std::vector<std::string>(k.words.begin() + 1, k.words.end()), kidx);
    }
    for (const auto& aka : k.akas) alias_[detail::join(aka)].push_back(e);
    for (const auto& part : k.parts) alias_[detail::join(part)].push_back(e);
    entry_of_id_.try_emplace(id, entries_.size());
    entries_.push_back({id, k.year, std::string(title)});
  }

  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }

  /// The title an item was added with ("" when unknown).
  std::string_view title(item_id id) const {
    const auto it = entry_of_id_.find(id);
    return it == entry_of_id_.end() ? std::string_view() : std::string_view(entries_[it->second].title);
  }

  /// The best match for a written title, or kind none when nothing scores `threshold` or more. With
  /// `fuzzy` false only exact and alias matches count.
  title_match find(std::string_view written, double threshold = 0.8, bool fuzzy_ok = true) const {
    const title_key k = normalize_title(written);
    if (k.words.empty() || entries_.empty()) return {};
    const std::string key = detail::join(k.words);
    if (const auto it = exact_.find(key); it != exact_.end()) {
      title_match m = pick(it->second, k.year, match_kind::exact, 1.0);
      if (m.score >= threshold) return m;
    }
    if (const auto it = alias_.find(key); it != alias_.end()) {
      title_match m = pick(it->second, k.year, match_kind::alias, 0.9);
      if (!m.ambiguous && m.score >= threshold) return m;
    }
    if (!fuzzy_ok) return {};
    title_match m = fuzzy(key, k.year);
    return m.score >= threshold ? m : title_match{};
  }

  /// A catalogue title found in free text.
  struct text_match {
    std::size_t begin = 0, end = 0;  ///< byte range in the text (a leading article and a trailing "(year)" included)
    title_match match;
  };

  /// Scans free text for catalogue titles written out in full (exact normalised words, no fuzziness). To keep
  /// ordinary words and pieces of longer names from matching: every content word of the match must be
  /// capitalised (or a digit); the match may not cross a line, ';', '|', quotes, brackets or parentheses; it
  /// may not continue a run of capitalised words ("Eternal Sunshine ..." holds no "Sunshine", "World War II" no
  /// "War"; minor words such as "of" do not break the run); and a one-word title also needs three or more
  /// letters and either a year after it, or a capitalised article before it that does not start a sentence
  /// ("I loved The Rock"), or — without an article — a place other than the start of a sentence. Longest
  /// match first, left to right, no overlaps. Only [begin, end) of `text` is scanned; the rest is context.
  std::vector<text_match> scan(std::string_view text, std::size_t begin = 0,
                               std::size_t end = std::string_view::npos) const {
    std::vector<text_match> out;
    end = std::min(end, text.size());
    if (entries_.empty() || begin >= end) return out;
    // words of the range plus a little context on each side, cut at spaces
    std::size_t cb = begin > 96 ? begin - 96 : 0, ce = std::min(text.size(), end + 96);
    while (cb > 0 && text[cb - 1] != ' ' && text[cb - 1] != '\n') --cb;
    while (ce < text.size() && text[ce] != ' ' && text[ce] != '\n') ++ce;
    const std::vector<title_word> w = title_words(text, cb, ce);
    std::size_t i = 0;
    while (i < w.size() && w[i].begin < begin) ++i;
    while (i < w.size() && w[i].end <= end) {
      std::size_t start = i;
      bool article = false;
      if ((w[i].text == "the" || w[i].text == "a" || w[i].text == "an") && i + 1 < w.size() && w[i + 1].end <= end &&
          only_spaces(text, w[i].end, w[i + 1].begin)) {
        article = true;
        start = i + 1;
      }
      std::size_t best_len = 0;
      std::int32_t best_key = -1;
      if (const auto it = by_first_word_.find(w[start].text); it != by_first_word_.end()) {
        for (const std::int32_t sidx : it->second) {
          const auto& kw = scan_keys_[static_cast<std::size_t>(sidx)].words;
          const std::int32_t kidx = scan_keys_[static_cast<std::size_t>(sidx)].key;
          if (kw.size() <= best_len || start + kw.size() > w.size() || w[start + kw.size() - 1].end > end) continue;
          bool same = true;
          for (std::size_t j = 0; j < kw.size() && same; ++j) {
            same = w[start + j].text == kw[j];
            if (same && j > 0) same = gap_ok(text, w[start + j - 1].end, w[start + j].begin);
          }
          if (same) {
            best_len = kw.size();
            best_key = kidx;
          }
        }
      }
      if (best_key < 0 || !plausible(text, w, article ? i : start, start, best_len, article)) {
        ++i;
        continue;
      }
      const std::size_t last = start + best_len - 1;
      const std::size_t mb = w[article && w[i].capitalised ? i : start].begin;
      std::size_t me = w[last].end;
      int year = 0;
      if (const std::size_t a = article_after(text, me); a && a <= end) me = a;  // "Jungle Book, The"
      if (const std::size_t y = year_after(text, me, year); y && y <= end) {
        me = y;
      } else if (const std::size_t g = group_after(text, me); g && g <= end) {  // "(Shall We Dansu?) (1996)"
        if (const std::size_t y2 = year_after(text, g, year); y2 && y2 <= end) me = y2;
      }
      const auto& ids = exact_.at(keys_[static_cast<std::size_t>(best_key)]);
      out.push_back({mb, me, pick(ids, year, match_kind::exact, 1.0)});
      i = last + 1;
    }
    return out;
  }

  /// Function words that need not be capitalised inside a title.
  static bool is_minor_word(std::string_view w) noexcept {
    static constexpr std::string_view minor[] = {
        "a",  "an", "the", "of",  "and", "or",  "in", "on",  "at", "to", "for",  "with", "from", "by",  "vs",
        "de", "la", "le",  "les", "du",  "des", "el", "los", "et", "as", "into", "upon", "nor",  "but", "is"};
    return std::find(std::begin(minor), std::end(minor), w) != std::end(minor);
  }

 private:
  struct entry {
    item_id id;
    int year;
    std::string title;
  };

  /// Picks among entries sharing a key: those with the written year if any, then the lowest id.
  title_match pick(const std::vector<std::int32_t>& es, int year, match_kind kind, double score) const {
    std::vector<const entry*> pool;
    for (const std::int32_t e : es)
      if (year != 0 && entries_[static_cast<std::size_t>(e)].year == year)
        pool.push_back(&entries_[static_cast<std::size_t>(e)]);
    const bool year_found = !pool.empty();
    if (!year_found)
      for (const std::int32_t e : es) pool.push_back(&entries_[static_cast<std::size_t>(e)]);
    const entry* best =
        *std::min_element(pool.begin(), pool.end(), [](const entry* a, const entry* b) { return a->id < b->id; });
    title_match m;
    m.kind = kind;
    m.id = best->id;
    m.ambiguous = std::any_of(pool.begin(), pool.end(), [&](const entry* x) { return x->id != best->id; });
    m.score = (!year_found && year != 0 && best->year != 0) ? score - 0.1 : score;  // the year contradicts
    return m;
  }

  title_match fuzzy(const std::string& key, int year) const {
    const auto q = detail::trigrams(key);
    std::vector<std::uint32_t> shared(keys_.size(), 0);
    std::vector<std::int32_t> touched;
    for (const std::uint32_t g : q)
      if (const auto it = grams_.find(g); it != grams_.end())
        for (const std::int32_t kidx : it->second)
          if (shared[static_cast<std::size_t>(kidx)]++ == 0) touched.push_back(kidx);
    std::vector<std::pair<double, std::int32_t>> cand;
    for (const std::int32_t kidx : touched) {
      const std::uint32_t n = shared[static_cast<std::size_t>(kidx)];
      const double dice = 2.0 * n / static_cast<double>(q.size() + key_grams_[static_cast<std::size_t>(kidx)]);
      if (dice >= 0.3) cand.emplace_back(dice, kidx);
    }
    std::sort(cand.begin(), cand.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    if (cand.size() > 12) cand.resize(12);
    title_match best;
    for (const auto& [dice, kidx] : cand) {
      const std::string& k = keys_[static_cast<std::size_t>(kidx)];
      const double sim = 1.0 - static_cast<double>(detail::edit_distance(key, k)) /
                                   static_cast<double>(std::max(key.size(), k.size()));
      title_match m = pick(exact_.at(k), year, match_kind::fuzzy, sim);
      if (best.kind == match_kind::none || m.score > best.score || (m.score == best.score && m.id < best.id)) best = m;
    }
    return best;
  }

  static bool gap_ok(std::string_view text, std::size_t from, std::size_t to) noexcept {
    for (std::size_t i = from; i < to && i < text.size(); ++i) {
      const char c = text[i];
      if (c == '\n' || c == '\r' || c == ';' || c == '|' || c == '(' || c == ')' || c == '[' || c == ']' || c == '"')
        return false;
    }
    return true;
  }

  static bool only_spaces(std::string_view text, std::size_t from, std::size_t to) noexcept {
    for (std::size_t i = from; i < to && i < text.size(); ++i)
      if (text[i] != ' ') return false;
    return from < to;
  }

  /// Byte offset just after ", The" (a capitalised trailing article) following `pos`, or 0.
  static std::size_t article_after(std::string_view text, std::size_t pos) noexcept {
    if (pos + 3 > text.size() || text[pos] != ',' || text[pos + 1] != ' ') return 0;
    std::size_t e = pos + 2;
    if (e >= text.size() || !(text[e] >= 'A' && text[e] <= 'Z')) return 0;
    while (e < text.size() && ((text[e] >= 'a' && text[e] <= 'z') || (text[e] >= 'A' && text[e] <= 'Z'))) ++e;
    if (e < text.size() && text[e] == '\'') ++e;
    const std::string_view word = text.substr(pos + 2, e - pos - 2);
    if (!detail::is_trailing_article(word)) return 0;
    if (e < text.size() && text[e] != ' ' && text[e] != ',' && text[e] != '.' && text[e] != ')' && text[e] != '"' &&
        text[e] != ';' && text[e] != '\n')
      return 0;
    return e;
  }

  /// Byte offset just after a parenthesised group "( ... )" (no year, no newline, at most 80 bytes) following
  /// `pos` after spaces, or 0.
  static std::size_t group_after(std::string_view text, std::size_t pos) noexcept {
    while (pos < text.size() && text[pos] == ' ') ++pos;
    if (pos >= text.size() || text[pos] != '(') return 0;
    for (std::size_t e = pos + 1; e < text.size() && e < pos + 80; ++e) {
      if (text[e] == '\n' || text[e] == '(') return 0;
      if (text[e] == ')') return e + 1;
    }
    return 0;
  }

  /// Byte offset just after "(YYYY)" following `pos` (spaces allowed before it), or 0.
  static std::size_t year_after(std::string_view text, std::size_t pos, int& year) noexcept {
    while (pos < text.size() && text[pos] == ' ') ++pos;
    if (pos + 6 > text.size() || text[pos] != '(' || text[pos + 5] != ')') return 0;
    return detail::is_year(text.substr(pos + 1, 4), year) ? pos + 6 : 0;
  }

  /// Whether [b, e) stands in double quotes of its own ("Heat," and “Heat” included).
  static bool quoted(std::string_view text, std::size_t b, std::size_t e) noexcept {
    const bool open = (b >= 1 && text[b - 1] == '"') || (b >= 3 && text.substr(b - 3, 3) == "\xE2\x80\x9C");
    if (!open) return false;
    while (e < text.size() && (text[e] == ',' || text[e] == '.' || text[e] == '!' || text[e] == '?')) ++e;
    return (e < text.size() && text[e] == '"') || text.substr(e, 3) == "\xE2\x80\x9D";
  }

  static bool sentence_start(std::string_view text, std::size_t pos) noexcept {
    while (pos > 0) {
      const char c = text[pos - 1];
      if (c == ' ' || c == '\t' || c == '"' || c == '*' || c == '\'' || c == '(' || c == '[') {
        --pos;
        continue;
      }
      if (c == ')') {  // after a "(3)" marker
        std::size_t k = pos - 1;
        while (k > 0 && text[k - 1] >= '0' && text[k - 1] <= '9') --k;
        return k + 1 < pos && k > 0 && text[k - 1] == '(' && sentence_start(text, k - 1);
      }
      return c == '\n' || c == '.' || c == '!' || c == '?' || c == ':' || c == '-' || (c >= '0' && c <= '9');
    }
    return true;
  }

  /// Whether the words next to a match (separated by spaces, an apostrophe or a hyphen only) continue a run of
  /// capitalised words; `step` is -1 (before) or +1 (after); title connectors ("of", "the", "de") are looked
  /// through, list connectors ("and", "or") are not.
  static bool continues_run(std::string_view text, const std::vector<title_word>& w, std::size_t edge, int step) {
    static constexpr std::string_view connectors[] = {"of", "the", "a",  "an",  "de",  "la",  "le", "les",
                                                      "du", "des", "el", "los", "del", "von", "van"};
    auto joined = [&](std::size_t from, std::size_t to) {  // spaces, "' " (Singin' in) or one '-' (Pee-wee)
      if (from >= to || to > text.size()) return false;
      if (to == from + 1 && text[from] == '-') return true;
      if (text[from] == '\'') ++from;
      if (from >= to) return false;
      for (std::size_t i = from; i < to; ++i)
        if (text[i] != ' ') return false;
      return true;
    };
    std::size_t at = edge;
    for (int hops = 0; hops < 3; ++hops) {
      if (step < 0 ? at == 0 : at + 1 >= w.size()) return false;
      const std::size_t next = step < 0 ? at - 1 : at + 1;
      if (!(step < 0 ? joined(w[next].end, w[at].begin) : joined(w[at].end, w[next].begin))) return false;
      if (std::find(std::begin(connectors), std::end(connectors), w[next].text) == std::end(connectors))
        return w[next].capitalised && !is_minor_word(w[next].text) &&
               !(step < 0 && sentence_start(text, w[next].begin));  // "Watch Heat": a sentence's first word
      at = next;
    }
    return false;
  }

  bool plausible(std::string_view text, const std::vector<title_word>& w, std::size_t first, std::size_t start,
                 std::size_t len, bool article) const {
    std::size_t content = 0;
    for (std::size_t j = start; j < start + len; ++j) {
      if (is_minor_word(w[j].text) && j != start) continue;
      if (j > start && w[j].begin == w[j - 1].end + 1 && text[w[j - 1].end] == '-') continue;  // "Pee-wee's"
      if (!w[j].capitalised) return false;
      ++content;
    }
    if (content == 0) return false;
    const std::size_t last = start + len - 1;
    if (quoted(text, w[first].begin, w[last].end)) return true;  // "Bambi", “Heat”
    int year = 0;
    const bool has_year = year_after(text, w[last].end, year) != 0;
    if (continues_run(text, w, first, -1) || (!has_year && continues_run(text, w, last, +1))) return false;
    if (len > 1) return true;
    // one word: "Speed", "Heat", "Seven"
    if (has_year) return true;
    std::size_t letters = 0;
    for (const char c : w[start].text) letters += (c >= 'a' && c <= 'z') ? 1 : 0;
    if (letters < 3) return false;
    if (article) return w[first].capitalised && !sentence_start(text, w[first].begin);
    return !sentence_start(text, w[start].begin);
  }

  std::vector<entry> entries_;
  std::unordered_map<item_id, std::size_t> entry_of_id_;              // first entry of each id
  std::unordered_map<std::string, std::vector<std::int32_t>> exact_;  // key -> entries
  std::unordered_map<std::string, std::vector<std::int32_t>> alias_;  // aka / before-colon key -> entries
  std::vector<std::string> keys_;                                     // distinct keys
  struct scan_key {
    std::vector<std::string> words;
    std::int32_t key;
  };
  void add_scan_key(std::vector<std::string> words, std::int32_t key) {
    by_first_word_[words.front()].push_back(static_cast<std::int32_t>(scan_keys_.size()));
    scan_keys_.push_back({std::move(words), key});
  }
  std::vector<scan_key> scan_keys_;                                           // word sequences the prose scan looks for
  std::vector<std::size_t> key_grams_;                                        // distinct trigrams per key
  std::unordered_map<std::uint32_t, std::vector<std::int32_t>> grams_;        // trigram -> keys
  std::unordered_map<std::string, std::vector<std::int32_t>> by_first_word_;  // first word -> scan keys
};

}  // namespace slim::prompt
