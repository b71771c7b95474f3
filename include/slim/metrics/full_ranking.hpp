// slim — full-ranking evaluation: the held-out item's place among every item of the catalogue that the
// user has not interacted with, one user at a time (`rank_full`, `top_k_full`) or for all users at once
// from user and item embeddings (`rank_full_batched`: blocked GEMM into a cache-sized score block, then one
// pass per row for the target's place and a small top-k buffer).
//
// Conventions (stated once, used by every function here): a score row has num_items+1 entries, index 0 is
// padding and never a candidate; the candidates are items 1..num_items minus the user's excluded items
// (history: duplicates allowed), and the target is always a candidate even when it is in the history (a
// repeated consumption stays rankable). Ties follow `tie_policy` through `target_rank`; top-k lists are in
// descending score, ties to the lower item id, NaN below every number.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "slim/backend/kernels.hpp"
#include "slim/core/config.hpp"
#include "slim/core/error.hpp"
#include "slim/core/philox.hpp"
#include "slim/core/tensor_view.hpp"
#include "slim/core/thread_pool.hpp"
#include "slim/metrics/ranking.hpp"
#include "slim/metrics/sampling.hpp"

namespace slim::metrics {

namespace detail {

/// A 64-bit key whose unsigned order is the top-k order: the score's bits mapped to a monotone unsigned
/// integer (NaN lowest, −0 as +0) above the inverted item id (lower id, larger key).
inline std::uint64_t topk_key(float x, std::int32_t item) noexcept {
  // Branch-free (the sign of a score is a coin flip): −0 + 0 = +0; a negative number's bits are all
  // inverted, a positive one gets its sign bit set; NaN maps to 0.
  std::uint32_t u = std::bit_cast<std::uint32_t>(x + 0.0f);
  const std::uint32_t negative = static_cast<std::uint32_t>(static_cast<std::int32_t>(u) >> 31);
  u ^= negative | 0x80000000u;
  u = x == x ? u : 0u;
  return (static_cast<std::uint64_t>(u) << 32) | (0xffffffffu - static_cast<std::uint32_t>(item));
}
inline std::int32_t topk_item(std::uint64_t key) noexcept {
  return static_cast<std::int32_t>(0xffffffffu - static_cast<std::uint32_t>(key));
}

inline void check_items(std::span<const std::int32_t> ids, index_t num_items, const char* where, const char* what) {
  for (std::size_t j = 0; j < ids.size(); ++j)
    if (ids[j] < 1 || ids[j] > num_items)
      throw error(where, std::string(what) + "[" + std::to_string(j) + "]",
                  "item id " + std::to_string(ids[j]) + " outside [1, " + std::to_string(num_items) + "]");
}

/// The number of items in scores (size num_items+1, at least 2 entries).
inline index_t items_of(std::span<const float> scores, const char* where) {
  require(scores.size() >= 2, where, "scores need num_items+1 >= 2 entries (index 0 is padding), got ", scores.size());
  require(scores.size() - 1 <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()), where,
          "more items than int32 ids can name");
  return static_cast<index_t>(scores.size()) - 1;
}

/// The xsimd architecture of a simd backend, void for any other backend (plain loops).
template <class B>
struct row_arch {
  using type = void;
};
template <class B>
requires requires { typename B::arch; }
struct row_arch<B> {
  using type = typename B::arch;
};

/// Per-row work of the full-ranking evaluator on one score row s[0..n] (s[0] padding). `Arch` = void
/// runs plain loops; otherwise xsimd batches of that architecture.
///
/// Top-k: an item is appended to a small buffer only when it beats the running threshold, and a full
/// buffer is cut back to its k best keys, whose worst score becomes the new threshold — a later item with
/// exactly that score has a higher id and so ranks below all k kept. The threshold starts at −inf, or, on a
/// row the evaluator owns (excluded items overwritten with NaN), just below a lower bound of the k-th best
/// score: the k-th largest of the lane-wise maxima of disjoint strided subsets of the row, which are k
/// distinct candidates. Rows with fewer than k candidates above −inf (NaN, −inf scores) fall back to an
/// exact selection over every candidate.
template <class Arch>
struct row_pass {
  static constexpr index_t width = [] {
    if constexpr (std::is_void_v<Arch>)
      return index_t{1};
    else
      return static_cast<index_t>(xsimd::batch<float, Arch>::size);
  }();
  static constexpr index_t max_lanes = 4 * width;  // lane-wise maxima over 4 vectors

