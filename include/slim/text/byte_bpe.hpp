// slim — byte-level BPE (GPT-2, LLaMA-3, Qwen2 and every HF `tokenizer.json` of that family).
//
// Encoding, in HF `tokenizers`' order:
//   1. added/special tokens are cut out of the text (added_tokens.hpp has the priority rules);
//   2. each remaining segment is split by the pre-tokenizer stages: zero or more `Split` patterns, then
//      ByteLevel (optional prefix space per piece, optional GPT-2 split);
//   3. each piece becomes one symbol per byte and BPE merges adjacent symbols, lowest merge rank first and
//      leftmost first among equal ranks (HF's `Word::merge_all`, priority queue with lazy invalidation:
//      O(n log n) in the piece length, so a 1 MB word is no problem; pieces of at most 64 symbols take a
//      faster linear scan in the same order); with `ignore_merges` a piece that is itself a vocabulary
//      token is emitted whole;
//   4. with `encode_options::add_special`, the post-processor's tokens (TemplateProcessing, Roberta/Bert
//      processing) go around the ids.
// Decoding concatenates the bytes each token spells (byte_level.hpp); see tokenizer.hpp for the contract.
//
// Loaders: `from_file` (a tokenizer.json, or a folder holding tokenizer.json or GPT-2's encoder.json +
// vocab.bpe), `from_hf_json`, `from_gpt2`. Malformed input throws slim::error naming the file and field.
// Not supported yet (rejected with an error naming the field): normalizers (e.g. Qwen2's NFC), BPE dropout,
// continuing_subword_prefix / end_of_word_suffix, Split patterns other than gpt2 / llama3 / qwen2.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/text/added_tokens.hpp"
#include "slim/text/byte_level.hpp"
#include "slim/text/detail/flat_map.hpp"
#include "slim/text/detail/json_fields.hpp"
#include "slim/text/pre_tokenize.hpp"
#include "slim/text/tokenizer.hpp"

namespace slim::text {

/// Byte-level BPE tokenizer. Immutable after loading; const member functions are safe to call from many
/// threads at once.
class byte_bpe {
 public:
  /// Largest id a vocabulary file may use (keeps a corrupt file from allocating gigabytes).
  static constexpr std::int64_t max_token_id = std::int64_t{1} << 24;

  /// Loads from a path: a `tokenizer.json` file, or a folder with `tokenizer.json` or with GPT-2's
  /// `encoder.json` + `vocab.bpe`. A `tokenizer_config.json` next to it names BOS/EOS when present.
  static byte_bpe from_file(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path p(path);
    if (fs::is_directory(p, ec)) {
      const auto json_path = (p / "tokenizer.json").string();
      if (detail::file_exists(json_path)) return from_file(json_path);
      const auto enc = (p / "encoder.json").string(), bpe = (p / "vocab.bpe").string();
      if (detail::file_exists(enc) && detail::file_exists(bpe)) return from_gpt2(enc, bpe);
      throw error(path, "", "folder holds neither tokenizer.json nor encoder.json + vocab.bpe");
    }
    byte_bpe t = from_hf_json(detail::read_file(path), path);
    const auto config = (p.parent_path() / "tokenizer_config.json").string();
    if (detail::file_exists(config)) t.read_tokenizer_config(detail::read_file(config), config);
    return t;
  }

  /// Builds from the text of an HF `tokenizer.json`; `where` names it in errors.
  static byte_bpe from_hf_json(std::string_view json_text, const std::string& where) {
    byte_bpe t;
    t.load_hf_json(detail::parse_json(json_text, where), detail::json_reader(where));
    return t;
  }

  /// Builds from GPT-2's `encoder.json` and `vocab.bpe` files.
  static byte_bpe from_gpt2(const std::string& encoder_json_path, const std::string& vocab_bpe_path) {
    return from_gpt2_text(detail::read_file(encoder_json_path), encoder_json_path, detail::read_file(vocab_bpe_path),
                          vocab_bpe_path);
  }

  /// Builds from the contents of GPT-2's `encoder.json` and `vocab.bpe` (names for errors alongside). As
  /// HF's GPT2TokenizerFast: GPT-2 split, no prefix space, `<|endoftext|>` special and both BOS and EOS.
  static byte_bpe from_gpt2_text(std::string_view encoder_json, const std::string& encoder_where,
                                 std::string_view vocab_bpe, const std::string& vocab_where) {
    byte_bpe t;
    const detail::json_reader r(encoder_where);
    t.load_vocab(detail::parse_json(encoder_json, encoder_where), r, "");
    t.load_merges_text(vocab_bpe, vocab_where);
    t.splits_ = {};
    t.byte_level_split_ = true;
    t.add_prefix_space_ = false;
    if (const auto id = t.model_vocab_.find("<|endoftext|>")) {
      added_token eot{"<|endoftext|>", *id, true, false, false, false, false};
      t.add_added_token(std::move(eot), r, "");
      t.bos_ = t.eos_ = *id;
    }
    t.finish();
    return t;
  }

