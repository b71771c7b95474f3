// Full-ranking evaluation at ML-1M size: 6,040 users × 3,416 items, d = 50, random embeddings and histories
// (lengths 20..319, mean ≈ 170, as ML-1M's ≈ 165), every user's target ranked among all items minus the
// history, top-20 lists and mean NDCG@10 — slim's rank_full_batched at 1 and 2 threads. items/s counts
// users/s. The peer is PyTorch doing the same computation (U @ E.T, history masked with -inf, topk 20,
// NDCG@10 of the target): tools/bench/torch_full_ranking.py measures it and, given this binary, runs both
// side by side and prints the ratio.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "bench_common.hpp"
#include "slim/backend/scalar.hpp"
#include "slim/metrics/full_ranking.hpp"
#include "slim/metrics/metric.hpp"

namespace {

using slim::index_t;

struct ml1m_like {
  static constexpr index_t users = 6040, items = 3416, d = 50;
  slim::tensor<float, 2> u{{users, d}}, e{{items + 1, d}};
  std::vector<std::int32_t> targets;
  std::vector<std::vector<std::int32_t>> histories;
  ml1m_like() {
    slim::bench::fill(u, 11);
    slim::bench::fill(e, 12);
    slim::philox_stream rng(13);
    histories.resize(users);
    for (index_t i = 0; i < users; ++i) {
      targets.push_back(static_cast<std::int32_t>(1 + rng.below(items)));
      const auto len = 20 + rng.below(300);
      auto& h = histories[static_cast<std::size_t>(i)];
      for (std::uint32_t j = 0; j < len; ++j) h.push_back(static_cast<std::int32_t>(1 + rng.below(items)));
    }
  }
};

const ml1m_like& data() {
  static const ml1m_like d;
  return d;
}

template <class Backend>
void bm_full_ranking(benchmark::State& state) {
  const auto& d = data();
  const auto be = slim::bench::make_backend<Backend>(static_cast<std::size_t>(state.range(0)));
  slim::metrics::full_ranking_options opt;
  opt.top_k = 20;
  double ndcg = 0;
  for (auto _ : state) {
    const auto r = slim::metrics::rank_full_batched(be, d.u.view(), d.e.view(), d.targets, d.histories, opt);
    ndcg = slim::metrics::evaluate<slim::metrics::ndcg<10>>(r.ranks).mean(0);
    benchmark::DoNotOptimize(r.top.data());
  }
  state.SetItemsProcessed(state.iterations() * ml1m_like::users);
  state.counters["ndcg@10"] = ndcg;
  state.counters["threads"] = static_cast<double>(state.range(0));
}

#if defined(SLIM_BENCH_AVX512)
BENCHMARK_TEMPLATE(bm_full_ranking, slim::bench::avx512)
    ->Name("full_ranking_ml1m/avx512")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
#endif
#if defined(SLIM_BENCH_AVX2)
BENCHMARK_TEMPLATE(bm_full_ranking, slim::bench::avx2)
    ->Name("full_ranking_ml1m/avx2")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
#endif

}  // namespace
