// slim — WordPiece (BERT, all-MiniLM-L6-v2 and the other BERT-family encoders), matching HF `tokenizers` id for id.
//
// Encoding, in HF's order (BertWordPieceTokenizer / a tokenizer.json with a WordPiece model):
//   1. special and added tokens are cut out of the raw text (added_tokens.hpp has the priority rules); each
//      gap is normalised, then added tokens marked `normalized` are cut out of the normalised gap;
//   2. BertNormalizer, per character in this order: clean_text drops U+0000, U+FFFD and control characters
//      (`bert::is_control`) and turns whitespace (`bert::is_whitespace`) into U+0020; handle_chinese_chars
//      puts a space on each side of a CJK ideograph (`bert::is_chinese_char`); strip_accents (default: the
//      value of lowercase) decomposes canonically (NFD) and drops nonspacing marks (`bert::is_nonspacing_mark`);
//      lowercase applies each character's full lowercase mapping (normalize.hpp `append_lowercase`, so "İ"
//      becomes "i̇" and there is no Final_Sigma rule);
//   3. BertPreTokenizer: split on whitespace (dropped) and around each punctuation character (kept as a
//      word of its own: ASCII 33-47, 58-64, 91-96, 123-126 and `bert::is_punctuation`);
//   4. WordPiece: a word of more than max_input_chars_per_word characters (default 100) is [UNK]; otherwise
//      greedy longest-match-first from the left, pieces after the first spelled with the continuing-subword
//      prefix ("##"); a word with a position no vocabulary entry matches is [UNK] as a whole;
//   5. with `encode_options::add_special`, [CLS] ... [SEP] (BertProcessing, or the file's TemplateProcessing).
// HF's character classes are frozen at old Unicode versions — `unicode_categories` 0.1.1 (Unicode 8.0) for
// control, punctuation and nonspacing marks, `unicode-normalization-alignments` (Unicode 9.0) for NFD — and
// slim reproduces them through the bert_* tables of unicode_tables.hpp, checked against HF on every code point
// (tests/text/test_wordpiece.cpp). Whitespace and lower-casing use Unicode 15 (HF uses Rust's std, newer:
// the 55 code points Unicode 16 gave case mappings are left as they are here). The CJK ranges are HF's,
// which leave out U+2B820..U+2B91F.
//
// Invalid UTF-8: each ill-formed unit (unicode.hpp) is read as U+FFFD, which clean_text drops; without
// clean_text it stays U+FFFD, a letter-like character. `encode` never throws on text.
//
// Decoding (HF's WordPiece decoder): tokens joined with a space, except that a token starting with the
// prefix joins the previous one without it; the first token is written as it is. `decode_piece` is a token
// as it appears after another one (" word" or "piece"), so `stream_decoder` output starts with a space:
// strip it there. An added token matched after normalisation decodes as its normalised content ("New York"
// as "new york" under lower-casing), as in HF; `id_to_token` gives its content. HF's decoder also applies
// "clean-up" rewrites by default (" ." → ".", " n't" → "n't", " do not" → " don't", ...); slim's `decode`
// does only when asked (`cleanup = true`). Lower-casing, accent stripping and whitespace splitting lose
// information, so decode(encode(s)) == s holds only for text already in the form the normaliser makes.
//
// Loaders: `from_file` (a vocab.txt, a tokenizer.json, or a folder holding either), `from_vocab_text`,
// `from_hf_json`. Malformed input throws slim::error naming the file and the line or field.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/text/added_tokens.hpp"
#include "slim/text/detail/flat_map.hpp"
#include "slim/text/detail/json_fields.hpp"
#include "slim/text/normalize.hpp"
#include "slim/text/tokenizer.hpp"
#include "slim/text/unicode.hpp"
#include "slim/text/unicode_tables.hpp"