  /// Exact top-k by key over every candidate not marked `epoch` (the fallback).
  static index_t top_k_exact(const float* s, index_t n, const std::uint32_t* mark, std::uint32_t epoch,
                             std::span<std::int32_t> out, std::vector<std::uint64_t>& keys) {
    keys.clear();
    for (index_t c = 1; c <= n; ++c)
      if (mark[c] != epoch) keys.push_back(topk_key(s[c], static_cast<std::int32_t>(c)));
    const auto found = std::min(static_cast<index_t>(out.size()), static_cast<index_t>(keys.size()));
    std::partial_sort(keys.begin(), keys.begin() + found, keys.end(), std::greater<>{});
    for (index_t j = 0; j < static_cast<index_t>(out.size()); ++j)
      out[static_cast<std::size_t>(j)] = j < found ? topk_item(keys[static_cast<std::size_t>(j)]) : 0;
    return found;
  }

  /// Writes the top-k (k = out.size() >= 1) candidates of s[1..n] into `out` (0-padded), given that every
  /// one of them scores above `threshold`; returns how many were found. Marked: items marked `epoch` are
  /// not candidates; otherwise every non-NaN item is (an owned row, its excluded items already NaN).
  template <bool Marked>
  static index_t collect(const float* s, index_t n, float threshold, const std::uint32_t* mark, std::uint32_t epoch,
                         std::span<std::int32_t> out, std::vector<std::uint64_t>& buf) {
    const auto k = static_cast<index_t>(out.size());
    const auto cap = static_cast<std::size_t>(4 * k + 16);
    buf.resize(cap);
    std::size_t len = 0;
    const auto compact = [&] {  // keep the k best keys; their worst score is the new threshold
      std::nth_element(buf.begin(), buf.begin() + (k - 1), buf.begin() + static_cast<std::ptrdiff_t>(len),
                       std::greater<>{});
      len = static_cast<std::size_t>(k);
      threshold = s[topk_item(buf[static_cast<std::size_t>(k - 1)])];
    };
    const auto offer = [&](index_t j) {
      if (!(s[j] > threshold)) return;
      if constexpr (Marked)
        if (mark[j] == epoch) return;
      buf[len++] = topk_key(s[j], static_cast<std::int32_t>(j));
      if (len >= cap) compact();
    };
    index_t c = 1;
    if constexpr (!std::is_void_v<Arch>) {
      using batch = xsimd::batch<float, Arch>;
      batch th(threshold);
      for (; c + width <= n + 1; c += width) {
        if (!xsimd::any(batch::load_unaligned(s + c) > th)) [[likely]]
          continue;
        for (index_t l = 0; l < width; ++l) offer(c + l);
        th = batch(threshold);
      }
    }
    for (; c <= n; ++c) offer(c);
    if (static_cast<index_t>(len) < k) return top_k_exact(s, n, mark, epoch, out, buf);
    std::partial_sort(buf.begin(), buf.begin() + k, buf.begin() + static_cast<std::ptrdiff_t>(len), std::greater<>{});
    for (index_t j = 0; j < k; ++j) out[static_cast<std::size_t>(j)] = topk_item(buf[static_cast<std::size_t>(j)]);
    return k;
  }

