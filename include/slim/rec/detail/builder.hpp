// slim — turns interaction events read from a file into a `dataset`: users numbered by first appearance,
// per-user chronological order (by timestamp, ties kept in file order; or the file order alone), optional
// duplicate removal, and the item id policy (original ids kept when they already run densely over 1..N,
// otherwise dense ids in order of first appearance in the file).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/rec/dataset.hpp"
#include "slim/rec/detail/reader.hpp"

namespace slim::rec::detail {

/// Collects events keyed by `Key` — `std::int64_t` (numeric ids) or `std::string_view` (RecBole tokens; the
/// views must outlive the builder) — and builds the dataset.
template <class Key>
class interaction_builder {
  static_assert(std::is_same_v<Key, std::int64_t> || std::is_same_v<Key, std::string_view>,
                "interaction_builder keys are std::int64_t or std::string_view");

 public:
  /// `timed`: order each user's events by their time (stable, so equal times keep the file order);
  /// otherwise the file order alone is the chronology.
  explicit interaction_builder(bool timed) : timed_(timed) {}

  void reserve(std::size_t events) { events_.reserve(events); }

  /// Index of the user `key`, registered on first sight. A user registered but left without events (all of
  /// them filtered) is dropped by `build` and counted in load_report::users_dropped.
  std::int32_t user(Key key) {
    if (has_last_ && key == last_user_key_) return last_user_;
    const auto [it, inserted] = user_index_.try_emplace(key, static_cast<std::int32_t>(user_keys_.size()));
    if (inserted) {
      if (user_keys_.size() >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
        throw error("slim::rec loader", "", "more than 2^31 - 1 users");
      user_keys_.push_back(key);
    }
    has_last_ = true;
    last_user_key_ = key;
    last_user_ = it->second;
    return last_user_;
  }

  /// Records that user `u` (from `user`) interacted with item `item` at `time` (unused unless timed); `line`
  /// is where the event was read, for later messages about the item.
  void add(std::int32_t u, Key item, double time, std::int64_t line) {
    if (events_.size() >= std::numeric_limits<std::uint32_t>::max())
      throw error("slim::rec loader", "", "more than 2^32 - 1 interactions");
    events_.push_back({u, item_index(item, line), time});
  }

  std::size_t num_events() const noexcept { return events_.size(); }

  /// The dataset. `report` is copied into it, with users_dropped and duplicate_events added.
  dataset build(std::string name, load_report report, bool drop_duplicates) {
    const std::size_t num_users = user_keys_.size(), num_items = item_keys_.size();
    dataset d;
    d.name = std::move(name);
    d.num_items = static_cast<index_t>(num_items);

    // Item ids: keep the original ones when they are exactly 1..N, else first appearance in the file.
    bool keep = true;
    for (std::size_t i = 0; i < num_items && keep; ++i) keep = original_id(item_keys_[i]) > 0;
    final_id_.resize(num_items);
    for (std::size_t i = 0; i < num_items; ++i)
      final_id_[i] = static_cast<item_id>(keep ? original_id(item_keys_[i]) : static_cast<std::int64_t>(i) + 1);
    d.item_keys.assign(num_items + 1, std::string());
    d.items.assign(num_items + 1, item_text{});
    for (std::size_t i = 0; i < num_items; ++i)
      d.item_keys[static_cast<std::size_t>(final_id_[i])] = key_string(item_keys_[i]);
    first_line_of_id_.assign(num_items + 1, 0);
    for (std::size_t i = 0; i < num_items; ++i)
      first_line_of_id_[static_cast<std::size_t>(final_id_[i])] = item_first_line_[i];

    // Group events by user, keeping file order inside each group (a counting sort).
    std::vector<std::size_t> start(num_users + 1, 0);
    for (const auto& e : events_) ++start[static_cast<std::size_t>(e.user) + 1];
    for (std::size_t u = 0; u < num_users; ++u) start[u + 1] += start[u];
    std::vector<std::uint32_t> order(events_.size());
    {
      std::vector<std::size_t> cursor(start.begin(), start.end() - 1);
      for (std::size_t i = 0; i < events_.size(); ++i)
        order[cursor[static_cast<std::size_t>(events_[i].user)]++] = static_cast<std::uint32_t>(i);
    }

    std::vector<std::int32_t> seen_by(drop_duplicates ? num_items : 0, -1);
    d.sequences.reserve(num_users);
    d.user_keys.reserve(num_users);
    for (std::size_t u = 0; u < num_users; ++u) {
      const auto first = order.begin() + static_cast<std::ptrdiff_t>(start[u]);
      const auto last = order.begin() + static_cast<std::ptrdiff_t>(start[u + 1]);
      if (timed_)
        std::stable_sort(first, last,
                         [&](std::uint32_t a, std::uint32_t b) { return events_[a].time < events_[b].time; });
      std::vector<item_id> seq;
      seq.reserve(static_cast<std::size_t>(last - first));
      for (auto it = first; it != last; ++it) {
        const std::int32_t item = events_[*it].item;
        if (drop_duplicates) {
          if (seen_by[static_cast<std::size_t>(item)] == static_cast<std::int32_t>(u)) {
            ++report.duplicate_events;
            continue;
          }
          seen_by[static_cast<std::size_t>(item)] = static_cast<std::int32_t>(u);
        }
        seq.push_back(final_id_[static_cast<std::size_t>(item)]);
      }
      if (seq.empty()) {
        ++report.users_dropped;
        continue;
      }
      d.sequences.push_back(std::move(seq));
      d.user_keys.push_back(key_string(user_keys_[u]));
    }
    d.report = report;
    return d;
  }

  /// After `build`: the dataset id of item `key`, or 0 when no event named it.
  item_id find_item(Key key) const {
    if constexpr (std::is_same_v<Key, std::int64_t>) {
      if (key >= 0 && key < direct_limit) {
        const auto k = static_cast<std::size_t>(key);
        return k < direct_.size() && direct_[k] >= 0 ? final_id_[static_cast<std::size_t>(direct_[k])] : 0;
      }
    }
    const auto it = item_index_.find(key);
    return it == item_index_.end() ? 0 : final_id_[static_cast<std::size_t>(it->second)];
  }

  /// After `build`: the line of the interaction file where item `id` first appeared.
  std::int64_t first_line(item_id id) const { return first_line_of_id_[static_cast<std::size_t>(id)]; }

 private:
  struct event {
    std::int32_t user;
    std::int32_t item;  // index in order of first appearance
    double time;
  };

  /// Index of `item` in order of first appearance, registering it on first sight. Small numeric keys go through
  /// a direct table (the common case: ids below a million), the rest through the hash map.
  std::int32_t item_index(Key item, std::int64_t line) {
    if constexpr (std::is_same_v<Key, std::int64_t>) {
      if (item >= 0 && item < direct_limit) {
        const auto k = static_cast<std::size_t>(item);
        if (k >= direct_.size()) direct_.resize(std::max(k + 1, direct_.size() * 2), -1);
        if (direct_[k] >= 0) return direct_[k];
        return direct_[k] = register_item(item, line);
      }
    }
    const auto it = item_index_.find(item);
    if (it != item_index_.end()) return it->second;
    const std::int32_t index = register_item(item, line);
    item_index_.emplace(item, index);
    return index;
  }

  std::int32_t register_item(Key item, std::int64_t line) {
    if (item_keys_.size() >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
      throw error("slim::rec loader", "", "more than 2^31 - 1 items");
    item_keys_.push_back(item);
    item_first_line_.push_back(line);
    return static_cast<std::int32_t>(item_keys_.size() - 1);
  }

  /// The key as a positive id in [1, number of items], or 0 when it is not one (then ids are renumbered).
  std::int64_t original_id(Key key) const noexcept {
    std::int64_t v = 0;
    if constexpr (std::is_same_v<Key, std::int64_t>) {
      v = key;
    } else {
      if (!canonical_positive(key, v)) return 0;
    }
    return v >= 1 && v <= static_cast<std::int64_t>(item_keys_.size()) ? v : 0;
  }

  static std::string key_string(Key key) {
    if constexpr (std::is_same_v<Key, std::int64_t>)
      return std::to_string(key);
    else
      return std::string(key);
  }

  static constexpr std::int64_t direct_limit = std::int64_t{1} << 20;

  bool timed_;
  std::vector<std::int32_t> direct_;  // numeric keys below direct_limit -> index, -1 when unseen
  std::vector<event> events_;
  std::unordered_map<Key, std::int32_t> user_index_, item_index_;
  std::vector<Key> user_keys_, item_keys_;
  std::vector<std::int64_t> item_first_line_;
  std::vector<item_id> final_id_;
  std::vector<std::int64_t> first_line_of_id_;
  bool has_last_ = false;
  Key last_user_key_{};
  std::int32_t last_user_ = 0;
};

/// Attaches item text read from an item file to the items of a dataset, and checks that every item got some.
class item_text_sink {
 public:
  explicit item_text_sink(dataset& d) : d_(d), defined_(static_cast<std::size_t>(d.num_items) + 1, 0) {}

  /// Text of the item with original key `key` and dataset id `id` (0: not an item of the dataset, ignored).
  /// A key listed twice in the item file is an error naming both lines.
  void set(const std::string& item_file, std::int64_t line, std::string_view key, item_id id, item_text text) {
    const auto [it, inserted] = lines_.try_emplace(std::string(key), line);
    if (!inserted)
      throw error(item_file, cat("line ", line),
                  cat("item ", quote(key), " is listed again (first at line ", it->second, ")"));
    if (id <= 0) return;
    d_.items[static_cast<std::size_t>(id)] = std::move(text);
    defined_[static_cast<std::size_t>(id)] = 1;
  }

  /// Throws unless every item of the dataset has an entry; the error names the interaction file and the line
  /// where the first item without one appears (`first_line(id)`), and the item file.
  template <class FirstLine>
  void require_complete(const std::string& interactions, const std::string& item_file, FirstLine&& first_line) const {
    for (index_t id = 1; id <= d_.num_items; ++id) {
      if (defined_[static_cast<std::size_t>(id)]) continue;
      throw error(interactions, cat("line ", first_line(static_cast<item_id>(id))),
                  cat("item ", quote(d_.item_keys[static_cast<std::size_t>(id)]), " has no entry in ", item_file));
    }
  }

 private:
  dataset& d_;
  std::vector<char> defined_;
  std::unordered_map<std::string, std::int64_t> lines_;
};

}  // namespace slim::rec::detail
