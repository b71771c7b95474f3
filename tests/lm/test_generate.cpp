// Generation: the loop of nn/generate.hpp on toy cached language models written here (a KV-cache-like state
// of every column fed, logits a deterministic function of each row's real tokens and their positions), checked
// against naive loops without a cache; sampling (nn/sampling.hpp) against hand-computed distributions; and on a
// tiny random nn::decoder_lm against re-running its training forward, across batch sizes and thread counts.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "slim/backend/scalar.hpp"
#include "slim/backend/simd.hpp"
#include "slim/core/philox.hpp"
#include "slim/core/thread_pool.hpp"
#include "slim/nn/decoder_lm.hpp"
#include "slim/nn/generate.hpp"
#include "slim/nn/sampling.hpp"
#include "support/check.hpp"

namespace slim::testing::generate_tests {

using sb = backend::scalar;
using simd_b = backend::simd<xsimd::sse2>;
using ids_t = std::vector<std::int32_t>;
using rule_t = std::function<void(std::span<const std::int32_t> history, std::span<float> logits)>;

struct toy_config {
  index_t vocab_size = 0;
};

/// A toy cached LM: the cache keeps every column fed (pads included) per row, as a KV cache does; the logits
/// of a row are rule(its real tokens since kv_begin), so they depend on the whole history and on positions.
/// It checks the calling protocol (prefill once with kv_begin, then one column per call, within capacity).
class toy_lm {
 public:
  struct kv_cache {
    index_t capacity = 0;
    std::vector<ids_t> columns;
    std::vector<std::int32_t> begin;
    bool prefilled = false;
  };
  toy_lm(index_t vocab, rule_t rule) : config_{vocab}, rule_(std::move(rule)) {}
  const toy_config& config() const { return config_; }
  kv_cache make_cache(index_t batch, index_t capacity) const {
    kv_cache c;
    c.capacity = capacity;
    c.columns.resize(static_cast<std::size_t>(batch));
    return c;
  }
  void forward_cached(const sb&, tensor_view<const std::int32_t, 2> ids, std::span<const std::int32_t> kv_begin,
                      kv_cache& cache, matrix_view<float> last_logits) {
    ++calls;
    const index_t batch = ids.extent(0), cols = ids.extent(1);
    REQUIRE(batch == static_cast<index_t>(cache.columns.size()));
    REQUIRE(last_logits.extent(0) == batch);
    REQUIRE(last_logits.extent(1) == config_.vocab_size);
    if (!cache.prefilled) {
      REQUIRE(kv_begin.size() == static_cast<std::size_t>(batch));
      cache.begin.assign(kv_begin.begin(), kv_begin.end());
      cache.prefilled = true;
    } else {
      REQUIRE(kv_begin.empty());
      REQUIRE(cols == 1);
    }
    for (index_t b = 0; b < batch; ++b) {
      auto& col = cache.columns[static_cast<std::size_t>(b)];
      for (index_t t = 0; t < cols; ++t) col.push_back(ids(b, t));
      REQUIRE(static_cast<index_t>(col.size()) <= cache.capacity);
      max_columns = std::max(max_columns, static_cast<index_t>(col.size()));
      const std::span<const std::int32_t> history(
          col.data() + cache.begin[static_cast<std::size_t>(b)],
          col.size() - static_cast<std::size_t>(cache.begin[static_cast<std::size_t>(b)]));
      rule_(history, std::span<float>(&last_logits(b, 0), static_cast<std::size_t>(config_.vocab_size)));
    }
  }
  int calls = 0;
  index_t max_columns = 0;