  /// Counts s[1..n] above / equal to `t` (NaN counts as neither). For 1 <= k <= max_lanes on a simd arch,
  /// also returns in `bound` the k-th largest lane-wise maximum (−inf when there is none): at least k of
  /// the non-NaN entries are >= bound.
  static target_rank count(const float* s, index_t n, float t, index_t k, float& bound) {
    target_rank r;
    bound = -std::numeric_limits<float>::infinity();
    index_t c = 1;
    if constexpr (!std::is_void_v<Arch>) {
      using batch = xsimd::batch<float, Arch>;
      const batch tv(t), one(1.0f), zero(0.0f), low(-std::numeric_limits<float>::infinity());
      batch m0 = low, m1 = low, m2 = low, m3 = low;
      // Lane counts are kept in float, exact below 2^24: flushed to integers every 2^20 vectors.
      while (c + 4 * width <= n + 1) {
        batch g = zero, e = zero;
        const index_t stop = std::min<index_t>(n + 1 - 4 * width, c + (index_t{1} << 20) * width);
        for (; c <= stop; c += 4 * width) {
          const batch v0 = batch::load_unaligned(s + c), v1 = batch::load_unaligned(s + c + width);
          const batch v2 = batch::load_unaligned(s + c + 2 * width), v3 = batch::load_unaligned(s + c + 3 * width);
          g += xsimd::select(v0 > tv, one, zero) + xsimd::select(v1 > tv, one, zero) +
               xsimd::select(v2 > tv, one, zero) + xsimd::select(v3 > tv, one, zero);
          e += xsimd::select(v0 == tv, one, zero) + xsimd::select(v1 == tv, one, zero) +
               xsimd::select(v2 == tv, one, zero) + xsimd::select(v3 == tv, one, zero);
          m0 = xsimd::select(v0 > m0, v0, m0);  // a NaN never replaces a maximum
          m1 = xsimd::select(v1 > m1, v1, m1);
          m2 = xsimd::select(v2 > m2, v2, m2);
          m3 = xsimd::select(v3 > m3, v3, m3);
        }
        r.greater += static_cast<index_t>(xsimd::hadd(g));
        r.ties += static_cast<index_t>(xsimd::hadd(e));
      }
      if (k >= 1 && k <= max_lanes) {
        alignas(64) float lanes[max_lanes];
        m0.store_unaligned(lanes);
        m1.store_unaligned(lanes + width);
        m2.store_unaligned(lanes + 2 * width);
        m3.store_unaligned(lanes + 3 * width);
        std::nth_element(lanes, lanes + (k - 1), lanes + max_lanes, std::greater<>{});
        bound = lanes[k - 1];
      }
    }
    for (; c <= n; ++c) {
      r.greater += s[c] > t;
      r.ties += s[c] == t;
    }
    return r;
  }

  /// The target's place with the distinct items of `exclude` (the target aside) left out, and (for
  /// non-empty `out`) the top-k under the same rule; `s` is left unchanged. `mark` must hold no `epoch`.
  static target_rank evaluate(const float* s, index_t n, std::int32_t target, std::span<const std::int32_t> exclude,
                              std::uint32_t* mark, std::uint32_t epoch, std::span<std::int32_t> out,
                              std::vector<std::uint64_t>& buf) {
    const float t = s[target];
    index_t left_out = 0, greater_out = 0, ties_out = 0;
    for (const std::int32_t h : exclude) {
      if (h == target || mark[h] == epoch) continue;
      mark[h] = epoch;
      ++left_out;
      greater_out += s[h] > t;
      ties_out += s[h] == t;
    }
    float unused = 0;
    target_rank r = count(s, n, t, 0, unused);
    if (!out.empty()) collect<true>(s, n, -std::numeric_limits<float>::infinity(), mark, epoch, out, buf);
    if (std::isnan(t)) return {n - 1 - left_out, 0};  // every candidate ranks above a NaN target
    r.greater -= greater_out;
    r.ties -= ties_out + 1;  // the target equals itself
    return r;
  }

