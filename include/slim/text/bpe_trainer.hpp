// slim — a byte-level BPE trainer (GPT-2 style) that reproduces HF `tokenizers`' BpeTrainer merge for merge
// and saves a `tokenizer.json` that both slim's byte_bpe and HF `tokenizers` load.
//
// Training, as HF's BpeTrainer with ByteLevel pre-tokenisation and the full byte alphabet:
//   1. every fed sequence is cut into words by the chosen split pattern (pre_tokenize.hpp) exactly as
//      byte_bpe cuts text (a `Split` stage for the LLaMA-3 / Qwen2 patterns, then ByteLevel with an optional
//      prefix space); identical words are counted. Special tokens written in the corpus are plain text
//      (HF does the same when the tokenizer has no added tokens before training);
//   2. the vocabulary starts with the special tokens (ids 0..k-1, in the given order, duplicates dropped),
//      then the alphabet — all 256 byte symbols, or only the bytes the corpus uses — in the order of the
//      code points that spell them in the byte-level alphabet (byte_level.hpp): '!'..'~', U+00A1.., U+0100..;
//   3. the most frequent adjacent pair is merged, repeatedly, until the vocabulary has `vocab_size` tokens,
//      no pair is left, or the best count is below `min_frequency`.
// Tie-break (deterministic, HF's): among pairs of equal count the one whose (left id, right id) is smallest
// wins — so older tokens first, and for two bytes, the one spelled by the lower code point.
// Bookkeeping follows HF exactly, so that the merge lists are identical: counts are kept per pair and updated
// incrementally from the neighbours of each merge (no recount); the queue holds one entry per (pair, set of
// words), and a popped entry whose count is stale is re-queued with the current count. (HF's merged pair
// keeps its count, so a second queue entry for it would merge it again; that needs one string formed by two
// different merges, which byte-level BPE cannot do — a token's bytes are always merged the same way — so
// slim, like HF, just keeps the last rank of a repeated pair.) Cost: O(corpus) to count words, then per
// merge O(occurrences touched · log queue). Single-threaded; the result depends only on the multiset of
// sequences fed, not on their order.
// Text need not be valid UTF-8: an ill-formed byte is a character of no class (unicode.hpp); HF would
// reject such a corpus.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/io/atomic_file.hpp"
#include "slim/text/byte_bpe.hpp"
#include "slim/text/byte_level.hpp"
#include "slim/text/detail/flat_map.hpp"
#include "slim/text/detail/json_fields.hpp"
#include "slim/text/pre_tokenize.hpp"
#include "slim/text/tokenizer.hpp"
#include "slim/text/unicode.hpp"

namespace slim::text {

/// Settings of a BPE training run (designated initialisers: `{.vocab_size = 4096, .pattern = ...}`).
struct bpe_trainer_options {
  /// Target vocabulary size, special tokens and the byte alphabet included. When it is smaller than those
  /// two together, the vocabulary is just those (no merges), as in HF.
  std::size_t vocab_size = 4096;
  /// A pair seen fewer times than this is never merged; training stops at the first such best pair.
  std::uint64_t min_frequency = 0;
  /// Special tokens, given ids 0..k-1 in this order; saved as special added tokens.
  std::vector<std::string> special_tokens = {};
  /// How words are cut before counting (and, in the saved file, before encoding).
  split_pattern pattern = split_pattern::gpt2;
  /// ByteLevel's add_prefix_space: a space goes in front of each piece that does not start with one.
  bool add_prefix_space = false;
  /// Start from all 256 byte symbols (HF: initial_alphabet = ByteLevel.alphabet()), so that every byte
  /// string can be encoded; false keeps only the bytes the corpus uses.
  bool full_alphabet = true;
  /// Written to the saved model: encode a piece that is itself a token as that token (LLaMA-3 does).
  bool ignore_merges = false;
  /// When set (they must be special tokens), the saved post-processor puts them around the text for
  /// `encode_options::add_special` (a TemplateProcessing); otherwise it is GPT-2's ByteLevel one.
  std::optional<std::string> bos_token = std::nullopt, eos_token = std::nullopt;
};

/// The outcome of training: a vocabulary and ranked merges, savable as `tokenizer.json` (or GPT-2 files).
struct trained_bpe {
  bpe_trainer_options options;
  /// Token spellings by id: special tokens as given, others in the byte-level alphabet ("Ġthe").
  std::vector<std::string> tokens;
  /// Merge rules by rank: the ids of the left and right parts.
  std::vector<std::pair<token_id, token_id>> merges;
  /// Merge steps taken, counting the repeated merges that the saved list folds into one rank.
  std::size_t merge_steps = 0;
  /// Distinct words counted in the corpus.
  std::size_t distinct_words = 0;

