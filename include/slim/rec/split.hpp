// slim — the chronological leave-one-out split of a dataset (`sequence_split`), the histories it feeds to
// validation and test, and item popularity counted on its training part.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/rec/dataset.hpp"

namespace slim::rec {

/// Leave-one-out, as SASRec's original code splits: for a user with n >= 3 items, test = the last item,
/// valid = the second-to-last, train = the first n - 2. A user with fewer than 3 items keeps everything in
/// train and gets valid = test = 0 (not evaluated). Sequences are already chronological (the loaders settle
/// ties), so the split itself never looks at item ids.
inline sequence_split leave_one_out(const dataset& d) {
  sequence_split s;
  s.num_items = d.num_items;
  const std::size_t users = d.sequences.size();
  s.train.resize(users);
  s.valid.assign(users, 0);
  s.test.assign(users, 0);
  for (std::size_t u = 0; u < users; ++u) {
    const auto& seq = d.sequences[u];
    const std::size_t n = seq.size();
    if (n < 3) {
      s.train[u] = seq;
      continue;
    }
    s.train[u].assign(seq.begin(), seq.end() - 2);
    s.valid[u] = seq[n - 2];
    s.test[u] = seq[n - 1];
  }
  return s;
}

/// Which evaluation a history is the input of.
enum class split_stage {
  valid,  ///< input train[u], target valid[u]
  test,   ///< input train[u] + valid[u], target test[u]
};

/// The input sequence of user `u` at `stage`: train[u], plus valid[u] for the test stage (when it is not 0).
inline std::vector<item_id> history(const sequence_split& s, index_t u, split_stage stage) {
  require(u >= 0 && u < s.num_users(), "slim::rec::history", "user ", u, " is outside [0, ", s.num_users(), ")");
  std::vector<item_id> h = s.train[static_cast<std::size_t>(u)];
  if (stage == split_stage::test && s.valid[static_cast<std::size_t>(u)] != 0)
    h.push_back(s.valid[static_cast<std::size_t>(u)]);
  return h;
}

/// Length of every user's input at `stage` (what sparsity groups are formed from).
inline std::vector<index_t> history_lengths(const sequence_split& s, split_stage stage) {
  std::vector<index_t> n(s.train.size());
  for (std::size_t u = 0; u < n.size(); ++u)
    n[u] = static_cast<index_t>(s.train[u].size()) + (stage == split_stage::test && s.valid[u] != 0 ? 1 : 0);
  return n;
}

/// Occurrences of each item in the training sequences only (valid and test targets never count), indexed by
/// item id: size num_items + 1, entry 0 (padding) is 0. For popularity samplers and bias metrics.
inline std::vector<std::int64_t> item_popularity(const sequence_split& s) {
  std::vector<std::int64_t> count(static_cast<std::size_t>(s.num_items) + 1, 0);
  for (const auto& seq : s.train)
    for (const item_id i : seq) {
      require(i >= 1 && i <= s.num_items, "slim::rec::item_popularity", "item id ", i, " is outside [1, ", s.num_items,
              "]");
      ++count[static_cast<std::size_t>(i)];
    }
  return count;
}

}  // namespace slim::rec