  /// As evaluate, on a row the caller gives up: the excluded items' scores are overwritten with NaN.
  static target_rank evaluate_owned(float* s, index_t n, std::int32_t target, std::span<const std::int32_t> exclude,
                                    std::uint32_t* mark, std::uint32_t epoch, std::span<std::int32_t> out,
                                    std::vector<std::uint64_t>& buf) {
    const float t = s[target];
    index_t left_out = 0;
    for (const std::int32_t h : exclude) {
      if (h == target || mark[h] == epoch) continue;
      mark[h] = epoch;
      ++left_out;
      s[h] = std::numeric_limits<float>::quiet_NaN();  // counted as neither above nor equal
    }
    const auto k = static_cast<index_t>(out.size());
    float bound = 0;
    target_rank r = count(s, n, t, k, bound);
    if (k > 0) {
      // Every top-k member scores >= bound, i.e. > the float just below it.
      const float threshold =
          bound == -std::numeric_limits<float>::infinity() ? bound : slim::detail::float_below(bound);
      collect<false>(s, n, threshold, mark, epoch, out, buf);
    }
    if (std::isnan(t)) return {n - 1 - left_out, 0};
    r.ties -= 1;  // the target equals itself
    return r;
  }
};

}  // namespace detail

/// Place of `target` among all items 1..num_items of `scores` (size num_items+1, index 0 = padding, never
/// a candidate), leaving out the items in `exclude` (the user's history; duplicates allowed; the target is
/// never left out even if it is in exclude). Throws on target or an excluded id outside [1, num_items].
inline target_rank rank_full(std::span<const float> scores, std::int32_t target,
                             std::span<const std::int32_t> exclude) {
  constexpr const char* where = "slim::metrics::rank_full";
  const index_t n = detail::items_of(scores, where);
  if (target < 1 || target > n)
    throw error(where, "target", "item id " + std::to_string(target) + " outside [1, " + std::to_string(n) + "]");
  detail::check_items(exclude, n, where, "exclude");
  std::vector<std::uint32_t> mark(static_cast<std::size_t>(n) + 1, 0);
  std::vector<std::uint64_t> buf;
  return detail::row_pass<void>::evaluate(scores.data(), n, target, exclude, mark.data(), 1, {}, buf);
}

/// The best out.size() candidates of `scores` (same layout and exclusions as rank_full; `keep`, when in
/// [1, num_items], stays a candidate even if excluded — pass the target to get the list rank_full ranks
/// against) in descending score, ties to the lower item id, NaN last. Returns how many were found; the
/// rest of `out` is set to 0 (fewer candidates than out.size()).
inline index_t top_k_full(std::span<const float> scores, std::span<const std::int32_t> exclude,
                          std::span<std::int32_t> out, std::int32_t keep = 0) {
  constexpr const char* where = "slim::metrics::top_k_full";
  const index_t n = detail::items_of(scores, where);
  detail::check_items(exclude, n, where, "exclude");
  std::vector<std::uint32_t> mark(static_cast<std::size_t>(n) + 1, 0);
  for (const std::int32_t h : exclude)
    if (h != keep) mark[static_cast<std::size_t>(h)] = 1;
  if (out.empty()) return 0;
  std::vector<std::uint64_t> buf;
  return detail::row_pass<void>::template collect<true>(scores.data(), n, -std::numeric_limits<float>::infinity(),
                                                        mark.data(), 1, out, buf);
}

/// Place of `target` among the sampled `negatives` (the sampled-N protocol) on a full score row (size
/// num_items+1): rank_among(scores[target], scores[negatives]). Throws on an id outside [1, num_items].
inline target_rank rank_sampled(std::span<const float> scores, std::int32_t target,
                                std::span<const std::int32_t> negatives) {
  constexpr const char* where = "slim::metrics::rank_sampled";
  const index_t n = detail::items_of(scores, where);
  if (target < 1 || target > n)
    throw error(where, "target", "item id " + std::to_string(target) + " outside [1, " + std::to_string(n) + "]");
  detail::check_items(negatives, n, where, "negatives");
  target_rank r;
  const float t = scores[static_cast<std::size_t>(target)];
  if (std::isnan(t)) return {static_cast<index_t>(negatives.size()), 0};
  for (const std::int32_t j : negatives) {
    const float s = scores[static_cast<std::size_t>(j)];
    r.greater += s > t;
    r.ties += s == t;
  }
  return r;
}

