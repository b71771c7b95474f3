// slim — nn::sentence_encoder: text in, one embedding per text out — a WordPiece tokenizer, [CLS] … [SEP] with
// truncation, and an nn::encoder with the pooling, normalisation and maximum length a sentence-transformers
// model folder declares (all-MiniLM-L6-v2: mean pooling, L2 normalisation, 256 tokens).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/core/tensor.hpp"
#include "slim/io/json.hpp"
#include "slim/nn/encoder.hpp"
#include "slim/text/wordpiece.hpp"

namespace slim::nn {

/// What a sentence-transformers folder says about turning token states into a sentence embedding.
struct sentence_settings {
  index_t max_seq_length = 512;  ///< tokens per text, [CLS] and [SEP] included; longer texts are cut
  embed_options options;         ///< pooling and normalisation
};

/// Reads a sentence-transformers model folder: `max_seq_length` from sentence_bert_config.json (absent:
/// `default_max_length`); the Pooling module (modules.json names its folder; default 1_Pooling) and whether a
/// Normalize module follows. Without modules.json: mean pooling, no normalisation. A pooling mode slim does
/// not implement (max, mean_sqrt_len, weighted mean, last token) or none at all is a slim::error naming the
/// file and the field.
inline sentence_settings read_sentence_settings(const std::string& dir, index_t default_max_length) {
  std::error_code ec;
  const auto present = [&](const std::string& f) { return std::filesystem::is_regular_file(f, ec); };
  sentence_settings s;
  s.max_seq_length = default_max_length;
  const std::string st = dir + "/sentence_bert_config.json";
  if (present(st)) {
    s.max_seq_length = io::get_or<index_t>(io::read_json(st), "max_seq_length", default_max_length, st);
    if (s.max_seq_length < 3) throw error(st, "field max_seq_length", "must be at least 3 ([CLS], one token, [SEP])");
  }
  const std::string modules = dir + "/modules.json";
  if (!present(modules)) return s;
  const io::json m = io::read_json(modules);
  if (!m.is_array()) throw error(modules, "", "expected an array of modules");
  std::string pooling_dir;
  for (std::size_t i = 0; i < m.size(); ++i) {
    const std::string path = std::to_string(i);
    const std::string type = io::get<std::string>(m, path + "/type", modules);
    if (type.ends_with(".Pooling")) pooling_dir = io::get_or<std::string>(m, path + "/path", "1_Pooling", modules);
    if (type.ends_with(".Normalize")) s.options.normalize = true;
  }
  if (pooling_dir.empty()) return s;
  const std::string pc = dir + "/" + pooling_dir + "/config.json";
  const io::json p = io::read_json(pc);
  const bool mean = io::get_or<bool>(p, "pooling_mode_mean_tokens", false, pc);
  const bool cls = io::get_or<bool>(p, "pooling_mode_cls_token", false, pc);
  for (const char* other : {"pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
                            "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"})
    if (io::get_or<bool>(p, other, false, pc))
      throw error(pc, std::string("field ") + other, "this pooling mode is not implemented (mean or cls only)");
  if (mean == cls)
    throw error(
        pc, "field pooling_mode_mean_tokens",
        mean ? "mean and cls pooling together (a concatenation) are not implemented" : "no pooling mode is set");
  s.options.pooling = mean ? pooling::mean : pooling::cls;
  return s;
}

/// Token ids of a batch of texts, right-padded: ids (B,S) and attention mask (B,S), S = the longest row.
struct token_batch {
  tensor<std::int32_t, 2> ids;
  tensor<std::int32_t, 2> mask;
};

/// Encodes each text as the tokenizer's post-processor does ([CLS] text [SEP] for BERT), cutting the text's
/// own tokens so a row holds at most `max_length` ids with the special ones (HF's truncation=True,
/// max_length), and pads the rows with `pad_id` to the longest.
inline token_batch tokenize_batch(const text::wordpiece& tok, std::span<const std::string> texts, index_t max_length,
                                  std::int32_t pad_id = 0) {
  const auto& pre = tok.special_prefix();
  const auto& post = tok.special_suffix();
  const auto specials = static_cast<index_t>(pre.size() + post.size());
  require(max_length > specials, "slim::nn::tokenize_batch", "max_length ", max_length,
          " leaves no room for text beside ", specials, " special tokens");
  std::vector<std::vector<text::token_id>> rows(texts.size());
  index_t width = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    std::vector<text::token_id> body = tok.encode(texts[i], {.add_special = false});
    if (static_cast<index_t>(body.size()) > max_length - specials)
      body.resize(static_cast<std::size_t>(max_length - specials));
    auto& r = rows[i];
    r.reserve(body.size() + pre.size() + post.size());
    r.insert(r.end(), pre.begin(), pre.end());
    r.insert(r.end(), body.begin(), body.end());
    r.insert(r.end(), post.begin(), post.end());
    width = std::max(width, static_cast<index_t>(r.size()));
  }
  token_batch b{tensor<std::int32_t, 2>({static_cast<index_t>(texts.size()), width}),
                tensor<std::int32_t, 2>({static_cast<index_t>(texts.size()), width})};
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (index_t t = 0; t < width; ++t) {
      const bool real = t < static_cast<index_t>(rows[i].size());
      b.ids(static_cast<index_t>(i), t) =
          real ? static_cast<std::int32_t>(rows[i][static_cast<std::size_t>(t)]) : pad_id;
      b.mask(static_cast<index_t>(i), t) = real ? 1 : 0;
    }
  return b;
}

