// slim — negatives for the sampled-candidate protocol: per user, a set of distinct items the user never
// interacted with, drawn uniformly or in proportion to popularity, as a pure function of (seed, user, stream).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"
#include "slim/core/philox.hpp"

namespace slim::metrics {

/// How negatives are drawn: every eligible item equally likely, or with probability proportional to its
/// training interaction count (items with count 0 are never drawn).
enum class negative_distribution { uniform, popularity };

/// Draws the sampled negatives of the "target + N negatives" protocol.
///
/// Sampling is without replacement by successive draws: each draw picks an eligible item (not excluded,
/// not already picked) with probability proportional to its weight (1 for uniform, the count for
/// popularity) among the remaining ones. The draws of user u with stream s read the Philox stream whose
/// 64-bit key is philox4x32_10((u, s), seed), so they depend on (seed, user, stream, exclude) only:
/// every model compared and every thread count sees the same negatives. `sample` is const and keeps no
/// state, so any number of threads may call it at once.
class negative_sampler {
 public:
  /// item_counts: size num_items+1 (index 0 ignored), needed for popularity (weights = counts, items with
  /// count 0 never drawn); ignored for uniform.
  negative_sampler(index_t num_items, std::uint64_t seed, negative_distribution d = negative_distribution::uniform,
                   std::span<const std::int64_t> item_counts = {})
      : num_items_{num_items}, seed_{seed}, dist_{d} {
    constexpr const char* where = "slim::metrics::negative_sampler";
    require(num_items >= 1 && num_items <= std::numeric_limits<std::int32_t>::max(), where,
            "num_items must lie in [1, 2^31-1], got ", num_items);
    if (d == negative_distribution::popularity) {
      require(static_cast<index_t>(item_counts.size()) == num_items + 1, where,
              "item_counts must have num_items+1 = ", num_items + 1, " entries, got ", item_counts.size());
      cumulative_.assign(static_cast<std::size_t>(num_items) + 1, 0);
      std::int64_t total = 0;
      for (index_t i = 1; i <= num_items; ++i) {
        const std::int64_t c = item_counts[static_cast<std::size_t>(i)];
        if (c < 0) throw error(where, "item_counts[" + std::to_string(i) + "]", "negative count " + std::to_string(c));
        require(c <= std::numeric_limits<std::int64_t>::max() / 2 - total, where, "item counts overflow");
        total += c;
        cumulative_[static_cast<std::size_t>(i)] = total;
      }
      require(total > 0, where, "every item count is 0: nothing can be drawn by popularity");
    }
  }

  index_t num_items() const noexcept { return num_items_; }
  std::uint64_t seed() const noexcept { return seed_; }
  negative_distribution distribution() const noexcept { return dist_; }

  /// Fills `out` with out.size() DISTINCT item ids in [1, num_items], none in `exclude` (the user's history
  /// and target). Deterministic in (seed, user, stream) only — the same for every model compared and every
  /// thread count. Throws slim::error if not enough eligible items exist.
  void sample(index_t user, std::span<const std::int32_t> exclude, std::span<std::int32_t> out,
              std::uint64_t stream = 0) const {
    constexpr const char* where = "slim::metrics::negative_sampler::sample";
    if (out.empty()) return;
    // The distinct excluded ids, sorted (binary search while drawing).
    std::vector<std::int32_t> ex(exclude.begin(), exclude.end());
    for (std::size_t j = 0; j < ex.size(); ++j)
      if (ex[j] < 1 || ex[j] > num_items_)
        throw error(where, "exclude[" + std::to_string(j) + "]",
                    "item id " + std::to_string(ex[j]) + " outside [1, " + std::to_string(num_items_) + "]");
    std::sort(ex.begin(), ex.end());
    ex.erase(std::unique(ex.begin(), ex.end()), ex.end());
    const auto excluded = [&ex](std::int32_t i) { return std::binary_search(ex.begin(), ex.end(), i); };

    // Eligible items and their total weight.
    std::int64_t eligible = 0, mass = 0;
    if (dist_ == negative_distribution::uniform) {
      eligible = num_items_ - static_cast<std::int64_t>(ex.size());
      mass = eligible;
    } else {
      mass = total();
      for (index_t i = 1; i <= num_items_; ++i) eligible += weight(static_cast<std::int32_t>(i)) > 0;
      for (const std::int32_t i : ex) {
        eligible -= weight(i) > 0;
        mass -= weight(i);
      }
    }
    if (static_cast<std::int64_t>(out.size()) > eligible)
      throw error(where, "user " + std::to_string(user),
                  "asked for " + std::to_string(out.size()) + " distinct negatives but only " +
                      std::to_string(eligible) + " items are eligible");

    philox_stream rng{key(user, stream)};
    // Rejection from the full distribution: a draw that hits an excluded or already-picked item is drawn
    // again, which is exactly successive sampling among the remaining items. When the rejected share grows
    // large (a user who saw most of the catalogue) the loop switches to explicit sampling over what remains,
    // which draws from the same distribution.
    const std::int64_t full = dist_ == negative_distribution::uniform ? num_items_ : total();
    std::size_t filled = 0;
    std::int64_t picked_mass = 0;
    while (filled < out.size() && 4 * (mass - picked_mass) >= full) {
      const std::int32_t item = draw_full(rng);
      if (excluded(item) || std::find(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(filled), item) !=
                                out.begin() + static_cast<std::ptrdiff_t>(filled))
        continue;
      out[filled++] = item;
      picked_mass += weight(item);
    }
    if (filled < out.size()) sample_remaining(rng, ex, out, filled);
  }

