// Metrics that cannot be gamed: parity with an independent evaluator (ranx, through the committed fixture
// of tools/metrics/make_reference.py), tie policies against closed forms, invariance under relabelling the
// items, hand-computed popularity-bias cases, the negative sampler's distribution and determinism, the
// batched full-ranking evaluator against the one-user-at-a-time definition, and the statistics.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "slim/backend/scalar.hpp"
#include "slim/backend/simd.hpp"
#include "slim/core/philox.hpp"
#include "slim/core/tensor.hpp"
#include "slim/core/thread_pool.hpp"
#include "slim/io/json.hpp"
#include "slim/metrics/bias.hpp"
#include "slim/metrics/full_ranking.hpp"
#include "slim/metrics/metric.hpp"
#include "slim/metrics/ranking.hpp"
#include "slim/metrics/sampling.hpp"
#include "slim/metrics/statistics.hpp"
#include "support/check.hpp"

#ifndef SLIM_METRICS_FIXTURE_DIR
#define SLIM_METRICS_FIXTURE_DIR "tests/data/metrics"
#endif

namespace {

using namespace slim;
using namespace slim::metrics;

using vec_i32 = std::vector<std::int32_t>;
// The simd path: the widest architecture this translation unit is compiled for — SSE2, which every x86-64
// CPU has, in the CMake build (no -m flags); AVX2 or AVX-512 when built by hand with -march=native.
#if defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
using simd_be = backend::simd<xsimd::avx512bw>;
#elif defined(__AVX2__) && defined(__FMA__)
using simd_be = backend::simd<xsimd::fma3<xsimd::avx2>>;
#else
using simd_be = backend::simd<xsimd::sse2>;
#endif

// ---- the ranx fixture ---------------------------------------------------------------------------------

struct ranx_fixture {
  index_t users = 0, items = 0;
  std::vector<float> scores;  // (users, items+1); column 0 is padding
  vec_i32 targets;
  std::vector<vec_i32> histories;
  io::json metrics;

