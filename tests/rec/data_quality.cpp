// Label `data`: SASRec and GRU4Rec on the real MovieLens-1M (SASRec's file in ../shared/data/ml-1m), a short
// smoke run each (a few epochs on each user's most recent items, a raised learning rate), checking that the
// test NDCG@10 clears floors measured on this machine class with margin, and that each beats the
// item-popularity ranker evaluated on the same users and negatives by a clear margin. About 30 s of CPU on
// 2 threads. Exits 77 (skipped) without the data or without AVX2+FMA.
//
// Measured (simd<fma3<avx2>>, seed 42, 2 threads, g++ 12 -O2): SASRec test sampled-100 NDCG@10 0.380, full
// 0.044; GRU4Rec 0.457, full 0.083; popularity 0.242 (sampled-100). Random scoring would give ≈ 0.045.
#include "support/arch_guard.hpp"
static const bool slim_cpu_ok = slim::testing::require_cpu("avx2", "fma");

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "slim/backend/simd.hpp"
#include "slim/metrics/full_ranking.hpp"
#include "slim/rec/load.hpp"
#include "slim/rec/trainer.hpp"
#include "support/check.hpp"

#ifndef SLIM_REC_DEFAULT_DATA_DIR
#define SLIM_REC_DEFAULT_DATA_DIR ""
#endif

namespace slim::testing::rec_data {

// Floors: the measured values above less a margin for rounding differences between compilers and flags.
constexpr double sasrec_floor = 0.33, sasrec_full_floor = 0.030;
constexpr double gru4rec_floor = 0.40, gru4rec_full_floor = 0.060;
constexpr double over_popularity = 0.08;

using arch = xsimd::fma3<xsimd::avx2>;
using be_t = backend::simd<arch>;

/// ml-1m/ml-1m_sasrec_format.txt under $SLIM_DATA_DIR (default: ../shared/data beside the checkout), or exit 77.
inline std::string ml1m_file() {
  std::string dir = SLIM_REC_DEFAULT_DATA_DIR;
  if (const char* env = std::getenv("SLIM_DATA_DIR"); env && *env) dir = env;
  const std::filesystem::path f = std::filesystem::path(dir) / "ml-1m" / "ml-1m_sasrec_format.txt";
  std::error_code ec;
  if (dir.empty() || !std::filesystem::is_regular_file(f, ec)) {
    std::fprintf(stderr, "no %s (set SLIM_DATA_DIR): skipping (exit 77)\n", f.string().c_str());
    std::_Exit(skip_return_code);
  }
  return f.string();
}

inline const rec::sequence_split& ml1m() {
  static const rec::sequence_split split = rec::load_dataset(ml1m_file(), rec::data_format::sasrec).make_split();
  return split;
}

/// Test metrics of the popularity ranker (training counts) on the same users and the same sampled negatives.
inline metrics::evaluation popularity_baseline(const rec::sequence_split& split, const rec::evaluation_options& opt) {
  std::vector<std::vector<rec::item_id>> histories;
  std::vector<std::int32_t> targets;
  std::vector<index_t> users;
  for (index_t u = 0; u < split.num_users(); ++u) {
    if (split.test[static_cast<std::size_t>(u)] == 0) continue;
    users.push_back(u);
    histories.push_back(rec::history(split, u, rec::split_stage::test));
    targets.push_back(split.test[static_cast<std::size_t>(u)]);
  }
  const auto counts = rec::item_popularity(split);
  tensor<float, 2> items({split.num_items + 1, 1}), user_vectors({static_cast<index_t>(users.size()), 1});
  for (index_t i = 0; i <= split.num_items; ++i) items(i, 0) = static_cast<float>(counts[static_cast<std::size_t>(i)]);
  for (auto& x : user_vectors) x = 1.0f;
  const metrics::negative_sampler sampler(split.num_items, opt.sampler_seed);
  metrics::full_ranking_options fo;
  fo.sampler = &sampler;
  fo.negatives = opt.negatives;
  fo.stream = 1;  // the test stage's stream, as rec::evaluate draws it
  fo.user_ids = users;
  const auto r =
      metrics::rank_full_batched(backend::scalar{}, user_vectors.view(), items.view(), targets, histories, fo);
  return metrics::evaluate(r.sampled, opt.metrics, opt.ties);
}

}  // namespace slim::testing::rec_data

using namespace slim;
using namespace slim::testing;
using namespace slim::testing::rec_data;

TEST_CASE("ML-1M smoke: SASRec (BCE, 4 epochs, last 50 items) beats popularity and clears its floor", "[data][rec]") {
  const auto& split = ml1m();
  REQUIRE(split.num_users() == 6040);
  REQUIRE(split.num_items == 3416);
  thread_pool pool(2);
  be_t be{};
  be.pool = &pool;
  auto p = rec::sasrec_ml1m();
  p.model.max_len = 50;
  p.train.epochs = 4;
  p.train.eval_every = 0;
  p.train.adam.lr = 5e-3f;
  rec::sasrec<be_t> model(p.model, split.num_items, 42);
  const auto r = rec::fit(be, model, split, p.train);
  const auto pop = popularity_baseline(split, p.train.eval);
  const double ndcg = r.test.sampled.mean("ndcg@10"), full = r.test.full.mean("ndcg@10");
  std::printf(
      "SASRec smoke: %.1f s/epoch, loss %.4f -> %.4f, test sampled100 ndcg@10 %.4f hr@10 %.4f, full ndcg@10 %.4f;"
      " popularity sampled100 ndcg@10 %.4f\n",
      r.train_seconds / static_cast<double>(r.epochs_run), r.epoch_loss.front(), r.epoch_loss.back(), ndcg,
      r.test.sampled.mean("hr@10"), full, pop.mean("ndcg@10"));
  CHECK(r.epoch_loss.back() < r.epoch_loss.front());
  CHECK(ndcg > sasrec_floor);
  CHECK(full > sasrec_full_floor);
  CHECK(ndcg > pop.mean("ndcg@10") + over_popularity);
}

TEST_CASE("ML-1M smoke: GRU4Rec (CE, 2 epochs, last 20 items) beats popularity and clears its floor", "[data][rec]") {
  const auto& split = ml1m();
  thread_pool pool(2);
  be_t be{};
  be.pool = &pool;
  auto p = rec::gru4rec_recbole();
  p.model.max_len = 20;
  p.train.epochs = 2;
  p.train.eval_every = 0;
  p.train.adam.lr = 3e-3f;
  rec::gru4rec<be_t> model(p.model, split.num_items, 42);
  const auto r = rec::fit(be, model, split, p.train);
  const auto pop = popularity_baseline(split, p.train.eval);
  const double ndcg = r.test.sampled.mean("ndcg@10"), full = r.test.full.mean("ndcg@10");
  std::printf(
      "GRU4Rec smoke: %.1f s/epoch, loss %.4f -> %.4f, test sampled100 ndcg@10 %.4f hr@10 %.4f, full ndcg@10 %.4f;"
      " popularity sampled100 ndcg@10 %.4f\n",
      r.train_seconds / static_cast<double>(r.epochs_run), r.epoch_loss.front(), r.epoch_loss.back(), ndcg,
      r.test.sampled.mean("hr@10"), full, pop.mean("ndcg@10"));
  CHECK(r.epoch_loss.back() < r.epoch_loss.front());
  CHECK(ndcg > gru4rec_floor);
  CHECK(full > gru4rec_full_floor);
  CHECK(ndcg > pop.mean("ndcg@10") + over_popularity);
}
