// slim — the SLIM chain-of-thought prompts: the teacher's three-step zero-shot CoT (1: summarise the user's
// preferences, 2: recommend categories and brands — genres for movies, 3: recommend specific items) and the
// simplified student prompt, each a set of editable templates, fitted to a token budget.
//
// Budget algorithm (for one user, one tokenizer; "count(k)" = ids of the whole encoded chat prompt that shows
// the k most recent items, chat markup and BOS included):
//   1. take the last `max_history` items of the training prefix; clean each title to one line and shorten
//      it to `max_title_tokens` (truncate_title: token boundary, valid UTF-8, ellipsis);
//   2. estimate k from count(0) plus each history line's own token count;
//   3. search from the estimate with exact counts — galloping, then bisection — for the largest k with
//      count(k) <= budget, so the result fits and (when k < available) count(k + 1) > budget;
//   4. if fewer than min(min_history, available) items fit, throw slim::error naming the budget and what
//      the fixed text alone needs.
// The oldest items go first; titles are never shortened further to make room (that would make long titles
// cost more than dropping them). Placeholders: see `slim_cot::placeholder_names`.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/prompt/chat.hpp"
#include "slim/prompt/history.hpp"
#include "slim/prompt/template.hpp"
#include "slim/text/tokenizer.hpp"

namespace slim::prompt {

/// The templates of one prompt: the system message (empty: none), the user message, and one history line.
struct prompt_templates {
  prompt_template system;
  prompt_template user;
  prompt_template history_line;  ///< one shown item; placeholders {index} (1 = oldest shown) and {title}
};

/// Values and limits of the SLIM prompts (runtime configuration; designated initialisers welcome).
struct slim_cot_config {
  std::string domain = "movies";         ///< {domain}: what the items are, plural
  std::string item_kind = "movie";       ///< {item_kind}: one item, singular
  std::string category_kind = "genres";  ///< {category_kind}: what step 2 recommends
  std::size_t n_items = 10;              ///< {n_items}: how many items step 3 recommends
  std::size_t max_history = 50;          ///< most recent items considered at most
  std::size_t min_history = 1;           ///< fewer shown items than min(this, available) is an error
  std::size_t max_title_tokens = 32;     ///< a longer title is truncated (tokens of the title alone)
  std::string ellipsis = "...";          ///< appended to a truncated title ("" for none)
  std::size_t token_budget = 2048;       ///< the whole encoded prompt, chat markup included
  chat_format format = chat_format::chatml;
  missing_special specials = missing_special::error;
  bool plain_bos = false;  ///< plain format only: put the tokenizer's BOS first (the other formats spell theirs)

  /// Amazon-style catalogues (the paper's Games, Grocery, Home): step 2 names categories and brands.
  static slim_cot_config amazon(std::string domain, std::string item_kind) {
    slim_cot_config c;
    c.domain = std::move(domain);
    c.item_kind = std::move(item_kind);
    c.category_kind = "categories and brands";
    return c;
  }
};

/// Which of the two SLIM prompts.
enum class prompt_role { teacher, student };

/// A built prompt: the messages, the chat text, its ids, and what the history window kept.
struct built_prompt {
  std::string system;          ///< the system message ("" when none) — what an HTTP teacher sends
  std::string user;            ///< the user message
  chat_text chat;              ///< messages in the chat format
  std::string text;            ///< chat.str()
  std::vector<token_id> ids;   ///< encode_chat(chat) (+ BOS for plain_bos): ids.size() <= the budget
  std::vector<item_id> shown;  ///< items shown, oldest first (a suffix of the training prefix)
  std::size_t dropped = 0;     ///< items of the training prefix left out (oldest)
  std::size_t truncated = 0;   ///< shown titles that were truncated
};

/// The SLIM CoT prompt builder (`Prompt` policy of the pipeline).
class slim_cot {
 public:
  /// Every placeholder the templates may use (plus the built-in {lbrace}, {rbrace}).
  static constexpr std::array<std::string_view, 7> placeholder_names = {
      "history", "n_history", "n_items", "domain", "item_kind", "category_kind", "user_id"};
  static constexpr std::array<std::string_view, 3> history_line_names = {"index", "title", "item_id"};