 private:
  toy_config config_;
  rule_t rule_;
};
static_assert(nn::cached_lm<toy_lm, sb>);
static_assert(!nn::cached_lm<toy_config, sb>);

std::uint64_t mix(std::uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// Logits in [-3, 3): a hash of every (token, position) of the history.
void hashed_rule(std::span<const std::int32_t> history, std::span<float> logits) {
  std::uint64_t h = 12345;
  for (std::size_t i = 0; i < history.size(); ++i)
    h = mix(h ^ mix(static_cast<std::uint64_t>(history[i]) * 1000003u + i));
  for (std::size_t v = 0; v < logits.size(); ++v) logits[v] = -3.0f + 6.0f * philox_uniform(h, v);
}

/// The next token is next[last token]: logit 5 there, 0 elsewhere.
rule_t table_rule(std::vector<std::int32_t> next) {
  return [next = std::move(next)](std::span<const std::int32_t> history, std::span<float> logits) {
    std::fill(logits.begin(), logits.end(), 0.0f);
    logits[static_cast<std::size_t>(next[static_cast<std::size_t>(history.back())])] = 5.0f;
  };
}

/// The same logits at every step.
rule_t fixed_rule(std::vector<float> values) {
  return [values = std::move(values)](std::span<const std::int32_t>, std::span<float> logits) {
    std::copy(values.begin(), values.end(), logits.begin());
  };
}

/// Greedy without a cache: re-run the rule on the growing sequence, argmax by a plain first-maximum scan.
ids_t naive_greedy(const rule_t& rule, index_t vocab, ids_t seq, index_t n) {
  ids_t out;
  std::vector<float> logits(static_cast<std::size_t>(vocab));
  for (index_t i = 0; i < n; ++i) {
    rule(seq, logits);
    std::size_t best = 0;
    for (std::size_t v = 1; v < logits.size(); ++v)
      if (logits[v] > logits[best]) best = v;
    out.push_back(static_cast<std::int32_t>(best));
    seq.push_back(static_cast<std::int32_t>(best));
  }
  return out;
}

std::vector<nn::generation_result> run(toy_lm& m, const std::vector<ids_t>& prompts, const nn::generation_config& cfg,
                                       const nn::generation_hooks& hooks = {}) {
  return nn::generate(m, sb{}, std::span<const ids_t>(prompts), cfg, hooks);
}

/// A tiny tokenizer of fixed pieces (0 "<pad>", 1 "<eos>" special, then text pieces).
class piece_tokenizer {
 public:
  explicit piece_tokenizer(std::vector<std::string> pieces) : pieces_(std::move(pieces)) {}
  std::vector<text::token_id> encode(std::string_view s, text::encode_options = {}) const {
    std::vector<text::token_id> out;
    while (!s.empty()) {  // longest piece first
      std::size_t best_len = 0;
      text::token_id best = -1;
      for (std::size_t i = 2; i < pieces_.size(); ++i)
        if (pieces_[i].size() > best_len && s.starts_with(pieces_[i])) {
          best_len = pieces_[i].size();
          best = static_cast<text::token_id>(i);
        }
      if (best < 0) throw error("piece_tokenizer", "", "no piece for the text");
      out.push_back(best);
      s.remove_prefix(best_len);
    }
    return out;
  }
  std::string decode(std::span<const text::token_id> ids, text::decode_options o = {}) const {
    std::string s;
    for (const auto id : ids)
      if (!(o.skip_special && is_special(id))) s += decode_piece(id);
    return s;
  }
  std::string_view decode_piece(text::token_id id) const { return pieces_.at(static_cast<std::size_t>(id)); }
  std::size_t vocab_size() const { return pieces_.size(); }
  std::optional<text::token_id> token_to_id(std::string_view s) const {
    for (std::size_t i = 0; i < pieces_.size(); ++i)
      if (pieces_[i] == s) return static_cast<text::token_id>(i);
    return std::nullopt;
  }
  std::string_view id_to_token(text::token_id id) const { return decode_piece(id); }
  bool is_special(text::token_id id) const { return id <= 1; }
  std::optional<text::token_id> bos_id() const { return std::nullopt; }
  std::optional<text::token_id> eos_id() const { return 1; }

 private:
  std::vector<std::string> pieces_;
};
static_assert(text::Tokenizer<piece_tokenizer>);

// ---------------------------------------------------------------------------------------------------------------
// Sampling primitives

TEST_CASE("argmax_token: the largest logit, ties to the lower id, NaN never chosen", "[generate][sampling]") {
  const float nan = std::nanf("");
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(nn::argmax_token(std::span<const float>(std::vector<float>{1, 3, 2}.data(), 3)) == 1);
  const std::vector<float> ties{0.5f, 2, 1, 2, 2};
  CHECK(nn::argmax_token(std::span<const float>(ties)) == 1);
  const std::vector<float> with_nan{nan, 1, nan, 4, nan};
  CHECK(nn::argmax_token(std::span<const float>(with_nan)) == 3);
  const std::vector<float> nan_first_big{nan, -inf, -5};
  CHECK(nn::argmax_token(std::span<const float>(nan_first_big)) == 2);
  const std::vector<float> all_neg_inf{-inf, -inf};
  CHECK(nn::argmax_token(std::span<const float>(all_neg_inf)) == 0);
  const std::vector<float> all_nan{nan, nan};
  CHECK_THROWS_AS(nn::argmax_token(std::span<const float>(all_nan)), slim::error);
  CHECK_THROWS_AS(nn::argmax_token(std::span<const float>()), slim::error);
  // temperature 0 is greedy, whatever the seed
  const std::vector<float> l{0.1f, 0.9f, 0.3f};
  for (std::uint64_t s = 0; s < 20; ++s)
    CHECK(nn::select_token(std::span<const float>(l), {.greedy = false, .temperature = 0.0}, s, 0, s) == 1);
}

TEST_CASE("temperature: the probabilities are softmax(logit / T), computed by hand", "[generate][sampling]") {
  const std::vector<float> l{2, 1, 0, -1};
  for (const double temp : {0.5, 1.0, 2.0}) {
    double w[4], z = 0;
    for (int i = 0; i < 4; ++i) z += (w[i] = std::exp(static_cast<double>(l[static_cast<std::size_t>(i)]) / temp));
    const auto d = nn::token_distribution(std::span<const float>(l), {.greedy = false, .temperature = temp});
    REQUIRE(d.size() == 4);
    for (int i = 0; i < 4; ++i) {
      CHECK(d[static_cast<std::size_t>(i)].id == i);
      CHECK(std::abs(d[static_cast<std::size_t>(i)].probability - w[i] / z) < 1e-15);
    }
  }
  // T = 0.5 by numbers: e^4, e^2, 1, e^-2 over their sum
  const auto d = nn::token_distribution(std::span<const float>(l), {.greedy = false, .temperature = 0.5});
  CHECK(std::abs(d[0].probability - 0.8649549) < 1e-6);
  CHECK(std::abs(d[1].probability - 0.1170589) < 1e-6);
}

TEST_CASE("top-k keeps the k largest logits, ties to the lower id; top-p the smallest set reaching p",
          "[generate][sampling]") {
  const std::vector<float> l{0, 2, 2, 1, -1};
  const auto ids = [&](nn::sampling_config c) {
    c.greedy = false;
    ids_t out;
    for (const auto& t : nn::token_distribution(std::span<const float>(l), c)) out.push_back(t.id);
    return out;
  };
  CHECK(ids({.top_k = 1}) == ids_t{1});
  CHECK(ids({.top_k = 2}) == ids_t{1, 2});
  CHECK(ids({.top_k = 3}) == ids_t{1, 2, 3});
  CHECK(ids({.top_k = 0}) == ids_t{0, 1, 2, 3, 4});
  CHECK(ids({.top_k = 99}) == ids_t{0, 1, 2, 3, 4});
  // after top-k = 2 the two tied tokens have 1/2 each
  const auto d = nn::token_distribution(std::span<const float>(l), {.greedy = false, .top_k = 2});
  CHECK(std::abs(d[0].probability - 0.5) < 1e-15);

  // probabilities 0.4, 0.3, 0.15, 0.1, 0.05 (as logs): top-p 0.7 − ε needs 2 tokens, 0.7 + ε needs 3
  const std::vector<float> p{std::log(0.15f), std::log(0.4f), std::log(0.05f), std::log(0.3f), std::log(0.1f)};
  const auto kept = [&](double top_p, index_t top_k = 0) {
    ids_t out;
    for (const auto& t :
         nn::token_distribution(std::span<const float>(p), {.greedy = false, .top_k = top_k, .top_p = top_p}))
      out.push_back(t.id);
    return out;
  };
  CHECK(kept(0.1) == ids_t{1});
  CHECK(kept(0.4 - 1e-6) == ids_t{1});
  CHECK(kept(0.4 + 1e-6) == ids_t{1, 3});
  CHECK(kept(0.7 - 1e-6) == ids_t{1, 3});
  CHECK(kept(0.7 + 1e-6) == ids_t{0, 1, 3});
  CHECK(kept(0.94) == ids_t{0, 1, 3, 4});
  CHECK(kept(0.96) == ids_t{0, 1, 2, 3, 4});
  CHECK(kept(1.0) == ids_t{0, 1, 2, 3, 4});
  // top-p applies after top-k: within the top 2 (0.4, 0.3 → 4/7, 3/7), p = 0.5 keeps one, 0.6 both
  CHECK(kept(0.5, 2) == ids_t{1});
  CHECK(kept(0.6, 2) == ids_t{1, 3});
  const auto renorm = nn::token_distribution(std::span<const float>(p), {.greedy = false, .top_p = 0.8});
  REQUIRE(renorm.size() == 3);
  CHECK(std::abs(renorm[0].probability - 0.15 / 0.85) < 1e-6);
  CHECK(std::abs(renorm[1].probability - 0.40 / 0.85) < 1e-6);
  CHECK(std::abs(renorm[2].probability - 0.30 / 0.85) < 1e-6);
  // ties in top-p: three equal logits, p = 0.5 needs two of them: the lower ids
  const std::vector<float> tied{0, 1, 1, 1};
  ids_t got;
  for (const auto& t : nn::token_distribution(std::span<const float>(tied), {.greedy = false, .top_p = 0.5}))
    got.push_back(t.id);
  CHECK(got == ids_t{1, 2});
  // a long tail: the doubling search finds the prefix beyond the first 64 ranked tokens
  std::vector<float> flat(1000, 0.0f);
  const auto d500 = nn::token_distribution(std::span<const float>(flat), {.greedy = false, .top_p = 0.4995});
  REQUIRE(d500.size() == 500);
  CHECK(d500.front().id == 0);
  CHECK(d500.back().id == 499);
}

TEST_CASE("sampling ignores NaN and −inf, and +inf logits share the probability", "[generate][sampling]") {
  const float nan = std::nanf("");
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> l{nan, 0, -inf, 0};
  const auto d = nn::token_distribution(std::span<const float>(l), {.greedy = false});
  REQUIRE(d.size() == 2);
  CHECK(d[0].id == 1);
  CHECK(d[1].id == 3);
  const std::vector<float> pinf{inf, 0, inf, nan};
  const auto e = nn::token_distribution(std::span<const float>(pinf), {.greedy = false});
  REQUIRE(e.size() == 2);
  CHECK(e[0].id == 0);
  CHECK(e[1].id == 2);
  CHECK(e[0].probability == 0.5);
  for (std::uint64_t s = 0; s < 200; ++s) {
    const auto t = nn::select_token(std::span<const float>(l), {.greedy = false}, 7, 0, s);
    CHECK((t == 1 || t == 3));
  }
}

TEST_CASE("sampling_uniform is a pure function of (seed, stream, step) in [0, 1)", "[generate][sampling]") {
  CHECK(nn::sampling_uniform(1, 2, 3) == nn::sampling_uniform(1, 2, 3));
  CHECK(nn::sampling_uniform(1, 2, 3) != nn::sampling_uniform(2, 2, 3));
  CHECK(nn::sampling_uniform(1, 2, 3) != nn::sampling_uniform(1, 3, 3));
  CHECK(nn::sampling_uniform(1, 2, 3) != nn::sampling_uniform(1, 2, 4));
  double sum = 0;
  for (std::uint64_t i = 0; i < 10000; ++i) {
    const double u = nn::sampling_uniform(9, i % 7, i);
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
  }
  // mean of 10,000 uniforms: σ = sqrt(1/12/10000) ≈ 0.0029; Hoeffding: P(|mean − ½| ≥ 0.02) ≤ 2e^{−8} ≈ 7e-4
  CHECK(std::abs(sum / 10000 - 0.5) < 0.02);
  CHECK(nn::draw_token(std::vector<nn::token_probability>{{4, 0.25}, {9, 0.75}}, 0.0) == 4);
  CHECK(nn::draw_token(std::vector<nn::token_probability>{{4, 0.25}, {9, 0.75}}, 0.2499) == 4);
  CHECK(nn::draw_token(std::vector<nn::token_probability>{{4, 0.25}, {9, 0.75}}, 0.25) == 9);
  CHECK(nn::draw_token(std::vector<nn::token_probability>{{4, 0.25}, {9, 0.75}}, 0.999999) == 9);
}

// ---------------------------------------------------------------------------------------------------------------
// The generation loop

TEST_CASE("greedy generation equals a naive loop that re-runs the model on the growing sequence", "[generate]") {
  const index_t vocab = 37;
  toy_lm m(vocab, hashed_rule);
  const std::vector<ids_t> prompts{{5}, {1, 2, 3, 4, 5, 6, 7}, {36, 0, 12}};
  const auto out = run(m, prompts, {.max_new_tokens = 9});
  REQUIRE(out.size() == 3);
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    CHECK(out[b].tokens == naive_greedy(hashed_rule, vocab, prompts[b], 9));
    CHECK(out[b].reason == nn::finish_reason::length);
    CHECK(out[b].text.empty());
  }
  CHECK(m.calls == 9);                // one prefill, then one decode step per further token
  CHECK(m.max_columns == 7 + 9 - 1);  // the cache never needs the last token
}

TEST_CASE("max_new_tokens bounds every row; 0 does not run the model", "[generate]") {
  toy_lm m(11, hashed_rule);
  const std::vector<ids_t> prompts{{1, 2}, {3}};
  for (const index_t n : {1, 2, 5}) {
    const auto out = run(m, prompts, {.max_new_tokens = n});
    for (const auto& r : out) {
      CHECK(static_cast<index_t>(r.tokens.size()) == n);
      CHECK(r.reason == nn::finish_reason::length);
    }
  }
  toy_lm fresh(11, hashed_rule);
  const auto none = run(fresh, prompts, {.max_new_tokens = 0});
  CHECK(fresh.calls == 0);
  REQUIRE(none.size() == 2);
  CHECK(none[0].tokens.empty());
  CHECK(run(fresh, {}, {.max_new_tokens = 3}).empty());
}

TEST_CASE("a stop token ends its row and is kept; other rows go on", "[generate]") {
  // 2 → 3 → 4 → 1 (EOS) → 2 …; 5 → 6 → 5 → 6 … never stops
  toy_lm m(8, table_rule({2, 2, 3, 4, 1, 6, 5, 0}));
  const std::vector<ids_t> prompts{{2}, {5}, {7, 4}};
  const auto out = run(m, prompts, {.max_new_tokens = 6, .stop_tokens = {1}});
  CHECK(out[0].tokens == ids_t{3, 4, 1});
  CHECK(out[0].reason == nn::finish_reason::stop_token);
  CHECK(out[1].tokens == ids_t{6, 5, 6, 5, 6, 5});
  CHECK(out[1].reason == nn::finish_reason::length);
  CHECK(out[2].tokens == ids_t{1});
  CHECK(out[2].reason == nn::finish_reason::stop_token);
  // when every row has stopped, generation ends early
  toy_lm m2(8, table_rule({2, 2, 3, 4, 1, 6, 5, 0}));
  const auto early = run(m2, {{2}, {3}}, {.max_new_tokens = 50, .stop_tokens = {1, 6}});
  CHECK(early[0].tokens == ids_t{3, 4, 1});
  CHECK(early[1].tokens == ids_t{4, 1});
  CHECK(m2.calls == 3);
}

// Pieces: 0 <pad>, 1 <eos>, 2 "a", 3 "b", 4 "c", 5 " ", 6 "ab", 7 "\xC3", 8 "\xA9" (é in two tokens), 9 "d"
const std::vector<std::string> pieces{"<pad>", "<eos>", "a", "b", "c", " ", "ab", "\xC3", "\xA9", "d"};

TEST_CASE("stop strings cut the text before the match and keep the completing token", "[generate]") {
  const piece_tokenizer tok(pieces);
  // chain: 9 d → 2 a → 3 b → 4 c → 5 " " → 6 ab → 7 → 8 → 9 d …
  toy_lm m(10, table_rule({0, 1, 3, 4, 5, 6, 7, 8, 9, 2}));
  // generated text from prompt "d": "a" "b" "c" " " "ab" "é" "d" "a" …
  std::vector<std::pair<index_t, std::string>> seen;
  const nn::generation_hooks hooks{.detokenize = nn::detokenizer(tok),
                                   .on_token = [&](index_t row, std::int32_t, std::string_view piece) {
                                     seen.emplace_back(row, std::string(piece));
                                     return true;
                                   }};
  SECTION("a match across tokens") {
    const auto out = run(m, {{9}}, {.max_new_tokens = 20, .stop_strings = {"c a"}}, hooks);
    CHECK(out[0].tokens == ids_t{2, 3, 4, 5, 6});
    CHECK(out[0].text == "ab");
    CHECK(out[0].reason == nn::finish_reason::stop_string);
    std::string streamed;
    for (const auto& [row, piece] : seen) streamed += piece;
    CHECK(streamed == "ab");  // "c" and " " were held back and never delivered
    REQUIRE(seen.size() == 5);
    CHECK(seen[2].second.empty());  // "c" may begin "c a"
    CHECK(seen[3].second.empty());
  }
  SECTION("a match inside one token's text") {
    const auto out = run(m, {{9}}, {.max_new_tokens = 20, .stop_strings = {"xyz", " a"}}, hooks);
    CHECK(out[0].tokens == ids_t{2, 3, 4, 5, 6});
    CHECK(out[0].text == "abc");
  }
  SECTION("the earliest of several matches; a multi-byte character split over tokens") {
    const auto out = run(m, {{9}}, {.max_new_tokens = 20, .stop_strings = {"éd", "bc"}}, hooks);
    CHECK(out[0].text == "a");
    CHECK(out[0].tokens == ids_t{2, 3, 4});
    seen.clear();
    const auto e = run(m, {{5}}, {.max_new_tokens = 20, .stop_strings = {"da"}}, hooks);
    CHECK(e[0].tokens == ids_t{6, 7, 8, 9, 2});
    CHECK(e[0].text == "abé");
    REQUIRE(seen.size() == 5);
    CHECK(seen[0].second == "ab");
    CHECK(seen[1].second.empty());  // half of é
    CHECK(seen[2].second == "é");
  }
  SECTION("without a match, the text is the whole decoded continuation, streamed in full") {
    const auto out = run(m, {{9}, {4}}, {.max_new_tokens = 7, .stop_strings = {"zz"}}, hooks);
    CHECK(out[0].text == "abc abé");
    CHECK(out[1].text == " abédab");
    CHECK(out[0].reason == nn::finish_reason::length);
    std::map<index_t, std::string> streamed;
    for (const auto& [row, piece] : seen) streamed[row] += piece;
    CHECK(streamed[0] == out[0].text);
    CHECK(streamed[1] == out[1].text);
  }
  SECTION("a row the callback stops keeps all its decoded text, held-back parts included") {
    const nn::generation_hooks stop_at_c3{.detokenize = nn::detokenizer(tok),
                                          .on_token = [&](index_t, std::int32_t t, std::string_view piece) {
                                            seen.emplace_back(0, std::string(piece));
                                            return t != 7;
                                          }};
    const auto out = run(m, {{9}}, {.max_new_tokens = 20, .stop_strings = {" x", "zz"}}, stop_at_c3);
    CHECK(out[0].tokens == ids_t{2, 3, 4, 5, 6, 7});
    CHECK(out[0].reason == nn::finish_reason::callback);
    CHECK(out[0].text == "abc ab\xEF\xBF\xBD");  // the lone lead byte of é becomes U+FFFD
    REQUIRE(seen.size() == 6);
    CHECK(seen[3].second.empty());  // " " may begin " x"
    CHECK(seen[4].second == " ab");
  }
  SECTION("a callable detokenizer; a stop token gives no text") {
    toy_lm eos(10, table_rule({0, 1, 3, 1, 0, 0, 0, 0, 0, 2}));  // d → a → b → <eos>
    const nn::generation_hooks h{.detokenize = nn::detokenizer([&](std::span<const std::int32_t> ids) {
                                   return tok.decode(ids, {.skip_special = true});
                                 })};
    const auto out = run(eos, {{9}}, {.max_new_tokens = 9, .stop_tokens = {1}}, h);
    CHECK(out[0].tokens == ids_t{2, 3, 1});
    CHECK(out[0].text == "ab");
    CHECK(out[0].reason == nn::finish_reason::stop_token);
    const auto with_special = run(eos, {{9}}, {.max_new_tokens = 9, .stop_tokens = {1}},
                                  {.detokenize = nn::detokenizer(tok, {.skip_special = false})});
    CHECK(with_special[0].text == "ab<eos>");
  }
}

TEST_CASE("the callback streams tokens step by step, rows in order, and can stop a row", "[generate]") {
  const index_t vocab = 23;
  toy_lm m(vocab, hashed_rule);
  const std::vector<ids_t> prompts{{1, 2, 3}, {4}, {5, 6}};
  const auto plain = run(m, prompts, {.max_new_tokens = 6});
  std::vector<std::pair<index_t, std::int32_t>> order;
  const auto out =
      run(m, prompts, {.max_new_tokens = 6}, {.on_token = [&](index_t row, std::int32_t t, std::string_view piece) {
            CHECK(piece.empty());  // no detokenizer
            order.emplace_back(row, t);
            return !(row == 1 && t == plain[1].tokens[2]);  // stop row 1 at its third token
          }});
  CHECK(out[0].tokens == plain[0].tokens);
  CHECK(out[2].tokens == plain[2].tokens);
  CHECK(out[1].tokens == ids_t(plain[1].tokens.begin(), plain[1].tokens.begin() + 3));
  CHECK(out[1].reason == nn::finish_reason::callback);
  CHECK(out[0].reason == nn::finish_reason::length);
  // expected order: step-major, rows ascending; row 1 absent after its third token
  std::vector<std::pair<index_t, std::int32_t>> expected;
  for (std::size_t step = 0; step < 6; ++step)
    for (std::size_t b = 0; b < 3; ++b)
      if (step < out[b].tokens.size()) expected.emplace_back(static_cast<index_t>(b), out[b].tokens[step]);
  CHECK(order == expected);
  CHECK(plain[1].tokens[2] != plain[1].tokens[0]);  // the stop really was at the third token (not an earlier one)
  CHECK(plain[1].tokens[2] != plain[1].tokens[1]);
}

TEST_CASE("a batch of prompts of different lengths gives each prompt's output alone, exactly", "[generate]") {
  const index_t vocab = 41;
  toy_lm m(vocab, hashed_rule);
  const std::vector<ids_t> prompts{{3}, {1, 2, 3, 4, 5, 6, 7, 8}, {40, 39, 38}, {0, 0}, {17, 5, 9, 22, 31}};
  for (const bool greedy : {true, false}) {
    const nn::generation_config cfg{.max_new_tokens = 12,
                                    .sampling = {.greedy = greedy, .temperature = 0.9, .top_k = 20, .top_p = 0.95},
                                    .seed = 77};
    const auto batch = run(m, prompts, cfg);
    for (std::size_t b = 0; b < prompts.size(); ++b) {
      const std::uint64_t stream = b;
      const auto alone = run(m, {prompts[b]}, cfg, {.streams = std::span<const std::uint64_t>(&stream, 1)});
      CHECK(alone[0].tokens == batch[b].tokens);
      CHECK(alone[0].reason == batch[b].reason);
    }
  }
}

TEST_CASE("sampled output depends on (seed, stream) only: not on the batch, equal across runs", "[generate]") {
  const index_t vocab = 50;
  toy_lm m(vocab, hashed_rule);
  const std::vector<ids_t> prompts{{1}, {2, 3}, {4, 5, 6}};
  const nn::generation_config cfg{
      .max_new_tokens = 16, .sampling = {.greedy = false, .temperature = 1.3}, .seed = 2024};
  const auto a = run(m, prompts, cfg);
  const auto again = run(m, prompts, cfg);
  // the same prompts in another batch: reordered and with a stranger, each keeping its stream
  const std::vector<ids_t> shuffled{prompts[2], {9, 9, 9, 9}, prompts[0]};
  const std::vector<std::uint64_t> streams{2, 40, 0};
  const auto b = run(m, shuffled, cfg, {.streams = streams});
  for (std::size_t i = 0; i < 3; ++i) CHECK(a[i].tokens == again[i].tokens);
  CHECK(b[0].tokens == a[2].tokens);
  CHECK(b[2].tokens == a[0].tokens);
  // another seed gives another output; sampling is not greedy here
  auto other_cfg = cfg;
  other_cfg.seed = 2025;
  const auto c = run(m, prompts, other_cfg);
  const auto g = run(m, prompts, {.max_new_tokens = 16});
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(c[i].tokens != a[i].tokens);
    CHECK(g[i].tokens != a[i].tokens);
  }
  // two rows with the same prompt but different streams draw differently
  const auto twins = run(m, {{7, 7}, {7, 7}}, cfg);
  CHECK(twins[0].tokens != twins[1].tokens);
}