 private:
  std::int64_t total() const noexcept { return cumulative_.back(); }
  std::int64_t weight(std::int32_t i) const noexcept {
    if (dist_ == negative_distribution::uniform) return 1;
    const auto k = static_cast<std::size_t>(i);
    return cumulative_[k] - cumulative_[k - 1];
  }

  /// The 64-bit key of (seed, user, stream): one Philox block of the counter (user, stream) under `seed`.
  std::uint64_t key(index_t user, std::uint64_t stream) const noexcept {
    const auto u = static_cast<std::uint64_t>(user);
    const philox_block b =
        philox4x32_10(philox_block{{static_cast<std::uint32_t>(u), static_cast<std::uint32_t>(u >> 32),
                                    static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)}},
                      static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32));
    return static_cast<std::uint64_t>(b.v[0]) | (static_cast<std::uint64_t>(b.v[1]) << 32);
  }

  /// Uniform integer in [0, n) for 1 <= n < 2^62: draws of the next power of two above n, rejected
  /// when >= n (no modulo bias; fewer than two draws on average).
  static std::int64_t below(philox_stream& rng, std::int64_t n) noexcept {
    std::uint64_t mask = static_cast<std::uint64_t>(n - 1);
    for (int s = 1; s < 64; s <<= 1) mask |= mask >> s;
    for (;;) {
      std::uint64_t x = rng.next_u32();
      if (mask > 0xffffffffu) x |= static_cast<std::uint64_t>(rng.next_u32()) << 32;
      x &= mask;
      if (x < static_cast<std::uint64_t>(n)) return static_cast<std::int64_t>(x);
    }
  }

  /// One draw from the whole catalogue (uniform or by count), exclusions ignored.
  std::int32_t draw_full(philox_stream& rng) const noexcept {
    if (dist_ == negative_distribution::uniform) return static_cast<std::int32_t>(1 + below(rng, num_items_));
    // The item i with cumulative[i-1] <= x < cumulative[i].
    const std::int64_t x = below(rng, total());
    const auto it = std::upper_bound(cumulative_.begin() + 1, cumulative_.end(), x);
    return static_cast<std::int32_t>(it - cumulative_.begin());
  }

  /// Successive sampling over the explicit list of remaining eligible items: a Fenwick tree of weights,
  /// a picked item's weight set to 0. Used when rejection would be slow.
  void sample_remaining(philox_stream& rng, const std::vector<std::int32_t>& ex, std::span<std::int32_t> out,
                        std::size_t filled) const {
    const auto n = static_cast<std::size_t>(num_items_);
    std::vector<std::int64_t> tree(n + 1, 0);  // 1-based Fenwick tree over item ids
    std::int64_t remaining = 0;
    std::vector<char> gone(n + 1, 0);
    for (const std::int32_t i : ex) gone[static_cast<std::size_t>(i)] = 1;
    for (std::size_t j = 0; j < filled; ++j) gone[static_cast<std::size_t>(out[j])] = 1;
    for (std::size_t i = 1; i <= n; ++i) {
      const std::int64_t w = gone[i] ? 0 : weight(static_cast<std::int32_t>(i));
      remaining += w;
      tree[i] += w;
      const std::size_t parent = i + (i & (~i + 1));
      if (parent <= n) tree[parent] += tree[i];
    }
    std::size_t top = 1;
    while (top * 2 <= n) top *= 2;
    for (; filled < out.size(); ++filled) {
      // The smallest item i whose prefix weight exceeds x.
      std::int64_t x = below(rng, remaining);
      std::size_t pos = 0;
      for (std::size_t step = top; step > 0; step >>= 1) {
        if (pos + step <= n && tree[pos + step] <= x) {
          pos += step;
          x -= tree[pos];
        }
      }
      const std::size_t item = pos + 1;
      const std::int64_t w = weight(static_cast<std::int32_t>(item));
      out[filled] = static_cast<std::int32_t>(item);
      remaining -= w;
      for (std::size_t i = item; i <= n; i += i & (~i + 1)) tree[i] -= w;
    }
  }

  index_t num_items_;
  std::uint64_t seed_;
  negative_distribution dist_;
  std::vector<std::int64_t> cumulative_;  // popularity: cumulative_[i] = count(1) + ... + count(i)
};

}  // namespace slim::metrics
