// slim — evaluation of a sequential recommender on a leave-one-out split: the model encodes each user's
// history, and the metrics layer ranks the held-out item under full ranking (history excluded) and under
// the sampled protocol (target + N negatives drawn per user from a seeded sampler) on the same scores.
// Also the `Recommender` concept the trainer and the pipeline rely on.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "slim/core/tensor.hpp"
#include "slim/metrics/full_ranking.hpp"
#include "slim/metrics/metric.hpp"
#include "slim/metrics/sampling.hpp"
#include "slim/nn/context.hpp"
#include "slim/rec/dataset.hpp"
#include "slim/rec/split.hpp"

namespace slim::rec {

/// A sequential backbone the trainer can train and evaluate (sasrec, gru4rec):
///  - train_batch(be, ctx, split, users, epoch): forward + backward over those users' training positions,
///    gradients added to the parameters', returns the mean loss;
///  - encode(be, histories, users, out): one vector per history (evaluation mode);
///  - item_table(be): the (num_items+1, dim) item representations scored against those vectors;
///  - visit_parameters(f), dim(), num_items(), and a static `name`.
template <class M>
concept Recommender = requires(M& m, const typename M::backend_type& be, const nn::step_context& ctx,
                               const sequence_split& split, std::span<const index_t> users,
                               std::span<const std::vector<item_id>> histories,
                               matrix_view<typename M::value_type> out) {
  typename M::backend_type;
  typename M::value_type;
  { M::name } -> std::convertible_to<std::string_view>;
  { m.train_batch(be, ctx, split, users, std::uint64_t{}) } -> std::convertible_to<double>;
  m.encode(be, histories, users, out);
  { m.item_table(be) } -> std::convertible_to<matrix_view<const typename M::value_type>>;
  { m.dim() } -> std::convertible_to<index_t>;
  { m.num_items() } -> std::convertible_to<index_t>;
};

/// How to evaluate.
struct evaluation_options {
  index_t negatives = 100;            ///< sampled protocol: negatives per user (0: no sampled evaluation)
  bool full = true;                   ///< full ranking over every item
  std::uint64_t sampler_seed = 2018;  ///< the negatives' seed: the same for every model compared
  metrics::negative_distribution distribution = metrics::negative_distribution::uniform;
  std::vector<metrics::metric> metrics = metrics::parse_metrics("ndcg@10,hr@10,hr@20,mrr@10");
  metrics::tie_policy ties = metrics::tie_policy::pessimistic;
  index_t top_k = 0;  ///< also keep each user's top-k list (bias metrics)
};

/// The result of one evaluation. `users` are the rows of the split evaluated (those with a target and a
/// non-empty history); per-user values in `sampled` / `full` follow that order.
struct evaluation_report {
  std::vector<index_t> users;
  metrics::evaluation sampled;  ///< empty names when options.negatives == 0
  metrics::evaluation full;     ///< empty names when !options.full
  metrics::full_ranking_result ranks;
  double seconds = 0;
};

/// Evaluates `model` at `stage`: valid (input train, target valid) or test (input train + valid, target
/// test). The sampled negatives of user u exclude u's input history and target and depend on
/// (options.sampler_seed, u, stage) only.
template <Recommender Model>
evaluation_report evaluate(const typename Model::backend_type& be, Model& model, const sequence_split& split,
                           split_stage stage, const evaluation_options& options = {}) {
  using T = typename Model::value_type;
  const auto t0 = std::chrono::steady_clock::now();
  evaluation_report rep;
  std::vector<std::vector<item_id>> histories;
  std::vector<std::int32_t> targets;
  for (index_t u = 0; u < split.num_users(); ++u) {
    const item_id target = stage == split_stage::valid ? split.valid[static_cast<std::size_t>(u)]
                                                       : split.test[static_cast<std::size_t>(u)];
    if (target == 0) continue;
    auto h = history(split, u, stage);
    if (h.empty()) continue;
    rep.users.push_back(u);
    histories.push_back(std::move(h));
    targets.push_back(target);
  }
  const index_t n = static_cast<index_t>(rep.users.size()), d = model.dim();
  tensor<T, 2> vectors({n, d});
  if (n > 0) model.encode(be, histories, rep.users, vectors.view());
  const auto table = model.item_table(be);
  // the metrics layer ranks float scores
  tensor<float, 2> users_f({n, d}), items_f({table.extent(0), d});
  for (index_t i = 0; i < n * d; ++i) users_f.data()[i] = static_cast<float>(vectors.data()[i]);
  for (index_t r = 0; r < table.extent(0); ++r)
    for (index_t c = 0; c < d; ++c) items_f(r, c) = static_cast<float>(table(r, c));

  std::optional<metrics::negative_sampler> sampler;
  if (options.negatives > 0) {
    std::vector<std::int64_t> counts;
    if (options.distribution == metrics::negative_distribution::popularity) counts = item_popularity(split);
    sampler.emplace(split.num_items, options.sampler_seed, options.distribution, counts);
  }
  metrics::full_ranking_options fo;
  fo.top_k = options.top_k;
  fo.sampler = sampler ? &*sampler : nullptr;
  fo.negatives = options.negatives;
  fo.stream = stage == split_stage::valid ? 0 : 1;
  fo.user_ids = rep.users;
  rep.ranks = metrics::rank_full_batched(be, matrix_view<const float>(users_f.view()),
                                         matrix_view<const float>(items_f.view()), targets, histories, fo);
  if (options.full) rep.full = metrics::evaluate(rep.ranks.ranks, options.metrics, options.ties);
  if (sampler) rep.sampled = metrics::evaluate(rep.ranks.sampled, options.metrics, options.ties);
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace slim::rec
