// slim — the student side of distillation: a tokenizer trained on the texts at hand, a small LLaMA-family
// student (domain pretraining from scratch, then LoRA on prompt → rationale), batched rationale generation
// for every user and mean-pooled sentence embeddings from the student's final hidden states.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/core/tensor.hpp"
#include "slim/nn/decoder_lm.hpp"
#include "slim/nn/generate.hpp"
#include "slim/text/bpe_trainer.hpp"
#include "slim/text/byte_bpe.hpp"
#include "slim/train/lm_data.hpp"

namespace slim::distill {

/// The special tokens of a student tokenizer trained here: padding, BOS, EOS (ids 0, 1, 2).
inline constexpr std::string_view student_pad = "<pad>", student_bos = "<s>", student_eos = "</s>";

/// A byte-level BPE model (`.tokenizer()`, `.to_json()`) trained on `corpus` (one document per string) with <pad>, <s>,
/// </s> as ids 0-2 (BOS and EOS set), GPT-2 pre-tokenisation and the full byte alphabet, so any text encodes.
inline text::trained_bpe train_student_bpe(std::span<const std::string> corpus, std::size_t vocab_size) {
  text::bpe_trainer_options o;
  o.vocab_size = vocab_size;
  o.special_tokens = {std::string(student_pad), std::string(student_bos), std::string(student_eos)};
  o.bos_token = std::string(student_bos);
  o.eos_token = std::string(student_eos);
  text::bpe_trainer tr(o);
  for (const std::string& d : corpus) tr.feed(d);
  return tr.train();
}

/// Copies every base parameter of `src` into `dst` (same names and shapes in the same order, else slim::error):
/// a pretrained full model into the LoRA student that fine-tunes it.
template <class Dst, class Src>
void copy_base_weights(Dst& dst, Src& src) {
  constexpr const char* where = "slim::distill::copy_base_weights";
  using T = typename Dst::value_type;
  std::vector<nn::parameter<T>*> to;
  dst.visit_base_parameters([&](nn::parameter<T>& p) { to.push_back(&p); });
  std::size_t i = 0;
  src.visit_base_parameters([&](auto& p) {
    require(i < to.size(), where, "the source has more base parameters than the destination");
    nn::parameter<T>& d = *to[i++];
    require(d.name == p.name && d.rows == p.rows && d.cols == p.cols, where, "parameter ", d.name, " (", d.rows, "x",
            d.cols, ") does not match ", p.name, " (", p.rows, "x", p.cols, ")");
    require(d.value.size() == p.value.size(), where, d.name, ": storage sizes differ (bf16 frozen weights?)");
    std::copy(p.value.data(), p.value.data() + p.value.size(), d.value.data());
  });
  require(i == to.size(), where, "the destination has more base parameters than the source");
}

/// One supervised example for the student: `prompt` ids (BOS included by the prompt builder), then the
/// rationale's ids and EOS as the completion (the loss counts the completion only).
template <text::Tokenizer Tok>
train::lm_example make_example(const Tok& tok, std::span<const std::int32_t> prompt, std::string_view rationale) {
  train::lm_example e;
  e.prompt.assign(prompt.begin(), prompt.end());
  e.completion = tok.encode(rationale);
  if (const auto eos = tok.eos_id()) e.completion.push_back(*eos);
  return e;
}

/// A domain-pretraining example: the whole text is the completion after BOS (loss on every token).
template <text::Tokenizer Tok>
train::lm_example make_text_example(const Tok& tok, std::string_view doc) {
  train::lm_example e;
  if (const auto bos = tok.bos_id()) e.prompt.push_back(*bos);
  e.completion = tok.encode(doc);
  if (const auto eos = tok.eos_id()) e.completion.push_back(*eos);
  return e;
}

/// Options of explain().
struct explain_options {
  index_t batch = 64;           ///< prompts per generation batch (sorted by length to limit padding)
  index_t max_new_tokens = 96;  ///< rationale length cap
  std::int32_t pad_id = 0;      ///< left padding of the batch
};

/// Greedy rationale of every prompt (new text only, special tokens skipped), stopping at the tokenizer's EOS.
/// Prompts are batched by length; the output does not depend on the batching (nn::generate's guarantee).
/// `progress(done, total)` is called after each batch.
template <class Backend, class Model, text::Tokenizer Tok, class Progress>
std::vector<std::string> explain(Model& model, const Backend& be, const Tok& tok,
                                 std::span<const std::vector<std::int32_t>> prompts, const explain_options& opt,
                                 Progress&& progress) {
  require(opt.batch > 0, "slim::distill::explain", "batch must be positive");
  const auto n = prompts.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return prompts[a].size() < prompts[b].size(); });
  nn::generation_config g;
  g.max_new_tokens = opt.max_new_tokens;
  g.pad_id = opt.pad_id;
  if (const auto eos = tok.eos_id()) g.stop_tokens.push_back(*eos);
  nn::generation_hooks hooks;
  hooks.detokenize = nn::detokenizer(tok);
  std::vector<std::string> out(n);
  for (std::size_t b0 = 0; b0 < n; b0 += static_cast<std::size_t>(opt.batch)) {
    const std::size_t b1 = std::min(n, b0 + static_cast<std::size_t>(opt.batch));
    std::vector<std::vector<std::int32_t>> batch;
    for (std::size_t i = b0; i < b1; ++i) batch.push_back(prompts[order[i]]);
    auto res = nn::generate(model, be, std::span<const std::vector<std::int32_t>>(batch), g, hooks);
    for (std::size_t i = b0; i < b1; ++i) out[order[i]] = std::move(res[i - b0].text);
    progress(static_cast<index_t>(b1), static_cast<index_t>(n));
  }
  return out;
}

