// slim — the in-memory form of a sequential-recommendation dataset, shared by every loader, splitter,
// backbone and the pipeline: users' chronological item sequences over dense item ids 1..num_items
// (0 is padding and is never an item), the original ids beside them, and item text for prompts and
// text encoders.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "slim/core/config.hpp"

namespace slim::rec {

/// Item id type inside slim: dense, 1..num_items; 0 is padding.
using item_id = std::int32_t;

/// What a loader skipped or repaired, so a caller can report it instead of losing it silently.
struct load_report {
  std::int64_t lines = 0;               ///< data lines read (header excluded)
  std::int64_t skipped_lines = 0;       ///< malformed or unusable lines skipped under a documented policy
  std::int64_t duplicate_events = 0;    ///< repeated (user, item) events dropped where the format calls for it
  std::int64_t users_dropped = 0;       ///< users removed (k-core, empty, too short)
  std::int64_t items_dropped = 0;       ///< items removed (k-core)
  std::int64_t text_repaired = 0;       ///< titles re-encoded (Latin-1 -> UTF-8) or with invalid bytes replaced
};

/// Text of one item: its title and a longer description (title plus genres / categories / brand).
struct item_text {
  std::string title;
  std::string text;
};

/// A dataset: one chronological sequence per user. Invariants (checked by `validate` in rec/detail/validate.hpp,
/// which every loader calls): every id in a
/// sequence lies in [1, num_items]; `items.size() == item_keys.size() == num_items + 1` (index 0 is
/// the padding slot, left empty); `user_keys.size() == sequences.size()`.
struct dataset {
  std::string name;                              ///< e.g. "ml-1m", from the file name
  index_t num_items = 0;                         ///< ids run 1..num_items
  std::vector<std::vector<item_id>> sequences;   ///< per user, oldest first
  std::vector<std::string> user_keys;            ///< the original user id of each user
  std::vector<std::string> item_keys;            ///< the original item id of each item (index 0: "")
  std::vector<item_text> items;                  ///< text of each item (index 0: empty)
  load_report report;

  index_t num_users() const noexcept { return static_cast<index_t>(sequences.size()); }
  std::int64_t num_interactions() const noexcept {
    std::int64_t n = 0;
    for (const auto& s : sequences) n += static_cast<std::int64_t>(s.size());
    return n;
  }
};

/// A leave-one-out split for every user u (the form every backbone trains and evaluates on):
///   training input  train[u]                     (the model learns next-item prediction on its prefixes)
///   validation      input train[u]           -> target valid[u]
///   test            input train[u] + valid[u] -> target test[u]
/// A target of 0 means the user has no such case (too short a history) and is not evaluated on it.
/// For the LLMRank Amazon files, where validation and test histories are given explicitly, the loader
/// fills the same form (the test history is train + valid by construction of those files).
struct sequence_split {
  index_t num_items = 0;
  std::vector<std::vector<item_id>> train;
  std::vector<item_id> valid;
  std::vector<item_id> test;

  index_t num_users() const noexcept { return static_cast<index_t>(train.size()); }
};

}  // namespace slim::rec