  // ---- Tokenizer ---------------------------------------------------------------------------------------

  /// Token ids of `text` (see tokenizer.hpp for the options and the invalid-UTF-8 policy).
  std::vector<token_id> encode(std::string_view text, encode_options options = {}) const {
    std::vector<token_id> out;
    encode_into(text, out, options);
    return out;
  }

  /// Appends the ids of `text` to `out`.
  void encode_into(std::string_view text, std::vector<token_id>& out, encode_options options = {}) const {
    scratch s;
    if (options.add_special) out.insert(out.end(), post_prefix_.begin(), post_prefix_.end());
    if (added_.empty()) {
      encode_segment(text, out, s);
    } else {
      first_pass_.split(
          text, added_, options.split_special,
          [&](std::string_view gap) {
            second_pass_.split(
                gap, added_, options.split_special, [&](std::string_view seg) { encode_segment(seg, out, s); },
                [&](std::int32_t k) { out.push_back(added_[static_cast<std::size_t>(k)].id); });
          },
          [&](std::int32_t k) { out.push_back(added_[static_cast<std::size_t>(k)].id); });
    }
    if (options.add_special) out.insert(out.end(), post_suffix_.begin(), post_suffix_.end());
  }

  /// The bytes `ids` spell, concatenated (no clean-up); throws on an id outside the vocabulary.
  std::string decode(std::span<const token_id> ids, decode_options options = {}) const {
    std::string out;
    for (const token_id id : ids) {
      const entry& e = checked(id, "byte_bpe::decode");
      if (options.skip_special && (e.flags & flag_special)) continue;
      out.append(bytes_arena_, e.bytes_offset, e.bytes_length);
    }
    return out;
  }

  /// The bytes one token spells.
  std::string_view decode_piece(token_id id) const {
    const entry& e = checked(id, "byte_bpe::decode_piece");
    return std::string_view(bytes_arena_).substr(e.bytes_offset, e.bytes_length);
  }

  /// 1 + the largest id in use.
  std::size_t vocab_size() const noexcept { return entries_.size(); }

  /// Id of a token in the vocabulary's spelling ("Ġthe", "<|endoftext|>"); added tokens first.
  std::optional<token_id> token_to_id(std::string_view token) const {
    if (const auto* id = added_by_content_.find(token)) return *id;
    if (const auto* id = model_vocab_.find(token)) return *id;
    return std::nullopt;
  }

  /// The vocabulary's spelling of a token; throws on an id outside the vocabulary.
  std::string_view id_to_token(token_id id) const {
    const entry& e = checked(id, "byte_bpe::id_to_token");
    return std::string_view(text_arena_).substr(e.text_offset, e.text_length);
  }

  /// True for added tokens marked special (false for unknown ids).
  bool is_special(token_id id) const noexcept {
    return id >= 0 && static_cast<std::size_t>(id) < entries_.size() &&
           (entries_[static_cast<std::size_t>(id)].flags & flag_special);
  }
  /// True when `id` names a token (vocabularies may have holes).
  bool contains(token_id id) const noexcept {
    return id >= 0 && static_cast<std::size_t>(id) < entries_.size() &&
           (entries_[static_cast<std::size_t>(id)].flags & flag_present);
  }

  std::optional<token_id> bos_id() const noexcept { return bos_; }
  std::optional<token_id> eos_id() const noexcept { return eos_; }
  /// Overrides BOS/EOS (e.g. from a model's generation config); the id must be in the vocabulary.
  void set_bos_id(std::optional<token_id> id) {
    bos_ = id ? std::optional(checked_id(*id, "byte_bpe::set_bos_id")) : id;
  }
  void set_eos_id(std::optional<token_id> id) {
    eos_ = id ? std::optional(checked_id(*id, "byte_bpe::set_eos_id")) : id;
  }

  // ---- introspection -------------------------------------------------------------------------------------

  /// Added tokens, in file order.
  const std::vector<added_token>& added_tokens() const noexcept { return added_; }
  /// The Split stages before ByteLevel, in order.
  const std::vector<split_pattern>& split_stages() const noexcept { return splits_; }
  /// Whether the ByteLevel stage splits with the GPT-2 pattern (`use_regex`).
  bool byte_level_split() const noexcept { return byte_level_split_; }
  /// Number of merge rules.
  std::size_t merge_count() const noexcept { return merge_count_; }
  /// Ids the post-processor puts before / after the text when `add_special` is set.
  const std::vector<token_id>& special_prefix() const noexcept { return post_prefix_; }
  const std::vector<token_id>& special_suffix() const noexcept { return post_suffix_; }

