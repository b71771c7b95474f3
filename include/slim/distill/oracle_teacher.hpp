// slim — the oracle teacher of the synthetic world: a distill::Teacher that answers each request with the
// rationale synth::oracle writes from the user's latent taste as of the training prefix.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slim/distill/teacher.hpp"
#include "slim/rec/dataset.hpp"
#include "slim/synth/oracle_teacher.hpp"
#include "slim/synth/world.hpp"

namespace slim::distill {

/// Teacher over a synthetic world. It answers by `request.user` and ignores the prompt text. Token counts
/// are a stand-in, not a tokenizer's: prompt_tokens = whitespace-separated words of system + prompt,
/// completion_tokens = whitespace-separated words of the answer. seconds = 0, cached = false.
class oracle_teacher {
 public:
  static constexpr std::string_view name = "oracle";

  /// The world must outlive the teacher; of the split only the training prefixes are kept.
  oracle_teacher(const synth::world& w, const rec::sequence_split& split, synth::oracle_config config = {})
      : oracle_(w, split, config) {}

  /// One answer per request, in order; throws slim::error for a user outside the world.
  std::vector<teacher_answer> teach(std::span<const teacher_request> requests) const {
    std::vector<teacher_answer> out;
    out.reserve(requests.size());
    for (const teacher_request& r : requests) {
      teacher_answer a;
      a.text = oracle_.rationale(r.user);
      a.prompt_tokens = words(r.system) + words(r.prompt);
      a.completion_tokens = words(a.text);
      out.push_back(std::move(a));
    }
    return out;
  }

  const synth::oracle& oracle() const noexcept { return oracle_; }

  /// The oracle's settings (reveal, items named, seed): the pipeline's teach stage is keyed on them.
  std::string fingerprint() const {
    const synth::oracle_config& c = oracle_.config();
    std::string f = "reveal=" + std::to_string(c.reveal) + ";n_items=" + std::to_string(c.n_items) +
                    ";seed=" + std::to_string(c.seed);
    // the latent source keeps its historical fingerprint, so existing run directories still resume
    if (c.source == synth::taste_source::history) f += ";source=history;window=" + std::to_string(c.window);
    return f;
  }

  /// Whitespace-separated words of `s` (the stand-in token count).
  static std::int64_t words(std::string_view s) noexcept {
    std::int64_t n = 0;
    bool in = false;
    for (const char c : s) {
      const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
      if (!space && !in) ++n;
      in = !space;
    }
    return n;
  }

 private:
  synth::oracle oracle_;
};

static_assert(Teacher<oracle_teacher> && FingerprintedTeacher<oracle_teacher>);

}  // namespace slim::distill