  /// The HF `tokenizer.json` text: vocabulary in id order, merges as ["a", "b"] pairs, one per line.
  std::string to_json() const {
    using ojson = nlohmann::ordered_json;
    auto byte_level = [&](bool prefix, bool regex) {
      return ojson{{"type", "ByteLevel"}, {"add_prefix_space", prefix}, {"trim_offsets", true}, {"use_regex", regex}};
    };
    ojson pre;
    if (options.pattern != split_pattern::gpt2) {
      ojson split = {{"type", "Split"},
                     {"pattern", {{"Regex", std::string(split_pattern_regex(options.pattern))}}},
                     {"behavior", "Isolated"},
                     {"invert", false}};
      pre = {{"type", "Sequence"},
             {"pretokenizers", ojson::array({split, byte_level(options.add_prefix_space, false)})}};
    } else {
      pre = byte_level(options.add_prefix_space, true);
    }
    std::string out =
        "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [";
    const auto specials = special_ids();
    for (std::size_t i = 0; i < specials.size(); ++i) {
      const ojson t = {
          {"id", specials[i].second}, {"content", specials[i].first}, {"single_word", false}, {"lstrip", false},
          {"rstrip", false},          {"normalized", false},          {"special", true}};
      out.append(i ? ",\n    " : "\n    ").append(t.dump());
    }
    out.append(specials.empty() ? "],\n" : "\n  ],\n");
    out.append("  \"normalizer\": null,\n  \"pre_tokenizer\": ").append(pre.dump());
    out.append(",\n  \"post_processor\": ").append(post_processor().dump());
    out.append(",\n  \"decoder\": ").append(byte_level(true, true).dump());
    out.append(",\n  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n");
    out.append("    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n");
    out.append("    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": ");
    out.append(options.ignore_merges ? "true" : "false").append(",\n    \"vocab\": {");
    for (std::size_t i = 0; i < tokens.size(); ++i)
      out.append(i ? ",\n      " : "\n      ").append(quoted(tokens[i])).append(": ").append(std::to_string(i));
    out.append(tokens.empty() ? "},\n    \"merges\": [" : "\n    },\n    \"merges\": [");
    for (std::size_t i = 0; i < merges.size(); ++i)
      out.append(i ? ",\n      [" : "\n      [")
          .append(quoted(spelling(merges[i].first)))
          .append(", ")
          .append(quoted(spelling(merges[i].second)))
          .append("]");
    out.append(merges.empty() ? "]\n  }\n}\n" : "\n    ]\n  }\n}\n");
    return out;
  }

  /// Writes `tokenizer.json` to `path` atomically.
  void save(const std::string& path) const { io::write_file_atomic(path, to_json()); }

  /// Writes GPT-2's `encoder.json` and `vocab.bpe` into `folder` (created if needed). GPT-2's format has no
  /// added-token list or pre-tokenizer settings: special tokens stay in encoder.json as vocabulary entries
  /// (loaders treat `<|endoftext|>` as special), and only the GPT-2 pattern without prefix space round-trips.
  void save_gpt2(const std::string& folder) const {
    if (options.pattern != split_pattern::gpt2 || options.add_prefix_space)
      throw error(folder, "", "GPT-2 files can only hold a model trained with the gpt2 pattern and no prefix space");
    std::error_code ec;
    std::filesystem::create_directories(folder, ec);
    if (ec) throw error(folder, "", "cannot create the folder: " + ec.message());
    std::string encoder = "{";
    for (std::size_t i = 0; i < tokens.size(); ++i)
      encoder.append(i ? ", " : "").append(quoted(tokens[i])).append(": ").append(std::to_string(i));
    encoder += "}\n";
    std::string bpe = "#version: 0.2\n";
    for (const auto& [a, b] : merges) bpe.append(spelling(a)).append(" ").append(spelling(b)).append("\n");
    io::write_file_atomic((std::filesystem::path(folder) / "encoder.json").string(), encoder);
    io::write_file_atomic((std::filesystem::path(folder) / "vocab.bpe").string(), bpe);
  }

  /// A byte_bpe tokenizer for this model (the same one `save` + `byte_bpe::from_file` gives).
  byte_bpe tokenizer() const { return byte_bpe::from_hf_json(to_json(), "trained_bpe"); }

  /// Special tokens with their ids, in option order, duplicates dropped.
  std::vector<std::pair<std::string, token_id>> special_ids() const {
    std::vector<std::pair<std::string, token_id>> out;
    for (const auto& s : options.special_tokens) {
      if (!unicode::is_valid_utf8(s))
        throw error("trained_bpe", "special token " + detail::quote_token(s), "not valid UTF-8");
      if (std::any_of(out.begin(), out.end(), [&](const auto& p) { return p.first == s; })) continue;
      out.emplace_back(s, static_cast<token_id>(out.size()));
    }
    return out;
  }

 private:
  const std::string& spelling(token_id id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= tokens.size())
      throw error("trained_bpe", "merges", detail::cat("id ", id, " is not in the vocabulary"));
    return tokens[static_cast<std::size_t>(id)];
  }
  /// A JSON string literal; throws slim::error on invalid UTF-8 (only user-given special tokens can have it).
  static std::string quoted(const std::string& s) {
    try {
      return nlohmann::json(s).dump();
    } catch (const nlohmann::json::exception&) {
      throw error("trained_bpe", "token " + detail::quote_token(s), "not valid UTF-8");
    }
  }

