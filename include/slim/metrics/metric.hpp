// slim — ranking metrics as types (`ndcg<10>` is "ndcg@10"), their runtime form parsed from a name, and the
// per-user evaluation table that aggregates them (per-user values kept for paired statistics).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"
#include "slim/metrics/ranking.hpp"

namespace slim::metrics {

/// A per-user ranking metric: a static name and a value computed from the target's place.
template <class M>
concept RankingMetric = requires(const M m, target_rank r, tie_policy p) {
  { M::name } -> std::convertible_to<std::string_view>;
  { M::k } -> std::convertible_to<index_t>;
  { m(r, p) } -> std::convertible_to<double>;
};

namespace detail {
/// "prefix@K" as a fixed character array, built at compile time.
template <std::size_t P, index_t K>
struct metric_name {
  static_assert(K > 0, "slim::metrics: a metric's K must be positive");
  static constexpr std::size_t digits = [] {
    std::size_t d = 0;
    for (index_t v = K; v > 0; v /= 10) ++d;
    return d;
  }();
  std::array<char, P + digits + 1> text{};  // P counts the '@'
  constexpr explicit metric_name(const char (&prefix)[P]) {
    for (std::size_t i = 0; i + 1 < P; ++i) text[i] = prefix[i];
    text[P - 1] = '@';
    index_t v = K;
    for (std::size_t i = 0; i < digits; ++i, v /= 10) text[P - 1 + digits - i] = static_cast<char>('0' + v % 10);
  }
  constexpr std::string_view view() const { return {text.data(), text.size() - 1}; }
};
template <index_t K>
inline constexpr metric_name<5, K> ndcg_name{"ndcg"};
template <index_t K>
inline constexpr metric_name<3, K> hr_name{"hr"};
template <index_t K>
inline constexpr metric_name<4, K> mrr_name{"mrr"};
template <index_t K>
inline constexpr metric_name<7, K> recall_name{"recall"};
}  // namespace detail

/// NDCG@K with one held-out item: 1/log2(p+2) at 0-based position p < K (ndcg_at).
template <index_t K>
struct ndcg {
  static constexpr index_t k = K;
  static constexpr std::string_view name = detail::ndcg_name<K>.view();
  double operator()(target_rank r, tie_policy p = tie_policy::pessimistic) const { return ndcg_at(r, K, p); }
};

/// HR@K (hit ratio): 1 when the target is among the top K (hit_at). Named "hr@K".
template <index_t K>
struct hit {
  static constexpr index_t k = K;
  static constexpr std::string_view name = detail::hr_name<K>.view();
  double operator()(target_rank r, tie_policy p = tie_policy::pessimistic) const { return hit_at(r, K, p); }
};

/// MRR@K: 1/(p+1) at 0-based position p < K (mrr_at).
template <index_t K>
struct mrr {
  static constexpr index_t k = K;
  static constexpr std::string_view name = detail::mrr_name<K>.view();
  double operator()(target_rank r, tie_policy p = tie_policy::pessimistic) const { return mrr_at(r, K, p); }
};

/// Recall@K = |relevant ∩ top K| / |relevant|; with the one held-out item of leave-one-out it equals HR@K.
template <index_t K>
struct recall {
  static constexpr index_t k = K;
  static constexpr std::string_view name = detail::recall_name<K>.view();
  double operator()(target_rank r, tie_policy p = tie_policy::pessimistic) const { return hit_at(r, K, p); }
};

/// The metric families.
enum class metric_kind { ndcg, hit, mrr, recall };

/// A metric chosen at run time ("ndcg@10", "hr@20", ...), for command lines and configuration files.
struct metric {
  metric_kind kind = metric_kind::ndcg;
  index_t k = 10;

  /// "ndcg@K", "hr@K", "mrr@K" or "recall@K".
  std::string name() const {
    const char* p = kind == metric_kind::ndcg  ? "ndcg"
                    : kind == metric_kind::hit ? "hr"
                    : kind == metric_kind::mrr ? "mrr"
                                               : "recall";
    return std::string(p) + "@" + std::to_string(k);
  }
  double operator()(target_rank r, tie_policy p = tie_policy::pessimistic) const {
    switch (kind) {
      case metric_kind::ndcg:
        return ndcg_at(r, k, p);
      case metric_kind::mrr:
        return mrr_at(r, k, p);
      case metric_kind::hit:
      case metric_kind::recall:
        return hit_at(r, k, p);
    }
    return 0;
  }