  std::span<const float> row(index_t u) const {
    return std::span<const float>(scores).subspan(static_cast<std::size_t>(u * (items + 1)),
                                                  static_cast<std::size_t>(items + 1));
  }
};

const ranx_fixture& fixture() {
  static const ranx_fixture f = [] {
    ranx_fixture x;
    const io::json ref = io::read_json(std::string(SLIM_METRICS_FIXTURE_DIR) + "/ranking_reference.json");
    x.users = ref.at("users").get<index_t>();
    x.items = ref.at("items").get<index_t>();
    x.targets = ref.at("targets").get<vec_i32>();
    x.histories = ref.at("histories").get<std::vector<vec_i32>>();
    x.metrics = ref.at("metrics");
    std::ifstream in(std::string(SLIM_METRICS_FIXTURE_DIR) + "/ranking_scores.u16", std::ios::binary);
    std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE(static_cast<index_t>(bytes.size()) == 2 * x.users * x.items);
    x.scores.assign(static_cast<std::size_t>(x.users * (x.items + 1)), 0.0f);
    for (index_t u = 0; u < x.users; ++u) {
      // The padding column gets the highest score of all: counting it as a candidate would show.
      x.scores[static_cast<std::size_t>(u * (x.items + 1))] = 1e30f;
      for (index_t i = 0; i < x.items; ++i) {
        const auto b = static_cast<std::size_t>(2 * (u * x.items + i));
        x.scores[static_cast<std::size_t>(u * (x.items + 1) + i + 1)] =
            static_cast<float>(bytes[b] | (bytes[b + 1] << 8));
      }
    }
    return x;
  }();
  return f;
}

std::vector<metric> fixture_metrics() {
  std::vector<metric> ms;
  for (const char* family : {"ndcg", "hr", "mrr", "recall"})
    for (const int k : {1, 5, 10, 20}) ms.push_back(metric::parse(std::string(family) + "@" + std::to_string(k)));
  return ms;
}

void check_against_ranx(const std::vector<target_rank>& ranks, tie_policy policy) {
  const auto& f = fixture();
  const auto ms = fixture_metrics();
  const evaluation e = evaluate(ranks, ms, policy);
  for (std::size_t m = 0; m < ms.size(); ++m) {
    const auto want = f.metrics.at(e.names[m]).get<std::vector<double>>();
    REQUIRE(static_cast<index_t>(want.size()) == f.users);
    double want_mean = 0;
    for (index_t u = 0; u < f.users; ++u) {
      INFO(e.names[m] << " user " << u);
      CHECK(std::abs(e.values[m][static_cast<std::size_t>(u)] - want[static_cast<std::size_t>(u)]) <= 1e-9);
      want_mean += want[static_cast<std::size_t>(u)];
    }
    CHECK(std::abs(e.mean(m) - want_mean / static_cast<double>(f.users)) <= 1e-9);
  }
}

TEST_CASE("full ranking agrees with ranx to 1e-9 on the tie-free fixture, per user and in the mean",
          "[metrics][ranx]") {
  const auto& f = fixture();
  std::vector<target_rank> ranks;
  bool some_hit_at_1 = false;
  for (index_t u = 0; u < f.users; ++u) {
    ranks.push_back(
        rank_full(f.row(u), f.targets[static_cast<std::size_t>(u)], f.histories[static_cast<std::size_t>(u)]));
    CHECK(ranks.back().ties == 0);
    some_hit_at_1 |= ranks.back().greater == 0;
  }
  CHECK(some_hit_at_1);  // the fixture exercises position 0 too
  check_against_ranx(ranks, tie_policy::pessimistic);
  check_against_ranx(ranks, tie_policy::average);  // without ties the policies agree
}

// The batched evaluator on the fixture: users are one-hot rows, items hold the score columns, so the GEMM
// reproduces every score exactly (one non-zero product per dot product).
template <class B>
std::vector<target_rank> fixture_through_batched(const B& be) {
  const auto& f = fixture();
  tensor<float, 2> users({f.users, f.users}), items({f.items + 1, f.users});
  std::fill(users.begin(), users.end(), 0.0f);
  for (index_t u = 0; u < f.users; ++u) users.view()(u, u) = 1.0f;
  for (index_t i = 0; i <= f.items; ++i)
    for (index_t u = 0; u < f.users; ++u) items.view()(i, u) = f.row(u)[static_cast<std::size_t>(i)];
  return rank_full_batched(be, users.view(), items.view(), f.targets, f.histories).ranks;
}

TEST_CASE("the batched evaluator agrees with ranx on the fixture (scalar and simd)", "[metrics][ranx]") {
  check_against_ranx(fixture_through_batched(backend::scalar{}), tie_policy::pessimistic);
  thread_pool pool(2);
  simd_be be;
  be.pool = &pool;
  check_against_ranx(fixture_through_batched(be), tie_policy::pessimistic);
}

// ---- metric types and names ---------------------------------------------------------------------------

TEST_CASE("metric types carry their names and agree with the runtime form", "[metrics]") {
  STATIC_REQUIRE(ndcg<10>::name == "ndcg@10");
  STATIC_REQUIRE(hit<20>::name == "hr@20");
  STATIC_REQUIRE(mrr<5>::name == "mrr@5");
  STATIC_REQUIRE(recall<100>::name == "recall@100");
  STATIC_REQUIRE(ndcg<1>::name == "ndcg@1");
  STATIC_REQUIRE(RankingMetric<ndcg<10>>);
  STATIC_REQUIRE(!RankingMetric<int>);
  CHECK(metric::of<ndcg<10>>().name() == "ndcg@10");
  CHECK(metric::of<hit<20>>().name() == "hr@20");
  CHECK(metric::parse("HIT@20").name() == "hr@20");
  CHECK(metric::parse("Recall@7").kind == metric_kind::recall);
  const auto list = parse_metrics("ndcg@10, hr@10,hr@20 ,mrr@10");
  REQUIRE(list.size() == 4);
  CHECK(list[3].name() == "mrr@10");
  for (const char* bad : {"ndcg", "ndcg@", "ndcg@0", "ndcg@-1", "ndcg@1x", "map@10", "@10", "ndcg@1234567890"})
    CHECK_THROWS_AS(metric::parse(bad), slim::error);
  const std::vector<target_rank> ranks{{0, 0}, {3, 0}, {12, 0}, {2, 4}};
  const evaluation typed = evaluate<ndcg<10>, hit<10>, mrr<10>, recall<10>>(ranks, tie_policy::average);
  const std::vector<metric> runtime{metric::parse("ndcg@10"), metric::parse("hr@10"), metric::parse("mrr@10"),
                                    metric::parse("recall@10")};
  const evaluation dynamic = evaluate(ranks, runtime, tie_policy::average);
  CHECK(typed.names == dynamic.names);
  CHECK(typed.values == dynamic.values);
  // Hand values: position 3 → NDCG 1/log2(5) = 0.43067655807339306, MRR 1/4; position 12 is past the cut.
  CHECK(typed.per_user("ndcg@10")[1] == Approx(0.43067655807339306).epsilon(1e-15));
  CHECK(typed.per_user("mrr@10")[1] == 0.25);
  CHECK(typed.per_user("hr@10")[2] == 0.0);
  CHECK_THROWS_AS(typed.mean("ndcg@20"), slim::error);
}

// ---- ties against closed forms ------------------------------------------------------------------------

TEST_CASE("a constant scorer earns nothing under the pessimistic policy and exactly chance under the average",
          "[metrics][ties]") {
  // Sampled-100: the target ties with all 100 negatives.
  {
    const target_rank r{0, 100};
    CHECK(hit_at(r, 10, tie_policy::pessimistic) == 0.0);
    CHECK(ndcg_at(r, 10, tie_policy::pessimistic) == 0.0);
    CHECK(mrr_at(r, 10, tie_policy::pessimistic) == 0.0);
    CHECK(std::abs(hit_at(r, 10, tie_policy::average) - 10.0 / 101.0) < 1e-15);
    // Average NDCG@10: the target is equally likely at each of the 101 places; Σ_{p<10} 1/log2(p+2) / 101.
    double dcg = 0, rr = 0;
    for (int p = 0; p < 10; ++p) {
      dcg += 1.0 / std::log2(p + 2.0);
      rr += 1.0 / (p + 1.0);
    }
    CHECK(std::abs(ndcg_at(r, 10, tie_policy::average) - dcg / 101.0) < 1e-15);
    CHECK(std::abs(mrr_at(r, 10, tie_policy::average) - 7381.0 / 2520.0 / 101.0) < 1e-15);  // H_10 = 7381/2520
    CHECK(std::abs(rr - 7381.0 / 2520.0) < 1e-14);
  }
  // The same through the sampler and rank_sampled: all scores equal.
  {
    const index_t n = 500;
    std::vector<float> scores(static_cast<std::size_t>(n) + 1, 0.25f);
    const negative_sampler sampler(n, 7);
    vec_i32 neg(100);
    const vec_i32 history{5, 9, 9, 33};
    vec_i32 exclude = history;
    exclude.push_back(42);
    sampler.sample(3, exclude, neg);
    const target_rank r = rank_sampled(scores, 42, neg);
    CHECK(r.greater == 0);
    CHECK(r.ties == 100);
    CHECK(hit<10>{}(r, tie_policy::pessimistic) == 0.0);
    CHECK(std::abs(hit<10>{}(r, tie_policy::average) - 10.0 / 101.0) < 1e-15);
  }
  // Full ranking: 300 items, 20 distinct history items (one repeated) → N = 280 candidates with the target.
  {
    const index_t n = 300;
    std::vector<float> scores(static_cast<std::size_t>(n) + 1, -3.5f);
    vec_i32 history;
    for (int i = 1; i <= 20; ++i) history.push_back(i * 7);
    history.push_back(14);
    const target_rank r = rank_full(scores, 150, history);
    CHECK(r.greater == 0);
    CHECK(r.ties == 279);
    CHECK(hit_at(r, 10, tie_policy::pessimistic) == 0.0);
    CHECK(std::abs(hit_at(r, 10, tie_policy::average) - 10.0 / 280.0) < 1e-15);
    CHECK(std::abs(hit_at(r, 20, tie_policy::average) - 20.0 / 280.0) < 1e-15);
    // The batched evaluator on zero embeddings (every score 0) gives the same place.
    tensor<float, 2> users({3, 4}), items({n + 1, 4});
    std::fill(users.begin(), users.end(), 0.0f);
    std::fill(items.begin(), items.end(), 0.0f);
    const vec_i32 targets{150, 150, 150};
    const std::vector<vec_i32> histories{history, history, history};
    const auto res = rank_full_batched(simd_be{}, users.view(), items.view(), targets, histories);
    for (const target_rank& b : res.ranks) {
      CHECK(b.greater == 0);
      CHECK(b.ties == 279);
    }
  }
  // A partial tie: 5 candidates above, the target tied with 3 others → places 5..8 equally likely.
  {
    const target_rank r{5, 3};
    CHECK(hit_at(r, 7, tie_policy::average) == 0.5);
    CHECK(hit_at(r, 9, tie_policy::average) == 1.0);
    CHECK(hit_at(r, 9, tie_policy::pessimistic) == 1.0);
    CHECK(hit_at(r, 8, tie_policy::pessimistic) == 0.0);
    const double want = (1 / std::log2(7.0) + 1 / std::log2(8.0)) / 4;  // places 5, 6 of 5..8 fall below 7
    CHECK(std::abs(ndcg_at(r, 7, tie_policy::average) - want) < 1e-15);
    CHECK(std::abs(ndcg_at(r, 10, tie_policy::pessimistic) - 1 / std::log2(10.0)) < 1e-15);
    CHECK(std::abs(mrr_at(r, 10, tie_policy::average) - (1 / 6.0 + 1 / 7.0 + 1 / 8.0 + 1 / 9.0) / 4) < 1e-15);
  }
}

TEST_CASE("rank_full counts ties, NaN, history and padding by its rule", "[metrics][ties]") {
  //                         pad    1     2     3     4     5     6     7
  const std::vector<float> s{9.f, 1.f, 2.f, 2.f, NAN, 2.f, 0.5f, 3.f};
  CHECK(rank_full(s, 2, {}).greater == 1);  // item 7; the padding's 9 is never a candidate
  CHECK(rank_full(s, 2, {}).ties == 2);     // items 3 and 5; NaN item 4 ranks below everything
  const vec_i32 h{3, 3, 7, 2};              // target 2 in its own history stays a candidate
  const target_rank r = rank_full(s, 2, h);
  CHECK(r.greater == 0);
  CHECK(r.ties == 1);
  const target_rank nan_target = rank_full(s, 4, h);  // NaN target: every candidate above it
  CHECK(nan_target.greater == 3);                     // items 1, 5, 6 (2, 3 and 7 excluded)
  CHECK(nan_target.ties == 0);
  CHECK(rank_full(s, 6, {}).greater == 5);
  CHECK(rank_full(std::vector<float>{0.f, -0.0f, 0.0f}, 1, {}).ties == 1);  // −0 equals +0
  vec_i32 top(4);
  CHECK(top_k_full(s, h, top) == 4);
  CHECK(top == vec_i32{5, 1, 6, 4});  // 2 and 7 and 3 excluded; NaN last
  CHECK(top_k_full(s, h, top, 2) == 4);
  CHECK(top == vec_i32{2, 5, 1, 6});  // keep = the target
  vec_i32 all(7);
  CHECK(top_k_full(s, h, all) == 4);
  CHECK(all == vec_i32{5, 1, 6, 4, 0, 0, 0});
  CHECK(top_k_full(s, {}, all) == 7);
  CHECK(all == vec_i32{7, 2, 3, 5, 1, 6, 4});  // ties by lower id first
}

TEST_CASE("top_k_full equals a full sort by (score descending, id ascending, NaN last) on random rows",
          "[metrics][ties]") {
  // Lists of every length: short ones are placed by counting, those past 128 candidates by a partial sort, and
  // rows with fewer than k candidates above the threshold by the exact fallback; integer scores make ties.
  philox_stream rng(99);
  for (const index_t n : {7, 64, 300, 3416})
    for (const index_t k : {1, 5, 20, 150, 300}) {
      if (k > n) continue;
      for (int trial = 0; trial < 6; ++trial) {
        INFO("n " << n << " k " << k << " trial " << trial);
        std::vector<float> s(static_cast<std::size_t>(n) + 1);
        for (auto& x : s)
          x = trial % 2 == 0 ? static_cast<float>(rng.below(9)) : static_cast<float>(rng.uniform() * 2 - 1);
        if (trial >= 4) {  // a few NaN and −inf scores
          s[1 + rng.below(static_cast<std::uint32_t>(n))] = NAN;
          s[1 + rng.below(static_cast<std::uint32_t>(n))] = -INFINITY;
        }
        vec_i32 h;
        for (index_t j = 0; j < n / 3; ++j) h.push_back(static_cast<std::int32_t>(1 + rng.below(static_cast<std::uint32_t>(n))));
        std::set<std::int32_t> excluded(h.begin(), h.end());
        vec_i32 want;
        for (std::int32_t i = 1; i <= n; ++i)
          if (excluded.count(i) == 0) want.push_back(i);
        std::stable_sort(want.begin(), want.end(), [&](std::int32_t a, std::int32_t b) {
          const float x = s[static_cast<std::size_t>(a)], y = s[static_cast<std::size_t>(b)];
          if (std::isnan(x) || std::isnan(y)) return !std::isnan(x) && std::isnan(y);
          return x > y;  // equal scores keep the ascending id order
        });
        want.resize(static_cast<std::size_t>(k), 0);
        vec_i32 got(static_cast<std::size_t>(k));
        top_k_full(s, h, got);
        CHECK(got == want);
      }
    }
}

TEST_CASE("bad ids throw slim::error instead of reading out of range", "[metrics][errors]") {
  const std::vector<float> s(11, 0.0f);
  CHECK_THROWS_AS(rank_full(s, 0, {}), slim::error);
  CHECK_THROWS_AS(rank_full(s, 11, {}), slim::error);
  CHECK_THROWS_AS(rank_full(s, 3, vec_i32{1, 11}), slim::error);
  CHECK_THROWS_AS(rank_full(s, 3, vec_i32{-1}), slim::error);
  CHECK_THROWS_AS(rank_full(std::vector<float>{1.f}, 1, {}), slim::error);
  vec_i32 out(3);
  CHECK_THROWS_AS(top_k_full(s, vec_i32{0}, out), slim::error);
  CHECK_THROWS_AS(rank_sampled(s, 2, vec_i32{3, 12}), slim::error);
  tensor<float, 2> users({2, 3}), items({11, 3}), narrow({11, 2});
  std::fill(users.begin(), users.end(), 0.0f);
  std::fill(items.begin(), items.end(), 0.0f);
  const std::vector<vec_i32> hist{{1}, {2}};
  CHECK_THROWS_AS(rank_full_batched(backend::scalar{}, users.view(), items.view(), vec_i32{1, 11}, hist), slim::error);
  CHECK_THROWS_AS(rank_full_batched(backend::scalar{}, users.view(), items.view(), vec_i32{1}, hist), slim::error);
  CHECK_THROWS_AS(rank_full_batched(backend::scalar{}, users.view(), narrow.view(), vec_i32{1, 2}, hist), slim::error);
  CHECK_THROWS_AS(
      rank_full_batched(backend::scalar{}, users.view(), items.view(), vec_i32{1, 2}, std::vector<vec_i32>{{1}, {0}}),
      slim::error);
  full_ranking_options too_many;
  too_many.top_k = 11;
  CHECK_THROWS_AS(rank_full_batched(backend::scalar{}, users.view(), items.view(), vec_i32{1, 2}, hist, too_many),
                  slim::error);
}

// ---- relabelling ----------------------------------------------------------------------------------------

TEST_CASE("relabelling the items changes no ranking metric", "[metrics][relabel]") {
  const auto& f = fixture();
  const index_t n = f.items;
  // A random permutation π of 1..n (π(0) = 0), and scores with ties: the fixture's scores quantised.
  vec_i32 pi(static_cast<std::size_t>(n) + 1);
  std::iota(pi.begin(), pi.end(), 0);
  philox_stream rng(99);
  for (index_t i = n; i > 1; --i)
    std::swap(pi[static_cast<std::size_t>(i)], pi[1 + rng.below(static_cast<std::uint32_t>(i))]);
  for (const bool quantise : {false, true}) {
    std::vector<target_rank> before, after;
    std::vector<vec_i32> tops_before, tops_after;
    for (index_t u = 0; u < f.users; ++u) {
      std::vector<float> s(f.row(u).begin(), f.row(u).end()), t(s.size());
      if (quantise)
        for (std::size_t i = 1; i < s.size(); ++i) s[i] = std::floor(s[i] / 25.0f);  // 12 levels: many ties
      for (index_t i = 0; i <= n; ++i)
        t[static_cast<std::size_t>(pi[static_cast<std::size_t>(i)])] = s[static_cast<std::size_t>(i)];
      const auto& h = f.histories[static_cast<std::size_t>(u)];
      vec_i32 hp;
      for (const auto i : h) hp.push_back(pi[static_cast<std::size_t>(i)]);
      const std::int32_t target = f.targets[static_cast<std::size_t>(u)];
      before.push_back(rank_full(s, target, h));
      after.push_back(rank_full(t, pi[static_cast<std::size_t>(target)], hp));
      if (!quantise) {
        vec_i32 a(20), b(20);
        top_k_full(s, h, a, target);
        top_k_full(t, hp, b, pi[static_cast<std::size_t>(target)]);
        for (auto& i : a) i = pi[static_cast<std::size_t>(i)];
        tops_before.push_back(a);
        tops_after.push_back(b);
      }
    }
    for (std::size_t u = 0; u < before.size(); ++u) {
      CHECK(before[u].greater == after[u].greater);
      CHECK(before[u].ties == after[u].ties);
    }
    for (const auto policy : {tie_policy::pessimistic, tie_policy::average}) {
      const auto ms = fixture_metrics();
      CHECK(evaluate(before, ms, policy).values == evaluate(after, ms, policy).values);
    }
    CHECK(tops_before == tops_after);  // without ties the lists map item by item
  }
}

// ---- the batched evaluator against the definition -------------------------------------------------------

template <class B>
void check_batched_against_single(const B& be, bool integer_data, index_t block_users, std::uint64_t seed,
                                  index_t chunk_items = 0) {
  const index_t n_users = 37, n_items = 203, d = 7, k = 10;
  tensor<float, 2> users({n_users, d}), items({n_items + 1, d});
  if (integer_data) {
    slim::testing::fill_integers(users, seed, -1, 1);  // small integers: many exact ties, exact scores
    slim::testing::fill_integers(items, seed + 1, -1, 1);
  } else {
    slim::testing::fill_uniform(users, seed);
    slim::testing::fill_uniform(items, seed + 1);
  }
  users.view()(5, 2) = NAN;   // user 5: every score NaN (NaN target)
  items.view()(17, 0) = NAN;  // item 17: NaN for every user
  philox_stream rng(seed + 2);
  vec_i32 targets;
  std::vector<vec_i32> histories;
  for (index_t u = 0; u < n_users; ++u) {
    targets.push_back(static_cast<std::int32_t>(1 + rng.below(n_items)));
    vec_i32 h;
    const auto len = rng.below(40);
    for (std::uint32_t j = 0; j < len; ++j) h.push_back(static_cast<std::int32_t>(1 + rng.below(n_items)));
    if (u % 6 == 1) h.push_back(targets.back());           // target in the history
    if (u % 9 == 2 && !h.empty()) h.push_back(h.front());  // a repeat
    histories.push_back(h);
  }
  targets[11] = 17;  // a NaN target through the item
  // The definition: all scores by one GEMM of the same backend, then rank_full / top_k_full per user.
  tensor<float, 2> scores({n_users, n_items + 1});
  kernels<B>::gemm(be, 1.0f, users.view(), transpose(matrix_view<const float>(items.view())), 0.0f, scores.view());
  const negative_sampler sampler(n_items, 1234);
  full_ranking_options opt;
  opt.top_k = k;
  opt.block_users = block_users;
  opt.chunk_items = chunk_items;
  opt.sampler = &sampler;
  opt.negatives = 20;
  opt.stream = 3;
  const full_ranking_result res = rank_full_batched(be, users.view(), items.view(), targets, histories, opt);
  REQUIRE(res.ranks.size() == static_cast<std::size_t>(n_users));
  REQUIRE(res.sampled.size() == static_cast<std::size_t>(n_users));
  index_t tied = 0;
  for (index_t u = 0; u < n_users; ++u) {
    INFO("user " << u);
    const std::span<const float> row(&scores.view()(u, 0), static_cast<std::size_t>(n_items + 1));
    const auto& h = histories[static_cast<std::size_t>(u)];
    const std::int32_t t = targets[static_cast<std::size_t>(u)];
    const target_rank want = rank_full(row, t, h);
    CHECK(res.ranks[static_cast<std::size_t>(u)].greater == want.greater);
    CHECK(res.ranks[static_cast<std::size_t>(u)].ties == want.ties);
    tied += want.ties > 0;
    vec_i32 top(static_cast<std::size_t>(k));
    top_k_full(row, h, top, t);
    const auto got = res.top_of(u);
    CHECK(vec_i32(got.begin(), got.end()) == top);
    vec_i32 exclude = h, neg(20);
    exclude.push_back(t);
    sampler.sample(u, exclude, neg, 3);
    const target_rank ws = rank_sampled(row, t, neg);
    CHECK(res.sampled[static_cast<std::size_t>(u)].greater == ws.greater);
    CHECK(res.sampled[static_cast<std::size_t>(u)].ties == ws.ties);
    // The sampled top-k: the candidates (target + negatives) as a score row with everything else left out.
    std::vector<float> only(row.begin(), row.end());
    vec_i32 others;
    for (std::int32_t i = 1; i <= n_items; ++i)
      if (i != t && std::find(neg.begin(), neg.end(), i) == neg.end()) others.push_back(i);
    vec_i32 stop(static_cast<std::size_t>(k));
    top_k_full(only, others, stop);
    const auto sgot = res.sampled_top_of(u);
    CHECK(vec_i32(sgot.begin(), sgot.end()) == stop);
  }
  if (integer_data) CHECK(tied > n_users / 2);       // the case really exercises ties
  CHECK(res.ranks[5].greater == n_items - 1 - [&] {  // NaN target: every candidate above it
    std::set<std::int32_t> s(histories[5].begin(), histories[5].end());
    s.erase(targets[5]);
    return static_cast<index_t>(s.size());
  }());
}

TEST_CASE(
    "the batched evaluator equals rank_full / top_k_full user by user (scalar and simd, any blocking and threads)",
    "[metrics][batched]") {
  for (const bool integer_data : {true, false}) {
    for (const index_t block : {0, 1, 5, 16, 64})
      for (const index_t chunk : {0, 1, 100}) {  // items per chunk: 0 = one chunk here, 1 → 64, 100 → 128
        INFO("integer data " << integer_data << ", block " << block << ", chunk " << chunk);
        check_batched_against_single(backend::scalar{}, integer_data, block, 10 + block, chunk);
        for (const std::size_t threads : {1, 3}) {
          thread_pool pool(threads);
          simd_be be;
          be.pool = &pool;
          check_batched_against_single(be, integer_data, block, 10 + block, chunk);
        }
      }
  }
}

TEST_CASE("the batched evaluator does not depend on the thread count, the blocking or the chunking", "[metrics][batched]") {
  const index_t n_users = 301, n_items = 997, d = 24;
  tensor<float, 2> users({n_users, d}), items({n_items + 1, d});
  slim::testing::fill_uniform(users, 5);
  slim::testing::fill_uniform(items, 6);
  vec_i32 targets;
  std::vector<vec_i32> histories(static_cast<std::size_t>(n_users));
  philox_stream rng(7);
  for (index_t u = 0; u < n_users; ++u) {
    targets.push_back(static_cast<std::int32_t>(1 + rng.below(n_items)));
    for (int j = 0; j < 30; ++j)
      histories[static_cast<std::size_t>(u)].push_back(static_cast<std::int32_t>(1 + rng.below(n_items)));
  }
  full_ranking_options opt;
  opt.top_k = 20;
  const auto one = rank_full_batched(simd_be{}, users.view(), items.view(), targets, histories, opt);
  for (const std::size_t threads : {2, 4}) {
    thread_pool pool(threads);
    simd_be be;
    be.pool = &pool;
    opt.block_users = 7;
    opt.chunk_items = threads == 2 ? 96 : 1000;
    const auto many = rank_full_batched(be, users.view(), items.view(), targets, histories, opt);
    CHECK(many.top == one.top);
    for (index_t u = 0; u < n_users; ++u) {
      CHECK(many.ranks[static_cast<std::size_t>(u)].greater == one.ranks[static_cast<std::size_t>(u)].greater);
      CHECK(many.ranks[static_cast<std::size_t>(u)].ties == one.ranks[static_cast<std::size_t>(u)].ties);
    }
  }
}

// ---- the negative sampler -------------------------------------------------------------------------------

TEST_CASE("sampled negatives are distinct, in range, never excluded, and a pure function of (seed, user, stream)",
          "[metrics][sampler]") {
  const index_t n = 400;
  std::vector<std::int64_t> counts(static_cast<std::size_t>(n) + 1);
  for (index_t i = 1; i <= n; ++i) counts[static_cast<std::size_t>(i)] = (i * 37) % 11;  // some zeros
  for (const auto dist : {negative_distribution::uniform, negative_distribution::popularity}) {
    const negative_sampler s(n, 2024, dist, counts);
    philox_stream rng(1);
    for (index_t u = 0; u < 200; ++u) {
      vec_i32 exclude;
      const auto len = rng.below(150);
      for (std::uint32_t j = 0; j < len; ++j) exclude.push_back(static_cast<std::int32_t>(1 + rng.below(n)));
      vec_i32 a(100), b(100), c(100);
      s.sample(u, exclude, a);
      s.sample(u, exclude, b);
      s.sample(u, exclude, c, 1);
      CHECK(a == b);
      CHECK(a != c);
      const std::set<std::int32_t> distinct(a.begin(), a.end()), ex(exclude.begin(), exclude.end());
      CHECK(distinct.size() == a.size());
      for (const auto i : a) {
        CHECK(i >= 1);
        CHECK(i <= n);
        CHECK(ex.count(i) == 0);
        if (dist == negative_distribution::popularity) CHECK(counts[static_cast<std::size_t>(i)] > 0);
      }
    }
    // Another sampler with another seed draws other negatives; one with the same seed the same.
    vec_i32 a(50), b(50), c(50);
    s.sample(9, {}, a);
    negative_sampler(n, 2025, dist, counts).sample(9, {}, b);
    negative_sampler(n, 2024, dist, counts).sample(9, {}, c);
    CHECK(a != b);
    CHECK(a == c);
  }
}

TEST_CASE("sampled negatives do not depend on the thread that draws them", "[metrics][sampler]") {
  const index_t n = 3000, users = 600;
  const negative_sampler s(n, 77);
  std::vector<vec_i32> serial(users, vec_i32(100)), parallel(users, vec_i32(100));
  for (index_t u = 0; u < users; ++u)
    s.sample(u, vec_i32{static_cast<std::int32_t>(1 + u % n)}, serial[static_cast<std::size_t>(u)]);
  thread_pool pool(4);
  parallel_for(&pool, users, 7, [&](index_t b, index_t e) {
    for (index_t u = e; u-- > b;)  // backwards within a chunk, in any chunk order
      s.sample(u, vec_i32{static_cast<std::int32_t>(1 + u % n)}, parallel[static_cast<std::size_t>(u)]);
  });
  CHECK(serial == parallel);
}

// Pearson's statistic Σ (c_i − E_i)² / E_i over the items; for one draw per user it is χ² with
// (cells − 1) degrees of freedom. Bounds: the 0.01% and 99.99% quantiles of χ²(df) by Wilson–Hilferty,
// df·(1 − 2/(9df) ± 3.719·√(2/(9df)))³ (3.719 = the standard normal 99.99% quantile).
double chi_square(const std::vector<double>& observed, const std::vector<double>& expected) {
  double x = 0;
  for (std::size_t i = 0; i < observed.size(); ++i)
    x += (observed[i] - expected[i]) * (observed[i] - expected[i]) / expected[i];
  return x;
}
double chi_square_bound(double df, double z) {
  const double a = 2.0 / (9.0 * df);
  return df * std::pow(1 - a + z * std::sqrt(a), 3);
}

TEST_CASE("uniform negatives are uniform over the eligible items (chi-square, fixed seed)", "[metrics][sampler]") {
  // 50 items, 5 excluded: one draw per user is uniform over the 45 others.
  const index_t n = 50, users = 45000;
  const negative_sampler s(n, 31337);
  const vec_i32 exclude{3, 7, 7, 20, 41, 50};
  std::vector<double> count(static_cast<std::size_t>(n) + 1, 0.0);
  vec_i32 one(1);
  for (index_t u = 0; u < users; ++u) {
    s.sample(u, exclude, one);
    count[static_cast<std::size_t>(one[0])] += 1;
  }
  std::vector<double> obs, exp;
  for (index_t i = 1; i <= n; ++i) {
    if (i == 3 || i == 7 || i == 20 || i == 41 || i == 50) {
      CHECK(count[static_cast<std::size_t>(i)] == 0);
      continue;
    }
    obs.push_back(count[static_cast<std::size_t>(i)]);
    exp.push_back(static_cast<double>(users) / 45.0);
  }
  const double x = chi_square(obs, exp);
  INFO("chi2 = " << x);
  CHECK(x < chi_square_bound(44, 3.719));   // ≈ 87.9
  CHECK(x > chi_square_bound(44, -3.719));  // ≈ 17.2: not suspiciously even either
  // Ten distinct draws per user: each eligible item is in a user's set with probability 10/45; the counts
  // of the 45 items over 9000 users then have variance users·p·(1−p) each (the 10 cells a user hits are
  // dependent, so the statistic is scaled by 1/(1−p) and compared with χ²(44) as above).
  std::fill(count.begin(), count.end(), 0.0);
  vec_i32 ten(10);
  const index_t users10 = 9000;
  for (index_t u = 0; u < users10; ++u) {
    s.sample(u, exclude, ten, 5);
    for (const auto i : ten) count[static_cast<std::size_t>(i)] += 1;
  }
  obs.clear();
  exp.clear();
  const double p = 10.0 / 45.0;
  for (index_t i = 1; i <= n; ++i) {
    if (i == 3 || i == 7 || i == 20 || i == 41 || i == 50) continue;
    obs.push_back(count[static_cast<std::size_t>(i)]);
    exp.push_back(static_cast<double>(users10) * p);
  }
  const double x10 = chi_square(obs, exp) / (1 - p);
  INFO("chi2 (10 per user) = " << x10);
  CHECK(x10 < chi_square_bound(44, 3.719));
  CHECK(x10 > chi_square_bound(44, -3.719));
}

TEST_CASE("popularity negatives are proportional to the counts among the eligible items", "[metrics][sampler]") {
  // Items 1..20 with counts 1..20, item 21 with count 0; item 20 excluded: P(i) = i / 190 for i < 20.
  const index_t n = 21, users = 57000;
  std::vector<std::int64_t> counts(static_cast<std::size_t>(n) + 1, 0);
  for (index_t i = 1; i <= 20; ++i) counts[static_cast<std::size_t>(i)] = i;
  const negative_sampler s(n, 4242, negative_distribution::popularity, counts);
  std::vector<double> count(static_cast<std::size_t>(n) + 1, 0.0);
  vec_i32 one(1);
  for (index_t u = 0; u < users; ++u) {
    s.sample(u, vec_i32{20}, one);
    count[static_cast<std::size_t>(one[0])] += 1;
  }
  CHECK(count[20] == 0);
  CHECK(count[21] == 0);
  std::vector<double> obs, exp;
  for (index_t i = 1; i < 20; ++i) {
    obs.push_back(count[static_cast<std::size_t>(i)]);
    exp.push_back(static_cast<double>(users) * static_cast<double>(i) / 190.0);
  }
  const double x = chi_square(obs, exp);
  INFO("chi2 = " << x);
  CHECK(x < chi_square_bound(18, 3.719));   // ≈ 49.2
  CHECK(x > chi_square_bound(18, -3.719));  // ≈ 3.3
}

TEST_CASE("when few items remain the sampler switches to explicit sampling with the same distribution",
          "[metrics][sampler]") {
  // Uniform: 100 items, 90 excluded → 10 eligible; 3 draws per user: each item with probability 3/10.
  {
    const index_t n = 100;
    const negative_sampler s(n, 5);
    vec_i32 exclude;
    for (int i = 11; i <= 100; ++i) exclude.push_back(i);
    std::vector<double> count(11, 0.0);
    vec_i32 three(3);
    const index_t users = 10000;
    for (index_t u = 0; u < users; ++u) {
      s.sample(u, exclude, three);
      const std::set<std::int32_t> d(three.begin(), three.end());
      REQUIRE(d.size() == 3);
      for (const auto i : three) {
        REQUIRE(i >= 1);
        REQUIRE(i <= 10);
        count[static_cast<std::size_t>(i)] += 1;
      }
    }
    std::vector<double> obs(count.begin() + 1, count.end()), exp(10, users * 0.3);
    const double x = chi_square(obs, exp) / (1 - 0.3);
    INFO("chi2 = " << x);
    CHECK(x < chi_square_bound(9, 3.719));
    CHECK(x > chi_square_bound(9, -3.719));
    vec_i32 all(10), too_many(11);
    s.sample(0, exclude, all);
    std::sort(all.begin(), all.end());
    CHECK(all == vec_i32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    CHECK_THROWS_AS(s.sample(0, exclude, too_many), slim::error);
  }
  // Popularity: counts 1..10 (total 55), items 5..10 excluded (mass 45): one draw ∝ 1, 2, 3, 4.
  {
    const index_t n = 10;
    std::vector<std::int64_t> counts(11);
    for (int i = 1; i <= 10; ++i) counts[static_cast<std::size_t>(i)] = i;
    const negative_sampler s(n, 6, negative_distribution::popularity, counts);
    const vec_i32 exclude{5, 6, 7, 8, 9, 10};
    std::vector<double> count(5, 0.0);
    vec_i32 one(1);
    const index_t users = 20000;
    for (index_t u = 0; u < users; ++u) {
      s.sample(u, exclude, one);
      REQUIRE(one[0] >= 1);
      REQUIRE(one[0] <= 4);
      count[static_cast<std::size_t>(one[0])] += 1;
    }
    std::vector<double> obs(count.begin() + 1, count.end()), exp{users * 0.1, users * 0.2, users * 0.3, users * 0.4};
    const double x = chi_square(obs, exp);
    INFO("chi2 = " << x);
    CHECK(x < chi_square_bound(3, 3.719));
    vec_i32 five(5);
    CHECK_THROWS_AS(s.sample(0, exclude, five), slim::error);
  }
  // Errors: bad construction and out-of-range exclusions.
  CHECK_THROWS_AS(negative_sampler(0, 1), slim::error);
  CHECK_THROWS_AS(negative_sampler(5, 1, negative_distribution::popularity, std::vector<std::int64_t>(5, 1)),
                  slim::error);
  CHECK_THROWS_AS(negative_sampler(2, 1, negative_distribution::popularity, std::vector<std::int64_t>{0, 0, 0}),
                  slim::error);
  CHECK_THROWS_AS(negative_sampler(2, 1, negative_distribution::popularity, std::vector<std::int64_t>{0, 1, -1}),
                  slim::error);
  vec_i32 one(1);
  CHECK_THROWS_AS(negative_sampler(5, 1).sample(0, vec_i32{6}, one), slim::error);
}

// ---- popularity bias: hand-computed cases ---------------------------------------------------------------
//
// Six items, four training users: u0 {1, 2}, u1 {1, 3}, u2 {1, 2, 4, 2} (2 repeated: counted once),
// u3 {1}. n = (4, 2, 1, 1, 0, 0) for items 1..6, Σn = 8, |U| = 4.
//   p(i|seen) = n/8 = (1/2, 1/4, 1/8, 1/8, 0, 0) → −log2 = (1, 2, 3, 3, 3*, 3*)   (*: least popular seen item)
//   p(seen|i) = n/4 = (1, 1/2, 1/4, 1/4, 0, 0)  → 1 − p = (0, 1/2, 3/4, 3/4, 1, 1)
// Lists at K = 3: u0 [2, 3, 5] target 3; u1 [1, 2] target 2; u2 [5, 4, 1] target 4; u3 [] target 5.
// disc(1) = 1, disc(2) = 1/log2(3) = d, disc(3) = 1/2.

TEST_CASE("EFD, EPC, ARP, coverage, Gini and long-tail share match hand computation", "[metrics][bias]") {
  const std::vector<vec_i32> train{{1, 2}, {1, 3}, {1, 2, 4, 2}, {1}};
  const item_popularity pop = item_popularity::from_histories(train, 4, 6);
  CHECK(pop.count(1) == 4);
  CHECK(pop.count(2) == 2);
  CHECK(pop.count(6) == 0);
  CHECK(pop.total() == 8);
  const vec_i32 lists{2, 3, 5, /**/ 1, 2, 0, /**/ 5, 4, 1, /**/ 0, 0, 0};
  const vec_i32 targets{3, 2, 4, 5};
  const double d = 1 / std::log2(3.0);
  bias_options opt;
  opt.k = 3;
  const bias_result aware = bias_metrics(lists, 3, targets, pop, opt);
  // Relevance-aware: only the target counts. u0: d·3/(1.5+d); u1: d·2/(1+d); u2: d·3/(1.5+d); u3: 0.
  const double efd_u0 = d * 3 / (1.5 + d), efd_u1 = d * 2 / (1 + d), efd_u2 = d * 3 / (1.5 + d);
  CHECK(std::abs(aware.efd_per_user[0] - efd_u0) < 1e-15);
  CHECK(std::abs(aware.efd_per_user[1] - efd_u1) < 1e-15);
  CHECK(std::abs(aware.efd_per_user[2] - efd_u2) < 1e-15);
  CHECK(aware.efd_per_user[3] == 0.0);
  CHECK(std::abs(aware.efd - (efd_u0 + efd_u1 + efd_u2) / 4) < 1e-15);
  // EPC aware: u0 d·(3/4)/(1.5+d); u1 d·(1/2)/(1+d); u2 d·(3/4)/(1.5+d).
  const double epc_aware = (d * 0.75 / (1.5 + d) + d * 0.5 / (1 + d) + d * 0.75 / (1.5 + d)) / 4;
  CHECK(std::abs(aware.epc - epc_aware) < 1e-15);
  // Relevance-unaware: every listed item counts.
  opt.relevance = novelty_relevance::unaware;
  const bias_result plain = bias_metrics(lists, 3, {}, pop, opt);
  const double efd_plain =
      ((2 + 3 * d + 0.5 * 3) / (1.5 + d) + (1 + 2 * d) / (1 + d) + (3 + 3 * d + 0.5) / (1.5 + d)) / 4;
  const double epc_plain = ((0.5 + 0.75 * d + 0.5) / (1.5 + d) + (0.5 * d) / (1 + d) + (1 + 0.75 * d) / (1.5 + d)) / 4;
  CHECK(std::abs(plain.efd - efd_plain) < 1e-15);
  CHECK(std::abs(plain.epc - epc_plain) < 1e-15);
  // ARP: u0 (2+1+0)/3 = 1, u1 (4+2)/2 = 3, u2 (0+1+4)/3 = 5/3; u3 left out → 17/9.
  CHECK(std::abs(plain.arp - 17.0 / 9.0) < 1e-15);
  CHECK(std::isnan(plain.arp_per_user[3]));
  // Coverage: items 1..5 recommended, 6 never → 5/6.
  CHECK(std::abs(plain.coverage - 5.0 / 6.0) < 1e-15);
  // Gini: recommendation counts (2, 2, 1, 1, 2, 0) sorted (0, 1, 1, 2, 2, 2), Σ = 8:
  // Σ (2j − 7)·c_(j) = −3 − 1 + 2 + 6 + 10 = 14 → 14 / (5·8) = 0.35.
  CHECK(std::abs(plain.gini - 0.35) < 1e-15);
  // Long tail, head share 20%: counts by decreasing n (4, 2, 1, 1, 0, 0); 4 ≥ 1.6 → head {1}.
  // u0 [2,3,5] 3/3, u1 [1,2] 1/2, u2 [5,4,1] 2/3 → (1 + 1/2 + 2/3)/3 = 13/18.
  CHECK(plain.head_items == 1);
  CHECK(std::abs(plain.long_tail - 13.0 / 18.0) < 1e-15);
  // Head share 60%: 4 + 2 = 6 ≥ 4.8 → head {1, 2}: u0 2/3, u1 0, u2 2/3 → 4/9.
  opt.head_share = 0.6;
  const bias_result head60 = bias_metrics(lists, 3, {}, pop, opt);
  CHECK(head60.head_items == 2);
  CHECK(std::abs(head60.long_tail - 4.0 / 9.0) < 1e-15);
  // Head share 80%: 4 + 2 + 1 = 7 ≥ 6.4 at count 1, and item 4 (also count 1) joins: head {1,2,3,4}.
  // u0 [2,3,5] 1/3, u1 0, u2 [5,4,1] 1/3 → 2/9.
  opt.head_share = 0.8;
  const bias_result head80 = bias_metrics(lists, 3, {}, pop, opt);
  CHECK(head80.head_items == 4);
  CHECK(std::abs(head80.long_tail - 2.0 / 9.0) < 1e-15);
  // K = 2 cuts every list: u0 [2,3], u1 [1,2], u2 [5,4]. Coverage {1,...,5} = 5/6; counts (1,2,1,1,1,0)
  // sorted (0,1,1,1,1,2), Σ = 6: −5·0 −3 −1 +1 +3 +5·2 = 10 → 10/(5·6) = 1/3.
  opt.k = 2;
  opt.head_share = 0.2;
  const bias_result cut = bias_metrics(lists, 3, {}, pop, opt);
  CHECK(std::abs(cut.gini - 1.0 / 3.0) < 1e-15);
  CHECK(std::abs(cut.arp - ((2 + 1) / 2.0 + (4 + 2) / 2.0 + (0 + 1) / 2.0) / 3) < 1e-15);
  // Errors: a repeated item, an out-of-range id, missing targets for the relevance-aware variant.
  CHECK_THROWS_AS(bias_metrics(vec_i32{2, 2, 1}, 3, {}, pop, opt), slim::error);
  CHECK_THROWS_AS(bias_metrics(vec_i32{7, 2, 1}, 3, {}, pop, opt), slim::error);
  opt.relevance = novelty_relevance::aware;
  CHECK_THROWS_AS(bias_metrics(lists, 3, {}, pop, opt), slim::error);
  CHECK_THROWS_AS(item_popularity(std::vector<std::int64_t>{0, 5}, 4), slim::error);
}

TEST_CASE("bias metrics do not change when the items are relabelled", "[metrics][bias][relabel]") {
  const index_t n = 40, users = 60, k = 10;
  std::vector<vec_i32> train(users);
  philox_stream rng(8);
  for (auto& h : train)
    for (int j = 0; j < 8; ++j) h.push_back(static_cast<std::int32_t>(1 + rng.below(1 + rng.below(n))));  // skewed
  vec_i32 lists, targets;
  for (index_t u = 0; u < users; ++u) {
    vec_i32 all(n);
    std::iota(all.begin(), all.end(), 1);
    for (index_t i = n - 1; i > 0; --i)
      std::swap(all[static_cast<std::size_t>(i)], all[rng.below(static_cast<std::uint32_t>(i + 1))]);
    lists.insert(lists.end(), all.begin(), all.begin() + k);
    targets.push_back(all[rng.below(15)]);
  }
  vec_i32 pi(static_cast<std::size_t>(n) + 1);
  std::iota(pi.begin(), pi.end(), 0);
  for (index_t i = n; i > 1; --i)
    std::swap(pi[static_cast<std::size_t>(i)], pi[1 + rng.below(static_cast<std::uint32_t>(i))]);
  auto relabel = [&](vec_i32 v) {
    for (auto& i : v) i = pi[static_cast<std::size_t>(i)];
    return v;
  };
  std::vector<vec_i32> train2;
  for (const auto& h : train) train2.push_back(relabel(h));
  const auto pop = item_popularity::from_histories(train, users, n);
  const auto pop2 = item_popularity::from_histories(train2, users, n);
  for (const auto rel : {novelty_relevance::aware, novelty_relevance::unaware}) {
    bias_options opt;
    opt.k = k;
    opt.relevance = rel;
    const auto a = bias_metrics(lists, k, targets, pop, opt);
    const auto b = bias_metrics(relabel(lists), k, relabel(targets), pop2, opt);
    CHECK(a.efd_per_user == b.efd_per_user);
    CHECK(a.epc_per_user == b.epc_per_user);
    CHECK(a.arp == b.arp);
    CHECK(a.coverage == b.coverage);
    CHECK(a.gini == b.gini);
    CHECK(a.long_tail == b.long_tail);
    CHECK(a.head_items == b.head_items);
    CHECK(a.efd > 0);
  }
}

// ---- statistics -----------------------------------------------------------------------------------------

TEST_CASE("mean ± sample std, paired t with closed-form p-values, and sparsity groups", "[metrics][statistics]") {
  // Values 2, 4, 4, 4, 5, 5, 7, 9: mean 5, Σ(x−5)² = 32 → sample std √(32/7).
  const std::vector<double> v{2, 4, 4, 4, 5, 5, 7, 9};
  const summary s = summarize(v);
  CHECK(s.mean == 5.0);
  CHECK(std::abs(s.std - std::sqrt(32.0 / 7.0)) < 1e-15);
  CHECK(std::isnan(summarize(std::vector<double>{1.0}).std));
  // Paired: a − b = (1, 2, 3) → mean 2, std 1, t = 2/(1/√3) = 2√3, df 2: p = 1 − t/√(2 + t²) = 1 − 2√3/√14.
  const std::vector<double> a{3, 5, 9}, b{2, 3, 6};
  const paired_difference p = compare_paired(a, b);
  CHECK(p.mean == 2.0);
  CHECK(std::abs(p.std - 1.0) < 1e-15);
  CHECK(std::abs(p.t - 2 * std::sqrt(3.0)) < 1e-14);
  CHECK(std::abs(p.p - (1 - 2 * std::sqrt(3.0) / std::sqrt(14.0))) < 1e-12);
  // df = 1 is the Cauchy distribution: P(|T| ≥ t) = 1 − 2·atan(t)/π.
  for (const double t : {0.3, 1.0, 2.5, 40.0})
    CHECK(std::abs(student_t_two_sided_p(t, 1) - (1 - 2 * std::atan(t) / M_PI)) < 1e-12);
  // df = 4: F(t) = 1/2 + (3/8)·u·(1 − u²/12) with u = t/√(1 + t²/4); with x = t²/(4 + t²) the two-sided
  // P = 1 − 2(F − 1/2) = 1 − √x·(1 + (1 − x)/2).
  for (const double t : {0.5, 2.0, 6.0}) {
    const double x = t * t / (4 + t * t);
    CHECK(std::abs(student_t_two_sided_p(t, 4) - (1 - std::sqrt(x) * (1 + (1 - x) / 2))) < 1e-12);
  }
  const paired_difference same = compare_paired(a, a);
  CHECK(same.t == 0.0);
  CHECK(same.p == 1.0);
  CHECK_THROWS_AS(compare_paired(a, std::vector<double>{1, 2}), slim::error);
  // Groups: lengths with ties; equal lengths ordered by user index.
  //   user:    0  1  2  3  4  5  6  7  8  9  10
  //   length:  5  3  3  9  1  3  7  2  8  3  4
  // sorted (length, user): 4(1) 7(2) 1(3) 2(3) 5(3) 9(3) 10(4) 0(5) 6(7) 8(8) 3(9); n = 11, 5 groups at
  // positions [0,2) [2,4) [4,6) [6,8) [8,11).
  const std::vector<index_t> len{5, 3, 3, 9, 1, 3, 7, 2, 8, 3, 4};
  const sparsity_groups g = make_sparsity_groups(len);
  CHECK(g.group_of == std::vector<int>{3, 1, 1, 4, 0, 2, 4, 0, 4, 2, 3});
  CHECK(g.size == std::vector<index_t>{2, 2, 2, 2, 3});
  CHECK(g.min_length == std::vector<index_t>{1, 3, 3, 4, 7});
  CHECK(g.max_length == std::vector<index_t>{2, 3, 3, 5, 9});
  evaluation e;
  e.names = {"x"};
  e.values = {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}};
  const auto means = group_means(e, g);
  CHECK(means[0][0] == (4 + 7) / 2.0);
  CHECK(means[2][0] == (5 + 9) / 2.0);
  CHECK(means[4][0] == (3 + 6 + 8) / 3.0);
  CHECK_THROWS_AS(make_sparsity_groups(std::vector<index_t>{1, 2, 3}), slim::error);
}

}  // namespace