/// Options of rank_full_batched.
struct full_ranking_options {
  index_t top_k = 0;        ///< also return each user's top-k list under the same exclusions (0: none)
  index_t block_users = 0;  ///< users per score block (0: about 1 MiB of scores per block)
  /// With a sampler, also the sampled protocol on the same scores: per user `negatives` items drawn by
  /// sampler->sample(user_id, history + target, ..., stream) and the target ranked among them.
  const negative_sampler* sampler = nullptr;
  index_t negatives = 100;
  std::uint64_t stream = 0;
  /// The sampler's user id of each row of `users` (empty: the row index). Pass the dataset's user index
  /// when evaluating a subset, so a user gets the same negatives in every run.
  std::span<const index_t> user_ids = {};
};

/// What rank_full_batched returns: per user the target's place and, when asked, the top-k list and the
/// place under the sampled protocol.
struct full_ranking_result {
  std::vector<target_rank> ranks;    ///< (n_users) full ranking
  std::vector<target_rank> sampled;  ///< (n_users) sampled protocol (empty without a sampler)
  index_t k = 0;                     ///< length of each top-k list (0: none)
  std::vector<std::int32_t> top;     ///< (n_users, k) row-major; 0 pads a list with fewer than k candidates
  /// (n_users, k) the top-k among each user's sampled candidates (target + negatives), same order rule;
  /// filled with a sampler and top_k > 0 (for bias metrics under the sampled protocol).
  std::vector<std::int32_t> sampled_top;

  /// User u's top-k list.
  std::span<const std::int32_t> top_of(index_t u) const {
    return std::span<const std::int32_t>(top).subspan(static_cast<std::size_t>(u * k), static_cast<std::size_t>(k));
  }
  /// User u's top-k list among the sampled candidates.
  std::span<const std::int32_t> sampled_top_of(index_t u) const {
    return std::span<const std::int32_t>(sampled_top)
        .subspan(static_cast<std::size_t>(u * k), static_cast<std::size_t>(k));
  }
};

namespace detail {
/// histories[u] as a span: a callable history(u), or an indexable sequence of int32 ranges.
template <class Histories>
std::span<const std::int32_t> history_of(const Histories& h, index_t u) {
  if constexpr (std::is_invocable_v<const Histories&, index_t>)
    return std::span<const std::int32_t>(h(u));
  else
    return std::span<const std::int32_t>(h[static_cast<std::size_t>(u)]);
}
}  // namespace detail

