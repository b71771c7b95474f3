// The SLIM prompts under a token budget: the whole encoded prompt (chat markup included) fits to the token
// and no further history item would fit, on several tokenizers, formats and budgets; the oldest items go
// first; titles are truncated at a token boundary to valid UTF-8 with an ellipsis; a budget too small for the
// fixed text is an error; and no validation or test item of a user can enter that user's prompt.
#include <catch2/catch.hpp>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "prompt_test_support.hpp"
#include "slim/prompt/slim_cot.hpp"
#include "slim/text/unicode.hpp"

using namespace slim::prompt;
namespace tp = slim::testing::prompt;
using slim::text::token_id;

namespace {

constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max() / 4;

/// Ids of a built prompt recomputed without the builder: the tokenizer's own special-token splitting on
/// the rendered text (byte-level BPE, HF behaviour), or BOS + the text after "<s>" (SentencePiece / Llama-2).
template <class T>
std::vector<token_id> independent_ids(const T& tok, const built_prompt& p, chat_format f) {
  if constexpr (std::is_same_v<T, slim::text::sentencepiece_bpe>) {
    REQUIRE(f == chat_format::llama2);
    REQUIRE(p.text.rfind("<s>", 0) == 0);
    std::vector<token_id> ids{*tok.bos_id()};
    const auto rest = tok.encode(std::string_view(p.text).substr(3));
    ids.insert(ids.end(), rest.begin(), rest.end());
    return ids;
  } else {
    (void)f;
    return tok.encode(p.text);
  }
}

/// For one tokenizer and format: count(k) for every k, then budgets around each count.
template <class T>
void check_budgets(const T& tok, chat_format format, prompt_role role, std::size_t max_title_tokens) {
  const auto titles = tp::synthetic_titles(60, 7);
  const title_table table(titles);
  std::vector<item_id> history;
  for (item_id i = 1; i <= 45; ++i) history.push_back(i);
  const training_prefix prefix(history);

  auto build = [&](std::size_t max_history, std::size_t budget, std::size_t min_history = 1) {
    const slim_cot cot({.max_history = max_history,
                        .min_history = min_history,
                        .max_title_tokens = max_title_tokens,
                        .token_budget = budget,
                        .format = format});
    return cot.build(role, tok, prefix, table);
  };
  // count(k): the prompt that shows exactly the k most recent items
  std::vector<std::size_t> count;
  for (std::size_t k = 0; k <= history.size(); ++k) {
    const auto p = build(k, unlimited, 0);
    REQUIRE(p.shown.size() == k);
    REQUIRE(p.ids == independent_ids(tok, p, format));
    count.push_back(p.ids.size());
  }
  for (std::size_t k = 1; k < count.size(); ++k) REQUIRE(count[k] > count[k - 1]);  // the search relies on it

  std::set<std::size_t> budgets;
  for (std::size_t k = 1; k < count.size(); ++k)
    for (const std::size_t b : {count[k] - 1, count[k], count[k] + 1}) budgets.insert(b);
  for (const std::size_t budget : budgets) {
    if (budget < count[1]) continue;
    INFO("format " << to_string(format) << ", budget " << budget);
    const auto p = build(history.size(), budget);
    std::size_t expect = 0;  // the largest k with count(k) <= budget, read off the table
    while (expect + 1 < count.size() && count[expect + 1] <= budget) ++expect;
    CHECK(p.ids.size() <= budget);
    CHECK(p.shown.size() == expect);
    CHECK(p.ids.size() == count[expect]);
    CHECK(p.ids == independent_ids(tok, p, format));
    CHECK(p.dropped == history.size() - expect);
    // the most recent items, oldest first
    CHECK(std::equal(p.shown.begin(), p.shown.end(), history.end() - static_cast<std::ptrdiff_t>(expect)));
    if (budget == count[expect]) CHECK(p.ids.size() == budget);  // exact to the token
  }
  // too small for the fixed text, or for the one most recent item
  for (const std::size_t budget : {std::size_t{1}, count[0] - 1, count[0], count[1] - 1}) {
    INFO("budget " << budget);
    try {
      (void)build(history.size(), budget);
      FAIL("no error");
    } catch (const slim::error& e) {
      CHECK(e.place() == "token_budget");
      CHECK_THAT(e.message(), Catch::Contains(std::to_string(budget)) && Catch::Contains(std::to_string(count[0])));
    }
  }
  // min_history 0 accepts the fixed text alone
  CHECK(build(history.size(), count[0], 0).shown.empty());
}

}  // namespace