TEST_CASE("top_k = 1 is greedy whatever the temperature and seed", "[generate]") {
  toy_lm m(31, hashed_rule);
  const std::vector<ids_t> prompts{{1, 2}, {3}, {4, 5, 6, 7}};
  const auto greedy = run(m, prompts, {.max_new_tokens = 10});
  for (const std::uint64_t seed : {0u, 1u, 99u}) {
    const auto k1 =
        run(m, prompts,
            {.max_new_tokens = 10, .sampling = {.greedy = false, .temperature = 2.5, .top_k = 1}, .seed = seed});
    for (std::size_t i = 0; i < prompts.size(); ++i) CHECK(k1[i].tokens == greedy[i].tokens);
  }
}

/// Token frequencies of `rows` × `steps` draws of generate() on a model with fixed logits.
std::vector<double> frequencies(const std::vector<float>& logits, const nn::sampling_config& s, int rows, int steps) {
  toy_lm m(static_cast<index_t>(logits.size()), fixed_rule(logits));
  const std::vector<ids_t> prompts(static_cast<std::size_t>(rows), ids_t{0});
  const auto out = run(m, prompts, {.max_new_tokens = steps, .sampling = s, .seed = 31337});
  std::vector<double> f(logits.size(), 0.0);
  for (const auto& r : out)
    for (const auto t : r.tokens) f[static_cast<std::size_t>(t)] += 1.0;
  for (auto& x : f) x /= static_cast<double>(rows) * steps;
  return f;
}

