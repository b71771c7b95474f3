// slim — the embedded default world: a seeded catalogue of games (categories, brands, price tiers, readable
// titles), users with latent tastes that may drift once, and their chronological sequences, so the whole
// pipeline runs offline on data whose signal is known.
// SPDX-License-Identifier: Apache-2.0
//
// Generative story (every draw is keyed by (seed, purpose, index) through Philox, so a value never depends
// on the order of generation or on threads):
//   * each brand sells in 2-3 categories (every category gets at least one brand);
//   * each category holds `items_per_category` items: brand drawn among the category's brands, price tier
//     uniform, title "<Brand> <Adjective> <Noun>[ <Suffix>]" where the noun comes from a vocabulary of the
//     category (Racer / Rally / Speedway ... for racing games), so a title names the brand but only hints at
//     the category and says nothing of the price; item ids are a seeded permutation of the catalogue;
//   * item popularity is Zipf: the item of popularity rank r (a seeded permutation) weighs 1 / r^skew;
//   * a user's taste is 1-2 categories, 1-2 brands among those selling in them, and one price tier; with
//     probability `drift` it is replaced once, by a taste with other categories, at a uniform position;
//   * each interaction comes with probability `taste_focus` from the taste pool — items of the taste's
//     categories, weighted popularity x brand_boost (taste brand) x tier_boost (taste tier) — else from global
//     popularity; an item never repeats inside a sequence.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"
#include "slim/core/philox.hpp"
#include "slim/rec/dataset.hpp"

namespace slim::synth {

/// The world's parameters. Aggregate: `world_config{.seed = 7, .num_users = 200}`.
struct world_config {
  std::uint64_t seed = 1;
  index_t num_users = 1000;
  index_t num_categories = 8;       ///< 1..12
  index_t num_brands = 12;          ///< 1..20; each sells in 2-3 categories
  index_t items_per_category = 60;  ///< 1..192; the catalogue holds num_categories x items_per_category items
  index_t price_tiers = 3;          ///< 1..5 (3: budget / mid-range / premium)
  index_t min_length = 8;           ///< sequence length, uniform in [min_length, max_length]
  index_t max_length = 24;
  double popularity_skew = 1.0;  ///< Zipf exponent of item popularity (0: uniform)
  double taste_focus = 0.75;     ///< probability an interaction comes from the current taste pool
  double drift = 0.3;            ///< probability a user's taste changes once
  double brand_boost = 8.0;      ///< taste-pool weight factor of the taste's brands
  double tier_boost = 4.0;       ///< taste-pool weight factor of the taste's price tier

  /// A small world for tests: 60 users, 4 categories, 6 brands, 20 items per category.
  static constexpr world_config tiny(std::uint64_t seed = 1) {
    return world_config{.seed = seed,
                        .num_users = 60,
                        .num_categories = 4,
                        .num_brands = 6,
                        .items_per_category = 20,
                        .min_length = 6,
                        .max_length = 14};
  }
};

/// The latent facts of one item.
struct item_facts {
  index_t category = 0;
  index_t brand = 0;
  index_t price_tier = 0;
  double popularity = 0;  ///< Zipf probability (the catalogue's values sum to 1)
};

/// A user's latent taste. `categories` and `brands` are sorted ascending.
struct user_taste {
  std::vector<index_t> categories;  ///< 1-2
  std::vector<index_t> brands;      ///< 1-2, among the brands selling in `categories`
  index_t price_tier = 0;

  friend bool operator==(const user_taste&, const user_taste&) = default;
};

/// A generated world: the dataset plus the latent truth behind it.
struct world {
  world_config config;
  rec::dataset data;  ///< name "synth"; items[i].title / .text; user_keys "u<row>", item_keys "i<id>"
  std::vector<std::string> category_names, brand_names, tier_names;
  std::vector<item_facts> items;                          ///< indexed by item id (index 0 unused)
  std::vector<std::vector<rec::item_id>> category_items;  ///< the items of each category, ascending ids
  std::vector<std::vector<index_t>> brand_categories;     ///< the categories each brand sells in, ascending
  std::vector<user_taste> tastes_before, tastes_after;    ///< per user; equal when the user does not drift
  std::vector<index_t> drift_at;  ///< per user: position of the first item under tastes_after (-1: none)

