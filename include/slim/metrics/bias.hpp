// slim — popularity-bias metrics of top-K recommendation lists: EFD@K and EPC@K (Vargas & Castells,
// "Rank and relevance in novelty and diversity metrics for recommender systems", RecSys 2011) with a
// logarithmic rank discount, average recommended popularity, catalogue coverage, the Gini index of
// recommendation counts and the long-tail share. The formulas are pinned in docs/metrics.md.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"

namespace slim::metrics {

/// Training popularity of the items: n_i = the number of training users whose history holds item i (a
/// user who repeats an item counts once, as in Vargas & Castells' |{u : i ∈ I_u}|), over num_users users.
class item_popularity {
 public:
  /// counts: (num_items+1) with counts[0] ignored; 0 <= counts[i] <= num_users; at least one positive.
  item_popularity(std::span<const std::int64_t> counts, index_t num_users) : num_users_{num_users} {
    constexpr const char* where = "slim::metrics::item_popularity";
    require(counts.size() >= 2, where, "counts need num_items+1 >= 2 entries (index 0 is padding)");
    require(num_users >= 1, where, "num_users must be positive, got ", num_users);
    counts_.assign(counts.begin(), counts.end());
    counts_[0] = 0;
    for (std::size_t i = 1; i < counts_.size(); ++i) {
      if (counts_[i] < 0 || counts_[i] > num_users)
        throw error(
            where, "counts[" + std::to_string(i) + "]",
            "count " + std::to_string(counts_[i]) + " outside [0, num_users = " + std::to_string(num_users) + "]");
      total_ += counts_[i];
    }
    require(total_ > 0, where, "every item count is 0");
    std::int64_t least = std::numeric_limits<std::int64_t>::max();
    for (std::size_t i = 1; i < counts_.size(); ++i)
      if (counts_[i] > 0) least = std::min(least, counts_[i]);
    max_free_discovery_ = -std::log2(static_cast<double>(least) / static_cast<double>(total_));
  }

  /// n_i from training histories: histories[u] (or histories(u)) is user u's training sequence; ids
  /// outside [1, num_items] throw.
  template <class Histories>
  static item_popularity from_histories(const Histories& histories, index_t num_users, index_t num_items) {
    constexpr const char* where = "slim::metrics::item_popularity::from_histories";
    require(num_items >= 1, where, "num_items must be positive");
    std::vector<std::int64_t> counts(static_cast<std::size_t>(num_items) + 1, 0);
    std::vector<index_t> last(static_cast<std::size_t>(num_items) + 1, -1);  // last user counted per item
    for (index_t u = 0; u < num_users; ++u) {
      std::span<const std::int32_t> h;
      if constexpr (std::is_invocable_v<const Histories&, index_t>)
        h = histories(u);
      else
        h = histories[static_cast<std::size_t>(u)];
      for (std::size_t j = 0; j < h.size(); ++j) {
        const std::int32_t i = h[j];
        if (i < 1 || i > num_items)
          throw error(where, "histories[" + std::to_string(u) + "][" + std::to_string(j) + "]",
                      "item id " + std::to_string(i) + " outside [1, " + std::to_string(num_items) + "]");
        if (last[static_cast<std::size_t>(i)] != u) {
          last[static_cast<std::size_t>(i)] = u;
          ++counts[static_cast<std::size_t>(i)];
        }
      }
    }
    return item_popularity(counts, num_users);
  }

  index_t num_items() const noexcept { return static_cast<index_t>(counts_.size()) - 1; }
  index_t num_users() const noexcept { return num_users_; }
  /// n_i.
  std::int64_t count(std::int32_t i) const noexcept { return counts_[static_cast<std::size_t>(i)]; }
  /// Σ_j n_j.
  std::int64_t total() const noexcept { return total_; }
  /// p(seen | i) = n_i / |U|.
  double p_seen(std::int32_t i) const noexcept {
    return static_cast<double>(count(i)) / static_cast<double>(num_users_);
  }
  /// p(i | seen) = n_i / Σ_j n_j.
  double p_item_given_seen(std::int32_t i) const noexcept {
    return static_cast<double>(count(i)) / static_cast<double>(total_);
  }
  /// EFD's item novelty −log2 p(i | seen); an item never seen in training gets the novelty of the least
  /// popular seen item (the log would be infinite).
  double free_discovery(std::int32_t i) const noexcept {
    return count(i) > 0 ? -std::log2(p_item_given_seen(i)) : max_free_discovery_;
  }
  /// EPC's item novelty 1 − p(seen | i).
  double popularity_complement(std::int32_t i) const noexcept { return 1.0 - p_seen(i); }