  nlohmann::ordered_json post_processor() const {
    using ojson = nlohmann::ordered_json;
    if (!options.bos_token && !options.eos_token)
      return {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
    const auto specials = special_ids();
    auto id_of = [&](const std::string& s) {
      for (const auto& p : specials)
        if (p.first == s) return p.second;
      throw error("bpe_trainer", "bos_token/eos_token", "\"" + s + "\" is not one of the special tokens");
    };
    auto piece = [](const char* kind, const std::string& id, int type_id) {
      return ojson{{kind, {{"id", id}, {"type_id", type_id}}}};
    };
    ojson single = ojson::array(), pair = ojson::array(), tokens_json = ojson::object();
    for (const auto* t : {&options.bos_token, &options.eos_token}) {
      if (!*t) continue;
      tokens_json[**t] = {{"id", **t}, {"ids", ojson::array({id_of(**t)})}, {"tokens", ojson::array({**t})}};
    }
    if (options.bos_token) single.push_back(piece("SpecialToken", *options.bos_token, 0));
    single.push_back(piece("Sequence", "A", 0));
    if (options.eos_token) single.push_back(piece("SpecialToken", *options.eos_token, 0));
    pair = single;
    if (options.bos_token) pair.push_back(piece("SpecialToken", *options.bos_token, 1));
    pair.push_back(piece("Sequence", "B", 1));
    if (options.eos_token) pair.push_back(piece("SpecialToken", *options.eos_token, 1));
    return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", tokens_json}};
  }
};

namespace detail {

/// Open-addressing map from a token pair (left << 32 | right) to a signed count; find-or-insert only.
class pair_count_table {
 public:
  std::int64_t& operator[](std::uint64_t key) {
    if (2 * (size_ + 1) > slots_.size()) grow();
    std::size_t i = mix64(key) & (slots_.size() - 1);
    while (slots_[i].key != empty && slots_[i].key != key) i = (i + 1) & (slots_.size() - 1);
    if (slots_[i].key == empty) {
      slots_[i].key = key;
      ++size_;
    }
    return slots_[i].count;
  }