/// Mean-pooled final hidden states (after the last RMSNorm) of each text's ids, (texts, hidden): the
/// student's sentence embedding. Ids are cut to `max_len`; an empty text gives a zero row. Batched by length.
template <class Backend, class Model>
tensor<float, 2> embed_ids(Model& model, const Backend& be, std::span<const std::vector<std::int32_t>> texts,
                           index_t batch, index_t max_len) {
  require(batch > 0 && max_len > 0, "slim::distill::embed_ids", "batch and max_len must be positive");
  const index_t n = static_cast<index_t>(texts.size()), h = model.config().hidden_size;
  tensor<float, 2> out({n, h});
  std::fill(out.data(), out.data() + out.size(), 0.0f);
  std::vector<index_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), index_t{0});
  auto len = [&](index_t i) {
    return std::min<index_t>(static_cast<index_t>(texts[static_cast<std::size_t>(i)].size()), max_len);
  };
  std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) { return len(a) < len(b); });
  std::vector<float> states;
  for (index_t b0 = 0; b0 < n; b0 += batch) {
    const index_t b1 = std::min(n, b0 + batch);
    index_t s = 0;
    for (index_t i = b0; i < b1; ++i) s = std::max(s, len(order[static_cast<std::size_t>(i)]));
    if (s == 0) continue;
    const index_t rows = b1 - b0;
    std::vector<std::int32_t> ids(static_cast<std::size_t>(rows * s), 0);
    for (index_t r = 0; r < rows; ++r) {
      const auto& t = texts[static_cast<std::size_t>(order[static_cast<std::size_t>(b0 + r)])];
      for (index_t c = 0; c < len(order[static_cast<std::size_t>(b0 + r)]); ++c)
        ids[static_cast<std::size_t>(r * s + c)] = t[static_cast<std::size_t>(c)];
    }
    states.assign(static_cast<std::size_t>(rows * s * h), 0.0f);
    model.hidden_states(be, tensor_view<const std::int32_t, 2>(ids.data(), {rows, s}),
                        matrix_view<float>(states.data(), {rows * s, h}));
    for (index_t r = 0; r < rows; ++r) {
      const index_t u = order[static_cast<std::size_t>(b0 + r)], l = len(u);
      if (l == 0) continue;
      for (index_t t = 0; t < l; ++t)
        for (index_t j = 0; j < h; ++j) out(u, j) += states[static_cast<std::size_t>((r * s + t) * h + j)];
      for (index_t j = 0; j < h; ++j) out(u, j) /= static_cast<float>(l);
    }
  }
  return out;
}

}  // namespace slim::distill