// Each frequency below is a mean of N = 20,000 independent Bernoulli(q) draws (distinct Philox counters per row
// and step). Hoeffding: P(|f − q| ≥ t) ≤ 2·exp(−2·N·t²) = 2·exp(−16) ≈ 2.3e-7 for t = 0.02, so a correct sampler
// fails a check with probability < 1e-6 (and, being seeded, never flips between runs), while each error the
// checks guard against moves some frequency by ≥ 0.05: top-p ignored (q_0 = 0.40 instead of 0.47, and tokens 3
// and 4 drawn), the tail kept, or T applied as a power instead of a divisor.
TEST_CASE("sampled frequencies match the hand-computed top-p and temperature distributions", "[generate]") {
  const int rows = 8, steps = 2500;  // N = 20,000
  const double t = 0.02;
  // probabilities 0.4, 0.3, 0.15, 0.1, 0.05; top-p 0.8 keeps {0, 1, 2} (0.85 ≥ 0.8 > 0.7), renormalised
  const std::vector<float> l{std::log(0.4f), std::log(0.3f), std::log(0.15f), std::log(0.1f), std::log(0.05f)};
  const auto f = frequencies(l, {.greedy = false, .top_p = 0.8}, rows, steps);
  CHECK(std::abs(f[0] - 0.40 / 0.85) < t);
  CHECK(std::abs(f[1] - 0.30 / 0.85) < t);
  CHECK(std::abs(f[2] - 0.15 / 0.85) < t);
  CHECK(f[3] == 0.0);
  CHECK(f[4] == 0.0);
  // temperature 2: q ∝ p^(1/2) = sqrt(0.4), sqrt(0.3), ... over their sum (≈ 0.2712, 0.2349, 0.1661, 0.1356, 0.0959)
  const auto g = frequencies(l, {.greedy = false, .temperature = 2.0}, rows, steps);
  const double z = std::sqrt(0.4) + std::sqrt(0.3) + std::sqrt(0.15) + std::sqrt(0.1) + std::sqrt(0.05);
  const double q[5] = {std::sqrt(0.4) / z, std::sqrt(0.3) / z, std::sqrt(0.15) / z, std::sqrt(0.1) / z,
                       std::sqrt(0.05) / z};
  for (int i = 0; i < 5; ++i) CHECK(std::abs(g[static_cast<std::size_t>(i)] - q[i]) < t);
}