namespace slim::text {

// ---- HF's BERT character classes -----------------------------------------------------------------------

namespace bert {

/// BertNormalizer's whitespace: \t, \n, \r and the White_Space property (Rust's char::is_whitespace).
inline bool is_whitespace(char32_t cp) noexcept { return unicode::is_white_space(cp); }

/// BertNormalizer's control characters, which clean_text drops: general category Cc or Cf in Unicode 8.0,
/// or Co (private use) — except \t, \n and \r, which count as whitespace.
inline bool is_control(char32_t cp) noexcept {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  if (cp < 0x80) return cp < 0x20 || cp == 0x7F;
  if (unicode::category(cp) == unicode::general_category::Co) return true;
  return unicode::detail::in_ranges(unicode::tables::bert_control_ranges,
                                    std::size(unicode::tables::bert_control_ranges), cp);
}

/// ASCII 33-47, 58-64, 91-96, 123-126: every printable ASCII character but letters and digits.
constexpr bool is_ascii_punctuation(char32_t cp) noexcept {
  return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
}

/// BertPreTokenizer's punctuation: `is_ascii_punctuation`, or general category P* in Unicode 8.0.
inline bool is_punctuation(char32_t cp) noexcept {
  if (cp < 0x80) return is_ascii_punctuation(cp);
  return unicode::detail::in_ranges(unicode::tables::bert_punctuation_ranges,
                                    std::size(unicode::tables::bert_punctuation_ranges), cp);
}

/// The CJK ideograph blocks handle_chinese_chars pads with spaces (HF's list).
inline bool is_chinese_char(char32_t cp) noexcept {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/// strip_accents drops these after NFD: general category Mn in Unicode 8.0.
inline bool is_nonspacing_mark(char32_t cp) noexcept {
  if (cp < 0x300) return false;
  return unicode::detail::in_ranges(unicode::tables::bert_nonspacing_mark_ranges,
                                    std::size(unicode::tables::bert_nonspacing_mark_ranges), cp);
}

/// True for code points HF's normaliser (Unicode 9.0) neither decomposes nor reorders.
inline bool is_unnormalized(char32_t cp) noexcept {
  return unicode::detail::in_ranges(unicode::tables::bert_unnormalized_ranges,
                                    std::size(unicode::tables::bert_unnormalized_ranges), cp);
}

/// Canonical combining class as HF's normaliser sees it.
inline std::uint8_t combining_class(char32_t cp) noexcept {
  const std::uint8_t c = unicode::combining_class(cp);
  return c != 0 && is_unnormalized(cp) ? 0 : c;
}

/// Appends the canonical decomposition of `cp` as HF's normaliser makes it.
template <class U32String>
void append_decomposition(char32_t cp, U32String& out) {
  if (cp < 0xC0 || is_unnormalized(cp))
    out.push_back(cp);
  else
    unicode::append_canonical_decomposition(cp, out);
}

/// BertNormalizer's options (HF names and defaults).
struct normalizer_options {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  /// Unset: follow `lowercase` (HF's strip_accents = None).
  std::optional<bool> strip_accents{};
  bool lowercase = true;
};

/// HF's BertNormalizer as a function object; immutable after construction.
class normalizer {
 public:
  explicit normalizer(normalizer_options o = {})
      : clean_(o.clean_text),
        chinese_(o.handle_chinese_chars),
        strip_(o.strip_accents.value_or(o.lowercase)),
        lower_(o.lowercase) {
    for (unsigned b = 0; b < 0x80; ++b) {
      auto c = static_cast<char32_t>(b);
      std::int16_t v = static_cast<std::int16_t>(b);
      if (clean_ && (c == 0 || is_control(c)))
        v = -1;
      else if (clean_ && is_whitespace(c))
        v = ' ';
      else if (lower_ && c >= 'A' && c <= 'Z')
        v = static_cast<std::int16_t>(c + 32);
      ascii_[b] = v;
    }
  }

  bool clean_text() const noexcept { return clean_; }
  bool handle_chinese_chars() const noexcept { return chinese_; }
  bool strip_accents() const noexcept { return strip_; }
  bool lowercase() const noexcept { return lower_; }

  /// Writes the normalised form of `in` to `out` (replacing its contents); valid UTF-8 whatever `in` is.
  void operator()(std::string_view in, std::string& out) const {
    out.clear();
    out.reserve(in.size() + 8);
    // strip_accents: the current starter and the non-starters after it, less the nonspacing marks (dropping
    // them before the canonical ordering gives the same order of what stays, and keeps a long run cheap).
    std::u32string pending, parts;
    auto flush = [&] {
      if (pending.empty()) return;
      if (pending.size() > 1) sort_marks(pending);
      for (const char32_t c : pending) emit(c, out);
      pending.clear();
    };
    for (std::size_t i = 0; i < in.size();) {
      if (static_cast<unsigned char>(in[i]) < 0x80) {  // a run of ASCII: one table lookup a byte
        std::size_t end = i;
        bool kept = false;
        for (; end < in.size() && static_cast<unsigned char>(in[end]) < 0x80; ++end)
          kept |= ascii_[static_cast<unsigned char>(in[end])] >= 0;
        if (!kept) {  // all dropped: they vanish before NFD sees the text
          i = end;
          continue;
        }
        flush();
        const std::size_t old = out.size();
        out.resize(old + (end - i));
        char* w = out.data() + old;
        for (; i < end; ++i)
          if (const std::int16_t v = ascii_[static_cast<unsigned char>(in[i])]; v >= 0) *w++ = static_cast<char>(v);
        out.resize(static_cast<std::size_t>(w - out.data()));
        continue;
      }
      const auto u = unicode::decode_utf8(in, i);
      i += u.length;
      char32_t c = u.code_point;  // U+FFFD for an ill-formed unit
      if (clean_) {
        if (c == unicode::replacement_character || is_control(c)) continue;
        if (is_whitespace(c)) {
          flush();
          out += ' ';
          continue;
        }
      }
      const bool pad = chinese_ && is_chinese_char(c);
      if (pad) {
        flush();
        out += ' ';
      }
      if (!strip_) {
        emit(c, out);
      } else {
        parts.clear();
        append_decomposition(c, parts);
        for (const char32_t d : parts) {
          if (combining_class(d) == 0) flush();
          if (!is_nonspacing_mark(d)) pending.push_back(d);
        }
      }
      if (pad) {
        flush();
        out += ' ';
      }
    }
    flush();
  }

  /// The normalised form of `in`.
  std::string operator()(std::string_view in) const {
    std::string out;
    (*this)(in, out);
    return out;
  }

 private:
  /// Canonical ordering of one starter (or leading marks) and the non-starters after it.
  static void sort_marks(std::u32string& s) {
    const auto first = s.begin() + (combining_class(s.front()) == 0 ? 1 : 0);
    if (s.end() - first < 2) return;
    std::stable_sort(first, s.end(), [](char32_t x, char32_t y) { return combining_class(x) < combining_class(y); });
  }
  /// Appends `c`, lower-cased when asked.
  void emit(char32_t c, std::string& out) const {
    if (lower_)
      unicode::append_lowercase_utf8(c, out);
    else
      unicode::append_utf8(out, c);
  }

  bool clean_, chinese_, strip_, lower_;
  std::array<std::int16_t, 0x80> ascii_{};  // per ASCII byte: the byte to write, or -1 to drop it
};

/// BertPreTokenizer: calls `emit(std::string_view word)` for each word of `text` (valid UTF-8): runs of
/// characters between whitespace and punctuation, and each punctuation character alone.
template <class Emit>
void pre_tokenize(std::string_view text, Emit&& emit) {
  enum : std::uint8_t { word = 0, space = 1, punct = 2 };
  static constexpr auto ascii = [] {
    std::array<std::uint8_t, 128> a{};
    for (char32_t c = 0; c < 128; ++c)
      a[c] = c == ' ' || (c >= 9 && c <= 13) ? space : is_ascii_punctuation(c) ? punct : word;
    return a;
  }();
  std::size_t start = 0, i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    std::uint8_t cls;
    std::size_t len = 1;
    if (b < 0x80) {
      cls = ascii[b];
    } else {
      const auto u = unicode::decode_utf8(text, i);
      len = u.length;
      cls = is_whitespace(u.code_point) ? space : is_punctuation(u.code_point) ? punct : word;
    }
    if (cls != word) {
      if (i > start) emit(text.substr(start, i - start));
      if (cls == punct) emit(text.substr(i, len));
      start = i + len;
    }
    i += len;
  }
  if (i > start) emit(text.substr(start, i - start));
}

}  // namespace bert

namespace detail {

/// Byte trie for the longest vocabulary entry that starts a string (WordPiece's greedy match, in time
/// linear in the match rather than quadratic). Built with `add`, then `freeze` lays each node's children
/// out side by side (sorted by byte) for the lookups.
class prefix_trie {
 public:
  /// Adds `key` (non-empty) with `id`; a repeated key keeps its first id. Only before `freeze`.
  void add(std::string_view key, token_id id) {
    if (value_.empty()) new_node();
    std::int32_t node = 0;
    for (const char c : key) {
      const auto b = static_cast<unsigned char>(c);
      std::int32_t next = -1;
      for (const auto& [label, child] : building_[static_cast<std::size_t>(node)])
        if (label == b) next = child;
      if (next < 0) {
        next = new_node();
        building_[static_cast<std::size_t>(node)].emplace_back(b, next);
      }
      node = next;
    }
    if (value_[static_cast<std::size_t>(node)] < 0) value_[static_cast<std::size_t>(node)] = id;
  }

