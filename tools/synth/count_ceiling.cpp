// How much of the oracle's taste a history of titles gives away: for every user of the default synthetic world,
// count the categories, brands and price tiers of the training prefix (from the drift on, when the drift lies
// inside it) and compare the most frequent ones (as many as the oracle names) with the taste the oracle
// describes. The estimator is told how many to name and where the drift is, which the student is not: an upper
// reference for docs/RESULTS.md ("Where the gain is lost"), not a fair competitor.
//
//   g++ -std=c++20 -O2 -I include tools/synth/count_ceiling.cpp -o /tmp/count_ceiling && /tmp/count_ceiling [SEED]
// SPDX-License-Identifier: Apache-2.0
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <map>
#include <vector>

#include "slim/rec/split.hpp"
#include "slim/synth/world.hpp"

namespace {

using slim::index_t;

std::vector<index_t> most_frequent(const std::map<index_t, int>& counts, std::size_t k) {
  std::vector<std::pair<int, index_t>> v;
  for (const auto& [key, n] : counts) v.emplace_back(-n, key);  // ties: the smaller index first
  std::sort(v.begin(), v.end());
  std::vector<index_t> top;
  for (std::size_t i = 0; i < k && i < v.size(); ++i) top.push_back(v[i].second);
  std::sort(top.begin(), top.end());
  return top;
}

double jaccard(const std::vector<index_t>& a, const std::vector<index_t>& b) {  // both sorted
  std::vector<index_t> both, either;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
  std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(either));
  return either.empty() ? 1.0 : static_cast<double>(both.size()) / static_cast<double>(either.size());
}

}  // namespace

int main(int argc, char** argv) {
  slim::synth::world_config cfg;
  if (argc > 1) cfg.seed = std::strtoull(argv[1], nullptr, 10);
  const slim::synth::world w = slim::synth::make_world(cfg);
  const slim::rec::sequence_split split = slim::rec::leave_one_out(w.data);
  double categories_equal = 0, categories_jaccard = 0, tier_equal = 0, brands_jaccard = 0;
  const index_t n = split.num_users();
  for (index_t u = 0; u < n; ++u) {
    const auto& prefix = split.train[static_cast<std::size_t>(u)];
    const auto len = static_cast<index_t>(prefix.size());
    const index_t drift = w.drift_at[static_cast<std::size_t>(u)];
    const bool drifted = drift >= 0 && drift < len;  // the taste the oracle describes (its seen_taste)
    const slim::synth::user_taste& truth =
        drifted ? w.tastes_after[static_cast<std::size_t>(u)] : w.tastes_before[static_cast<std::size_t>(u)];
    std::map<index_t, int> categories, brands, tiers;
    for (index_t t = drifted ? drift : 0; t < len; ++t) {
      const auto& f = w.items[static_cast<std::size_t>(prefix[static_cast<std::size_t>(t)])];
      ++categories[f.category];
      ++brands[f.brand];
      ++tiers[f.price_tier];
    }
    const auto c = most_frequent(categories, truth.categories.size());
    categories_equal += c == truth.categories;
    categories_jaccard += jaccard(c, truth.categories);
    brands_jaccard += jaccard(most_frequent(brands, truth.brands.size()), truth.brands);
    tier_equal += most_frequent(tiers, 1).front() == truth.price_tier;
  }
  std::printf("world seed %llu, %lld users: categories equal %.1f%% (Jaccard %.3f), tier equal %.1f%%, "
              "brands Jaccard %.3f\n",
              static_cast<unsigned long long>(cfg.seed), static_cast<long long>(n), 100 * categories_equal / n,
              categories_jaccard / n, 100 * tier_equal / n, brands_jaccard / n);
}