 private:
  static constexpr std::uint64_t empty = ~std::uint64_t{0};
  struct slot {
    std::uint64_t key = empty;
    std::int64_t count = 0;
  };
  void grow() {
    std::vector<slot> old;
    old.swap(slots_);
    slots_.assign(old.empty() ? 1024 : 2 * old.size(), slot{});
    for (const slot& s : old) {
      if (s.key == empty) continue;
      std::size_t i = mix64(s.key) & (slots_.size() - 1);
      while (slots_[i].key != empty) i = (i + 1) & (slots_.size() - 1);
      slots_[i] = s;
    }
  }
  std::vector<slot> slots_;
  std::size_t size_ = 0;
};

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return static_cast<std::size_t>(hash_bytes(s)); }
};

}  // namespace detail

/// Byte-level BPE trainer: `feed` text, then `train`. See the file comment for the algorithm.
class bpe_trainer {
 public:
  /// Largest vocabulary the trainer builds (byte_bpe's id limit).
  static constexpr std::size_t max_vocab_size = static_cast<std::size_t>(byte_bpe::max_token_id);

  /// Checks the options: special tokens non-empty, valid UTF-8 (they are written into JSON), BOS/EOS among
  /// them; vocab_size at most max_vocab_size.
  explicit bpe_trainer(bpe_trainer_options options = {}) : options_(std::move(options)) {
    if (options_.vocab_size > max_vocab_size)
      throw error("bpe_trainer", "vocab_size", detail::cat(options_.vocab_size, " exceeds ", max_vocab_size));
    for (std::size_t i = 0; i < options_.special_tokens.size(); ++i) {
      const auto& s = options_.special_tokens[i];
      const std::string place = detail::cat("special_tokens[", i, "]");
      if (s.empty()) throw error("bpe_trainer", place, "empty");
      if (!unicode::is_valid_utf8(s)) throw error("bpe_trainer", place, "not valid UTF-8");
    }
    for (const auto* t : {&options_.bos_token, &options_.eos_token})
      if (*t && std::find(options_.special_tokens.begin(), options_.special_tokens.end(), **t) ==
                    options_.special_tokens.end())
        throw error("bpe_trainer", t == &options_.bos_token ? "bos_token" : "eos_token",
                    detail::quote_token(**t) + " is not one of the special tokens");
  }

  const bpe_trainer_options& options() const noexcept { return options_; }

  /// Counts the words of one sequence (a document, a line: HF's `train_from_iterator` items).
  void feed(std::string_view sequence) {
    if (options_.pattern == split_pattern::gpt2) {
      byte_level_words(sequence);
    } else {
      split_text(options_.pattern, sequence, [&](std::string_view piece) { byte_level_words(piece); });
    }
  }

  /// Feeds each line of `text`, its '\n' included (HF's `train` from files reads lines this way).
  void feed_lines(std::string_view text) {
    while (!text.empty()) {
      const std::size_t eol = text.find('\n');
      const std::size_t n = eol == std::string_view::npos ? text.size() : eol + 1;
      feed(text.substr(0, n));
      text.remove_prefix(n);
    }
  }

  /// Distinct words counted so far.
  std::size_t word_count() const noexcept { return words_.size(); }