  /// The teacher prompt: SLIM's three-step zero-shot chain of thought (wording ours).
  static prompt_templates teacher_templates() {
    return make_templates(
        "You are an expert recommender. You study what a user has chosen before and reason step by step "
        "about what they will enjoy next.",
        "A user has interacted with the following {domain}, from the oldest to the most recent:\n"
        "{history}\n"
        "\n"
        "Think step by step and answer in three steps.\n"
        "Step 1: Summarise the user's preferences as this history shows them.\n"
        "Step 2: From those preferences, recommend {category_kind} the user is likely to enjoy, and say why.\n"
        "Step 3: Recommend {n_items} specific {domain} the user has not interacted with yet, one {item_kind} per "
        "line, each with a short reason.\n"
        "Begin each step with \"Step 1:\", \"Step 2:\" and \"Step 3:\".",
        "{index}. {title}", "teacher");
  }

  /// The student prompt: the same task, simplified (no system message, short instructions).
  static prompt_templates student_templates() {
    return make_templates("",
                          "A user's {domain}, oldest first:\n"
                          "{history}\n"
                          "Reason step by step: the user's preferences, the {category_kind} to recommend, "
                          "and {n_items} {domain} to recommend.",
                          "{index}. {title}", "student");
  }

  /// Parses a set of templates and checks their placeholders; `name` prefixes the templates' names in errors.
  static prompt_templates make_templates(std::string_view system, std::string_view user, std::string_view history_line,
                                         const std::string& name) {
    prompt_templates t{prompt_template::parse(system, name + ".system", placeholder_names),
                       prompt_template::parse(user, name + ".user", placeholder_names),
                       prompt_template::parse(history_line, name + ".history_line", history_line_names)};
    return t;
  }

  explicit slim_cot(slim_cot_config config = {}, prompt_templates teacher = teacher_templates(),
                    prompt_templates student = student_templates())
      : config_(std::move(config)), teacher_(std::move(teacher)), student_(std::move(student)) {
    for (const prompt_templates* t : {&teacher_, &student_}) {
      t->system.check_names(placeholder_names);
      t->user.check_names(placeholder_names);
      t->history_line.check_names(history_line_names);
      if (!t->user.uses("history") && !t->system.uses("history"))
        throw error(t->user.name(), "",
                    "the prompt must show the history: neither message has a {history} placeholder");
    }
    require(config_.max_title_tokens > 0, "slim_cot", "max_title_tokens must be positive");
  }

  const slim_cot_config& config() const noexcept { return config_; }
  const prompt_templates& templates(prompt_role role) const noexcept {
    return role == prompt_role::teacher ? teacher_ : student_;
  }

  /// The teacher prompt for one user from that user's training prefix.
  template <text::Tokenizer T, TitleLookup F>
  built_prompt teacher_prompt(const T& tok, training_prefix history, const F& titles,
                              std::string_view user_id = {}) const {
    return build(prompt_role::teacher, tok, history, titles, user_id);
  }

  /// The student prompt for one user from that user's training prefix.
  template <text::Tokenizer T, TitleLookup F>
  built_prompt student_prompt(const T& tok, training_prefix history, const F& titles,
                              std::string_view user_id = {}) const {
    return build(prompt_role::student, tok, history, titles, user_id);
  }