  /// The runtime form of a metric type: metric::of<ndcg<10>>().
  template <class M>
  static constexpr metric of() {
    metric m;
    m.k = M::k;
    if constexpr (std::same_as<M, ndcg<M::k>>)
      m.kind = metric_kind::ndcg;
    else if constexpr (std::same_as<M, hit<M::k>>)
      m.kind = metric_kind::hit;
    else if constexpr (std::same_as<M, mrr<M::k>>)
      m.kind = metric_kind::mrr;
    else if constexpr (std::same_as<M, recall<M::k>>)
      m.kind = metric_kind::recall;
    else
      static_assert(always_false<M>, "slim::metrics::metric::of: not one of ndcg, hit, mrr, recall");
    return m;
  }

  /// Parses "name@K": name is ndcg, hr (or hit), mrr or recall, case-insensitive; K a positive integer
  /// below 10^9. Anything else throws slim::error naming the text.
  static metric parse(std::string_view text) {
    constexpr const char* where = "slim::metrics::metric::parse";
    const auto at = text.find('@');
    const auto fail = [&](const char* why) { throw error(where, "\"" + std::string(text) + "\"", why); };
    if (at == std::string_view::npos) fail("expected name@K, e.g. ndcg@10");
    std::string name;
    for (const char c : text.substr(0, at)) name += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    metric m;
    if (name == "ndcg")
      m.kind = metric_kind::ndcg;
    else if (name == "hr" || name == "hit")
      m.kind = metric_kind::hit;
    else if (name == "mrr")
      m.kind = metric_kind::mrr;
    else if (name == "recall")
      m.kind = metric_kind::recall;
    else
      fail("unknown metric (known: ndcg, hr, hit, mrr, recall)");
    const std::string_view digits = text.substr(at + 1);
    if (digits.empty() || digits.size() > 9) fail("K must be a positive integer below 10^9");
    index_t k = 0;
    for (const char c : digits) {
      if (c < '0' || c > '9') fail("K must be a positive integer below 10^9");
      k = k * 10 + (c - '0');
    }
    if (k == 0) fail("K must be positive");
    m.k = k;
    return m;
  }
};

/// Parses a comma-separated list such as "ndcg@10,hr@10,hr@20" (spaces around names allowed).
inline std::vector<metric> parse_metrics(std::string_view list) {
  std::vector<metric> out;
  std::size_t start = 0;
  for (;;) {
    const auto comma = list.find(',', start);
    std::string_view item =
        list.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    out.push_back(metric::parse(item));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

/// Per-user metric values and their means. values[m][u] is metric m for user u, in the order of `ranks`
/// handed to evaluate(), so two evaluations over the same users pair up for paired statistics.
struct evaluation {
  std::vector<std::string> names;           ///< (metrics)
  std::vector<std::vector<double>> values;  ///< (metrics, users)

  index_t num_users() const noexcept { return values.empty() ? 0 : static_cast<index_t>(values.front().size()); }

  /// The index of metric `name` ("ndcg@10"); throws slim::error if absent.
  std::size_t index_of(std::string_view name) const {
    for (std::size_t m = 0; m < names.size(); ++m)
      if (names[m] == name) return m;
    throw error("slim::metrics::evaluation", std::string(name), "no such metric in this evaluation");
  }
  /// The per-user values of metric `name`.
  std::span<const double> per_user(std::string_view name) const { return values[index_of(name)]; }
  /// Mean over users (summed in user order); NaN for an evaluation without users.
  double mean(std::string_view name) const { return mean_of(values[index_of(name)]); }
  double mean(std::size_t m) const { return mean_of(values.at(m)); }

 private:
  static double mean_of(const std::vector<double>& v) {
    if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
    double s = 0;
    for (const double x : v) s += x;
    return s / static_cast<double>(v.size());
  }
};

/// Every metric of `metrics` for every user's target_rank under `policy`.
inline evaluation evaluate(std::span<const target_rank> ranks, std::span<const metric> metrics,
                           tie_policy policy = tie_policy::pessimistic) {
  evaluation e;
  for (const metric& m : metrics) {
    e.names.push_back(m.name());
    auto& v = e.values.emplace_back();
    v.reserve(ranks.size());
    for (const target_rank& r : ranks) v.push_back(m(r, policy));
  }
  return e;
}

/// evaluate() with the metrics given as types: evaluate<ndcg<10>, hit<10>>(ranks).
template <RankingMetric... M>
evaluation evaluate(std::span<const target_rank> ranks, tie_policy policy = tie_policy::pessimistic) {
  evaluation e;
  (
      [&] {
        e.names.emplace_back(M::name);
        auto& v = e.values.emplace_back();
        v.reserve(ranks.size());
        const M m{};
        for (const target_rank& r : ranks) v.push_back(m(r, policy));
      }(),
      ...);
  return e;
}

}  // namespace slim::metrics