  /// Lays out the children for lookups; call once after the last `add`.
  void freeze() {
    root_.fill(-1);
    nodes_.assign(value_.size() + 1, node{});
    edges_.clear();
    for (std::size_t n = 0; n < building_.size(); ++n) {
      auto& kids = building_[n];
      std::sort(kids.begin(), kids.end());
      nodes_[n] = {value_[n], static_cast<std::uint32_t>(edges_.size())};
      for (const auto& [label, child] : kids) {
        edges_.push_back(static_cast<std::uint32_t>(label) << 24 | static_cast<std::uint32_t>(child));
        if (n == 0) root_[label] = child;
      }
    }
    nodes_[building_.size()] = {-1, static_cast<std::uint32_t>(edges_.size())};
    building_.clear();
    building_.shrink_to_fit();
  }

  /// Length of the longest key that is a prefix of `s` (0 if none) and its id.
  std::size_t longest_prefix(std::string_view s, token_id& id) const noexcept {
    if (nodes_.empty() || s.empty()) return 0;
    std::size_t best = 0;
    std::int32_t cur = root_[static_cast<unsigned char>(s[0])];
    for (std::size_t i = 1; cur > 0; ++i) {
      const node& nd = nodes_[static_cast<std::size_t>(cur)];
      if (nd.value >= 0) {
        best = i;
        id = nd.value;
      }
      if (i == s.size()) break;
      const std::uint32_t b = static_cast<unsigned char>(s[i]);
      const std::uint32_t* begin = edges_.data() + nd.first;
      const std::uint32_t* end = edges_.data() + nodes_[static_cast<std::size_t>(cur) + 1].first;
      const std::uint32_t* hit = std::lower_bound(begin, end, b << 24);  // edges sort by label, then child
      cur = hit != end && (*hit >> 24) == b ? static_cast<std::int32_t>(*hit & 0xFFFFFFu) : -1;
    }
    return best;
  }

 private:
  struct node {
    token_id value = -1;      // the id of the key ending here, or -1
    std::uint32_t first = 0;  // this node's edges are edges_[first, next node's first)
  };
  std::int32_t new_node() {
    if (value_.size() >= (std::size_t{1} << 24))
      throw error("wordpiece", "", "vocabulary too large (more than 16M distinct token prefixes)");
    value_.push_back(-1);
    building_.emplace_back();
    return static_cast<std::int32_t>(value_.size() - 1);
  }
  std::vector<token_id> value_;                                               // while adding
  std::vector<std::vector<std::pair<std::uint8_t, std::int32_t>>> building_;  // children while adding
  std::array<std::int32_t, 256> root_{};
  std::vector<node> nodes_;
  std::vector<std::uint32_t> edges_;  // label << 24 | child
};

}  // namespace detail

// ---- the tokenizer ---------------------------------------------------------------------------------------

/// Options for a WordPiece tokenizer built from a vocab.txt (HF BertWordPieceTokenizer's, same defaults).
struct wordpiece_options {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  /// Unset: follow `lowercase`.
  std::optional<bool> strip_accents{};
  bool lowercase = true;
  std::string unk_token = "[UNK]";
  std::string sep_token = "[SEP]";
  std::string cls_token = "[CLS]";
  std::string pad_token = "[PAD]";
  std::string mask_token = "[MASK]";
  std::string continuing_subword_prefix = "##";
  std::size_t max_input_chars_per_word = 100;
};

/// WordPiece tokenizer. Immutable after loading; const member functions are safe to call from many threads.
class wordpiece {
 public:
  /// Largest vocabulary a file may define.
  static constexpr std::int64_t max_token_id = std::int64_t{1} << 24;

