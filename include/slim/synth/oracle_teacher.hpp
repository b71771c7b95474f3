// slim — the oracle of the synthetic world: writes SLIM's three-step rationale for a user from the latent
// taste in effect at the end of the user's training prefix, never from anything after it. The Teacher that
// answers with it is distill::oracle_teacher (slim/distill/oracle_teacher.hpp).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"
#include "slim/rec/dataset.hpp"
#include "slim/synth/world.hpp"

namespace slim::synth {

/// Where the taste the oracle states comes from.
enum class taste_source {
  latent,   ///< the world's latent taste in effect at the end of the training prefix (privileged knowledge)
  history,  ///< counted from the last `window` training items alone: what a reader of the history could know
};

/// How the oracle writes.
struct oracle_config {
  /// Probability that each fact (number of categories, each category, number of brands, each brand, the
  /// price tier) is stated truthfully; otherwise it is drawn at random independently of the truth (so it can
  /// still coincide with it by chance). At 0 the stated taste is a fresh draw from the taste prior: the
  /// rationale carries no information about the user's taste.
  double reveal = 1.0;
  index_t n_items = 5;     ///< items named in step 3
  std::uint64_t seed = 0;  ///< seeds the reveal draws (per user)
  /// `latent` (default): the oracle knows the taste. `history`: a control teacher that knows only what the
  /// training prefix shows — see oracle::counted_taste — so its value to a recommender estimates what a student
  /// reading the same history could add by summarising it (the latent source is the ceiling).
  taste_source source = taste_source::latent;
  index_t window = 10;  ///< history source: the most recent training items counted (>= 1)
};

/// Writes the oracle rationale of each user of a world, given the split whose training prefixes it may see.
/// It copies the training prefixes and never reads the split's valid / test items. The world must outlive it.
class oracle {
 public:
  /// Throws slim::error when the split does not match the world (user count, item count, a training prefix
  /// that is not a prefix of the user's sequence) or the config is out of range.
  oracle(const world& w, const rec::sequence_split& split, oracle_config config = {})
      : world_(&w), config_(config), train_(split.train) {
    const char* where = "slim::synth::oracle";
    require(config.reveal >= 0 && config.reveal <= 1, where, "reveal must lie in [0, 1], got ", config.reveal);
    require(config.n_items >= 0, where, "n_items must be >= 0, got ", config.n_items);
    require(config.window >= 1, where, "window must be >= 1, got ", config.window);
    require(split.num_users() == w.data.num_users(), where, "the split has ", split.num_users(), " users, the world ",
            w.data.num_users());
    require(split.num_items == w.data.num_items, where, "the split has ", split.num_items, " items, the world ",
            w.data.num_items);
    for (std::size_t u = 0; u < train_.size(); ++u) {
      const auto& seq = w.data.sequences[u];
      require(train_[u].size() <= seq.size() && std::equal(train_[u].begin(), train_[u].end(), seq.begin()), where,
              "user ", u, ": the split's training sequence is not a prefix of the world's sequence");
    }
  }

  index_t num_users() const noexcept { return static_cast<index_t>(train_.size()); }
  const oracle_config& config() const noexcept { return config_; }
  const world& source() const noexcept { return *world_; }

  /// The true taste in effect at the user's last training item: tastes_after when the drift position lies
  /// inside the training prefix, else tastes_before.
  const user_taste& seen_taste(index_t user) const {
    check(user);
    const auto u = static_cast<std::size_t>(user);
    const index_t d = world_->drift_at[u];
    return d >= 0 && d < static_cast<index_t>(train_[u].size()) ? world_->tastes_after[u] : world_->tastes_before[u];
  }