TEST_CASE("generate rejects bad input with slim::error", "[generate]") {
  toy_lm m(10, hashed_rule);
  CHECK_THROWS_AS(run(m, {{1}, {}}, {}), slim::error);
  CHECK_THROWS_AS(run(m, {{1, 10}}, {}), slim::error);
  CHECK_THROWS_AS(run(m, {{-1}}, {}), slim::error);
  CHECK_THROWS_AS(run(m, {{1}}, {.max_new_tokens = -1}), slim::error);
  CHECK_THROWS_AS(run(m, {{1}}, {.stop_strings = {"x"}}), slim::error);  // no detokenizer
  const piece_tokenizer tok(pieces);
  CHECK_THROWS_AS(run(m, {{1}}, {.stop_strings = {""}}, {.detokenize = nn::detokenizer(tok)}), slim::error);
  CHECK_THROWS_AS(run(m, {{1}}, {.sampling = {.greedy = false, .top_p = 0.0}}), slim::error);
  CHECK_THROWS_AS(run(m, {{1}}, {.sampling = {.greedy = false, .top_p = 1.5}}), slim::error);
  CHECK_THROWS_AS(run(m, {{1}}, {.sampling = {.greedy = false, .temperature = -1}}), slim::error);
  CHECK_THROWS_AS(run(m, {{1}}, {.sampling = {.top_k = -2}}), slim::error);
  const std::vector<std::uint64_t> two{0, 1};
  CHECK_THROWS_AS(run(m, {{1}}, {}, {.streams = two}), slim::error);
  try {
    run(m, {{1, 2}, {3, 12}}, {});
    FAIL("no error");
  } catch (const slim::error& e) {
    CHECK(e.place() == "prompt 1 position 1");
  }
}