  /// The taste in effect at position `t` of user `u`'s sequence.
  const user_taste& taste_at(index_t u, index_t t) const {
    const auto k = static_cast<std::size_t>(u);
    return drift_at[k] >= 0 && t >= drift_at[k] ? tastes_after[k] : tastes_before[k];
  }
};

namespace detail {

struct category_vocab {
  std::string_view name;
  std::array<std::string_view, 6> nouns;
};

inline constexpr std::array<category_vocab, 12> categories = {{
    {"racing games", {"Racer", "Rally", "Speedway", "Circuit", "Motors", "Pitstop"}},
    {"puzzle games", {"Puzzle", "Riddle", "Maze", "Enigma", "Blocks", "Logic"}},
    {"role-playing games", {"Quest", "Saga", "Chronicles", "Legend", "Odyssey", "Realms"}},
    {"strategy games", {"Empire", "Conquest", "Tactics", "Dominion", "Siege", "Commander"}},
    {"sports games", {"Striker", "Slam", "Champions", "Stadium", "Goal", "Tournament"}},
    {"shooter games", {"Strike", "Warfare", "Sniper", "Assault", "Gunner", "Firefight"}},
    {"platform games", {"Jumper", "Leap", "Bounce", "Dash", "Hopper", "Climber"}},
    {"simulation games", {"Tycoon", "Farm", "Builder", "Manager", "Pilot", "Sim"}},
    {"horror games", {"Nightmare", "Haunting", "Dread", "Asylum", "Crypt", "Phantoms"}},
    {"rhythm games", {"Beat", "Rhythm", "Groove", "Melody", "Tempo", "Encore"}},
    {"fighting games", {"Brawl", "Fighter", "Duel", "Combat", "Knockout", "Showdown"}},
    {"adventure games", {"Expedition", "Voyage", "Explorer", "Journey", "Trail", "Treasure"}},
}};

inline constexpr std::array<std::string_view, 20> brands = {
    "Nova",   "Apex",   "Zenith", "Orbit",  "Pixel",  "Titan", "Ember", "Vortex", "Lumen",  "Quasar",
    "Cobalt", "Falcon", "Harbor", "Mosaic", "Nimbus", "Onyx",  "Prism", "Sable",  "Tundra", "Vega"};

inline constexpr std::array<std::string_view, 32> adjectives = {
    "Crimson", "Silent",  "Neon",    "Iron",    "Golden",   "Frozen",   "Wild",    "Lost",
    "Hidden",  "Solar",   "Lunar",   "Savage",  "Eternal",  "Rapid",    "Cosmic",  "Shadow",
    "Royal",   "Thunder", "Crystal", "Ancient", "Electric", "Midnight", "Scarlet", "Blazing",
    "Arctic",  "Mystic",  "Urban",   "Stellar", "Rogue",    "Phantom",  "Velvet",  "Emerald"};

/// Title suffixes; "" is drawn half the time.
inline constexpr std::array<std::string_view, 6> suffixes = {"II", "III", "Deluxe", "Origins", "Remastered", "Zero"};

inline std::vector<std::string> tier_names(index_t n) {
  switch (n) {
    case 1:
      return {"standard"};
    case 2:
      return {"budget", "premium"};
    case 3:
      return {"budget", "mid-range", "premium"};
    case 4:
      return {"budget", "value", "mid-range", "premium"};
    default:
      return {"budget", "value", "mid-range", "upscale", "premium"};
  }
}

/// SplitMix64 finaliser: a bijective 64-bit mix.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// What a random stream is for; with the seed and an index (user, item) it names the stream.
enum class purpose : std::uint64_t {
  brand_categories = 1,
  item = 2,
  popularity = 3,
  ids = 4,
  taste = 5,
  sequence = 6,
  oracle = 7,
  oracle_items = 8,
};

/// The Philox stream of (seed, purpose, index).
inline philox_stream stream(std::uint64_t seed, purpose p, std::uint64_t index) noexcept {
  return philox_stream(mix64(mix64(seed ^ mix64(static_cast<std::uint64_t>(p))) ^ index));
}

inline std::uint32_t below(philox_stream& rng, index_t n) { return rng.below(static_cast<std::uint32_t>(n)); }

/// A seeded Fisher-Yates permutation of 0..n-1.
inline std::vector<index_t> permutation(philox_stream rng, index_t n) {
  std::vector<index_t> p(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) p[static_cast<std::size_t>(i)] = i;
  for (index_t i = n - 1; i > 0; --i) std::swap(p[static_cast<std::size_t>(i)], p[below(rng, i + 1)]);
  return p;
}

/// `k` distinct values of `from`, drawn in order (removed from `from`).
inline std::vector<index_t> draw_distinct(philox_stream& rng, std::vector<index_t> from, index_t k) {
  std::vector<index_t> out;
  for (index_t j = 0; j < k && !from.empty(); ++j) {
    const std::size_t at = below(rng, static_cast<index_t>(from.size()));
    out.push_back(from[at]);
    from.erase(from.begin() + static_cast<std::ptrdiff_t>(at));
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline void check_config(const world_config& c) {
  const char* where = "slim::synth::make_world";
  auto field = [&](bool ok, const char* name, const auto&... msg) {
    if (!ok) throw error(where, name, slim::detail::concat(msg...));
  };
  field(c.num_users >= 1, "num_users", "must be at least 1, got ", c.num_users);
  field(c.num_categories >= 1 && c.num_categories <= 12, "num_categories", "must lie in [1, 12], got ",
        c.num_categories);
  field(c.num_brands >= 1 && c.num_brands <= 20, "num_brands", "must lie in [1, 20], got ", c.num_brands);
  field(c.items_per_category >= 1 && c.items_per_category <= 192, "items_per_category", "must lie in [1, 192], got ",
        c.items_per_category);
  field(c.price_tiers >= 1 && c.price_tiers <= 5, "price_tiers", "must lie in [1, 5], got ", c.price_tiers);
  field(c.min_length >= 1 && c.min_length <= c.max_length, "min_length", "must lie in [1, max_length = ", c.max_length,
        "], got ", c.min_length);
  field(c.max_length <= c.num_categories * c.items_per_category, "max_length", "exceeds the catalogue size ",
        c.num_categories * c.items_per_category, " (items never repeat in a sequence)");
  field(std::isfinite(c.popularity_skew) && c.popularity_skew >= 0, "popularity_skew", "must be finite and >= 0");
  field(c.taste_focus >= 0 && c.taste_focus <= 1, "taste_focus", "must lie in [0, 1]");
  field(c.drift >= 0 && c.drift <= 1, "drift", "must lie in [0, 1]");
  field(std::isfinite(c.brand_boost) && c.brand_boost > 0, "brand_boost", "must be finite and > 0");
  field(std::isfinite(c.tier_boost) && c.tier_boost > 0, "tier_boost", "must be finite and > 0");
}

inline user_taste draw_taste(philox_stream& rng, const world& w) {
  const index_t nc = w.config.num_categories;
  user_taste t;
  std::vector<index_t> all(static_cast<std::size_t>(nc));
  for (index_t c = 0; c < nc; ++c) all[static_cast<std::size_t>(c)] = c;
  const index_t k = nc >= 2 && rng.uniform() < 0.5f ? 2 : 1;
  t.categories = draw_distinct(rng, std::move(all), k);
  std::vector<index_t> sellers;
  for (index_t b = 0; b < static_cast<index_t>(w.brand_names.size()); ++b)
    for (const index_t c : w.brand_categories[static_cast<std::size_t>(b)])
      if (std::find(t.categories.begin(), t.categories.end(), c) != t.categories.end()) {
        sellers.push_back(b);
        break;
      }
  const index_t kb = rng.uniform() < 0.5f ? 2 : 1;
  t.brands = draw_distinct(rng, std::move(sellers), kb);
  t.price_tier = below(rng, w.config.price_tiers);
  return t;
}

}  // namespace detail

/// Weight of `item` in the taste pool of `taste`: 0 outside its categories, else popularity x brand_boost (a
/// taste brand) x tier_boost (the taste's tier).
inline double taste_weight(const world& w, const user_taste& taste, rec::item_id item) {
  const item_facts& f = w.items[static_cast<std::size_t>(item)];
  if (std::find(taste.categories.begin(), taste.categories.end(), f.category) == taste.categories.end()) return 0;
  double x = f.popularity;
  if (std::find(taste.brands.begin(), taste.brands.end(), f.brand) != taste.brands.end()) x *= w.config.brand_boost;
  if (f.price_tier == taste.price_tier) x *= w.config.tier_boost;
  return x;
}

/// Generates the world of `cfg` (throws slim::error naming the field of a bad config). Deterministic in
/// cfg: every draw is keyed by (seed, purpose, user or item). Cost: O(catalogue + interactions x pool).
inline world make_world(const world_config& cfg) {
  using detail::purpose;
  detail::check_config(cfg);
  world w;
  w.config = cfg;
  const index_t nc = cfg.num_categories, nb = cfg.num_brands, ipc = cfg.items_per_category;
  const index_t n = nc * ipc;
  for (index_t c = 0; c < nc; ++c) w.category_names.emplace_back(detail::categories[static_cast<std::size_t>(c)].name);
  for (index_t b = 0; b < nb; ++b) w.brand_names.emplace_back(detail::brands[static_cast<std::size_t>(b)]);
  w.tier_names = detail::tier_names(cfg.price_tiers);

  // brands -> categories (2-3 each), then every category without a brand goes to the brand selling in fewest
  w.brand_categories.resize(static_cast<std::size_t>(nb));
  {
    auto rng = detail::stream(cfg.seed, purpose::brand_categories, 0);
    std::vector<index_t> all(static_cast<std::size_t>(nc));
    for (index_t c = 0; c < nc; ++c) all[static_cast<std::size_t>(c)] = c;
    for (auto& cats : w.brand_categories) cats = detail::draw_distinct(rng, all, 2 + detail::below(rng, 2));
    for (index_t c = 0; c < nc; ++c) {
      bool sold = false;
      for (const auto& cats : w.brand_categories) sold = sold || std::find(cats.begin(), cats.end(), c) != cats.end();
      if (sold) continue;
      auto fewest = std::min_element(w.brand_categories.begin(), w.brand_categories.end(),
                                     [](const auto& a, const auto& b) { return a.size() < b.size(); });
      fewest->insert(std::upper_bound(fewest->begin(), fewest->end(), c), c);
    }
  }
  std::vector<std::vector<index_t>> sellers(static_cast<std::size_t>(nc));
  for (index_t b = 0; b < nb; ++b)
    for (const index_t c : w.brand_categories[static_cast<std::size_t>(b)])
      sellers[static_cast<std::size_t>(c)].push_back(b);

  // catalogue slot s = c * ipc + j becomes item id ids[s] + 1; popularity rank pop_rank[s] + 1
  const std::vector<index_t> ids = detail::permutation(detail::stream(cfg.seed, purpose::ids, 0), n);
  const std::vector<index_t> pop_rank = detail::permutation(detail::stream(cfg.seed, purpose::popularity, 0), n);
  w.items.assign(static_cast<std::size_t>(n) + 1, item_facts{});
  w.data.name = "synth";
  w.data.num_items = static_cast<index_t>(n);
  w.data.items.assign(static_cast<std::size_t>(n) + 1, rec::item_text{});
  w.data.item_keys.assign(static_cast<std::size_t>(n) + 1, std::string());
  w.category_items.resize(static_cast<std::size_t>(nc));
  double total = 0;
  constexpr index_t combos = static_cast<index_t>(detail::adjectives.size() * 6);
  // (brand, category, adjective, noun) is unique, so no title is another's plus a suffix
  std::unordered_set<std::uint64_t> used_keys;
  for (index_t c = 0; c < nc; ++c) {
    const auto& vocab = detail::categories[static_cast<std::size_t>(c)];
    const auto& cs = sellers[static_cast<std::size_t>(c)];
    for (index_t j = 0; j < ipc; ++j) {
      const index_t s = c * ipc + j;
      const auto id = static_cast<rec::item_id>(ids[static_cast<std::size_t>(s)] + 1);
      auto rng = detail::stream(cfg.seed, purpose::item, static_cast<std::uint64_t>(s));
      item_facts& f = w.items[static_cast<std::size_t>(id)];
      f.category = c;
      f.brand = cs[detail::below(rng, static_cast<index_t>(cs.size()))];
      f.price_tier = detail::below(rng, cfg.price_tiers);
      f.popularity =
          1.0 / std::pow(static_cast<double>(pop_rank[static_cast<std::size_t>(s)] + 1), cfg.popularity_skew);
      total += f.popularity;
      // a free (adjective, noun) for this brand: random tries, then the first free one (ipc <= combos per brand)
      index_t combo = detail::below(rng, combos);
      auto key = [&](index_t b, index_t k) {
        return static_cast<std::uint64_t>((b * static_cast<index_t>(detail::categories.size()) + c) * combos + k);
      };
      for (int tries = 0; tries < 32 && used_keys.count(key(f.brand, combo)); ++tries)
        combo = detail::below(rng, combos);
      if (used_keys.count(key(f.brand, combo))) {
        // the brand's combinations for this category may run out: any seller, any combination
        bool found = false;
        for (index_t b = 0; b < static_cast<index_t>(cs.size()) && !found; ++b)
          for (index_t k = 0; k < combos && !found; ++k)
            if (!used_keys.count(key(cs[static_cast<std::size_t>(b)], k))) {
              f.brand = cs[static_cast<std::size_t>(b)];
              combo = k;
              found = true;
            }
      }
      used_keys.insert(key(f.brand, combo));
      std::string title = slim::detail::concat(detail::brands[static_cast<std::size_t>(f.brand)], ' ',
                                               detail::adjectives[static_cast<std::size_t>(combo / 6)], ' ',
                                               vocab.nouns[static_cast<std::size_t>(combo % 6)]);
      if (rng.uniform() < 0.5f) title += slim::detail::concat(' ', detail::suffixes[detail::below(rng, 6)]);
      auto& text = w.data.items[static_cast<std::size_t>(id)];
      text.text = slim::detail::concat(title, ". Category: ", vocab.name,
                                       ". Brand: ", w.brand_names[static_cast<std::size_t>(f.brand)],
                                       ". Price: ", w.tier_names[static_cast<std::size_t>(f.price_tier)], ".");
      text.title = std::move(title);
      w.data.item_keys[static_cast<std::size_t>(id)] = slim::detail::concat('i', id);
      w.category_items[static_cast<std::size_t>(c)].push_back(id);
    }
    std::sort(w.category_items[static_cast<std::size_t>(c)].begin(),
              w.category_items[static_cast<std::size_t>(c)].end());
  }
  for (std::size_t i = 1; i < w.items.size(); ++i) w.items[i].popularity /= total;

  // global popularity: cumulative weights for inverse-CDF draws
  std::vector<double> cdf(static_cast<std::size_t>(n) + 1, 0.0);
  for (std::size_t i = 1; i < cdf.size(); ++i) cdf[i] = cdf[i - 1] + w.items[i].popularity;

  const auto users = static_cast<std::size_t>(cfg.num_users);
  w.data.sequences.resize(users);
  w.data.user_keys.resize(users);
  w.tastes_before.resize(users);
  w.tastes_after.resize(users);
  w.drift_at.assign(users, -1);
  std::vector<char> used(static_cast<std::size_t>(n) + 1, 0);
  std::vector<std::pair<rec::item_id, double>> pool;
  for (std::size_t u = 0; u < users; ++u) {
    w.data.user_keys[u] = slim::detail::concat('u', u);
    auto trng = detail::stream(cfg.seed, purpose::taste, u);
    w.tastes_before[u] = detail::draw_taste(trng, w);
    auto rng = detail::stream(cfg.seed, purpose::sequence, u);
    const index_t len = cfg.min_length + detail::below(rng, cfg.max_length - cfg.min_length + 1);
    w.tastes_after[u] = w.tastes_before[u];
    if (len >= 2 && rng.uniform() < cfg.drift) {
      w.drift_at[u] = 1 + detail::below(rng, len - 1);
      // another taste with other categories (when the world has other categories to offer)
      for (int tries = 0; tries < 64; ++tries) {
        w.tastes_after[u] = detail::draw_taste(trng, w);
        if (w.tastes_after[u].categories != w.tastes_before[u].categories || nc == 1) break;
      }
    }
    auto& seq = w.data.sequences[u];
    seq.reserve(static_cast<std::size_t>(len));
    auto fill_pool = [&](const user_taste& t) {
      pool.clear();
      for (const index_t c : t.categories)
        for (const rec::item_id i : w.category_items[static_cast<std::size_t>(c)])
          pool.emplace_back(i, taste_weight(w, t, i));
    };
    fill_pool(w.tastes_before[u]);
    for (index_t t = 0; t < len; ++t) {
      if (t == w.drift_at[u]) fill_pool(w.tastes_after[u]);
      rec::item_id pick = 0;
      if (rng.uniform() < cfg.taste_focus) {
        double rest = 0;
        for (const auto& [i, x] : pool)
          if (!used[static_cast<std::size_t>(i)]) rest += x;
        if (rest > 0) {
          double r = rng.uniform() * rest;
          for (const auto& [i, x] : pool) {
            if (used[static_cast<std::size_t>(i)]) continue;
            pick = i;  // the last unused item when rounding leaves r >= 0
            if ((r -= x) < 0) break;
          }
        }
      }
      for (int tries = 0; pick == 0 && tries < 64; ++tries) {  // global popularity, by rejection
        const double r = rng.uniform() * cdf.back();
        auto at = static_cast<std::size_t>(std::upper_bound(cdf.begin() + 1, cdf.end(), r) - cdf.begin());
        at = std::min(at, cdf.size() - 1);
        if (!used[at]) pick = static_cast<rec::item_id>(at);
      }
      if (pick == 0) {  // almost everything popular is taken: the most popular unused item
        double best = -1;
        for (std::size_t i = 1; i < used.size(); ++i)
          if (!used[i] && w.items[i].popularity > best) {
            best = w.items[i].popularity;
            pick = static_cast<rec::item_id>(i);
          }
      }
      used[static_cast<std::size_t>(pick)] = 1;
      seq.push_back(pick);
    }
    for (const rec::item_id i : seq) used[static_cast<std::size_t>(i)] = 0;
  }
  return w;
}

}  // namespace slim::synth