  /// Loads from a path: a tokenizer.json file (model type WordPiece), a vocab.txt file, or a folder holding
  /// tokenizer.json (preferred) or vocab.txt. For a vocab.txt, a tokenizer_config.json beside it sets
  /// do_lower_case, strip_accents, tokenize_chinese_chars and the special token names, as HF's
  /// BertTokenizerFast reads them; otherwise `wordpiece_options{}` applies.
  static wordpiece from_file(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path p(path);
    if (fs::is_directory(p, ec)) {
      const auto json_path = (p / "tokenizer.json").string();
      if (detail::file_exists(json_path)) return from_file(json_path);
      const auto vocab = (p / "vocab.txt").string();
      if (detail::file_exists(vocab)) return from_file(vocab);
      throw error(path, "", "folder holds neither tokenizer.json nor vocab.txt");
    }
    const std::string text = detail::read_file(path);
    if (p.extension() == ".json") return from_hf_json(text, path);
    wordpiece_options options;
    const auto config = (p.parent_path() / "tokenizer_config.json").string();
    if (detail::file_exists(config)) read_tokenizer_config(detail::read_file(config), config, options);
    return from_vocab_text(text, path, options);
  }

  /// Loads a vocab.txt with explicit options (no tokenizer_config.json is read).
  static wordpiece from_vocab_file(const std::string& path, const wordpiece_options& options = {}) {
    return from_vocab_text(detail::read_file(path), path, options);
  }

  /// Builds from the text of a BERT vocab.txt: one token per line, id = line index (from 0), trailing
  /// whitespace and a CR before the newline removed. An empty line, a token listed twice or a line that
  /// is not UTF-8 is an error naming `where` and the line; so is a vocabulary without `options.unk_token`.
  /// The five special tokens that are present become special added tokens, and [CLS] / [SEP] the
  /// post-processor's tokens (HF's BertWordPieceTokenizer).
  static wordpiece from_vocab_text(std::string_view text, const std::string& where,
                                   const wordpiece_options& options = {}) {
    wordpiece t;
    t.norm_ =
        bert::normalizer({options.clean_text, options.handle_chinese_chars, options.strip_accents, options.lowercase});
    t.has_normalizer_ = true;
    t.prefix_ = options.continuing_subword_prefix;
    t.decoder_prefix_ = options.continuing_subword_prefix;
    t.max_chars_ = options.max_input_chars_per_word;
    std::size_t line_no = 0, pos = 0;
    while (pos < text.size()) {
      std::size_t eol = text.find('\n', pos);
      if (eol == std::string_view::npos) eol = text.size();
      std::string_view line = text.substr(pos, eol - pos);
      pos = eol + 1;
      ++line_no;
      const std::string place = detail::cat("line ", line_no);
      if (!unicode::is_valid_utf8(line)) throw error(where, place, "not valid UTF-8");
      line = trim_end(line);
      if (line.empty()) throw error(where, place, "empty token");
      if (static_cast<std::int64_t>(line_no) > max_token_id) throw error(where, place, "too many tokens");
      const auto id = static_cast<token_id>(line_no - 1);
      if (const auto* old = t.vocab_.find(line))
        throw error(where, place, detail::cat("token ", detail::quote_token(line), " is already on line ", *old + 1));
      t.put_model_token(line, id);
    }
    if (t.entries_.empty()) throw error(where, "", "empty vocabulary");
    const auto* unk = t.vocab_.find(options.unk_token);
    if (!unk)
      throw error(
          where, "",
          detail::cat("the unknown token ", detail::quote_token(options.unk_token), " is not in the vocabulary"));
    t.unk_ = *unk;
    const detail::json_reader r(where);
    for (const std::string* name :
         {&options.unk_token, &options.sep_token, &options.cls_token, &options.pad_token, &options.mask_token}) {
      if (const auto* id = t.vocab_.find(*name); id && !t.added_by_content_.find(*name))
        t.add_added_token({*name, *id, true, false, false, false, false}, r, "");
    }
    const auto* cls = t.vocab_.find(options.cls_token);
    const auto* sep = t.vocab_.find(options.sep_token);
    if (cls && sep) {
      t.post_prefix_ = {*cls};
      t.post_suffix_ = {*sep};
      t.bos_ = *cls;
      t.eos_ = *sep;
    }
    t.finish();
    return t;
  }

  /// Builds from the text of an HF tokenizer.json whose model is WordPiece; `where` names it in errors.
  /// Supported: normalizer null or BertNormalizer; pre_tokenizer BertPreTokenizer; post_processor null,
  /// BertProcessing or a TemplateProcessing; decoder null (tokens joined by spaces) or WordPiece; added
  /// tokens. Truncation and padding settings are ignored (encode does neither).
  static wordpiece from_hf_json(std::string_view json_text, const std::string& where) {
    wordpiece t;
    t.load_hf_json(detail::parse_json(json_text, where), detail::json_reader(where));
    return t;
  }

  // ---- Tokenizer ---------------------------------------------------------------------------------------

  /// Token ids of `text` (see the file comment; never throws on text).
  std::vector<token_id> encode(std::string_view text, encode_options options = {}) const {
    std::vector<token_id> out;
    encode_into(text, out, options);
    return out;
  }