// ---------------------------------------------------------------------------------------------------------------
// nn::decoder_lm

static_assert(nn::cached_lm<nn::decoder_lm<sb>, sb>);
static_assert(nn::cached_lm<nn::decoder_lm<simd_b>, simd_b>);

nn::decoder_config tiny_decoder() {
  nn::decoder_config c;
  c.vocab_size = 61;
  c.hidden_size = 24;
  c.intermediate_size = 40;
  c.num_layers = 2;
  c.num_heads = 6;
  c.num_kv_heads = 2;
  c.max_positions = 64;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 100;
  c.attention_bias = true;
  return c;
}

/// Greedy continuation by the training forward on the whole growing sequence (no cache): argmax of the last
/// row. Also requires each step's top-two logit gap to exceed `margin`, so that the comparisons below cannot
/// hinge on rounding differences between the cached and uncached paths or between backends.
template <class Model, class B>
ids_t naive_decoder_greedy(Model& m, const B& be, ids_t seq, index_t n, float margin) {
  const index_t vocab = m.config().vocab_size;
  ids_t out;
  for (index_t i = 0; i < n; ++i) {
    const index_t len = static_cast<index_t>(seq.size());
    tensor<std::int32_t, 2> ids({1, len});
    std::copy(seq.begin(), seq.end(), ids.data());
    tensor<float, 2> logits({len, vocab});
    m.forward(be, tensor_view<const std::int32_t, 2>(ids.view()), logits.view());
    const float* last = logits.data() + (len - 1) * vocab;
    std::vector<float> row(last, last + vocab);
    const auto best = static_cast<std::int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
    std::nth_element(row.begin(), row.begin() + 1, row.end(), std::greater<>());
    REQUIRE(row[0] - row[1] > margin);
    out.push_back(best);
    seq.push_back(best);
  }
  return out;
}