TEST_CASE("budget: the prompt fits to the token and one more item would not (ChatML, Qwen2-style BPE)",
          "[prompt][budget]") {
  check_budgets(tp::qwen2(), chat_format::chatml, prompt_role::teacher, 12);
  check_budgets(tp::qwen2(), chat_format::chatml, prompt_role::student, 6);
}

TEST_CASE("budget: the prompt fits to the token (Llama-3 headers, Llama-3-style BPE)", "[prompt][budget]") {
  check_budgets(tp::llama3(), chat_format::llama3, prompt_role::teacher, 10);
  check_budgets(tp::llama3(), chat_format::plain, prompt_role::student, 16);
}

TEST_CASE("budget: the prompt fits to the token (Llama-2 [INST], SentencePiece with byte fallback)",
          "[prompt][budget]") {
  check_budgets(tp::spm_tiny(), chat_format::llama2, prompt_role::student, 20);
}

TEST_CASE("budget: an empty training prefix gives the fixed text; a short one shows all of it", "[prompt][budget]") {
  const auto titles = tp::synthetic_titles(10, 3);
  const title_table table(titles);
  const slim_cot cot({.token_budget = 100000, .format = chat_format::chatml});
  const auto empty = cot.teacher_prompt(tp::qwen2(), training_prefix{}, table);
  CHECK(empty.shown.empty());
  const std::vector<item_id> three = {4, 2, 9};
  const auto p = cot.teacher_prompt(tp::qwen2(), training_prefix(three), table);
  CHECK(p.shown == three);
  CHECK_THAT(p.user, Catch::Contains("1. " + titles[4] + "\n2. " + titles[2] + "\n3. " + titles[9] + "\n"));
  CHECK(p.dropped == 0);
}

TEST_CASE("title truncation: at a token boundary, valid UTF-8, ellipsis, within the token limit", "[prompt][budget]") {
  const std::vector<std::string> long_titles = {
      "The Lord of the Rings: The Fellowship of the Ring — Extended Edition (2001)",
      "東京物語 東京物語 東京物語 東京物語 東京物語 東京物語 東京物語",
      "🎬🎬🎬 Zoë's Café Über Ωmega ñandú 🎬🎬🎬 Deluxe Wireless Controller Pro Bundle",
      "Wireless Controller Pro Bundle with Charging Dock and Two Extra Thumbsticks, Black"};
  auto check_one = [](const auto& tok, const std::string& title, std::size_t max_tokens) {
    INFO("title " << title << ", max " << max_tokens);
    const auto t = truncate_title(tok, title, max_tokens, "...");
    const std::size_t full = tok.encode(title, {.split_special = false}).size();
    CHECK(t.tokens == tok.encode(t.text, {.split_special = false}).size());
    CHECK(t.tokens <= max_tokens);
    CHECK(slim::text::unicode::is_valid_utf8(t.text));
    if (full <= max_tokens) {
      CHECK_FALSE(t.truncated);
      CHECK(t.text == title);
      return;
    }
    CHECK(t.truncated);
    if (t.text.size() >= 3 && t.text.compare(t.text.size() - 3, 3, "...") == 0) {
      const std::string kept = t.text.substr(0, t.text.size() - 3);
      CHECK(title.compare(0, kept.size(), kept) == 0);  // a prefix of the title
      CHECK(kept.size() < title.size());
    } else {
      CHECK(max_tokens < tok.encode("...", {.split_special = false}).size() + 1);  // no room for the ellipsis
    }
  };
  for (const auto& title : long_titles)
    for (const std::size_t m : {1, 2, 3, 5, 8, 13, 21}) {
      check_one(tp::qwen2(), title, m);
      check_one(tp::llama3(), title, m);
    }
  // the cut falls inside a multi-byte character for byte-level BPE: the character is dropped, not mangled
  const auto t = truncate_title(tp::qwen2(), long_titles[1], 4, "…");
  CHECK(slim::text::unicode::is_valid_utf8(t.text));
  CHECK(t.text.find("\xEF\xBF\xBD") == std::string::npos);  // no U+FFFD
}

