// slim — language-model fine-tuning data: (prompt, completion) examples from JSON Lines (token ids, or text
// through a tokenizer), truncation to a maximum length that keeps the completion's start, right-padded batches
// with a loss mask on completion tokens and HF-style shifted next-token targets, and the seeded epoch shuffle.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/core/philox.hpp"
#include "slim/core/tensor.hpp"
#include "slim/io/json.hpp"
#include "slim/text/tokenizer.hpp"
#include "slim/train/lm_loss.hpp"

namespace slim::train {

/// One supervised example: the model reads prompt + completion and is trained on the completion tokens only.
struct lm_example {
  std::vector<std::int32_t> prompt, completion;
};

/// How text fields are turned into ids by the tokenizer overload of read_lm_jsonl.
struct lm_text_options {
  /// Put the tokenizer's BOS (when it has one) before a prompt given as text.
  bool add_bos = true;
  /// Put the tokenizer's EOS (when it has one) after a completion given as text, so the model learns to stop.
  bool add_eos = true;
};

namespace detail {

/// The ids of field `name` of a JSON Lines record: an array of integers in [0, 2³¹).
inline std::vector<std::int32_t> lm_ids_field(const io::json& v, const std::string& path, std::size_t line,
                                              const char* name) {
  const std::string place = "line " + std::to_string(line) + ", field " + name;
  if (!v.is_array()) throw error(path, place, "expected an array of token ids, got " + std::string(v.type_name()));
  std::vector<std::int32_t> ids;
  ids.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const io::json& x = v[i];
    const std::string at = place + "[" + std::to_string(i) + "]";
    if (!x.is_number_integer()) throw error(path, at, "token id must be an integer, got " + x.dump());
    if (x.is_number_unsigned()
            ? x.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())
            : (x.get<std::int64_t>() < 0 || x.get<std::int64_t>() > std::numeric_limits<std::int32_t>::max()))
      throw error(path, at, "token id " + x.dump() + " lies outside [0, 2^31)");
    ids.push_back(static_cast<std::int32_t>(x.get<std::int64_t>()));
  }
  return ids;
}

/// The record's object, with both fields present.
inline const io::json& lm_record(const io::json& r, const std::string& path, std::size_t line) {
  const std::string place = "line " + std::to_string(line);
  if (!r.is_object()) throw error(path, place, "expected an object {\"prompt\": ..., \"completion\": ...}");
  for (const char* f : {"prompt", "completion"})
    if (!r.contains(f)) throw error(path, place + ", field " + f, "missing");
  return r;
}

inline void lm_check_completion(const lm_example& e, const std::string& path, std::size_t line) {
  if (e.completion.empty())
    throw error(path, "line " + std::to_string(line) + ", field completion", "empty: nothing to train on");
}

}  // namespace detail

/// Reads JSON Lines {"prompt": [ids], "completion": [ids]} (other fields are ignored; blank lines skipped). The
/// prompt may be empty, the completion may not. Ids must be integers in [0, 2³¹); whether they fit the model's
/// vocabulary is checked by fit_lm. Any bad line throws slim::error naming the file, the line and the field.
inline std::vector<lm_example> read_lm_jsonl(const std::string& path) {
  std::vector<lm_example> out;
  io::read_jsonl(path, [&](io::json&& r, std::size_t line) {
    detail::lm_record(r, path, line);
    lm_example e{detail::lm_ids_field(r["prompt"], path, line, "prompt"),
                 detail::lm_ids_field(r["completion"], path, line, "completion")};
    detail::lm_check_completion(e, path, line);
    out.push_back(std::move(e));
  });
  return out;
}

/// Reads JSON Lines whose "prompt" and "completion" are strings (tokenized separately, without the model's
/// special tokens, so ids never depend on how the two texts would merge at their boundary) or arrays of ids
/// (taken as they are). Text prompts get the tokenizer's BOS in front and text completions its EOS behind, as
/// `opt` asks and when the tokenizer has them. Errors as in the id-only overload.
template <text::Tokenizer Tok>
std::vector<lm_example> read_lm_jsonl(const std::string& path, const Tok& tok, lm_text_options opt = {}) {
  std::vector<lm_example> out;
  const text::encode_options eo{.add_special = false, .split_special = true};
  io::read_jsonl(path, [&](io::json&& r, std::size_t line) {
    detail::lm_record(r, path, line);
    lm_example e;
    for (const char* f : {"prompt", "completion"}) {
      const io::json& v = r[f];
      const bool prompt = f[0] == 'p';
      std::vector<std::int32_t>& ids = prompt ? e.prompt : e.completion;
      if (v.is_string()) {
        const auto bos = tok.bos_id();
        const auto eos = tok.eos_id();
        if (prompt && opt.add_bos && bos) ids.push_back(*bos);
        const std::vector<text::token_id> t = tok.encode(v.template get_ref<const std::string&>(), eo);
        ids.insert(ids.end(), t.begin(), t.end());
        if (!prompt && opt.add_eos && eos) ids.push_back(*eos);
      } else if (v.is_array()) {
        ids = detail::lm_ids_field(v, path, line, f);
      } else {
        throw error(path, "line " + std::to_string(line) + ", field " + f,
                    "expected a string or an array of token ids, got " + std::string(v.type_name()));
      }
    }
    detail::lm_check_completion(e, path, line);
    out.push_back(std::move(e));
  });
  return out;
}