TEST_CASE("decoder_lm: greedy generation equals re-running the training forward, whatever the batch and threads",
          "[generate][decoder]") {
  const auto c = tiny_decoder();
  nn::decoder_lm<sb> ref(c);
  nn::decoder_lm<simd_b> fast(c);
  ref.reset_parameters(11, 0.5);
  fast.reset_parameters(11, 0.5);
  const std::vector<ids_t> prompts{{3, 1, 4, 1, 5, 9, 2}, {60}, {2, 7, 1, 8, 2, 8, 1, 8, 2, 8, 4, 5}};
  const index_t n = 10;
  std::vector<ids_t> expected;
  for (const auto& p : prompts) expected.push_back(naive_decoder_greedy(ref, sb{}, p, n, 1e-3f));
  const nn::generation_config cfg{.max_new_tokens = n};
  const auto tokens = [](const std::vector<nn::generation_result>& r) {
    std::vector<ids_t> out;
    for (const auto& x : r) out.push_back(x.tokens);
    return out;
  };
  CHECK(tokens(nn::generate(ref, sb{}, std::span<const ids_t>(prompts), cfg)) == expected);
  thread_pool one(1), two(2);
  for (thread_pool* pool : {&one, &two}) {
    simd_b be{};
    be.pool = pool;
    INFO("threads " << pool->threads());
    CHECK(tokens(nn::generate(fast, be, std::span<const ids_t>(prompts), cfg)) == expected);
    for (std::size_t b = 0; b < prompts.size(); ++b)
      CHECK(nn::generate_one(fast, be, std::span<const std::int32_t>(prompts[b]), cfg).tokens == expected[b]);
  }
}

