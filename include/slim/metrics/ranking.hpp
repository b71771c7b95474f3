// slim — where the held-out item lands in a user's ranking, and the per-user ranking metrics computed
// from that place under an explicit tie policy. Everything else in `metrics` (sampled negatives, full
// ranking, aggregation, bias metrics) is built on `target_rank`.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>
#include <cstdint>
#include <span>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"

namespace slim::metrics {

/// How a target is placed among candidates with exactly its score.
///  - pessimistic (default): after all of them — a constant scorer earns nothing;
///  - average: the expectation over a uniformly random order of the tied group.
enum class tie_policy { pessimistic, average };

/// The target's place among the candidates it competes with: `greater` candidates score strictly
/// higher, `ties` other candidates score exactly the same. A NaN target score counts every candidate
/// as greater; NaN candidate scores count as lower than any number.
struct target_rank {
  index_t greater = 0;
  index_t ties = 0;
};

/// Places the target score `t` among `candidates` (the target itself must not be among them).
inline target_rank rank_among(float t, std::span<const float> candidates) noexcept {
  target_rank r;
  if (std::isnan(t)) {
    r.greater = static_cast<index_t>(candidates.size());
    return r;
  }
  for (const float s : candidates) {
    r.greater += s > t;
    r.ties += s == t;
  }
  return r;
}

namespace detail {
/// Σ_{p=first}^{last} f(p) / (last - first + 1) for the 0-based positions of a tied group that fall below k.
template <class F>
double expected_over_group(target_rank r, index_t k, tie_policy policy, F&& f) {
  if (policy == tie_policy::pessimistic) {
    const index_t p = r.greater + r.ties;
    return p < k ? f(p) : 0.0;
  }
  double sum = 0;
  const index_t last = r.greater + r.ties;
  for (index_t p = r.greater; p <= last && p < k; ++p) sum += f(p);
  return sum / static_cast<double>(r.ties + 1);
}
}  // namespace detail

/// HR@K (= Recall@K with one held-out item): 1 if the target is among the top k.
inline double hit_at(target_rank r, index_t k, tie_policy policy = tie_policy::pessimistic) {
  require(k > 0, "slim::metrics::hit_at", "k must be positive, got ", k);
  return detail::expected_over_group(r, k, policy, [](index_t) { return 1.0; });
}

/// NDCG@K with one relevant item: 1/log2(p + 2) at 0-based position p < k, else 0 (the ideal DCG is 1).
inline double ndcg_at(target_rank r, index_t k, tie_policy policy = tie_policy::pessimistic) {
  require(k > 0, "slim::metrics::ndcg_at", "k must be positive, got ", k);
  return detail::expected_over_group(r, k, policy, [](index_t p) { return 1.0 / std::log2(static_cast<double>(p) + 2.0); });
}

/// MRR@K: 1/(p + 1) at 0-based position p < k, else 0.
inline double mrr_at(target_rank r, index_t k, tie_policy policy = tie_policy::pessimistic) {
  require(k > 0, "slim::metrics::mrr_at", "k must be positive, got ", k);
  return detail::expected_over_group(r, k, policy, [](index_t p) { return 1.0 / (static_cast<double>(p) + 1.0); });
}

}  // namespace slim::metrics
