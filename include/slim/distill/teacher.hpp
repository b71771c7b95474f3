// slim — the Teacher concept of the pipeline: what a teacher is asked (one prompt per user) and what it
// answers (the rationale text plus token accounting), shared by recorded, HTTP, oracle and in-process teachers.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slim/core/config.hpp"

namespace slim::distill {

/// One question to a teacher: the user it is about (row of the split) and the prompt's messages.
struct teacher_request {
  index_t user = 0;    ///< user row of the split (what an oracle or a recorded teacher looks up)
  std::string system;  ///< system message ("" when none)
  std::string prompt;  ///< user message
  /// The prompt as token ids of the pipeline's tokenizer, set only for a teacher that shares it (an in-process
  /// model teacher, which is asked with the student's own prompt: the input its logits are read on in KD).
  std::vector<std::int32_t> ids{};
};

/// A teacher's answer to one request. Token counts are what the teacher reports (an HTTP server's `usage`)
/// or counted by the caller's tokenizer; 0 where unknown.
struct teacher_answer {
  std::string text;                    ///< the rationale
  std::int64_t prompt_tokens = 0;      ///< tokens billed for the prompt
  std::int64_t completion_tokens = 0;  ///< tokens billed for the answer
  double seconds = 0;                  ///< wall time spent obtaining it (0 for a cache hit)
  bool cached = false;                 ///< true when the answer came from an on-disk cache, not a new call
};

/// Teacher: answers a batch of requests, one answer per request in the same order. A teacher may answer
/// from a cache; it throws slim::error when it cannot answer a request (never returns an empty placeholder).
template <class T>
concept Teacher = requires(T& t, std::span<const teacher_request> requests) {
  { T::name } -> std::convertible_to<std::string_view>;
  { t.teach(requests) } -> std::same_as<std::vector<teacher_answer>>;
};

/// A teacher whose answers depend on settings beyond its name says so with `fingerprint()`: a string that
/// changes whenever they do (the oracle's reveal, the recorded texts, the HTTP model). The pipeline keys its
/// teach stage on it, so a changed teacher is asked again instead of being resumed from a stale file.
template <class T>
concept FingerprintedTeacher = Teacher<T> && requires(const T& t) {
  { t.fingerprint() } -> std::convertible_to<std::string>;
};

}  // namespace slim::distill
