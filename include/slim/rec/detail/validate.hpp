// slim — the invariant checks of `dataset` and `sequence_split` (stated in slim/rec/dataset.hpp).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <string>

#include "slim/core/error.hpp"
#include "slim/rec/dataset.hpp"

namespace slim::rec {

/// Throws slim::error("slim::rec::validate", <place>, ...) unless every id in every sequence lies in
/// [1, num_items], `items` and `item_keys` hold num_items + 1 entries, and `user_keys` one per sequence.
inline void validate(const dataset& d) {
  const char* where = "slim::rec::validate";
  if (d.num_items < 0) throw error(where, "num_items", slim::detail::concat("negative: ", d.num_items));
  const auto slots = static_cast<std::size_t>(d.num_items) + 1;
  if (d.items.size() != slots || d.item_keys.size() != slots)
    throw error(where, "items",
                slim::detail::concat("items has ", d.items.size(), " and item_keys ", d.item_keys.size(),
                                     " entries, expected num_items + 1 = ", slots));
  if (d.user_keys.size() != d.sequences.size())
    throw error(where, "user_keys",
                slim::detail::concat(d.user_keys.size(), " user keys for ", d.sequences.size(), " sequences"));
  for (std::size_t u = 0; u < d.sequences.size(); ++u)
    for (std::size_t t = 0; t < d.sequences[u].size(); ++t) {
      const item_id i = d.sequences[u][t];
      if (i < 1 || i > d.num_items)
        throw error(where, slim::detail::concat("user ", u, " position ", t),
                    slim::detail::concat("item id ", i, " is outside [1, ", d.num_items, "]"));
    }
}

/// Throws unless train, valid and test have one entry per user and every id lies in [1, num_items]
/// (valid and test may also be 0: no such case).
inline void validate(const sequence_split& s) {
  const char* where = "slim::rec::validate";
  if (s.valid.size() != s.train.size() || s.test.size() != s.train.size())
    throw error(where, "split",
                slim::detail::concat("train, valid and test have ", s.train.size(), ", ", s.valid.size(), " and ",
                                     s.test.size(), " users"));
  for (std::size_t u = 0; u < s.train.size(); ++u) {
    for (const item_id i : s.train[u])
      if (i < 1 || i > s.num_items)
        throw error(where, slim::detail::concat("train user ", u),
                    slim::detail::concat("item id ", i, " is outside [1, ", s.num_items, "]"));
    for (const item_id i : {s.valid[u], s.test[u]})
      if (i < 0 || i > s.num_items)
        throw error(where, slim::detail::concat("target of user ", u),
                    slim::detail::concat("item id ", i, " is outside [0, ", s.num_items, "]"));
  }
}

}  // namespace slim::rec