/// A text encoder: WordPiece tokenizer + nn::encoder + sentence settings. `embed` cuts the texts into
/// batches of `batch_size` (embeddings do not depend on it). Not for concurrent use (the encoder keeps
/// scratch buffers).
template <class Backend, class T = float>
class sentence_encoder {
 public:
  sentence_encoder(encoder<Backend, T> model, text::wordpiece tokenizer, sentence_settings settings)
      : model_(std::move(model)), tokenizer_(std::move(tokenizer)), settings_(settings) {
    require(settings_.max_seq_length <= model_.config().max_position_embeddings, "slim::nn::sentence_encoder",
            "max_seq_length ", settings_.max_seq_length, " exceeds the model's max_position_embeddings ",
            model_.config().max_position_embeddings);
    require(tokenizer_.vocab_size() <= static_cast<std::size_t>(model_.config().vocab_size),
            "slim::nn::sentence_encoder", "the tokenizer has ", tokenizer_.vocab_size(),
            " ids, the model's vocab_size is ", model_.config().vocab_size);
  }

  /// Everything from one folder: config.json and the weights (encoder::from_pretrained), the tokenizer
  /// (tokenizer.json or vocab.txt, text::wordpiece::from_file) and the sentence-transformers settings
  /// (read_sentence_settings; max length defaults to max_position_embeddings).
  static sentence_encoder from_pretrained(const std::string& dir) {
    auto model = encoder<Backend, T>::from_pretrained(dir);
    const index_t max_len = model.config().max_position_embeddings;
    return sentence_encoder(std::move(model), text::wordpiece::from_file(dir), read_sentence_settings(dir, max_len));
  }

  encoder<Backend, T>& model() noexcept { return model_; }
  const text::wordpiece& tokenizer() const noexcept { return tokenizer_; }
  const sentence_settings& settings() const noexcept { return settings_; }
  sentence_settings& settings() noexcept { return settings_; }
  index_t dimension() const noexcept { return model_.hidden_size(); }

  /// One embedding per text.                                                                 out (texts,H)
  void embed(const Backend& be, std::span<const std::string> texts, matrix_view<T> out, index_t batch_size = 32) {
    require_shape(out, {static_cast<index_t>(texts.size()), dimension()}, "slim::nn::sentence_encoder::embed", "out");
    require(batch_size > 0, "slim::nn::sentence_encoder::embed", "batch_size must be positive");
    for (std::size_t i = 0; i < texts.size(); i += static_cast<std::size_t>(batch_size)) {
      const std::size_t n = std::min(texts.size() - i, static_cast<std::size_t>(batch_size));
      const token_batch b = tokenize_batch(tokenizer_, texts.subspan(i, n), settings_.max_seq_length);
      model_.embed(be, b.ids.view(), b.mask.view(), row_range(out, static_cast<index_t>(i), static_cast<index_t>(n)),
                   settings_.options);
    }
  }

 private:
  encoder<Backend, T> model_;
  text::wordpiece tokenizer_;
  sentence_settings settings_;
};

}  // namespace slim::nn