  /// The taste a reader of the last `window` training items would name, without the latent truth: the most
  /// frequent category, and the second most frequent too when it occurs at least twice and at least half as
  /// often as the first; brands by the same rule; the most frequent price tier. Ties go to the smaller index
  /// (so an empty training prefix, possible when min_length < 3, names the first category, brand and tier).
  user_taste counted_taste(index_t user) const {
    check(user);
    const world& w = *world_;
    const auto& prefix = train_[static_cast<std::size_t>(user)];
    std::vector<index_t> categories(static_cast<std::size_t>(w.config.num_categories), 0),
        brands(w.brand_names.size(), 0), tiers(static_cast<std::size_t>(w.config.price_tiers), 0);
    const std::size_t from = prefix.size() - std::min(prefix.size(), static_cast<std::size_t>(config_.window));
    for (std::size_t t = from; t < prefix.size(); ++t) {
      const item_facts& f = w.items[static_cast<std::size_t>(prefix[t])];
      ++categories[static_cast<std::size_t>(f.category)];
      ++brands[static_cast<std::size_t>(f.brand)];
      ++tiers[static_cast<std::size_t>(f.price_tier)];
    }
    // the indices of the largest and second-largest counts (ties: smaller index first)
    auto top_two = [](const std::vector<index_t>& counts) {
      std::vector<index_t> order(counts.size());
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<index_t>(i);
      std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) {
        return counts[static_cast<std::size_t>(a)] > counts[static_cast<std::size_t>(b)];
      });
      std::vector<index_t> out{order[0]};
      if (order.size() > 1) {
        const index_t first = counts[static_cast<std::size_t>(order[0])];
        const index_t second = counts[static_cast<std::size_t>(order[1])];
        if (second >= 2 && 2 * second >= first) out.push_back(order[1]);
      }
      std::sort(out.begin(), out.end());
      return out;
    };
    user_taste t;
    t.categories = top_two(categories);
    t.brands = top_two(brands);
    t.price_tier = static_cast<index_t>(std::max_element(tiers.begin(), tiers.end()) - tiers.begin());
    return t;
  }

  /// The taste the rationale states: the source's taste (seen_taste or counted_taste) with each fact kept
  /// with probability `reveal`, else redrawn.
  user_taste stated_taste(index_t user) const {
    const user_taste truth = config_.source == taste_source::history ? counted_taste(user) : seen_taste(user);
    const world& w = *world_;
    auto rng = detail::stream(config_.seed, detail::purpose::oracle, static_cast<std::uint64_t>(user));
    auto keep = [&] { return rng.uniform() < config_.reveal; };
    auto range = [](index_t n) {
      std::vector<index_t> v(static_cast<std::size_t>(n));
      for (index_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
      return v;
    };
    // draws `count` values: slot j keeps truth[j] (when it exists and is not stated yet) with probability
    // reveal, else takes a random value of `choices` not stated yet
    auto facts = [&](const std::vector<index_t>& true_values, std::vector<index_t> choices, index_t max_count) {
      index_t count = static_cast<index_t>(true_values.size());
      if (!keep()) count = 1 + static_cast<index_t>(rng.below(2));
      count = std::min(count, max_count);
      std::vector<index_t> out;
      for (index_t j = 0; j < count; ++j) {
        const bool truthful = keep();
        auto stated = [&](index_t v) { return std::find(out.begin(), out.end(), v) != out.end(); };
        if (truthful && j < static_cast<index_t>(true_values.size()) &&
            !stated(true_values[static_cast<std::size_t>(j)])) {
          out.push_back(true_values[static_cast<std::size_t>(j)]);
          continue;
        }
        std::vector<index_t> free;
        for (const index_t v : choices)
          if (!stated(v)) free.push_back(v);
        if (free.empty()) break;
        out.push_back(free[rng.below(static_cast<std::uint32_t>(free.size()))]);
      }
      std::sort(out.begin(), out.end());
      return out;
    };
    user_taste s;
    s.categories =
        facts(truth.categories, range(w.config.num_categories), std::min<index_t>(2, w.config.num_categories));
    std::vector<index_t> sellers;  // brands selling in the stated categories (all brands when none do)
    for (index_t b = 0; b < static_cast<index_t>(w.brand_names.size()); ++b)
      for (const index_t c : w.brand_categories[static_cast<std::size_t>(b)])
        if (std::find(s.categories.begin(), s.categories.end(), c) != s.categories.end()) {
          sellers.push_back(b);
          break;
        }
    if (sellers.empty()) sellers = range(static_cast<index_t>(w.brand_names.size()));
    s.brands = facts(truth.brands, std::move(sellers), 2);
    s.price_tier =
        keep() ? truth.price_tier : static_cast<index_t>(rng.below(static_cast<std::uint32_t>(w.config.price_tiers)));
    return s;
  }

  /// The items step 3 names: `n_items` items of the stated taste's pool drawn by weight without replacement, that are
  /// not in the training prefix. Fewer when the pool runs out.
  std::vector<rec::item_id> named_items(index_t user) const { return pick_items(user, stated_taste(user)); }

  /// The rationale: "Step 1: <preferences>\nStep 2: <categories and brands>\nStep 3:\n1. <title>\n...".
  std::string rationale(index_t user) const {
    const user_taste s = stated_taste(user);
    const world& w = *world_;
    auto join = [](const std::vector<index_t>& v, const std::vector<std::string>& names, const char* last) {
      std::string out;
      for (std::size_t j = 0; j < v.size(); ++j) {
        if (j > 0) out += j + 1 == v.size() ? last : ", ";
        out += names[static_cast<std::size_t>(v[j])];
      }
      return out;
    };
    std::string r = "Step 1: The user's history centres on ";
    r += join(s.categories, w.category_names, " and ");
    r += ", mostly at the ";
    r += w.tier_names[static_cast<std::size_t>(s.price_tier)];
    r += " price tier, with a liking for ";
    r += join(s.brands, w.brand_names, " and ");
    r += ".\nStep 2: Recommended categories: ";
    r += join(s.categories, w.category_names, ", ");
    r += ". Recommended brands: ";
    r += join(s.brands, w.brand_names, ", ");
    r += ".\nStep 3:";
    const std::vector<rec::item_id> items = pick_items(user, s);
    for (std::size_t j = 0; j < items.size(); ++j)
      r += slim::detail::concat('\n', j + 1, ". ", w.data.items[static_cast<std::size_t>(items[j])].title);
    return r;
  }

 private:
  void check(index_t user) const {
    if (user < 0 || user >= num_users())
      throw error("slim::synth::oracle", slim::detail::concat("user ", user),
                  slim::detail::concat("no such user (rows run 0..", num_users() - 1, ")"));
  }

  /// A weighted draw without replacement (Efraimidis-Spirakis: the k largest u^(1/w), compared as log(u)/w) from
  /// the pool, keyed by (seed, user): which items are named is random given the taste, so a line the leakage
  /// scrub drops does not point at the held-out item the way a gap in a deterministic ranking would.
  std::vector<rec::item_id> pick_items(index_t user, const user_taste& s) const {
    const world& w = *world_;
    const auto& prefix = train_[static_cast<std::size_t>(user)];
    auto rng = detail::stream(config_.seed, detail::purpose::oracle_items, static_cast<std::uint64_t>(user));
    std::vector<std::pair<double, rec::item_id>> pool;
    for (const index_t c : s.categories)
      for (const rec::item_id i : w.category_items[static_cast<std::size_t>(c)])
        if (std::find(prefix.begin(), prefix.end(), i) == prefix.end()) {
          const double weight = taste_weight(w, s, i);
          const double u = (static_cast<double>(rng.next_u32()) + 0.5) / 4294967296.0;
          pool.emplace_back(weight > 0 ? std::log(u) / weight : -std::numeric_limits<double>::infinity(), i);
        }
    const std::size_t k = std::min(pool.size(), static_cast<std::size_t>(config_.n_items));
    std::partial_sort(
        pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(k), pool.end(),
        [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
    std::vector<rec::item_id> out;
    for (std::size_t j = 0; j < k; ++j) out.push_back(pool[j].second);
    return out;
  }

  const world* world_;
  oracle_config config_;
  std::vector<std::vector<rec::item_id>> train_;  // the training prefixes, the only part of the split kept
};

}  // namespace slim::synth