 private:
  static constexpr std::uint8_t flag_present = 1, flag_special = 2, flag_added = 4;

  struct entry {
    std::uint32_t text_offset = 0, text_length = 0, bytes_offset = 0, bytes_length = 0;
    std::uint8_t flags = 0;
  };
  struct merge_value {
    std::uint32_t rank;
    token_id merged;
  };
  struct symbol {
    token_id id;
    std::int32_t prev, next;
    bool removed;
  };
  struct queued_merge {
    std::uint64_t order;  // rank << 32 | position: the heap pops the smallest
    token_id merged;
  };
  /// Buffers reused across the pieces of one encode call.
  struct scratch {
    std::vector<token_id> ids, merged;  // a short word: its symbols, and what each adjacent pair merges into
    std::vector<std::uint32_t> ranks;   // ... and each pair's merge rank (no_merge when none)
    std::vector<symbol> symbols;
    std::vector<queued_merge> initial, queue;
  };
  /// Words of at most this many symbols merge by scanning for the lowest rank (no heap, no sort); longer
  /// ones use the queue, whose cost stays O(n log n). Both give the same ids; only speed depends on it.
  static constexpr std::size_t short_word = 64;
  static constexpr std::uint32_t no_merge = ~std::uint32_t{0};

  static std::uint64_t pair_key(token_id a, token_id b) noexcept {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }

  const entry& checked(token_id id, const char* where) const {
    if (!contains(id)) throw error(where, detail::cat("id ", id), "not in the vocabulary");
    return entries_[static_cast<std::size_t>(id)];
  }
  token_id checked_id(token_id id, const char* where) const {
    checked(id, where);
    return id;
  }

  // ---- encoding --------------------------------------------------------------------------------------

  void encode_segment(std::string_view seg, std::vector<token_id>& out, scratch& s) const {
    if (seg.empty()) return;
    split_stage(0, seg, out, s);
  }

  void split_stage(std::size_t stage, std::string_view text, std::vector<token_id>& out, scratch& s) const {
    if (stage < splits_.size()) {
      split_text(splits_[stage], text, [&](std::string_view piece) { split_stage(stage + 1, piece, out, s); });
      return;
    }
    // ByteLevel: a prefix space per piece, then the GPT-2 split when use_regex.
    std::string_view piece = text;
    std::string prefixed;
    if (add_prefix_space_ && !text.empty() && text.front() != ' ') {
      prefixed.reserve(text.size() + 1);
      prefixed += ' ';
      prefixed += text;
      piece = prefixed;
    }
    if (byte_level_split_)
      split_text(split_pattern::gpt2, piece, [&](std::string_view w) { bpe_word(w, out, s); });
    else
      bpe_word(piece, out, s);
  }

  /// BPE over one piece: HF `BPE::merge_word` + `Word::merge_all` (without dropout).
  void bpe_word(std::string_view word, std::vector<token_id>& out, scratch& s) const {
    if (word.size() == 1 && byte_id_[static_cast<unsigned char>(word[0])] >= 0) {
      out.push_back(byte_id_[static_cast<unsigned char>(word[0])]);
      return;
    }
    if (ignore_merges_) {
      if (const auto* id = alphabet_vocab_.find(word)) {
        out.push_back(*id);
        return;
      }
    }
    auto& ids = s.ids;
    ids.clear();
    token_id pending_unk = -1;  // an <unk> not yet added (HF fuses consecutive ones when fuse_unk)
    const token_id unk = unk_ ? *unk_ : -1;
    for (const char c : word) {
      const auto b = static_cast<unsigned char>(c);
      if (byte_id_[b] >= 0) {
        if (pending_unk >= 0) ids.push_back(pending_unk);
        pending_unk = -1;
        ids.push_back(byte_id_[b]);
        continue;
      }
      if (byte_fallback_ && fallback_ok_[b]) {  // HF spells the *alphabet character's* UTF-8 bytes as <0xXX>
        for (const token_id f : fallback_ids_[b])
          if (f >= 0) ids.push_back(f);
        continue;
      }
      if (unk >= 0) {
        if (pending_unk >= 0 && !fuse_unk_) ids.push_back(pending_unk);
        pending_unk = unk;
      }
      // otherwise HF drops a byte the vocabulary cannot spell
    }
    if (pending_unk >= 0) ids.push_back(pending_unk);
    if (ids.size() <= short_word) {
      merge_short(s);
      out.insert(out.end(), ids.begin(), ids.end());
      return;
    }
    auto& sym = s.symbols;
    sym.clear();
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const auto n = static_cast<std::int32_t>(i);
      sym.push_back({ids[i], n - 1, i + 1 < ids.size() ? n + 1 : -1, false});
    }
    merge_all(s);
    for (const auto& x : sym)
      if (!x.removed) out.push_back(x.id);
  }