/// Full-ranking evaluation of n_users users at once: scores = users · itemsᵀ (through
/// kernels<Backend>::gemm, `users` (n_users, d), `items` (num_items+1, d) with row 0 the padding
/// embedding), then for user u the place of targets[u] with histories[u] excluded (rank_full's rule) and,
/// with options.top_k > 0, the top-k list (top_k_full's rule, the target kept). `histories` is either
/// callable as histories(u) or indexable as histories[u], giving something a std::span<const int32_t>
/// can view (e.g. std::vector<std::vector<std::int32_t>>).
///
/// Users are processed in blocks whose scores fit a cache-sized buffer; blocks are shared over
/// backend.pool when Backend has one (simd), each block's GEMM runs on one thread, and each row is computed
/// the same way whatever the blocking, so results equal rank_full on users·itemsᵀ and do not depend on the
/// thread count.
template <class Backend, class Histories>
full_ranking_result rank_full_batched(const Backend& be, matrix_view<const float> users, matrix_view<const float> items,
                                      std::span<const std::int32_t> targets, const Histories& histories,
                                      full_ranking_options options = {}) {
  constexpr const char* where = "slim::metrics::rank_full_batched";
  static_assert(std::is_same_v<typename Backend::memory_space, host_space>,
                "slim::metrics::rank_full_batched: the score blocks live in host memory; pass a CPU backend");
  const index_t n_users = users.extent(0), d = users.extent(1), n = items.extent(0) - 1;
  require(users.data_handle() != nullptr || users.size() == 0, where, "users has no data");
  require(items.data_handle() != nullptr || items.size() == 0, where, "items has no data");
  require(d >= 1, where, "the embedding size must be positive, got ", d);
  require(items.extent(1) == d, where, "users (", n_users, ",", d, ") and items (", items.extent(0), ",",
          items.extent(1), ") differ in the embedding size");
  require(n >= 1 && n <= std::numeric_limits<std::int32_t>::max(), where,
          "items needs num_items+1 rows with 1 <= num_items < 2^31 (row 0 is padding), got ", items.extent(0));
  require(static_cast<index_t>(targets.size()) == n_users, where, "targets has ", targets.size(), " entries for ",
          n_users, " users");
  if constexpr (requires { std::size(histories); })
    require(static_cast<index_t>(std::size(histories)) == n_users, where, "histories has ", std::size(histories),
            " entries for ", n_users, " users");
  require(options.top_k >= 0 && options.top_k <= n, where, "top_k = ", options.top_k, " must lie in [0, ", n, "]");
  require(options.block_users >= 0, where, "block_users must not be negative");
  if (options.sampler) {
    require(options.sampler->num_items() == n, where, "the sampler draws from ", options.sampler->num_items(),
            " items, the catalogue has ", n);
    require(options.negatives >= 1, where, "negatives must be positive, got ", options.negatives);
    require(options.user_ids.empty() || static_cast<index_t>(options.user_ids.size()) == n_users, where,
            "user_ids has ", options.user_ids.size(), " entries for ", n_users, " users");
  }
  for (index_t u = 0; u < n_users; ++u) {
    const std::int32_t t = targets[static_cast<std::size_t>(u)];
    if (t < 1 || t > n)
      throw error(where, "targets[" + std::to_string(u) + "]",
                  "item id " + std::to_string(t) + " outside [1, " + std::to_string(n) + "]");
    const auto h = detail::history_of(histories, u);
    for (std::size_t j = 0; j < h.size(); ++j)
      if (h[j] < 1 || h[j] > n)
        throw error(where, "histories[" + std::to_string(u) + "][" + std::to_string(j) + "]",
                    "item id " + std::to_string(h[j]) + " outside [1, " + std::to_string(n) + "]");
  }

  full_ranking_result result;
  result.ranks.resize(static_cast<std::size_t>(n_users));
  result.k = options.top_k;
  result.top.assign(static_cast<std::size_t>(n_users * options.top_k), 0);
  if (options.sampler) result.sampled.resize(static_cast<std::size_t>(n_users));
  if (options.sampler && options.top_k > 0)
    result.sampled_top.assign(static_cast<std::size_t>(n_users * options.top_k), 0);
  if (n_users == 0) return result;

  using arch = typename detail::row_arch<Backend>::type;
  const index_t ld = (n + 1 + 15) / 16 * 16;  // score row stride: 64-byte multiples
  index_t block = options.block_users;
  if (block == 0) {
    // simd: as many users as the SGEMM micro-tile has rows (14 with 16-float vectors, else 6), so the
    // GEMM streams the dense itemsᵀ in place instead of repacking it per block (measured ~20% faster at
    // ML-1M size); any other backend: about 1 MiB of scores.
    if constexpr (!std::is_void_v<arch>)
      block = detail::row_pass<arch>::width >= 16 ? 14 : 6;
    else
      block = std::clamp<index_t>((index_t{1} << 18) / ld, 1, 512);
  }
  const index_t n_blocks = (n_users + block - 1) / block;
  thread_pool* pool = nullptr;
  if constexpr (requires { be.pool; }) pool = be.pool;
  const index_t parts = std::min<index_t>(n_blocks, pool ? static_cast<index_t>(pool->threads()) : 1);
  // Itemsᵀ copied once into a dense (d, num_items+1) matrix with 64-byte rows: the GEMM streams it in place.
  std::vector<float> items_t_data(static_cast<std::size_t>(d * ld), 0.0f);
  for (index_t i = 0; i <= n; ++i)
    for (index_t j = 0; j < d; ++j) items_t_data[static_cast<std::size_t>(j * ld + i)] = items(i, j);
  const matrix_view<const float> items_t{items_t_data.data(), {d, n + 1}, {ld, 1}};

  // One part per thread, each a contiguous run of blocks with its own score buffer and marks.
  parallel_for(pool, parts, 1, [&](index_t p0, index_t p1) {
    Backend local = be;
    if constexpr (requires { local.pool; }) local.pool = nullptr;
    std::vector<float> scores(static_cast<std::size_t>(std::min(block, n_users) * ld));
    std::vector<std::uint32_t> mark(static_cast<std::size_t>(n) + 1, 0);
    std::vector<std::uint64_t> buf;
    std::vector<std::int32_t> seen, negatives(options.sampler ? static_cast<std::size_t>(options.negatives) : 0);
    std::uint32_t epoch = 0;
    for (index_t p = p0; p < p1; ++p) {
      const index_t b0 = p * n_blocks / parts, b1 = (p + 1) * n_blocks / parts;
      for (index_t b = b0; b < b1; ++b) {
        const index_t u0 = b * block, rows = std::min(block, n_users - u0);
        matrix_view<float> c{scores.data(), {rows, n + 1}, {ld, 1}};
        kernels<Backend>::gemm(local, 1.0f, subview(users, {u0, 0}, {rows, d}), items_t, 0.0f, c);
        for (index_t r = 0; r < rows; ++r) {
          const index_t u = u0 + r;
          if (epoch == std::numeric_limits<std::uint32_t>::max()) {
            std::fill(mark.begin(), mark.end(), 0u);
            epoch = 0;
          }
          ++epoch;
          const std::span<std::int32_t> out(result.top.data() + u * options.top_k,
                                            static_cast<std::size_t>(options.top_k));
          float* row = scores.data() + r * ld;
          const std::int32_t target = targets[static_cast<std::size_t>(u)];
          const auto history = detail::history_of(histories, u);
          if (options.sampler) {  // first: the full-ranking pass overwrites the history's scores
            seen.assign(history.begin(), history.end());
            seen.push_back(target);
            const index_t id = options.user_ids.empty() ? u : options.user_ids[static_cast<std::size_t>(u)];
            options.sampler->sample(id, seen, negatives, options.stream);
            result.sampled[static_cast<std::size_t>(u)] =
                rank_sampled(std::span<const float>(row, static_cast<std::size_t>(n) + 1), target, negatives);
            if (options.top_k > 0) {
              buf.clear();
              buf.push_back(detail::topk_key(row[target], target));
              for (const std::int32_t j : negatives) buf.push_back(detail::topk_key(row[j], j));
              const auto kk = std::min<std::size_t>(static_cast<std::size_t>(options.top_k), buf.size());
              std::partial_sort(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(kk), buf.end(),
                                std::greater<>{});
              for (std::size_t j = 0; j < kk; ++j)
                result.sampled_top[static_cast<std::size_t>(u * options.top_k) + j] = detail::topk_item(buf[j]);
            }
          }
          result.ranks[static_cast<std::size_t>(u)] =
              detail::row_pass<arch>::evaluate_owned(row, n, target, history, mark.data(), epoch, out, buf);
        }
      }
    }
  });
  return result;
}

}  // namespace slim::metrics