  /// Appends the ids of `text` to `out`.
  void encode_into(std::string_view text, std::vector<token_id>& out, encode_options options = {}) const {
    std::string norm;
    if (options.add_special) out.insert(out.end(), post_prefix_.begin(), post_prefix_.end());
    auto on_token = [&](std::int32_t k) { out.push_back(added_[static_cast<std::size_t>(k)].id); };
    auto on_gap = [&](std::string_view gap) {
      normalize(gap, norm);
      if (second_pass_.empty()) {
        encode_normalized(norm, out);
        return;
      }
      second_pass_.split(
          norm, normalized_added_, options.split_special, [&](std::string_view seg) { encode_normalized(seg, out); },
          on_token);
    };
    if (first_pass_.empty())
      on_gap(text);
    else
      first_pass_.split(text, added_, options.split_special, on_gap, on_token);
    if (options.add_special) out.insert(out.end(), post_suffix_.begin(), post_suffix_.end());
  }

  /// The text `ids` spell under HF's WordPiece decoder (see the file comment); `cleanup` applies its
  /// clean-up rewrites. Throws on an id outside the vocabulary.
  std::string decode(std::span<const token_id> ids, decode_options options = {}, bool cleanup = false) const {
    std::string out, token;
    bool first = true;
    for (const token_id id : ids) {
      const entry& e = checked(id, "wordpiece::decode");
      if (options.skip_special && (e.flags & flag_special)) continue;
      const std::string_view s = first ? first_of(e) : piece_of(e);
      first = false;
      if (!cleanup) {
        out.append(s);
        continue;
      }
      token.assign(s);
      clean_up(token);
      out += token;
    }
    return out;
  }

  /// One token as it appears after another: " token", or the part after the prefix for a continuation.
  std::string_view decode_piece(token_id id) const { return piece_of(checked(id, "wordpiece::decode_piece")); }

  /// 1 + the largest id in use.
  std::size_t vocab_size() const noexcept { return entries_.size(); }

  /// Id of a token in the vocabulary's spelling ("the", "##ing", "[CLS]"); added tokens first.
  std::optional<token_id> token_to_id(std::string_view token) const {
    if (const auto* id = added_by_content_.find(token)) return *id;
    if (const auto* id = vocab_.find(token)) return *id;
    return std::nullopt;
  }

  /// The vocabulary's spelling of a token; throws on an id outside the vocabulary.
  std::string_view id_to_token(token_id id) const { return text_of(checked(id, "wordpiece::id_to_token")); }

  /// True for special added tokens ([CLS], [SEP], [PAD], [UNK], [MASK], ...).
  bool is_special(token_id id) const noexcept {
    return contains(id) && (entries_[static_cast<std::size_t>(id)].flags & flag_special);
  }
  /// True when `id` names a token.
  bool contains(token_id id) const noexcept {
    return id >= 0 && static_cast<std::size_t>(id) < entries_.size() &&
           (entries_[static_cast<std::size_t>(id)].flags & flag_present);
  }

  /// [CLS] and [SEP] (the post-processor's first and last token), when the vocabulary has them.
  std::optional<token_id> bos_id() const noexcept { return bos_; }
  std::optional<token_id> eos_id() const noexcept { return eos_; }
  token_id unk_id() const noexcept { return unk_; }

  // ---- introspection -------------------------------------------------------------------------------------

  /// The normaliser in use (all steps off when the tokenizer.json has none).
  const bert::normalizer& normalizer() const noexcept { return norm_; }
  /// Whether the tokenizer.json has a normaliser (a vocab.txt always does).
  bool has_normalizer() const noexcept { return has_normalizer_; }
  /// The normalised form of `text` (what pre-tokenisation sees).
  std::string normalize(std::string_view text) const {
    std::string out;
    normalize(text, out);
    return out;
  }
  const std::string& continuing_subword_prefix() const noexcept { return prefix_; }
  std::size_t max_input_chars_per_word() const noexcept { return max_chars_; }
  /// Whether the tokenizer.json's decoder asks for clean-up (slim's decode applies it only when asked).
  bool decoder_cleanup() const noexcept { return decoder_cleanup_; }
  /// Added tokens, in file order.
  const std::vector<added_token>& added_tokens() const noexcept { return added_; }
  /// Ids the post-processor puts before / after the text when `add_special` is set.
  const std::vector<token_id>& special_prefix() const noexcept { return post_prefix_; }
  const std::vector<token_id>& special_suffix() const noexcept { return post_suffix_; }

 private:
  static constexpr std::uint8_t flag_present = 1, flag_special = 2;

  struct entry {
    std::uint32_t text_offset = 0, text_length = 0;    // the spelling (id_to_token)
    std::uint32_t first_offset = 0, first_length = 0;  // decoded as the first token
    std::uint32_t piece_offset = 0, piece_length = 0;  // decoded after another token (decode_piece)
    std::uint8_t flags = 0;
  };

  wordpiece() : norm_(bert::normalizer_options{false, false, false, false}) {}

  const entry& checked(token_id id, const char* where) const {
    if (!contains(id)) throw error(where, detail::cat("id ", id), "not in the vocabulary");
    return entries_[static_cast<std::size_t>(id)];
  }
  std::string_view text_of(const entry& e) const noexcept {
    return std::string_view(arena_).substr(e.text_offset, e.text_length);
  }
  std::string_view piece_of(const entry& e) const noexcept {
    return std::string_view(arena_).substr(e.piece_offset, e.piece_length);
  }
  std::string_view first_of(const entry& e) const noexcept {
    return std::string_view(arena_).substr(e.first_offset, e.first_length);
  }