  /// The merge loop for a short word, on a compact array: merge the adjacent pair of lowest rank, leftmost
  /// among equal ranks, until none is left — the order HF's queue pops them in (`merge_all`), so the same
  /// ids. Each merge re-looks-up only the two pairs it changed.
  void merge_short(scratch& s) const {
    auto& ids = s.ids;
    auto& ranks = s.ranks;
    auto& merged = s.merged;
    if (ids.size() < 2) return;
    ranks.resize(ids.size() - 1);
    merged.resize(ids.size() - 1);
    auto look = [&](std::size_t i) {
      if (const auto* m = merges_.find(pair_key(ids[i], ids[i + 1]))) {
        ranks[i] = m->rank;
        merged[i] = m->merged;
      } else {
        ranks[i] = no_merge;
      }
    };
    for (std::size_t i = 0; i + 1 < ids.size(); ++i) look(i);
    while (true) {
      std::size_t best = 0;
      std::uint32_t best_rank = no_merge;
      for (std::size_t i = 0; i < ranks.size(); ++i)
        if (ranks[i] < best_rank) {
          best_rank = ranks[i];
          best = i;
        }
      if (best_rank == no_merge) return;
      ids[best] = merged[best];
      ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best) + 1);
      ranks.erase(ranks.begin() + static_cast<std::ptrdiff_t>(best));
      merged.erase(merged.begin() + static_cast<std::ptrdiff_t>(best));
      if (best < ranks.size()) look(best);  // (merged, its right neighbour)
      if (best > 0) look(best - 1);         // (left neighbour, merged)
    }
  }

  /// HF's merge loop: pop the queued pair with the lowest (rank, position); skip it when stale (a side was
  /// merged away, or the pair there now merges into something else); merge; queue the two new neighbour
  /// pairs. The pairs of the initial word are sorted once and read in order; only pairs created by merges
  /// go through the heap, which keeps the heap small and the long-word case cache-friendly.
  void merge_all(scratch& s) const {
    auto& sym = s.symbols;
    auto& initial = s.initial;
    auto& heap = s.queue;
    initial.clear();
    heap.clear();
    auto later = [](const queued_merge& a, const queued_merge& b) { return a.order > b.order; };
    auto order = [](std::uint32_t rank, std::int32_t pos) {
      return (static_cast<std::uint64_t>(rank) << 32) | static_cast<std::uint32_t>(pos);
    };
    for (std::size_t i = 0; i + 1 < sym.size(); ++i)
      if (const auto* m = merges_.find(pair_key(sym[i].id, sym[i + 1].id)))
        initial.push_back({order(m->rank, static_cast<std::int32_t>(i)), m->merged});
    std::sort(initial.begin(), initial.end(),
              [](const queued_merge& a, const queued_merge& b) { return a.order < b.order; });
    std::size_t next_initial = 0;
    while (next_initial < initial.size() || !heap.empty()) {
      queued_merge top;
      if (!heap.empty() && (next_initial == initial.size() || heap.front().order < initial[next_initial].order)) {
        std::pop_heap(heap.begin(), heap.end(), later);
        top = heap.back();
        heap.pop_back();
      } else {
        top = initial[next_initial++];
      }
      const auto top_pos = static_cast<std::int32_t>(top.order & 0xFFFFFFFFu);
      symbol& cur = sym[static_cast<std::size_t>(top_pos)];
      if (cur.removed || cur.next < 0) continue;
      symbol& right = sym[static_cast<std::size_t>(cur.next)];
      const auto* m = merges_.find(pair_key(cur.id, right.id));
      if (!m || m->merged != top.merged) continue;  // stale entry
      cur.id = top.merged;
      right.removed = true;
      cur.next = right.next;
      if (right.next >= 0) sym[static_cast<std::size_t>(right.next)].prev = top_pos;
      if (cur.prev >= 0) {
        if (const auto* pm = merges_.find(pair_key(sym[static_cast<std::size_t>(cur.prev)].id, cur.id))) {
          heap.push_back({order(pm->rank, cur.prev), pm->merged});
          std::push_heap(heap.begin(), heap.end(), later);
        }
      }
      if (cur.next >= 0) {
        if (const auto* nm = merges_.find(pair_key(cur.id, sym[static_cast<std::size_t>(cur.next)].id))) {
          heap.push_back({order(nm->rank, top_pos), nm->merged});
          std::push_heap(heap.begin(), heap.end(), later);
        }
      }
    }
  }

  // ---- loading ---------------------------------------------------------------------------------------

  /// Stores token `id` spelled `text`; `added` marks an added token (its bytes are its content).
  void put_token(token_id id, std::string_view text, std::uint8_t flags, const detail::json_reader& r,
                 const std::string& field) {
    const auto uid = static_cast<std::size_t>(id);
    if (uid >= entries_.size()) entries_.resize(uid + 1);
    entry& e = entries_[uid];
    if (e.flags & flag_present) {
      const std::string_view old = std::string_view(text_arena_).substr(e.text_offset, e.text_length);
      if (old != text)
        r.fail(field, detail::cat("id ", id, " is given to both ", detail::quote_token(old), " and ",
                                  detail::quote_token(text)));
      e.flags |= flags;
      return;
    }
    if (text_arena_.size() + text.size() > 0xFFFFFFFFu) r.fail(field, "vocabulary text too large");
    e.text_offset = static_cast<std::uint32_t>(text_arena_.size());
    e.text_length = static_cast<std::uint32_t>(text.size());
    text_arena_.append(text);
    std::optional<std::string> bytes;
    if (!(flags & flag_added)) bytes = byte_level::decode(text);
    e.bytes_offset = static_cast<std::uint32_t>(bytes_arena_.size());
    if (bytes) {
      e.bytes_length = static_cast<std::uint32_t>(bytes->size());
      bytes_arena_.append(*bytes);
      alphabet_vocab_.insert(*bytes, id);
    } else {  // HF's ByteLevel decoder keeps a token with characters outside the alphabet as its UTF-8
      e.bytes_length = static_cast<std::uint32_t>(text.size());
      bytes_arena_.append(text);
    }
    e.flags = static_cast<std::uint8_t>(e.flags | flags | flag_present);
  }

  void load_vocab(const detail::json& vocab, const detail::json_reader& r, const std::string& field) {
    if (!vocab.is_object()) r.fail(field.empty() ? "(top level)" : field, "expected an object of token -> id");
    model_vocab_.reserve(vocab.size());
    alphabet_vocab_.reserve(vocab.size());
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      const std::string& token = it.key();
      const std::string f =
          detail::cat(field.empty() ? std::string("vocab") : field, "[", detail::quote_token(token), "]");
      const auto id = static_cast<token_id>(r.as_index(it.value(), max_token_id, f));
      if (!model_vocab_.insert(token, id)) r.fail(f, "token listed twice");
      put_token(id, token, 0, r, f);
    }
    if (model_vocab_.size() == 0) r.fail(field.empty() ? "(top level)" : field, "empty vocabulary");
  }

  void add_merge(std::string_view a, std::string_view b, std::uint32_t rank, const std::string& where,
                 const std::string& place) {
    const auto* ia = model_vocab_.find(a);
    const auto* ib = model_vocab_.find(b);
    if (!ia || !ib)
      throw error(where, place,
                  detail::cat("merge part ", detail::quote_token(!ia ? a : b), " is not in the vocabulary"));
    std::string joined;
    joined.reserve(a.size() + b.size());
    joined.append(a).append(b);
    const auto* im = model_vocab_.find(joined);
    if (!im)
      throw error(where, place, detail::cat("merged token ", detail::quote_token(joined), " is not in the vocabulary"));
    merges_.insert_or_assign(pair_key(*ia, *ib),
                             merge_value{rank, *im});  // a repeated pair: the later rank wins, as in HF
    ++merge_count_;
  }

  void load_merges_text(std::string_view text, const std::string& where) {
    std::size_t line_no = 0, pos = 0;
    std::uint32_t rank = 0;
    while (pos < text.size()) {
      std::size_t eol = text.find('\n', pos);
      if (eol == std::string_view::npos) eol = text.size();
      std::string_view line = text.substr(pos, eol - pos);
      pos = eol + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty() || (line_no == 1 && line.substr(0, 8) == "#version")) continue;
      const std::size_t sp = line.find(' ');
      if (sp == std::string_view::npos || sp == 0 || sp + 1 == line.size() ||
          line.find(' ', sp + 1) != std::string_view::npos)
        throw error(where, detail::cat("line ", line_no), "expected two tokens separated by one space");
      add_merge(line.substr(0, sp), line.substr(sp + 1), rank++, where, detail::cat("line ", line_no));
    }
  }

  void load_merges_json(const detail::json& merges, const detail::json_reader& r) {
    if (!merges.is_array()) r.fail("model.merges", detail::cat("expected an array, found ", detail::json_type(merges)));
    std::uint32_t rank = 0;
    for (std::size_t i = 0; i < merges.size(); ++i) {
      const auto& m = merges[i];
      const std::string f = detail::json_reader::index("model.merges", i);
      if (m.is_string()) {  // "a b"
        const auto& str = m.get_ref<const std::string&>();
        const std::size_t sp = str.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 == str.size())
          r.fail(f, detail::cat("expected \"left right\", found ", detail::quote_token(str)));
        const std::string_view sv(str);
        add_merge(sv.substr(0, sp), sv.substr(sp + 1), rank++, r.file(), "field " + f);
      } else if (m.is_array()) {  // ["a", "b"]
        if (m.size() != 2) r.fail(f, detail::cat("expected a pair, found ", m.size(), " elements"));
        const std::string a = r.as_string(m[0], f + "[0]"), b = r.as_string(m[1], f + "[1]");
        add_merge(a, b, rank++, r.file(), "field " + f);
      } else {
        r.fail(f, detail::cat("expected a string or a pair of strings, found ", detail::json_type(m)));
      }
    }
  }

  void add_added_token(added_token tok, const detail::json_reader& r, const std::string& field) {
    if (tok.content.empty()) r.fail(field + ".content", "empty");
    if (const auto* model_id = model_vocab_.find(tok.content); model_id && *model_id != tok.id)
      r.fail(field + ".id", detail::cat("is ", tok.id, " but model.vocab gives ", detail::quote_token(tok.content),
                                        " id ", *model_id));
    if (!added_by_content_.insert(tok.content, tok.id)) r.fail(field + ".content", "added twice");
    put_token(tok.id, tok.content, static_cast<std::uint8_t>(flag_added | (tok.special ? flag_special : 0)), r, field);
    // A model token that is also an added token decodes as its content (they are the same text).
    entry& e = entries_[static_cast<std::size_t>(tok.id)];
    e.flags = static_cast<std::uint8_t>(e.flags | flag_added | (tok.special ? flag_special : 0));
    added_.push_back(std::move(tok));
  }

  void load_added_tokens(const detail::json& list, const detail::json_reader& r) {
    if (list.is_null()) return;
    if (!list.is_array()) r.fail("added_tokens", detail::cat("expected an array, found ", detail::json_type(list)));
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string f = detail::json_reader::index("added_tokens", i);
      const auto& t = list[i];
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

  void load_pre_tokenizer(const detail::json& pt, const detail::json_reader& r, const std::string& field,
                          bool& saw_byte_level) {
    if (pt.is_null()) r.fail(field, "byte-level BPE needs a ByteLevel pre-tokenizer, found null");
    const std::string type = r.get_string(pt, "type", field);
    if (saw_byte_level) r.fail(field, "a " + type + " stage after ByteLevel is not supported");
    if (type == "Sequence") {
      const auto& list = r.at(pt, "pretokenizers", field);
      if (!list.is_array()) r.fail(field + ".pretokenizers", "expected an array");
      for (std::size_t i = 0; i < list.size(); ++i)
        load_pre_tokenizer(list[i], r, detail::json_reader::index(field + ".pretokenizers", i), saw_byte_level);
    } else if (type == "ByteLevel") {
      saw_byte_level = true;
      add_prefix_space_ = r.get_bool(pt, "add_prefix_space", false, field);
      byte_level_split_ = r.get_bool(pt, "use_regex", true, field);
    } else if (type == "Split") {
      const auto& pattern = r.at(pt, "pattern", field);
      const std::string pf = field + ".pattern";
      const auto* regex = r.find(pattern, "Regex", pf);
      if (!regex) r.fail(pf, "only {\"Regex\": ...} patterns are supported");
      const std::string re = r.as_string(*regex, pf + ".Regex");
      std::optional<split_pattern> known;
      for (const auto p : {split_pattern::gpt2, split_pattern::llama3, split_pattern::qwen2})
        if (split_pattern_regex(p) == re) known = p;
      if (!known)
        r.fail(pf + ".Regex", detail::cat("unsupported split pattern ", detail::quote_token(re),
                                          " (slim implements the GPT-2, LLaMA-3 and Qwen2 patterns)"));
      const std::string behavior = r.get_string(pt, "behavior", field);
      if (behavior != "Isolated") r.fail(field + ".behavior", "only Isolated is supported, found " + behavior);
      if (r.get_bool(pt, "invert", false, field)) r.fail(field + ".invert", "inverted splits are not supported");
      splits_.push_back(*known);
    } else {
      r.fail(field + ".type", "pre-tokenizer " + type + " is not supported for byte-level BPE");
    }
  }

  /// Ids of a TemplateProcessing special token name.
  std::vector<token_id> template_ids(const detail::json& specials, const std::string& name,
                                     const detail::json_reader& r, const std::string& field) const {
    const auto& st = r.at(specials, name.c_str(), field);
    const auto& ids = r.at(st, "ids", field + "." + name);
    if (!ids.is_array()) r.fail(field + "." + name + ".ids", "expected an array");
    std::vector<token_id> out;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::string f = detail::json_reader::index(field + "." + name + ".ids", i);
      const auto id = static_cast<token_id>(r.as_index(ids[i], max_token_id, f));
      if (!contains(id)) r.fail(f, detail::cat("id ", id, " is not in the vocabulary"));
      out.push_back(id);
    }
    return out;
  }

  void load_post_processor(const detail::json& pp, const detail::json_reader& r, const std::string& field) {
    if (pp.is_null()) return;
    const std::string type = r.get_string(pp, "type", field);
    if (type == "ByteLevel") return;  // only offsets
    if (type == "Sequence") {
      const auto& list = r.at(pp, "processors", field);
      if (!list.is_array()) r.fail(field + ".processors", "expected an array");
      for (std::size_t i = 0; i < list.size(); ++i)
        load_post_processor(list[i], r, detail::json_reader::index(field + ".processors", i));
      return;
    }
    std::vector<token_id> prefix, suffix;
    if (type == "TemplateProcessing") {
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
          const auto ids =
              template_ids(specials, r.get_string(*sp, "id", f + ".SpecialToken"), r, field + ".special_tokens");
          auto& dst = seen_sequence ? suffix : prefix;
          dst.insert(dst.end(), ids.begin(), ids.end());
        } else {
          r.fail(f, "expected a Sequence or a SpecialToken");
        }
      }
      if (!seen_sequence) r.fail(field + ".single", "the template never places the sequence");
    } else if (type == "RobertaProcessing" || type == "BertProcessing") {
      auto pair_id = [&](const char* key) {
        const auto& p = r.at(pp, key, field);
        if (!p.is_array() || p.size() != 2) r.fail(field + "." + key, "expected [token, id]");
        const auto id = static_cast<token_id>(r.as_index(p[1], max_token_id, field + "." + key + "[1]"));
        if (!contains(id)) r.fail(field + "." + key, detail::cat("id ", id, " is not in the vocabulary"));
        return id;
      };
      prefix.push_back(pair_id("cls"));
      suffix.push_back(pair_id("sep"));
    } else {
      r.fail(field + ".type", "post-processor " + type + " is not supported");
    }
    // Applied after the processors before it: around what they produced.
    post_prefix_.insert(post_prefix_.begin(), prefix.begin(), prefix.end());
    post_suffix_.insert(post_suffix_.end(), suffix.begin(), suffix.end());
  }

  void load_hf_json(const detail::json& root, const detail::json_reader& r) {
    if (!root.is_object()) r.fail("(top level)", "expected an object");
    const auto& model = r.at(root, "model", "");
    if (const auto type = r.get_optional_string(model, "type", "model"); type && *type != "BPE")
      r.fail("model.type", "expected BPE, found " + *type);
    if (const auto* dropout = r.find(model, "dropout", "model"); dropout && !dropout->is_null()) {
      if (!dropout->is_number()) r.fail("model.dropout", "expected a number or null");
      if (dropout->get<double>() != 0.0) r.fail("model.dropout", "BPE dropout is not supported (not deterministic)");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (const auto v = r.get_optional_string(model, key, "model"); v && !v->empty())
        r.fail(std::string("model.") + key, "not supported for byte-level BPE");
    load_vocab(r.at(model, "vocab", "model"), r, "model.vocab");
    load_merges_json(r.at(model, "merges", "model"), r);
    fuse_unk_ = r.get_bool(model, "fuse_unk", false, "model");
    byte_fallback_ = r.get_bool(model, "byte_fallback", false, "model");
    ignore_merges_ = r.get_bool(model, "ignore_merges", false, "model");
    if (const auto unk = r.get_optional_string(model, "unk_token", "model")) {
      const auto* id = model_vocab_.find(*unk);
      if (!id) r.fail("model.unk_token", detail::quote_token(*unk) + " is not in model.vocab");
      unk_ = *id;
    }
    if (const auto* added = r.find(root, "added_tokens", "")) load_added_tokens(*added, r);
    if (const auto* norm = r.find(root, "normalizer", ""); norm && !norm->is_null()) {
      const std::string type = r.get_string(*norm, "type", "normalizer");
      const auto* list = r.find(*norm, "normalizers", "normalizer");
      if (!(type == "Sequence" && list && list->is_array() && list->empty()))
        r.fail("normalizer.type", "normalizer " + type + " is not supported yet");
    }
    bool saw_byte_level = false;
    load_pre_tokenizer(r.at(root, "pre_tokenizer", ""), r, "pre_tokenizer", saw_byte_level);
    if (!saw_byte_level) r.fail("pre_tokenizer", "byte-level BPE needs a ByteLevel stage");
    const auto& dec = r.at(root, "decoder", "");
    if (dec.is_null() || r.get_string(dec, "type", "decoder") != "ByteLevel")
      r.fail("decoder", "byte-level BPE needs the ByteLevel decoder");
    if (const auto* pp = r.find(root, "post_processor", "")) load_post_processor(*pp, r, "post_processor");
    if (!post_prefix_.empty()) bos_ = post_prefix_.front();
    if (!post_suffix_.empty()) eos_ = post_suffix_.back();
    if (!bos_) bos_ = find_added({"<|begin_of_text|>", "<s>"});
    if (!eos_) eos_ = find_added({"<|end_of_text|>", "</s>", "<|endoftext|>"});
    finish();
  }

  std::optional<token_id> find_added(std::initializer_list<std::string_view> names) const {
    for (const auto name : names)
      if (const auto* id = added_by_content_.find(name)) return *id;
    return std::nullopt;
  }

  /// BOS/EOS from a tokenizer_config.json ("bos_token": "<s>" or {"content": "<s>", ...}).
  void read_tokenizer_config(std::string_view text, const std::string& where) {
    const auto root = detail::parse_json(text, where);
    const detail::json_reader r(where);
    if (!root.is_object()) r.fail("(top level)", "expected an object");
    auto read = [&](const char* key, std::optional<token_id>& dst) {
      const auto* v = r.find(root, key, "");
      if (!v || v->is_null()) return;
      const std::string content = v->is_object() ? r.get_string(*v, "content", key) : r.as_string(*v, key);
      const auto id = token_to_id(content);
      if (!id) r.fail(key, detail::quote_token(content) + " is not in the vocabulary");
      dst = *id;
    };
    read("bos_token", bos_);
    read("eos_token", eos_);
  }

  /// Builds the per-byte tables and the added-token passes once everything is loaded.
  void finish() {
    for (unsigned b = 0; b < 256; ++b) {
      std::string ch;
      unicode::append_utf8(ch, byte_level::byte_to_char(static_cast<std::uint8_t>(b)));
      const auto* id = model_vocab_.find(ch);
      byte_id_[b] = id ? *id : -1;
      fallback_ok_[b] = true;
      fallback_ids_[b].fill(-1);
      for (std::size_t k = 0; k < ch.size(); ++k) {
        static constexpr char hex[] = "0123456789ABCDEF";
        const auto v = static_cast<unsigned char>(ch[k]);
        const std::string name = std::string("<0x") + hex[v >> 4] + hex[v & 15] + ">";
        const auto* fid = model_vocab_.find(name);
        if (!fid)
          fallback_ok_[b] = false;
        else
          fallback_ids_[b][k] = *fid;
      }
    }
    for (std::size_t i = 0; i < added_.size(); ++i)
      (added_[i].normalized ? second_pass_ : first_pass_).add(added_[i], static_cast<std::int32_t>(i));
  }

  // vocabulary
  std::vector<entry> entries_;
  std::string text_arena_, bytes_arena_;
  detail::string_map model_vocab_;     // model.vocab spelling -> id
  detail::string_map alphabet_vocab_;  // bytes -> id, for model tokens spelled in the byte alphabet
  detail::string_map added_by_content_;
  std::array<token_id, 256> byte_id_{};
  std::array<std::array<token_id, 2>, 256> fallback_ids_{};
  std::array<bool, 256> fallback_ok_{};
  // model
  detail::u64_map<merge_value> merges_;
  std::size_t merge_count_ = 0;
  std::optional<token_id> unk_;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  // pre-tokenizer
  std::vector<split_pattern> splits_;
  bool byte_level_split_ = true, add_prefix_space_ = false;
  // added tokens and post-processor
  std::vector<added_token> added_;
  detail::added_token_pass first_pass_, second_pass_;
  std::vector<token_id> post_prefix_, post_suffix_;
  std::optional<token_id> bos_, eos_;
};

static_assert(Tokenizer<byte_bpe>);

}  // namespace slim::text
