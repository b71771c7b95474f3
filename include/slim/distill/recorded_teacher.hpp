// slim — the recorded teacher: real LLM rationales written earlier (GPT-3, GPT-3.5, any JSONL of them),
// answered by user. It labels only the users it holds a record for; the pipeline asks it about those alone
// (distill::PartialTeacher). Adapters for the two recorded sets in ../shared/data/rationales/ live in
// distill/recorded_sets.hpp.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"
#include "slim/distill/teacher.hpp"
#include "slim/io/json.hpp"
#include "slim/train/lm_trainer.hpp"

namespace slim::distill {

/// A teacher that can answer only some users: `has(user)` says which. The pipeline samples the users it
/// labels among those.
template <class T>
concept PartialTeacher = Teacher<T> && requires(const T& t, index_t u) {
  { t.has(u) } -> std::convertible_to<bool>;
};

/// One recorded rationale: the user row it is about and the teacher's text. Token counts as the source
/// reports them (0 where it does not: the pipeline then counts them with the student's tokenizer).
struct recorded_rationale {
  index_t user = 0;
  std::string text;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
};

/// Teacher over recorded rationales. The answer to a request is the record of `request.user`, whatever the
/// prompt says (the prompt that produced it is the source's, not ours); seconds = 0, cached = true (nothing
/// is asked of any model).
class recorded_teacher {
 public:
  static constexpr std::string_view name = "recorded";

  /// `source` names where the records came from (errors quote it); users must lie in [0, num_users), at most
  /// one record each, with non-empty text.
  recorded_teacher(std::string source, std::vector<recorded_rationale> records, index_t num_users)
      : source_(std::move(source)), slot_(static_cast<std::size_t>(std::max<index_t>(num_users, 0)), -1) {
    require(num_users >= 0, source_.c_str(), "a negative number of users (", num_users, ")");
    records_ = std::move(records);
    for (std::size_t k = 0; k < records_.size(); ++k) {
      const index_t u = records_[k].user;
      require(u >= 0 && u < num_users, source_.c_str(), "record ", k, ": user ", u, " is outside [0, ", num_users, ")");
      require(!records_[k].text.empty(), source_.c_str(), "record ", k, " (user ", u, "): empty rationale");
      auto& s = slot_[static_cast<std::size_t>(u)];
      require(s < 0, source_.c_str(), "record ", k, ": a second rationale for user ", u, " (the first is record ", s,
              ")");
      s = static_cast<std::int64_t>(k);
    }
  }

  /// Reads JSON Lines of {"user": row, "text": "...", "prompt_tokens"?: n, "completion_tokens"?: n}.
  static recorded_teacher from_jsonl(const std::string& path, index_t num_users) {
    std::vector<recorded_rationale> records;
    std::vector<std::size_t> line_of(static_cast<std::size_t>(std::max<index_t>(num_users, 0)), 0);
    io::read_jsonl(path, [&](const io::json& r, std::size_t line) {
      const io::json_where w(path, line);
      recorded_rationale x;
      x.user = io::get<index_t>(r, "user", w);
      x.text = io::get<std::string>(r, "text", w);
      check_record(path, line, x, num_users, line_of);
      x.prompt_tokens = io::get_or<std::int64_t>(r, "prompt_tokens", 0, w);
      x.completion_tokens = io::get_or<std::int64_t>(r, "completion_tokens", 0, w);
      require(x.prompt_tokens >= 0 && x.completion_tokens >= 0, path.c_str(), "line ", line, ": negative token count");
      records.push_back(std::move(x));
    });
    return recorded_teacher(path, std::move(records), num_users);
  }

  /// The checks of the constructor for one record read from line `line` of `path`, so that the error names the
  /// line: user in range, non-empty text, and no earlier line (`line_of`, per user, 0: none yet) for the user.
  static void check_record(const std::string& path, std::size_t line, const recorded_rationale& x, index_t num_users,
                           std::vector<std::size_t>& line_of) {
    require(x.user >= 0 && x.user < num_users, path.c_str(), "line ", line, ": user ", x.user, " is outside [0, ",
            num_users, ")");
    require(!x.text.empty(), path.c_str(), "line ", line, ": empty rationale");
    std::size_t& first = line_of[static_cast<std::size_t>(x.user)];
    require(first == 0, path.c_str(), "line ", line, ": a second rationale for user ", x.user,
            " (the first is on line ", first, ")");
    first = line;
  }

  /// True when a rationale for `user` is on record.
  bool has(index_t user) const noexcept {
    return user >= 0 && user < static_cast<index_t>(slot_.size()) && slot_[static_cast<std::size_t>(user)] >= 0;
  }
  /// The recorded text of `user` (slim::error when there is none).
  const std::string& text(index_t user) const { return record(user).text; }
  /// The records, in the order given.
  std::span<const recorded_rationale> records() const noexcept { return records_; }
  index_t size() const noexcept { return static_cast<index_t>(records_.size()); }
  const std::string& source() const noexcept { return source_; }

  /// A 64-bit hash of every record (user, text, token counts), hex: changes whenever a text does.
  std::string fingerprint() const {
    train::detail::lm_hasher h;
    for (const recorded_rationale& r : records_) {
      h.mix(static_cast<std::uint64_t>(r.user));
      h.bytes(r.text.data(), r.text.size());
      h.mix(static_cast<std::uint64_t>(r.prompt_tokens));
      h.mix(static_cast<std::uint64_t>(r.completion_tokens));
    }
    return h.hex();
  }

  /// One answer per request, in order; slim::error naming the source for a user with no record.
  std::vector<teacher_answer> teach(std::span<const teacher_request> requests) const {
    std::vector<teacher_answer> out;
    out.reserve(requests.size());
    for (const teacher_request& q : requests) {
      const recorded_rationale& r = record(q.user);
      teacher_answer a;
      a.text = r.text;
      a.prompt_tokens = r.prompt_tokens;
      a.completion_tokens = r.completion_tokens;
      a.cached = true;
      out.push_back(std::move(a));
    }
    return out;
  }

 private:
  const recorded_rationale& record(index_t user) const {
    require(has(user), source_.c_str(), "no recorded rationale for user ", user);
    return records_[static_cast<std::size_t>(slot_[static_cast<std::size_t>(user)])];
  }

  std::string source_;
  std::vector<recorded_rationale> records_;
  std::vector<std::int64_t> slot_;  ///< per user: index into records_, or -1
};

static_assert(PartialTeacher<recorded_teacher> && FingerprintedTeacher<recorded_teacher>);

}  // namespace slim::distill