  static std::string_view trim_end(std::string_view s) noexcept {
    while (!s.empty()) {
      const auto b = static_cast<unsigned char>(s.back());
      if (b < 0x80) {
        if (b == ' ' || (b >= 9 && b <= 13)) {
          s.remove_suffix(1);
          continue;
        }
        break;
      }
      const auto last = detail::char_before(s, s.size());
      if (last.status != unicode::utf8_status::ok || !unicode::is_white_space(last.code_point)) break;
      s.remove_suffix(last.length);
    }
    return s;
  }

  /// HF's WordPiece decoder clean-up, applied to one decoded token.
  static void clean_up(std::string& s) {
    static constexpr std::pair<std::string_view, std::string_view> rules[] = {
        // in HF's order
        {" .", "."},   {" ?", "?"},           {" !", "!"},   {" ,", ","},     {" ' ", "'"},   {" n't", "n't"},
        {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto& [from, to] : rules) {
      std::string out;
      std::size_t pos = 0;
      bool changed = false;
      for (std::size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
        out.append(s, pos, hit - pos).append(to);
        changed = true;
      }
      if (!changed) continue;
      out.append(s, pos, std::string::npos);
      s.swap(out);
    }
  }

  // ---- encoding --------------------------------------------------------------------------------------

  void normalize(std::string_view text, std::string& out) const { norm_(text, out); }

  void encode_normalized(std::string_view norm, std::vector<token_id>& out) const {
    bert::pre_tokenize(norm, [&](std::string_view word) { encode_word(word, out); });
  }

  /// WordPiece on one word (HF's WordPiece::tokenize).
  void encode_word(std::string_view word, std::vector<token_id>& out) const {
    std::size_t chars = 0;
    for (const char c : word) {
      chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
      if (chars > max_chars_) {
        out.push_back(unk_);
        return;
      }
    }
    if (const auto* whole = vocab_.find(word)) {  // the longest match is the whole word
      out.push_back(*whole);
      return;
    }
    const std::size_t mark = out.size();
    for (std::size_t start = 0; start < word.size();) {
      token_id id = 0;
      const std::size_t len = (start == 0 ? word_trie_ : continuation_trie_).longest_prefix(word.substr(start), id);
      if (len == 0) {  // no entry matches here: the whole word is unknown
        out.resize(mark);
        out.push_back(unk_);
        return;
      }
      out.push_back(id);
      start += len;
    }
  }

  // ---- loading ---------------------------------------------------------------------------------------

  /// Stores a model token; its piece (decode form) follows the decoder's prefix.
  void put_model_token(std::string_view text, token_id id) {
    const auto uid = static_cast<std::size_t>(id);
    if (uid >= entries_.size()) entries_.resize(uid + 1);
    vocab_.insert(text, id);
    word_trie_.add(text, id);
    if (!prefix_.empty() && text.size() > prefix_.size() && text.substr(0, prefix_.size()) == prefix_)
      continuation_trie_.add(text.substr(prefix_.size()), id);
    set_entry(entries_[uid], text);
  }

  void set_entry(entry& e, std::string_view text) {
    if (arena_.size() + text.size() > 0x3FFFFFFFu) throw error("wordpiece", "", "vocabulary text too large");
    e.text_offset = static_cast<std::uint32_t>(arena_.size());
    e.text_length = static_cast<std::uint32_t>(text.size());
    arena_.append(text);
    e.flags |= flag_present;
  }

  /// Sets every entry's decoded forms from its decode spelling — the token, or for an added token matched
  /// after normalisation its normalised content (as HF decodes it): a token that starts with the decoder's
  /// prefix joins the previous one without it, any other follows a space; a first token stays as it is.
  void set_pieces() {
    std::vector<std::string> spelled(entries_.size());
    for (std::size_t i = 0; i < added_.size(); ++i)
      if (added_[i].normalized) spelled[static_cast<std::size_t>(added_[i].id)] = normalized_added_[i].content;
    std::string forms;
    const std::size_t base = arena_.size();
    for (std::size_t id = 0; id < entries_.size(); ++id) {
      entry& e = entries_[id];
      if (!(e.flags & flag_present)) continue;
      const std::string word = spelled[id].empty() ? std::string(text_of(e)) : spelled[id];
      const bool cont = !decoder_prefix_.empty() && word.size() >= decoder_prefix_.size() &&
                        std::string_view(word).substr(0, decoder_prefix_.size()) == decoder_prefix_;
      e.first_offset = static_cast<std::uint32_t>(base + forms.size());
      e.first_length = static_cast<std::uint32_t>(word.size());
      forms += word;
      e.piece_offset = static_cast<std::uint32_t>(base + forms.size());
      if (cont) {
        forms.append(word, decoder_prefix_.size());
      } else {
        forms += ' ';
        forms += word;
      }
      e.piece_length = static_cast<std::uint32_t>(base + forms.size()) - e.piece_offset;
    }
    if (base + forms.size() > 0xFFFFFFFFu) throw error("wordpiece", "", "vocabulary text too large");
    arena_ += forms;
  }

  void add_added_token(added_token tok, const detail::json_reader& r, const std::string& field) {
    if (tok.content.empty()) r.fail(field + ".content", "empty");
    if (const auto* model_id = vocab_.find(tok.content); model_id && *model_id != tok.id)
      r.fail(field + ".id", detail::cat("is ", tok.id, " but the vocabulary gives ", detail::quote_token(tok.content),
                                        " id ", *model_id));
    if (!added_by_content_.insert(tok.content, tok.id)) r.fail(field + ".content", "added twice");
    const auto uid = static_cast<std::size_t>(tok.id);
    if (uid >= entries_.size()) entries_.resize(uid + 1);
    entry& e = entries_[uid];
    if (e.flags & flag_present) {
      if (text_of(e) != tok.content)
        r.fail(field + ".id", detail::cat("id ", tok.id, " is given to both ", detail::quote_token(text_of(e)), " and ",
                                          detail::quote_token(tok.content)));
    } else {
      set_entry(e, tok.content);
    }
    if (tok.special) e.flags |= flag_special;
    added_.push_back(std::move(tok));
  }

  /// Builds the added-token passes (normalized tokens are matched in their normalised spelling).
  void finish() {
    word_trie_.freeze();
    continuation_trie_.freeze();
    normalized_added_ = added_;
    for (std::size_t i = 0; i < added_.size(); ++i) {
      if (!added_[i].normalized) {
        first_pass_.add(added_[i], static_cast<std::int32_t>(i));
        continue;
      }
      normalize(added_[i].content, normalized_added_[i].content);
      if (!normalized_added_[i].content.empty()) second_pass_.add(normalized_added_[i], static_cast<std::int32_t>(i));
    }
    set_pieces();
  }

  static void read_tokenizer_config(std::string_view text, const std::string& where, wordpiece_options& o) {
    const auto root = detail::parse_json(text, where);
    const detail::json_reader r(where);
    if (!root.is_object()) r.fail("(top level)", "expected an object");
    o.lowercase = r.get_bool(root, "do_lower_case", o.lowercase, "");
    o.handle_chinese_chars = r.get_bool(root, "tokenize_chinese_chars", o.handle_chinese_chars, "");
    if (const auto* v = r.find(root, "strip_accents", ""); v && !v->is_null()) {
      if (!v->is_boolean()) r.fail("strip_accents", "expected a boolean or null");
      o.strip_accents = v->get<bool>();
    }
    auto name = [&](const char* key, std::string& dst) {
      const auto* v = r.find(root, key, "");
      if (!v || v->is_null()) return;
      dst = v->is_object() ? r.get_string(*v, "content", key) : r.as_string(*v, key);
    };
    name("unk_token", o.unk_token);
    name("sep_token", o.sep_token);
    name("cls_token", o.cls_token);
    name("pad_token", o.pad_token);
    name("mask_token", o.mask_token);
  }

  token_id checked_json_id(const detail::json& v, const detail::json_reader& r, const std::string& field) const {
    const auto id = static_cast<token_id>(r.as_index(v, max_token_id, field));
    if (!contains(id)) r.fail(field, detail::cat("id ", id, " is not in the vocabulary"));
    return id;
  }

  void load_post_processor(const detail::json& pp, const detail::json_reader& r, const std::string& field) {
    if (pp.is_null()) return;
    const std::string type = r.get_string(pp, "type", field);
    std::vector<token_id> prefix, suffix;
    if (type == "BertProcessing" || type == "RobertaProcessing") {
      for (const char* key : {"cls", "sep"}) {
        const auto& p = r.at(pp, key, field);
        if (!p.is_array() || p.size() != 2) r.fail(field + "." + key, "expected [token, id]");
        const token_id id = checked_json_id(p[1], r, field + "." + key + "[1]");
        (key[0] == 'c' ? prefix : suffix).push_back(id);
      }
    } else if (type == "TemplateProcessing") {
      const auto& single = r.at(pp, "single", field);
      if (!single.is_array()) r.fail(field + ".single", "expected an array");
      const auto& specials = r.at(pp, "special_tokens", field);
      bool seen_sequence = false;
      for (std::size_t i = 0; i < single.size(); ++i) {
        const std::string f = detail::json_reader::index(field + ".single", i);
        if (const auto* seq = r.find(single[i], "Sequence", f)) {
          const std::string which = r.get_string(*seq, "id", f + ".Sequence");
          if (which != "A") r.fail(f + ".Sequence.id", "expected A in a single-sequence template, found " + which);
          if (seen_sequence) r.fail(f, "the sequence appears twice");
          seen_sequence = true;
        } else if (const auto* sp = r.find(single[i], "SpecialToken", f)) {
          const std::string name = r.get_string(*sp, "id", f + ".SpecialToken");
          const std::string sf = field + ".special_tokens";
          const auto& st = r.at(specials, name.c_str(), sf);
          const auto& ids = r.at(st, "ids", sf + "." + name);
          if (!ids.is_array()) r.fail(sf + "." + name + ".ids", "expected an array");
          auto& dst = seen_sequence ? suffix : prefix;
          for (std::size_t k = 0; k < ids.size(); ++k)
            dst.push_back(checked_json_id(ids[k], r, detail::json_reader::index(sf + "." + name + ".ids", k)));
        } else {
          r.fail(f, "expected a Sequence or a SpecialToken");
        }
      }
      if (!seen_sequence) r.fail(field + ".single", "the template never places the sequence");
    } else {
      r.fail(field + ".type", "post-processor " + type + " is not supported for WordPiece");
    }
    post_prefix_ = std::move(prefix);
    post_suffix_ = std::move(suffix);
  }

  void load_hf_json(const detail::json& root, const detail::json_reader& r) {
    if (!root.is_object()) r.fail("(top level)", "expected an object");
    const auto& model = r.at(root, "model", "");
    if (const auto type = r.get_optional_string(model, "type", "model"); !type || *type != "WordPiece")
      r.fail("model.type", "expected WordPiece, found " + (type ? *type : std::string("none")));
    prefix_ = r.get_optional_string(model, "continuing_subword_prefix", "model").value_or("##");
    if (const auto* m = r.find(model, "max_input_chars_per_word", "model"); m && !m->is_null())
      max_chars_ = static_cast<std::size_t>(r.as_index(*m, max_token_id, "model.max_input_chars_per_word"));
    const auto& vocab = r.at(model, "vocab", "model");
    if (!vocab.is_object()) r.fail("model.vocab", "expected an object of token -> id");
    std::vector<std::uint8_t> seen;
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      const std::string& token = it.key();
      const std::string f = detail::cat("model.vocab[", detail::quote_token(token), "]");
      if (token.empty()) r.fail(f, "empty token");
      if (!unicode::is_valid_utf8(token)) r.fail(f, "not valid UTF-8");
      const auto id = static_cast<token_id>(r.as_index(it.value(), max_token_id, f));
      const auto uid = static_cast<std::size_t>(id);
      if (uid >= seen.size()) seen.resize(uid + 1, 0);
      if (seen[uid]) r.fail(f, detail::cat("id ", id, " is given to two tokens"));
      seen[uid] = 1;
      put_model_token(token, id);
    }
    if (vocab_.size() == 0) r.fail("model.vocab", "empty vocabulary");
    const std::string unk = r.get_optional_string(model, "unk_token", "model").value_or("[UNK]");
    const auto* unk_id = vocab_.find(unk);
    if (!unk_id) r.fail("model.unk_token", detail::quote_token(unk) + " is not in model.vocab");
    unk_ = *unk_id;

    if (const auto* norm = r.find(root, "normalizer", ""); norm && !norm->is_null()) {
      const std::string type = r.get_string(*norm, "type", "normalizer");
      if (type != "BertNormalizer") r.fail("normalizer.type", "normalizer " + type + " is not supported for WordPiece");
      bert::normalizer_options o;
      o.clean_text = r.get_bool(*norm, "clean_text", true, "normalizer");
      o.handle_chinese_chars = r.get_bool(*norm, "handle_chinese_chars", true, "normalizer");
      o.lowercase = r.get_bool(*norm, "lowercase", true, "normalizer");
      if (const auto* s = r.find(*norm, "strip_accents", "normalizer"); s && !s->is_null()) {
        if (!s->is_boolean()) r.fail("normalizer.strip_accents", "expected a boolean or null");
        o.strip_accents = s->get<bool>();
      }
      norm_ = bert::normalizer(o);
      has_normalizer_ = true;
    }
    const auto& pre = r.at(root, "pre_tokenizer", "");
    if (pre.is_null() || r.get_string(pre, "type", "pre_tokenizer") != "BertPreTokenizer")
      r.fail("pre_tokenizer", "WordPiece needs the BertPreTokenizer");
    decoder_prefix_.clear();
    if (const auto* dec = r.find(root, "decoder", ""); dec && !dec->is_null()) {
      const std::string type = r.get_string(*dec, "type", "decoder");
      if (type != "WordPiece") r.fail("decoder.type", "decoder " + type + " is not supported for WordPiece");
      decoder_prefix_ = r.get_optional_string(*dec, "prefix", "decoder").value_or("##");
      decoder_cleanup_ = r.get_bool(*dec, "cleanup", true, "decoder");
    }
    if (const auto* list = r.find(root, "added_tokens", ""); list && !list->is_null()) {
      if (!list->is_array()) r.fail("added_tokens", "expected an array");
      for (std::size_t i = 0; i < list->size(); ++i) {
        const std::string f = detail::json_reader::index("added_tokens", i);
        const auto& t = (*list)[i];
        added_token tok;
        tok.id = static_cast<token_id>(r.as_index(r.at(t, "id", f), max_token_id, f + ".id"));
        tok.content = r.get_string(t, "content", f);
        tok.special = r.get_bool(t, "special", false, f);
        tok.single_word = r.get_bool(t, "single_word", false, f);
        tok.lstrip = r.get_bool(t, "lstrip", false, f);
        tok.rstrip = r.get_bool(t, "rstrip", false, f);
        tok.normalized = r.get_bool(t, "normalized", !tok.special, f);
        add_added_token(std::move(tok), r, f);
      }
    }
    if (const auto* pp = r.find(root, "post_processor", "")) load_post_processor(*pp, r, "post_processor");
    if (!post_prefix_.empty()) bos_ = post_prefix_.front();
    if (!post_suffix_.empty()) eos_ = post_suffix_.back();
    finish();
  }

  // vocabulary
  std::vector<entry> entries_;
  std::string arena_;                      // token spellings, then decode pieces
  detail::string_map vocab_;               // model token -> id
  detail::prefix_trie word_trie_;          // every model token, for a word's first piece
  detail::prefix_trie continuation_trie_;  // model tokens that start with the prefix, without it
  detail::string_map added_by_content_;
  token_id unk_ = 0;
  std::string prefix_ = "##", decoder_prefix_ = "##";
  std::size_t max_chars_ = 100;
  bool decoder_cleanup_ = false;
  // normaliser
  bert::normalizer norm_;
  bool has_normalizer_ = false;
  // added tokens and post-processor
  std::vector<added_token> added_, normalized_added_;
  detail::added_token_pass first_pass_, second_pass_;
  std::vector<token_id> post_prefix_, post_suffix_;
  std::optional<token_id> bos_, eos_;
};

static_assert(Tokenizer<wordpiece>);

}  // namespace slim::text