TEST_CASE("decoder_lm: sampled generation is identical alone and in a batch, at 1 and 2 threads",
          "[generate][decoder]") {
  const auto c = tiny_decoder();
  nn::decoder_lm<simd_b> m(c);
  m.reset_parameters(5, 0.5);
  const std::vector<ids_t> prompts{{1, 2, 3}, {4, 5, 6, 7, 8, 9}, {10}};
  const nn::generation_config cfg{
      .max_new_tokens = 12, .sampling = {.greedy = false, .temperature = 1.5, .top_p = 0.9}, .seed = 8};
  thread_pool one(1), two(2);
  simd_b be1{}, be2{};
  be1.pool = &one;
  be2.pool = &two;
  const auto batch1 = nn::generate(m, be1, std::span<const ids_t>(prompts), cfg);
  const auto batch2 = nn::generate(m, be2, std::span<const ids_t>(prompts), cfg);
  const auto greedy = nn::generate(m, be1, std::span<const ids_t>(prompts), {.max_new_tokens = 12});
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    const std::uint64_t stream = b;
    const auto alone = nn::generate_one(m, be2, std::span<const std::int32_t>(prompts[b]), cfg,
                                        {.streams = std::span<const std::uint64_t>(&stream, 1)});
    CHECK(batch1[b].tokens == batch2[b].tokens);
    CHECK(alone.tokens == batch1[b].tokens);
    CHECK(batch1[b].tokens != greedy[b].tokens);  // it really sampled
  }
}


TEST_CASE("decoder_lm: weights packed for inference change no logit, and generate packs only for its call",
          "[generate][decoder][packed]") {
  using adapted = nn::lora<nn::q_proj, nn::k_proj, nn::v_proj, nn::o_proj, nn::gate_proj, nn::up_proj, nn::down_proj>;
  for (const bool tied : {false, true}) {
    INFO("tied embeddings " << tied);
    auto c = tiny_decoder();
    c.tie_word_embeddings = tied;
    nn::decoder_lm<simd_b, adapted> m(c, {.rank = 4, .alpha = 8});
    m.reset_parameters(21, 0.5);
    philox_stream rng(22);
    for (index_t l = 0; l < c.num_layers; ++l)  // adapters that change the output, so both paths are exercised
      for (int p = 0; p < 7; ++p) {
        auto& b = m.layer(l).proj(static_cast<nn::projection>(p)).lora_b;
        for (index_t i = 0; i < b.value.size(); ++i) b.value.data()[i] = 0.2f * (rng.uniform() - 0.5f);
      }
    thread_pool two(2);
    simd_b be{};
    be.pool = &two;
    const index_t batch = 2, vocab = c.vocab_size;
    // Prefill of two left-padded rows, then three single-column steps: every logit, packed and not.
    const auto run = [&] {
      auto cache = m.make_cache(batch, 16);
      tensor<std::int32_t, 2> prompt({batch, 5});
      const std::int32_t ids[] = {0, 0, 7, 3, 9, 1, 2, 3, 4, 5};
      std::copy(std::begin(ids), std::end(ids), prompt.data());
      const std::int32_t begin[] = {2, 0};
      std::vector<float> all;
      tensor<float, 2> logits({batch, vocab});
      m.forward_cached(be, tensor_view<const std::int32_t, 2>(prompt.view()), begin, cache, logits.view());
      all.insert(all.end(), logits.data(), logits.data() + logits.size());
      tensor<std::int32_t, 2> next({batch, 1});
      for (std::int32_t step = 0; step < 3; ++step) {
        next(0, 0) = 10 + step;
        next(1, 0) = 40 - step;
        m.forward_cached(be, tensor_view<const std::int32_t, 2>(next.view()), {}, cache, logits.view());
        all.insert(all.end(), logits.data(), logits.data() + logits.size());
      }
      return all;
    };
    const auto plain = run();
    m.pack_weights(be);
    CHECK(m.layer(0).proj(nn::projection::q_proj).weight_packed());
    const auto packed = run();
    REQUIRE(packed.size() == plain.size());
    CHECK(std::memcmp(packed.data(), plain.data(), sizeof(float) * plain.size()) == 0);  // bit for bit
    m.merge_adapters();  // a weight that changes drops its packed copy
    CHECK_FALSE(m.layer(1).proj(nn::projection::down_proj).weight_packed());
    m.unmerge_adapters();
    m.drop_packed_weights();

    m.pack_weights(be);
    m.visit_parameters([](nn::parameter<float>&) {});  // a visitor may change the weights: the copies go
    CHECK_FALSE(m.weights_packed());
    CHECK_FALSE(m.layer(1).proj(nn::projection::up_proj).weight_packed());

    const std::vector<ids_t> prompts{{3, 1, 4, 1, 5}, {9, 2, 6}};
    const nn::generation_config on{.max_new_tokens = 8}, off{.max_new_tokens = 8, .pack_weights = false};
    int packed_calls = 0, tokens_seen = 0;  // whether the weights were packed while each token was chosen
    const nn::generation_hooks watch{.on_token = [&](index_t, std::int32_t, std::string_view) {
      ++tokens_seen;
      packed_calls += m.layer(0).proj(nn::projection::q_proj).weight_packed() && m.weights_packed();
      return true;
    }};
    const auto a = nn::generate(m, be, std::span<const ids_t>(prompts), on, watch);
    CHECK(tokens_seen == 16);
    CHECK(packed_calls == 16);                                             // packed for the call
    CHECK_FALSE(m.layer(0).proj(nn::projection::q_proj).weight_packed());  // and dropped when it returns
    packed_calls = tokens_seen = 0;
    const auto b = nn::generate(m, be, std::span<const ids_t>(prompts), off, watch);
    CHECK(packed_calls == 0);
    for (std::size_t r = 0; r < prompts.size(); ++r) CHECK(a[r].tokens == b[r].tokens);
    m.pack_weights(be);  // packed by the caller: generate leaves the copies in place
    const auto d = nn::generate(m, be, std::span<const ids_t>(prompts), on);
    CHECK(m.weights_packed());
    for (std::size_t r = 0; r < prompts.size(); ++r) CHECK(d[r].tokens == a[r].tokens);
    m.drop_packed_weights();
  }
}

}  // namespace slim::testing::generate_tests
