// slim — k-core filtering of a dataset: repeatedly drop users with fewer than k_u interactions and items with
// fewer than k_i, until every remaining user and item has enough.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/rec/dataset.hpp"

namespace slim::rec {

/// Thresholds of `kcore_filter` (counts are interactions, repeats included; 5/5 is the usual "5-core").
struct kcore_options {
  index_t min_user_interactions = 5;
  index_t min_item_interactions = 5;
};

/// What `kcore_filter` removed.
struct kcore_result {
  index_t rounds = 0;  ///< passes that removed something
  index_t users_dropped = 0;
  index_t items_dropped = 0;  ///< includes catalogue items that had no interaction at all
  std::int64_t interactions_dropped = 0;
};

/// Reduces `d` in place to its k-core: the largest set of users and items in which every user has at least
/// `min_user_interactions` interactions with kept items and every item at least `min_item_interactions` from
/// kept users (unique, so the order of removal does not matter). Each pass counts on what is left and removes
/// all users and items below their threshold at once; passes repeat until one removes nothing. Sequences keep
/// their order; the surviving items are renumbered 1..N' in their old id order (unchanged when none is
/// dropped), with keys and text moved along. Adds the drops to `d.report`.
inline kcore_result kcore_filter(dataset& d, const kcore_options& opt = {}) {
  require(opt.min_user_interactions >= 0 && opt.min_item_interactions >= 0, "slim::rec::kcore_filter",
          "thresholds must be >= 0, got ", opt.min_user_interactions, " and ", opt.min_item_interactions);
  const std::size_t users = d.sequences.size(), slots = static_cast<std::size_t>(d.num_items) + 1;
  for (const auto& seq : d.sequences)
    for (const item_id i : seq)
      require(i >= 1 && i <= d.num_items, "slim::rec::kcore_filter", "item id ", i, " is outside [1, ", d.num_items,
              "]");
  std::vector<char> user_alive(users, 1), item_alive(slots, 1);
  item_alive[0] = 0;
  std::vector<std::int64_t> item_count(slots);
  kcore_result r;
  for (;;) {
    std::fill(item_count.begin(), item_count.end(), 0);
    bool changed = false;
    for (std::size_t u = 0; u < users; ++u) {
      if (!user_alive[u]) continue;
      std::int64_t n = 0;
      for (const item_id i : d.sequences[u]) n += item_alive[static_cast<std::size_t>(i)];
      if (n < opt.min_user_interactions) {
        user_alive[u] = 0;  // its interactions do not count for items in this pass either
        changed = true;
        continue;
      }
      for (const item_id i : d.sequences[u])
        if (item_alive[static_cast<std::size_t>(i)]) ++item_count[static_cast<std::size_t>(i)];
    }
    for (std::size_t i = 1; i < slots; ++i)
      if (item_alive[i] && item_count[i] < opt.min_item_interactions) {
        item_alive[i] = 0;
        changed = true;
      }
    if (!changed) break;
    ++r.rounds;
  }

  std::vector<item_id> new_id(slots, 0);
  dataset out;
  out.name = std::move(d.name);
  out.report = d.report;
  out.items.emplace_back();
  out.item_keys.emplace_back();
  for (std::size_t i = 1; i < slots; ++i) {
    if (!item_alive[i]) {
      ++r.items_dropped;
      continue;
    }
    new_id[i] = static_cast<item_id>(out.items.size());
    out.items.push_back(std::move(d.items[i]));
    out.item_keys.push_back(std::move(d.item_keys[i]));
  }
  out.num_items = static_cast<index_t>(out.items.size()) - 1;
  for (std::size_t u = 0; u < users; ++u) {
    if (!user_alive[u]) {
      ++r.users_dropped;
      r.interactions_dropped += static_cast<std::int64_t>(d.sequences[u].size());
      continue;
    }
    std::vector<item_id> seq;
    seq.reserve(d.sequences[u].size());
    for (const item_id i : d.sequences[u])
      if (new_id[static_cast<std::size_t>(i)]) seq.push_back(new_id[static_cast<std::size_t>(i)]);
    r.interactions_dropped += static_cast<std::int64_t>(d.sequences[u].size() - seq.size());
    out.sequences.push_back(std::move(seq));
    out.user_keys.push_back(std::move(d.user_keys[u]));
  }
  out.report.users_dropped += r.users_dropped;
  out.report.items_dropped += r.items_dropped;
  d = std::move(out);
  return r;
}

}  // namespace slim::rec