  /// The short head: every item with n_i >= c*, where c* is the count of the item at which the items,
  /// taken by decreasing n_i, first hold at least `share` of Σ n_j. Items tied with c* are all in the head,
  /// so the head depends on the counts only, never on item ids. `head[i]` for i in [0, num_items].
  std::vector<char> head(double share = 0.2) const {
    require(share > 0 && share <= 1, "slim::metrics::item_popularity::head", "share must lie in (0, 1], got ", share);
    std::vector<std::int64_t> sorted(counts_.begin() + 1, counts_.end());
    std::sort(sorted.begin(), sorted.end(), std::greater<>{});
    const double need = share * static_cast<double>(total_);
    std::int64_t cumulative = 0, threshold = sorted.front();
    for (const std::int64_t c : sorted) {
      cumulative += c;
      threshold = c;
      if (static_cast<double>(cumulative) >= need) break;
    }
    std::vector<char> h(counts_.size(), 0);
    for (std::size_t i = 1; i < counts_.size(); ++i) h[i] = counts_[i] >= threshold && counts_[i] > 0;
    return h;
  }

 private:
  index_t num_users_;
  std::int64_t total_ = 0;
  double max_free_discovery_ = 0;
  std::vector<std::int64_t> counts_;
};

/// Whether EFD / EPC weigh each recommended item by its relevance. `aware`: p(rel | i, u) = 1 for the
/// user's held-out target and 0 otherwise (the metrics of Vargas & Castells with binary relevance: novelty
/// that the user also finds relevant). `unaware`: p(rel | i, u) = 1 for every item (the novelty of the list
/// alone).
enum class novelty_relevance { aware, unaware };

/// Options of bias_metrics.
struct bias_options {
  index_t k = 10;                                          ///< cut-off K
  novelty_relevance relevance = novelty_relevance::aware;  ///< EFD / EPC relevance weighting
  double head_share = 0.2;                                 ///< share of interactions the short head holds
};

/// Popularity-bias metrics of a set of top-K lists: means over users, and per-user values.
struct bias_result {
  index_t k = 0;
  index_t users = 0;
  double efd = 0;        ///< EFD@K, mean over all users
  double epc = 0;        ///< EPC@K, mean over all users
  double arp = 0;        ///< average recommended popularity (mean n_i), over users with a non-empty list
  double coverage = 0;   ///< share of the catalogue recommended to at least one user
  double gini = 0;       ///< Gini index of per-item recommendation counts over the whole catalogue
  double long_tail = 0;  ///< share of recommended items outside the short head, over users with a non-empty list
  index_t head_items = 0;
  std::vector<double> efd_per_user, epc_per_user, arp_per_user, long_tail_per_user;  ///< (users); NaN: empty list
};

/// Rank discount of the 1-based rank k: 1 / log2(k + 1).
inline double rank_discount(index_t k) noexcept { return 1.0 / std::log2(static_cast<double>(k) + 1.0); }

/// Popularity-bias metrics of recommendation lists. `lists` is (users, list_length) row-major: user u's
/// list, best first, ends at its first 0 (padding) or at list_length, and only its first options.k entries
/// count; ids must lie in [1, num_items] and be distinct within a list. `targets` (users) is needed for
/// relevance-aware EFD / EPC (the held-out item of each user), and may be empty otherwise. With R_u the
/// user's list cut at K, disc(k) = 1/log2(k+1) and rel(u, i) as in novelty_relevance:
///   EFD_u = Σ_k disc(k)·rel(u,i_k)·(−log2 p(i_k|seen)) / Σ_k disc(k),   p(i|seen) = n_i / Σ_j n_j
///   EPC_u = Σ_k disc(k)·rel(u,i_k)·(1 − p(seen|i_k)) / Σ_k disc(k),     p(seen|i) = n_i / |U|
///   ARP_u = Σ_{i∈R_u} n_i / |R_u|,   LT_u = |R_u \ head| / |R_u|
///   coverage = |∪_u R_u| / num_items
///   Gini = Σ_{j=1}^{N} (2j − N − 1)·c_(j) / ((N − 1)·Σ_j c_j), c_(1) <= ... <= c_(N) the per-item counts of
///          lists holding the item (N = num_items, items never recommended included); 0 when nothing is
///          recommended or N = 1.
/// An empty list gives EFD_u = EPC_u = 0 and is left out of the ARP and long-tail means.
inline bias_result bias_metrics(std::span<const std::int32_t> lists, index_t list_length,
                                std::span<const std::int32_t> targets, const item_popularity& pop,
                                bias_options options = {}) {
  constexpr const char* where = "slim::metrics::bias_metrics";
  require(options.k >= 1, where, "k must be positive, got ", options.k);
  require(list_length >= 1, where, "list_length must be positive, got ", list_length);
  require(lists.size() % static_cast<std::size_t>(list_length) == 0, where, "lists has ", lists.size(),
          " entries, not a multiple of list_length ", list_length);
  const auto users = static_cast<index_t>(lists.size()) / list_length;
  const bool aware = options.relevance == novelty_relevance::aware;
  require(!aware || static_cast<index_t>(targets.size()) == users, where,
          "relevance-aware EFD/EPC need one target per user: ", targets.size(), " targets for ", users, " users");
  const index_t n = pop.num_items();
  const std::vector<char> head = pop.head(options.head_share);
  const index_t cut = std::min(options.k, list_length);

  bias_result r;
  r.k = options.k;
  r.users = users;
  for (index_t i = 1; i <= n; ++i) r.head_items += head[static_cast<std::size_t>(i)];
  r.efd_per_user.assign(static_cast<std::size_t>(users), 0.0);
  r.epc_per_user.assign(static_cast<std::size_t>(users), 0.0);
  r.arp_per_user.assign(static_cast<std::size_t>(users), std::numeric_limits<double>::quiet_NaN());
  r.long_tail_per_user.assign(static_cast<std::size_t>(users), std::numeric_limits<double>::quiet_NaN());
  std::vector<std::int64_t> rec_count(static_cast<std::size_t>(n) + 1, 0);
  double arp_sum = 0, lt_sum = 0, efd_sum = 0, epc_sum = 0;
  index_t nonempty = 0;
  for (index_t u = 0; u < users; ++u) {
    const std::int32_t* list = lists.data() + u * list_length;
    index_t len = 0;
    while (len < cut && list[len] != 0) ++len;
    for (index_t a = 0; a < len; ++a) {
      const std::int32_t i = list[a];
      if (i < 1 || i > n)
        throw error(where, "lists[" + std::to_string(u) + "][" + std::to_string(a) + "]",
                    "item id " + std::to_string(i) + " outside [1, " + std::to_string(n) + "]");
      for (index_t b = 0; b < a; ++b)
        if (list[b] == i)
          throw error(where, "lists[" + std::to_string(u) + "][" + std::to_string(a) + "]",
                      "item " + std::to_string(i) + " appears twice in the list");
    }
    if (len == 0) continue;
    double efd = 0, epc = 0, norm = 0, pop_sum = 0;
    index_t tail = 0;
    for (index_t a = 0; a < len; ++a) {
      const std::int32_t i = list[a];
      const double disc = rank_discount(a + 1);
      const double rel = aware ? (i == targets[static_cast<std::size_t>(u)] ? 1.0 : 0.0) : 1.0;
      efd += disc * rel * pop.free_discovery(i);
      epc += disc * rel * pop.popularity_complement(i);
      norm += disc;
      pop_sum += static_cast<double>(pop.count(i));
      tail += head[static_cast<std::size_t>(i)] ? 0 : 1;
      ++rec_count[static_cast<std::size_t>(i)];
    }
    const auto us = static_cast<std::size_t>(u);
    r.efd_per_user[us] = efd / norm;
    r.epc_per_user[us] = epc / norm;
    r.arp_per_user[us] = pop_sum / static_cast<double>(len);
    r.long_tail_per_user[us] = static_cast<double>(tail) / static_cast<double>(len);
    efd_sum += r.efd_per_user[us];
    epc_sum += r.epc_per_user[us];
    arp_sum += r.arp_per_user[us];
    lt_sum += r.long_tail_per_user[us];
    ++nonempty;
  }
  if (users > 0) {
    r.efd = efd_sum / static_cast<double>(users);
    r.epc = epc_sum / static_cast<double>(users);
  }
  if (nonempty > 0) {
    r.arp = arp_sum / static_cast<double>(nonempty);
    r.long_tail = lt_sum / static_cast<double>(nonempty);
  }
  index_t covered = 0;
  std::int64_t slots = 0;
  for (index_t i = 1; i <= n; ++i) {
    covered += rec_count[static_cast<std::size_t>(i)] > 0;
    slots += rec_count[static_cast<std::size_t>(i)];
  }
  r.coverage = static_cast<double>(covered) / static_cast<double>(n);
  if (slots > 0 && n > 1) {
    std::vector<std::int64_t> c(rec_count.begin() + 1, rec_count.end());
    std::sort(c.begin(), c.end());
    double g = 0;
    for (index_t j = 1; j <= n; ++j)
      g += static_cast<double>(2 * j - n - 1) * static_cast<double>(c[static_cast<std::size_t>(j - 1)]);
    r.gini = g / (static_cast<double>(n - 1) * static_cast<double>(slots));
  }
  return r;
}

}  // namespace slim::metrics