TEST_CASE("budget: long titles are truncated in the prompt and counted", "[prompt][budget]") {
  std::vector<std::string> titles = {"", "Short One", std::string(400, 'x') + " end", "Another Short"};
  const title_table table(titles);
  const std::vector<item_id> h = {1, 2, 3};
  const slim_cot cot({.max_title_tokens = 8, .token_budget = 100000, .format = chat_format::chatml});
  const auto p = cot.student_prompt(tp::qwen2(), training_prefix(h), table);
  CHECK(p.truncated == 1);
  CHECK(p.text.find(" end") == std::string::npos);
  CHECK_THAT(p.user, Catch::Contains("Short One") && Catch::Contains("...") && Catch::Contains("Another Short"));
  // newlines and control characters in a title never break the one-line-per-item history
  titles[1] = "Bad\ntitle\twith\r\ncontrols\x01";
  const slim_cot roomy({.max_title_tokens = 64, .token_budget = 100000, .format = chat_format::chatml});
  const auto q = roomy.student_prompt(tp::qwen2(), training_prefix(h), title_table(titles));
  CHECK_THAT(q.user, Catch::Contains("1. Bad title with controls\n"));
}

TEST_CASE("no leakage: a user's validation and test items never reach that user's prompt", "[prompt][leak]") {
  // A leave-one-out split the way rec::sequence_split holds it: every user's whole sequence in one contiguous
  // buffer, train = all but the last two, valid = second to last, test = last. The builders see only
  // training_prefix; a builder that read past it would show the validation item first.
  const std::size_t n_items = 400, n_users = 120;
  const auto titles = tp::synthetic_titles(n_items, 11);
  const title_table table(titles);
  tp::splitmix rng{2024};
  struct user_seq {
    std::vector<item_id> all;
  };
  std::vector<user_seq> users(n_users);
  for (auto& u : users) {
    const std::size_t len = 3 + rng.below(40);
    std::set<item_id> used;
    while (u.all.size() < len - 2) {
      const auto it = static_cast<item_id>(1 + rng.below(n_items));
      u.all.push_back(it);
      used.insert(it);
    }
    while (u.all.size() < len) {  // held-out items the user has not seen before
      const auto it = static_cast<item_id>(1 + rng.below(n_items));
      if (used.insert(it).second) u.all.push_back(it);
    }
  }
  std::size_t prompts = 0;
  for (const chat_format f : {chat_format::chatml, chat_format::plain}) {
    for (const std::size_t budget : {std::size_t{420}, std::size_t{900}, std::size_t{100000}}) {
      const slim_cot cot({.max_title_tokens = 24, .token_budget = budget, .format = f});
      for (std::size_t u = 0; u < users.size(); ++u) {
        const auto& seq = users[u].all;
        const item_id valid = seq[seq.size() - 2], test = seq.back();
        const auto prefix = training_prefix::leave_out_last(seq, 2);
        REQUIRE(prefix.size() == seq.size() - 2);
        for (const prompt_role role : {prompt_role::teacher, prompt_role::student}) {
          const auto p = cot.build(role, tp::qwen2(), prefix, table);
          ++prompts;
          INFO("user " << u << ", budget " << budget);
          CHECK(std::find(p.shown.begin(), p.shown.end(), valid) == p.shown.end());
          CHECK(std::find(p.shown.begin(), p.shown.end(), test) == p.shown.end());
          // the marker "T<id>:" starts every title; held-out markers never appear, the last train item's does
          CHECK(p.text.find(std::string("T") + std::to_string(valid) + ":") == std::string::npos);
          CHECK(p.text.find(std::string("T") + std::to_string(test) + ":") == std::string::npos);
          REQUIRE_FALSE(p.shown.empty());
          CHECK(p.shown.back() == seq[seq.size() - 3]);
          CHECK(p.text.find(std::string("T") + std::to_string(seq[seq.size() - 3]) + ":") != std::string::npos);
        }
      }
    }
  }
  CHECK(prompts == 2 * 3 * n_users * 2);
  // leave_out_last on sequences no longer than the held-out part
  const std::vector<item_id> two = {5, 6};
  CHECK(training_prefix::leave_out_last(two, 2).empty());
  CHECK(training_prefix::leave_out_last(std::span<const item_id>(two.data(), 1), 2).empty());
}

TEST_CASE("title_table: ids outside the table are errors", "[prompt][budget]") {
  const title_table t({"", "a", "b"});
  CHECK(t(2) == "b");
  CHECK_THROWS_AS(t(0), slim::error);
  CHECK_THROWS_AS(t(3), slim::error);
  CHECK_THROWS_AS(t(-1), slim::error);
}
