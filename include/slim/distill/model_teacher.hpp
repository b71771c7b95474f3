// slim — the in-process teacher: a slim decoder_lm that writes each rationale by greedy generation and
// exposes its logits, so the pipeline's distillation can mix KL(teacher ‖ student) into the loss (logit
// knowledge distillation). KD compares distributions over one vocabulary, so the teacher brings its tokenizer
// (an HF tokenizer.json) and the pipeline's student uses it instead of training its own.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/core/tensor.hpp"
#include "slim/distill/student.hpp"
#include "slim/distill/teacher.hpp"
#include "slim/nn/context.hpp"
#include "slim/text/byte_bpe.hpp"
#include "slim/train/lm_trainer.hpp"

namespace slim::distill {

/// A teacher that exposes its logits for distillation and the tokenizer they are over: `tokenizer_json()`
/// (the HF tokenizer.json text the student must share), `vocab_size()`, and `logits(ids, out)` filling (B·S,
/// V) for a right-padded batch as the student's training forward lays it out.
template <class T>
concept LogitTeacher = Teacher<T> &&
    requires(T& t, const T& c, tensor_view<const std::int32_t, 2> ids, matrix_view<float> out) {
  { c.tokenizer_json() } -> std::convertible_to<std::string>;
  { c.vocab_size() } -> std::convertible_to<index_t>;
  t.logits(ids, out);
};

/// Settings of a model_teacher.
struct model_teacher_options {
  index_t max_new_tokens = 96;  ///< rationale length cap
  index_t batch = 32;           ///< prompts per generation batch
};

/// An in-process teacher over `LM` (an nn::decoder_lm with float values, any adapter) run on `Backend`. Each
/// request's prompt is its `ids` when set (the pipeline sets them: the student's prompt, which KD reads the
/// logits on), else its text encoded with the teacher's tokenizer after BOS (the system message, if any, first
/// and separated by a blank line); it is continued greedily until EOS or max_new_tokens. Token counts are the
/// teacher tokenizer's; seconds is the batch's wall time shared evenly. An answer may be empty (EOS at once): the
/// pipeline distils no example from it. The model must outlive the teacher.
template <class LM, class Backend>
class model_teacher {
 public:
  static constexpr std::string_view name = "model";
  using model_type = LM;
  using backend_type = Backend;

  /// `tokenizer_json` is the HF tokenizer.json text of the model's tokenizer (its vocabulary must equal the
  /// model's vocab_size and hold a BOS and an EOS).
  model_teacher(LM& model, Backend be, std::string tokenizer_json, model_teacher_options opt = {})
      : model_(&model),
        be_(std::move(be)),
        json_(std::move(tokenizer_json)),
        tok_(std::make_shared<text::byte_bpe>(text::byte_bpe::from_hf_json(json_, "slim::distill::model_teacher"))),
        opt_(opt) {
    constexpr const char* where = "slim::distill::model_teacher";
    require(static_cast<index_t>(tok_->vocab_size()) == model.config().vocab_size, where, "the tokenizer has ",
            tok_->vocab_size(), " tokens but the model ", model.config().vocab_size);
    require(tok_->bos_id().has_value() && tok_->eos_id().has_value(), where, "the tokenizer has no BOS or no EOS");
    require(opt_.max_new_tokens > 0 && opt_.batch > 0, where, "max_new_tokens and batch must be positive");
    fingerprint_ = hash_state();
  }

  std::vector<teacher_answer> teach(std::span<const teacher_request> requests) {
    std::vector<std::vector<std::int32_t>> prompts;
    prompts.reserve(requests.size());
    for (const teacher_request& r : requests) prompts.push_back(encode_prompt(r));
    const auto t0 = std::chrono::steady_clock::now();
    model_->set_context(nn::step_context{});
    explain_options e;
    e.batch = opt_.batch;
    e.max_new_tokens = opt_.max_new_tokens;
    std::vector<std::string> texts =
        explain(*model_, be_, *tok_, std::span<const std::vector<std::int32_t>>(prompts), e, [](index_t, index_t) {});
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<teacher_answer> out(requests.size());
    for (std::size_t i = 0; i < requests.size(); ++i) {
      out[i].text = std::move(texts[i]);
      out[i].prompt_tokens = static_cast<std::int64_t>(prompts[i].size());
      out[i].completion_tokens = static_cast<std::int64_t>(tok_->encode(out[i].text).size()) + 1;
      out[i].seconds = requests.empty() ? 0.0 : secs / static_cast<double>(requests.size());
    }
    return out;
  }

  /// The model's logits of a right-padded batch (B,S) into (B·S, V), evaluation mode.
  void logits(tensor_view<const std::int32_t, 2> ids, matrix_view<float> out) {
    model_->set_context(nn::step_context{});
    model_->forward(be_, ids, out);
    ++logit_batches_;
  }
  /// Batches whose logits were asked for so far (a test sees that distillation used them).
  std::int64_t logit_batches() const noexcept { return logit_batches_; }

  const std::string& tokenizer_json() const noexcept { return json_; }
  const text::byte_bpe& tokenizer() const noexcept { return *tok_; }
  index_t vocab_size() const noexcept { return model_->config().vocab_size; }

  /// A 64-bit hash of the tokenizer, every parameter value and the options, taken at construction (the model must
  /// not change while the teacher is in use): a retrained teacher is a new teacher.
  const std::string& fingerprint() const noexcept { return fingerprint_; }

 private:
  std::string hash_state() {
    train::detail::lm_hasher h;
    h.bytes(json_.data(), json_.size());
    model_->visit_parameters([&](auto& p) {
      h.bytes(p.name.data(), p.name.size());
      h.bytes(p.value.data(), static_cast<std::size_t>(p.value.size()) * sizeof(*p.value.data()));
    });
    h.mix(static_cast<std::uint64_t>(opt_.max_new_tokens));
    h.mix(static_cast<std::uint64_t>(opt_.batch));
    return h.hex();
  }

  std::vector<std::int32_t> encode_prompt(const teacher_request& r) const {
    if (!r.ids.empty()) {
      for (const std::int32_t id : r.ids)
        require(id >= 0 && id < vocab_size(), "slim::distill::model_teacher", "prompt of user ", r.user, ": token ", id,
                " is outside the vocabulary");
      return r.ids;
    }
    std::vector<std::int32_t> ids{*tok_->bos_id()};
    const std::string text = r.system.empty() ? r.prompt : r.system + "\n\n" + r.prompt;
    for (const std::int32_t id : tok_->encode(text)) ids.push_back(id);
    return ids;
  }

  LM* model_;
  Backend be_;
  std::string json_;
  std::shared_ptr<const text::byte_bpe> tok_;
  model_teacher_options opt_;
  std::string fingerprint_;
  std::int64_t logit_batches_ = 0;
};

}  // namespace slim::distill