/// The tokens the model reads for `e` under `max_len`, and how many of them are prompt tokens. When
/// prompt + completion is longer than max_len the prompt loses tokens from its START (the text nearest the
/// completion is kept); if the completion alone exceeds max_len, the whole prompt goes and the completion loses
/// tokens from its END. The completion's start is never cut, so what the model is trained to write first is
/// always what the example's completion begins with.
struct lm_sequence {
  std::vector<std::int32_t> ids;
  index_t prompt_tokens = 0;
};

inline lm_sequence truncate_example(const lm_example& e, index_t max_len) {
  require(max_len > 0, "slim::train::truncate_example", "max_len must be positive, got ", max_len);
  const auto p = static_cast<index_t>(e.prompt.size()), c = static_cast<index_t>(e.completion.size());
  const index_t keep_c = std::min(c, max_len);
  const index_t keep_p = std::min(p, max_len - keep_c);
  lm_sequence s;
  s.ids.reserve(static_cast<std::size_t>(keep_p + keep_c));
  s.ids.insert(s.ids.end(), e.prompt.end() - keep_p, e.prompt.end());
  s.ids.insert(s.ids.end(), e.completion.begin(), e.completion.begin() + keep_c);
  s.prompt_tokens = keep_p;
  return s;
}

/// A right-padded batch. Row b holds sequence b from column 0, then `pad_id`. loss_mask(b, t) = 1 exactly on
/// completion tokens. targets (B·S, row b·S + t, the training forward's logit row) follow HF's shifted labels:
/// column t predicts the token at t + 1, and counts only when that token is a completion token (prompt,
/// padding and the last column give ignore_target).
struct lm_batch {
  tensor<std::int32_t, 2> ids;
  tensor<std::uint8_t, 2> loss_mask;
  std::vector<std::int32_t> targets;
  std::vector<index_t> lengths;  ///< real tokens per row
  index_t tokens = 0;            ///< real tokens in the batch
  index_t counted = 0;           ///< targets that count

  index_t rows() const noexcept { return ids.extent(0); }
  index_t columns() const noexcept { return ids.extent(1); }
};

/// The batch of examples[rows[0]], examples[rows[1]], ... truncated to max_len (truncate_example); its width is
/// the longest truncated row.
inline lm_batch make_lm_batch(std::span<const lm_example> examples, std::span<const index_t> rows, index_t max_len,
                              std::int32_t pad_id = 0) {
  constexpr const char* where = "slim::train::make_lm_batch";
  require(!rows.empty(), where, "a batch needs at least one row");
  std::vector<lm_sequence> seqs;
  seqs.reserve(rows.size());
  index_t width = 1;
  for (const index_t r : rows) {
    require(r >= 0 && r < static_cast<index_t>(examples.size()), where, "row ", r, " outside [0, ", examples.size(),
            ")");
    seqs.push_back(truncate_example(examples[static_cast<std::size_t>(r)], max_len));
    width = std::max(width, static_cast<index_t>(seqs.back().ids.size()));
  }
  const auto b = static_cast<index_t>(rows.size());
  lm_batch out;
  out.ids = tensor<std::int32_t, 2>({b, width});
  out.loss_mask = tensor<std::uint8_t, 2>({b, width});
  out.lengths.resize(static_cast<std::size_t>(b));
  for (index_t i = 0; i < b; ++i) {
    const lm_sequence& s = seqs[static_cast<std::size_t>(i)];
    const auto n = static_cast<index_t>(s.ids.size());
    for (index_t t = 0; t < width; ++t) {
      out.ids(i, t) = t < n ? s.ids[static_cast<std::size_t>(t)] : pad_id;
      out.loss_mask(i, t) = t < n && t >= s.prompt_tokens ? 1 : 0;
    }
    out.lengths[static_cast<std::size_t>(i)] = n;
    out.tokens += n;
  }
  out.targets.resize(static_cast<std::size_t>(b * width));
  next_token_targets(out.ids.view(), out.loss_mask.view(), out.targets);
  for (const std::int32_t t : out.targets) out.counted += t != ignore_target ? 1 : 0;
  return out;
}

/// The order of examples 0..n−1 in epoch `epoch` (0-based): a Fisher–Yates shuffle drawn from a Philox stream
/// keyed by (seed, epoch) — the same on every backend and thread count, and recomputable after a restart from
/// the seed and the epoch alone.
inline std::vector<index_t> lm_epoch_order(index_t n, std::uint64_t seed, std::uint64_t epoch) {
  std::vector<index_t> order(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  const philox_block k = philox4x32_10(
      philox_block{{static_cast<std::uint32_t>(epoch), static_cast<std::uint32_t>(epoch >> 32), 0x1a7d5u, 0x5u}},
      static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  philox_stream rng(static_cast<std::uint64_t>(k.v[0]) | (static_cast<std::uint64_t>(k.v[1]) << 32));
  for (std::size_t i = order.size(); i > 1; --i)
    std::swap(order[i - 1], order[rng.below(static_cast<std::uint32_t>(i))]);
  return order;
}

}  // namespace slim::train