  /// Builds either prompt (see the file comment for the budget algorithm).
  template <text::Tokenizer T, TitleLookup F>
  built_prompt build(prompt_role role, const T& tok, training_prefix history, const F& titles,
                     std::string_view user_id = {}) const {
    const prompt_templates& t = templates(role);
    const char* where = role == prompt_role::teacher ? "slim_cot::teacher_prompt" : "slim_cot::student_prompt";
    const std::span<const item_id> all = history.items();
    const std::size_t available = std::min(all.size(), config_.max_history);
    const std::span<const item_id> window = all.last(available);

    // 1. titles, cleaned and truncated once
    std::vector<std::string> shown_titles(available);
    std::vector<char> was_truncated(available, 0);
    for (std::size_t i = 0; i < available; ++i) {
      std::string title = one_line(std::string_view(titles(window[i])));
      if (title.empty()) title = "item " + std::to_string(window[i]);
      auto tt = truncate_title(tok, title, config_.max_title_tokens, config_.ellipsis);
      shown_titles[i] = std::move(tt.text);
      was_truncated[i] = tt.truncated;
    }

    template_values values = fixed_values(user_id);
    auto render = [&](std::size_t k) {  // the k most recent of the window
      std::string lines;
      template_values line_values;
      for (std::size_t j = 0; j < k; ++j) {
        const std::size_t i = available - k + j;
        line_values.insert_or_assign("index", std::to_string(j + 1));
        line_values.insert_or_assign("title", shown_titles[i]);
        line_values.insert_or_assign("item_id", std::to_string(window[i]));
        if (j) lines += '\n';
        lines += t.history_line.render(line_values);
      }
      values.insert_or_assign("history", std::move(lines));
      values.insert_or_assign("n_history", std::to_string(k));
      built_prompt p;
      p.system = t.system.render(values);
      p.user = t.user.render(values);
      p.chat = render_chat(config_.format, p.system, p.user);
      p.text = p.chat.str();
      if (config_.format == chat_format::plain && config_.plain_bos)
        if (const auto bos = tok.bos_id()) p.ids.push_back(*bos);
      const auto body = encode_chat(tok, p.chat, config_.specials, config_.format);
      p.ids.insert(p.ids.end(), body.begin(), body.end());
      return p;
    };
    const std::size_t budget = config_.token_budget;
    auto fits = [&](const built_prompt& p) { return p.ids.size() <= budget; };

    // 2. the fixed text must fit; estimate k from it and each history line's own count
    built_prompt best = render(0);
    const std::size_t fixed = best.ids.size();
    if (fixed > budget)
      throw error(where, "token_budget",
                  "a budget of " + std::to_string(budget) + " tokens is too small for the fixed text, which takes " +
                      std::to_string(fixed) + " tokens without any history");
    std::size_t guess = 0;
    {
      std::size_t total = fixed;
      const text::encode_options opts{.add_special = false, .split_special = false};
      template_values line_values;
      for (std::size_t k = 1; k <= available; ++k) {  // the line of the k-th most recent item
        const std::size_t i = available - k;
        line_values.insert_or_assign("index", std::to_string(k));
        line_values.insert_or_assign("title", shown_titles[i]);
        line_values.insert_or_assign("item_id", std::to_string(window[i]));
        total += tok.encode("\n" + t.history_line.render(line_values), opts).size();
        if (total > budget) break;
        guess = k;
      }
    }
    // 3. exact search for the largest k with count(k) <= budget: count(lo) fits, count(hi) does not
    std::size_t lo = 0, hi = available + 1;
    auto probe = [&](std::size_t k) {
      built_prompt p = render(k);
      if (!fits(p)) {
        hi = k;
        return false;
      }
      lo = k;
      best = std::move(p);
      return true;
    };
    if (available > 0) {
      const std::size_t g = std::clamp<std::size_t>(guess, 1, available);
      if (probe(g)) {
        for (std::size_t step = 1; hi > lo + 1; step *= 2)  // gallop up
          if (!probe(std::min(lo + step, hi - 1))) break;
      } else {
        for (std::size_t step = 1; hi > lo + 1; step *= 2)  // gallop down
          if (probe(hi > lo + step ? hi - step : lo + 1)) break;
      }
      while (hi > lo + 1) probe(lo + (hi - lo) / 2);  // bisect
    }
    // 4. enough history?
    const std::size_t need = std::min(config_.min_history, available);
    if (lo < need)
      throw error(where, "token_budget",
                  "a budget of " + std::to_string(budget) + " tokens is too small: the fixed text takes " +
                      std::to_string(fixed) + " tokens and the " + std::to_string(need) +
                      " most recent item(s) do not fit with it (min_history)");
    best.shown.assign(window.end() - static_cast<std::ptrdiff_t>(lo), window.end());
    best.dropped = all.size() - lo;
    for (std::size_t i = available - lo; i < available; ++i) best.truncated += was_truncated[i] ? 1 : 0;
    return best;
  }

  /// The placeholder values that do not depend on the history.
  template_values fixed_values(std::string_view user_id = {}) const {
    template_values v;
    v.emplace("domain", config_.domain);
    v.emplace("item_kind", config_.item_kind);
    v.emplace("category_kind", config_.category_kind);
    v.emplace("n_items", std::to_string(config_.n_items));
    v.emplace("user_id", std::string(user_id));
    return v;
  }

 private:
  slim_cot_config config_;
  prompt_templates teacher_, student_;
};

}  // namespace slim::prompt