  /// Runs the merges. The trainer keeps its counts, so `train` can run again (e.g. with more data fed).
  /// Throws slim::error when the vocabulary would be empty (nothing fed, full_alphabet off, no specials).
  trained_bpe train() const {
    trained_bpe out;
    out.options = options_;
    out.distinct_words = words_.size();
    std::unordered_map<std::string, token_id, detail::string_hash, std::equal_to<>> word_to_id;
    auto& id_to_word = out.tokens;
    auto intern = [&](const std::string& s) {
      const auto it = word_to_id.find(s);
      if (it != word_to_id.end()) return it->second;
      const auto id = static_cast<token_id>(id_to_word.size());
      id_to_word.push_back(s);
      word_to_id.emplace(s, id);
      return id;
    };
    for (const auto& s : options_.special_tokens) intern(s);

    // The alphabet, in code point order of the byte-level spelling.
    std::array<bool, 256> used{};
    if (options_.full_alphabet) {
      used.fill(true);
    } else {
      for (const auto& [word, count] : words_)
        for (const char c : word) used[static_cast<unsigned char>(c)] = true;
    }
    std::array<std::uint8_t, 256> order{};
    for (unsigned b = 0; b < 256; ++b) order[b] = static_cast<std::uint8_t>(b);
    std::sort(order.begin(), order.end(),
              [](std::uint8_t x, std::uint8_t y) { return byte_level::byte_to_char(x) < byte_level::byte_to_char(y); });
    std::array<token_id, 256> byte_symbol{};
    for (const std::uint8_t b : order) {
      if (!used[b]) continue;
      std::string s;
      unicode::append_utf8(s, byte_level::byte_to_char(b));
      byte_symbol[b] = intern(s);
    }
    if (id_to_word.empty())
      throw error("bpe_trainer", "train",
                  "nothing to build a vocabulary from: no text was fed, full_alphabet is off "
                  "and there are no special tokens");

    // Words as symbol runs in one arena; each shrinks in place as it merges.
    std::vector<token_id> arena;
    std::vector<std::uint32_t> begin, length;
    std::vector<std::int64_t> counts;
    begin.reserve(words_.size());
    length.reserve(words_.size());
    counts.reserve(words_.size());
    for (const auto& [word, count] : words_) {
      begin.push_back(static_cast<std::uint32_t>(arena.size()));
      length.push_back(static_cast<std::uint32_t>(word.size()));
      counts.push_back(static_cast<std::int64_t>(count));
      for (const char c : word) arena.push_back(byte_symbol[static_cast<unsigned char>(c)]);
    }

    // Pair counts and, per pair, the words it occurs in.
    detail::pair_count_table pair_counts;
    std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> where;
    for (std::size_t w = 0; w < begin.size(); ++w) {
      const token_id* s = arena.data() + begin[w];
      for (std::uint32_t i = 0; i + 1 < length[w]; ++i) {
        const std::uint64_t p = key(s[i], s[i + 1]);
        pair_counts[p] += counts[w];
        auto& list = where[p];
        if (list.empty() || list.back() != w) list.push_back(static_cast<std::uint32_t>(w));
      }
    }
    std::vector<queued> heap;
    heap.reserve(where.size());
    auto push_updates = [&] {
      for (auto& [p, words] : where) {
        const std::int64_t c = pair_counts[p];
        if (c > 0) {
          heap.push_back({static_cast<std::uint64_t>(c), p, std::move(words)});
          std::push_heap(heap.begin(), heap.end(), lower);
        }
      }
      where.clear();
    };
    push_updates();

    std::vector<std::pair<std::uint64_t, token_id>> steps;  // (pair, merged id) per merge step
    while (id_to_word.size() < options_.vocab_size && !heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), lower);
      queued top = std::move(heap.back());
      heap.pop_back();
      const auto current = static_cast<std::uint64_t>(pair_counts[top.pair]);
      if (top.count != current) {  // stale: re-queue with the count as it is now
        top.count = current;
        heap.push_back(std::move(top));
        std::push_heap(heap.begin(), heap.end(), lower);
        continue;
      }
      if (top.count < 1 || options_.min_frequency > top.count) break;
      const auto a = static_cast<token_id>(top.pair >> 32), b = static_cast<token_id>(top.pair & 0xFFFFFFFFu);
      const token_id merged = intern(id_to_word[static_cast<std::size_t>(a)] + id_to_word[static_cast<std::size_t>(b)]);
      steps.emplace_back(top.pair, merged);
      for (const std::uint32_t w : top.words) {
        merge_word(arena.data() + begin[w], length[w], a, b, merged, [&](token_id l, token_id r, int delta) {
          const std::uint64_t p = key(l, r);
          pair_counts[p] += delta * counts[w];
          if (delta > 0) {
            auto& list = where[p];
            if (list.empty() || list.back() != w) list.push_back(w);
          }
        });
      }
      push_updates();
    }

    // A pair merged more than once keeps its last rank (HF's merge map, serialised in rank order).
    out.merge_steps = steps.size();
    std::unordered_map<std::uint64_t, std::size_t> last;
    for (std::size_t i = 0; i < steps.size(); ++i) last[steps[i].first] = i;
    for (std::size_t i = 0; i < steps.size(); ++i)
      if (last[steps[i].first] == i)
        out.merges.emplace_back(static_cast<token_id>(steps[i].first >> 32),
                                static_cast<token_id>(steps[i].first & 0xFFFFFFFFu));
    return out;
  }

 private:
  struct queued {
    std::uint64_t count;
    std::uint64_t pair;
    std::vector<std::uint32_t> words;
  };
  /// Heap order: higher count first, then the smaller pair.
  static bool lower(const queued& x, const queued& y) noexcept {
    return x.count != y.count ? x.count < y.count : x.pair > y.pair;
  }
  static std::uint64_t key(token_id a, token_id b) noexcept {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }

  /// Merges every (a, b) in the symbol run s[0..n), left to right (HF's Word::merge), shrinking n, and
  /// reports the neighbour pairs that disappear (-1) and appear (+1).
  template <class Change>
  static void merge_word(token_id* s, std::uint32_t& n, token_id a, token_id b, token_id merged, Change&& change) {
    std::uint32_t r = 0, w = 0;
    while (r < n) {
      if (r + 1 < n && s[r] == a && s[r + 1] == b) {
        if (w > 0) {
          change(s[w - 1], a, -1);
          change(s[w - 1], merged, +1);
        }
        s[w++] = merged;
        r += 2;
        if (r < n) {
          change(b, s[r], -1);
          change(merged, s[r], +1);
        }
      } else {
        s[w++] = s[r++];
      }
    }
    n = w;
  }

  /// ByteLevel: the optional prefix space, then the GPT-2 split when it is the only stage.
  void byte_level_words(std::string_view piece) {
    std::string prefixed;
    if (options_.add_prefix_space && !piece.empty() && piece.front() != ' ') {
      prefixed.reserve(piece.size() + 1);
      prefixed += ' ';
      prefixed += piece;
      piece = prefixed;
    }
    if (options_.pattern == split_pattern::gpt2)
      split_text(split_pattern::gpt2, piece, [&](std::string_view w) { count(w); });
    else if (!piece.empty())
      count(piece);
  }

  void count(std::string_view word) {
    if (word.size() > 0xFFFFFFFFu) throw error("bpe_trainer", "feed", "a word longer than 4 GiB");
    const auto it = words_.find(word);
    if (it != words_.end())
      ++it->second;
    else
      words_.emplace(std::string(word), 1);
  }

  bpe_trainer_options options_;
  std::unordered_map<std::string, std::uint64_t, detail::string_hash, std::equal_to<>> words_;
};

}  // namespace slim::text
