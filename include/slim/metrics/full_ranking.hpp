// slim — full-ranking evaluation: the held-out item's place among every item of the catalogue that the
// user has not interacted with, one user at a time (`rank_full`, `top_k_full`) or for all users at once
// from user and item embeddings (`rank_full_batched`: for a block of users, GEMM chunk by chunk of items,
// each chunk excluded and counted while in L1, then one pass per row for the top-k above a lower bound).
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
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>  // lane_bits / lane_mask name intrinsic types outside dependent code
#endif

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
/// The score a key was made from (−0 comes back as +0; a NaN key, never stored in a top-k buffer, as NaN).
inline float topk_score(std::uint64_t key) noexcept {
  const auto u = static_cast<std::uint32_t>(key >> 32);
  if (u == 0) return std::numeric_limits<float>::quiet_NaN();
  return std::bit_cast<float>((u & 0x80000000u) ? u ^ 0x80000000u : ~u);
}

/// The running top-k of one score row offered in pieces of increasing item id (row_pass::offer_range):
/// candidate keys above `threshold`, cut back to the k best whenever `cap` are held.
struct topk_run {
  std::vector<std::uint64_t> keys;
  std::size_t len = 0;
  index_t k = 0;
  /// Every member of the final top-k scores above this: raised by each cut (the k-th kept score: a later,
  /// higher id with that score ranks below all k) and by lower bounds of the k-th best score.
  float threshold = -std::numeric_limits<float>::infinity();

  void reset(index_t top_k) {
    k = top_k;
    keys.resize(static_cast<std::size_t>(4 * top_k + 16));
    len = 0;
    threshold = -std::numeric_limits<float>::infinity();
  }
  /// Raises the threshold to just below `bound`, a lower bound of the k-th best score (−inf: no bound).
  void raise_to(float bound) noexcept {
    if (bound == -std::numeric_limits<float>::infinity()) return;
    threshold = std::max(threshold, slim::detail::float_below(bound));
  }
  void offer(float x, std::int32_t item) {
    if (!(x > threshold)) return;
    keys[len++] = topk_key(x, item);
    if (len == keys.size()) {  // keep the k best keys; their worst score is the new threshold
      std::nth_element(keys.begin(), keys.begin() + (k - 1), keys.end(), std::greater<>{});
      len = static_cast<std::size_t>(k);
      threshold = topk_score(keys[static_cast<std::size_t>(k - 1)]);
    }
  }
};

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

/// Calls f(i) for every set bit i in [from, to) of the bitmap `bits` (bit i at bits[i / 64], i % 64), in order.
template <class F>
inline void for_each_bit(const std::uint64_t* bits, index_t from, index_t to, F&& f) {
  if (from >= to) return;
  const index_t w0 = from >> 6, w1 = (to - 1) >> 6;
  for (index_t w = w0; w <= w1; ++w) {
    std::uint64_t x = bits[w];
    if (w == w0) x &= ~std::uint64_t{0} << (from & 63);
    if (w == w1 && (to & 63) != 0) x &= ~(~std::uint64_t{0} << (to & 63));
    while (x != 0) {
      f(w * 64 + std::countr_zero(x));
      x &= x - 1;
    }
  }
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

/// The lanes of a float comparison as bits (lane l at bit l).
template <class Arch>
inline std::uint32_t lane_bits(const xsimd::batch_bool<float, Arch>& b) noexcept {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>)
    return static_cast<std::uint32_t>(b.data);
  else if constexpr (std::is_base_of_v<xsimd::avx, Arch>)
    return static_cast<std::uint32_t>(_mm256_movemask_ps(b));
  else if constexpr (std::is_base_of_v<xsimd::sse2, Arch>)
    return static_cast<std::uint32_t>(_mm_movemask_ps(b));
  else
#endif
  {
    std::uint32_t bits = 0;
    for (std::size_t l = 0; l < xsimd::batch_bool<float, Arch>::size; ++l) bits |= std::uint32_t{b.get(l)} << l;
    return bits;
  }
}

/// The lanes whose bit is set in `bits` (lane l at bit l) as a comparison mask — lane_bits' inverse.
template <class Arch>
inline xsimd::batch_bool<float, Arch> lane_mask(std::uint32_t bits) noexcept {
  using mask = xsimd::batch_bool<float, Arch>;
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    return mask(typename mask::register_type(static_cast<__mmask16>(bits)));
  } else if constexpr (std::is_base_of_v<xsimd::avx2, Arch>) {
    const __m256i lane = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return mask(_mm256_castsi256_ps(
        _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits)), lane), lane)));
  } else if constexpr (std::is_base_of_v<xsimd::sse2, Arch> && !std::is_base_of_v<xsimd::avx, Arch>) {
    const __m128i lane = _mm_setr_epi32(1, 2, 4, 8);
    return mask(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_and_si128(_mm_set1_epi32(static_cast<int>(bits)), lane), lane)));
  } else
#endif
  {
    alignas(64) float v[xsimd::batch<float, Arch>::size];
    for (std::size_t l = 0; l < xsimd::batch<float, Arch>::size; ++l) v[l] = static_cast<float>((bits >> l) & 1u);
    return xsimd::batch<float, Arch>::load_aligned(v) != xsimd::batch<float, Arch>(0.0f);
  }
}

/// Bits [at, at + count) of the bitmap `bits` (bit i at bits[i / 64], i % 64) as the low bits of the result;
/// the run must lie inside one word (count <= 64 − at % 64).
inline std::uint64_t bits_at(const std::uint64_t* bits, index_t at, index_t count) noexcept {
  const std::uint64_t x = bits[at >> 6] >> (at & 63);
  return count >= 64 ? x : x & ((std::uint64_t{1} << count) - 1);
}

/// Per-row work of the full-ranking evaluator on one score row s[0..n] (s[0] padding). `Arch` = void
/// runs plain loops; otherwise xsimd batches of that architecture.
///
/// Top-k: an item is appended to a small buffer only when it beats the running threshold, and a full
/// buffer is cut back to its k best keys, whose worst score becomes the new threshold — a later item with
/// exactly that score has a higher id and so ranks below all k kept. The threshold starts at −inf, or, in the
/// batched evaluator (excluded items masked by the row's bitmap), just below a lower bound of the k-th best
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

  /// Exact top-k by key over every candidate not marked `epoch`: top_k_full's definition, and the batched
  /// evaluator's fallback.
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

  /// Writes the k = out.size() largest of the distinct keys[0..len) (len >= k) in descending order. A
  /// short list (the usual case: a few dozen keys pass the threshold) is placed by counting, for each key,
  /// the keys above it — branch-free compares the compiler vectorises, where a comparison sort of random
  /// scores mispredicts about every other branch; a long one is partially sorted.
  static void order_top(std::uint64_t* keys, std::size_t len, std::span<std::int32_t> out) {
    const std::size_t k = out.size();
    if (len > 128) {
      std::partial_sort(keys, keys + k, keys + len, std::greater<>{});
      for (std::size_t j = 0; j < k; ++j) out[j] = topk_item(keys[j]);
      return;
    }
    for (std::size_t i = 0; i < len; ++i) {
      const std::uint64_t x = keys[i];
      std::size_t above = 0;
      for (std::size_t j = 0; j < len; ++j) above += keys[j] > x;
      if (above < k) out[above] = topk_item(x);  // keys are distinct (the item id is in them): ranks are too
    }
  }

  /// The k-th largest (1 <= k <= max_lanes) of the max_lanes lane maxima v (no NaN among them; simd archs
  /// only): the value with exactly k−1 others above it, ties counted by position. Each candidate is placed
  /// by comparing it with all max_lanes values at once (a few vector compares and two popcounts) — no
  /// branch on the data, where a comparison-based selection mispredicts about every other branch.
  static float kth_largest(const float* v, index_t k) {
    if constexpr (std::is_void_v<Arch>) {
      return v[0];  // not used without lanes
    } else {
      using batch = xsimd::batch<float, Arch>;
      const batch v0 = batch::load_unaligned(v), v1 = batch::load_unaligned(v + width);
      const batch v2 = batch::load_unaligned(v + 2 * width), v3 = batch::load_unaligned(v + 3 * width);
      const auto bits = [&](const batch& x, auto cmp) {
        return std::uint64_t{lane_bits<Arch>(cmp(v0, x))} | std::uint64_t{lane_bits<Arch>(cmp(v1, x))} << width |
               std::uint64_t{lane_bits<Arch>(cmp(v2, x))} << (2 * width) |
               std::uint64_t{lane_bits<Arch>(cmp(v3, x))} << (3 * width);
      };
      for (index_t i = 0; i < max_lanes; ++i) {
        const batch x(v[i]);
        const std::uint64_t above = bits(x, [](const batch& a, const batch& b) { return a > b; });
        const std::uint64_t equal = bits(x, [](const batch& a, const batch& b) { return a == b; });
        const std::uint64_t before = (std::uint64_t{1} << i) - 1;  // i < max_lanes <= 64
        if (std::popcount(above) + std::popcount(equal & before) == k - 1) return v[i];
      }
      return v[0];  // not reached: the ranks 0..max_lanes-1 are each taken once
    }
  }

  /// Offers s[0..len), the scores of items first_id.., to `run` (NaN never enters); with `out` given, not the
  /// entries whose bit is set there (s[c] at bit c; the bitmap starts at a word).
  static void offer_range(const float* s, index_t len, std::int32_t first_id, topk_run& run,
                          const std::uint64_t* out = nullptr) {
    index_t c = 0;
    if constexpr (!std::is_void_v<Arch>) {
      using batch = xsimd::batch<float, Arch>;
      batch th(run.threshold);
      for (; c + width <= len; c += width) {
        std::uint32_t bits = lane_bits<Arch>(batch::load_unaligned(s + c) > th);
        if (out != nullptr) bits &= ~static_cast<std::uint32_t>(bits_at(out, c, width));
        if (bits == 0) [[likely]]
          continue;
        do {  // only the lanes above the threshold (a cut may raise it on the way)
          const auto l = static_cast<index_t>(std::countr_zero(bits));
          run.offer(s[c + l], first_id + static_cast<std::int32_t>(c + l));
          bits &= bits - 1;
        } while (bits != 0);
        th = batch(run.threshold);
      }
    }
    for (; c < len; ++c)
      if (out == nullptr || bits_at(out, c, 1) == 0) run.offer(s[c], first_id + static_cast<std::int32_t>(c));
  }

  /// Counts s[0..len) above / equal to `t` (NaN counts as neither), leaving out, with `out` given, the
  /// entries whose bit is set there (s[c] at bit c; the bitmap starts at a word). On a simd arch with `lanes`
  /// given (max_lanes floats), also folds the entries counted into those lane-wise maxima over disjoint
  /// strided subsets (a NaN never replaces a maximum): any k of them bound k distinct entries from below.
  static target_rank count(const float* s, index_t len, float t, float* lanes, const std::uint64_t* out = nullptr) {
    if (out != nullptr) return count_in<true>(s, len, t, lanes, out);
    return count_in<false>(s, len, t, lanes, out);
  }

 private:
  template <bool Masked>
  static target_rank count_in(const float* s, index_t len, float t, float* lanes, const std::uint64_t* out) {
    target_rank r;
    index_t c = 0;
    if constexpr (!std::is_void_v<Arch>) {
      using batch = xsimd::batch<float, Arch>;
      static_assert(64 % (4 * width) == 0, "a group of four vectors must lie inside one bitmap word");
      const batch tv(t), one(1.0f), zero(0.0f), low(-std::numeric_limits<float>::infinity());
      batch m0 = low, m1 = low, m2 = low, m3 = low;
      if (lanes) {
        m0 = batch::load_unaligned(lanes);
        m1 = batch::load_unaligned(lanes + width);
        m2 = batch::load_unaligned(lanes + 2 * width);
        m3 = batch::load_unaligned(lanes + 3 * width);
      }
      // Lane counts are kept in float, exact below 2^24: flushed to integers every 2^20 vectors.
      while (c + 4 * width <= len) {
        batch g = zero, e = zero;
        const index_t stop = std::min<index_t>(len - 4 * width, c + (index_t{1} << 20) * width);
        for (; c <= stop; c += 4 * width) {
          batch v0 = batch::load_unaligned(s + c), v1 = batch::load_unaligned(s + c + width);
          batch v2 = batch::load_unaligned(s + c + 2 * width), v3 = batch::load_unaligned(s + c + 3 * width);
          if constexpr (Masked) {  // a left-out entry becomes NaN: counted as neither, never a maximum
            // (no branch on whether the group has one: most groups of a long history do, many do not)
            constexpr std::uint64_t lane_all = (std::uint64_t{1} << width) - 1;
            const std::uint64_t x = bits_at(out, c, 4 * width);
            const batch nan(std::numeric_limits<float>::quiet_NaN());
            v0 = xsimd::select(lane_mask<Arch>(static_cast<std::uint32_t>(x & lane_all)), nan, v0);
            v1 = xsimd::select(lane_mask<Arch>(static_cast<std::uint32_t>((x >> width) & lane_all)), nan, v1);
            v2 = xsimd::select(lane_mask<Arch>(static_cast<std::uint32_t>((x >> (2 * width)) & lane_all)), nan, v2);
            v3 = xsimd::select(lane_mask<Arch>(static_cast<std::uint32_t>((x >> (3 * width)) & lane_all)), nan, v3);
          }
          g += xsimd::select(v0 > tv, one, zero) + xsimd::select(v1 > tv, one, zero) +
               xsimd::select(v2 > tv, one, zero) + xsimd::select(v3 > tv, one, zero);
          e += xsimd::select(v0 == tv, one, zero) + xsimd::select(v1 == tv, one, zero) +
               xsimd::select(v2 == tv, one, zero) + xsimd::select(v3 == tv, one, zero);
          m0 = xsimd::select(v0 > m0, v0, m0);
          m1 = xsimd::select(v1 > m1, v1, m1);
          m2 = xsimd::select(v2 > m2, v2, m2);
          m3 = xsimd::select(v3 > m3, v3, m3);
        }
        r.greater += static_cast<index_t>(xsimd::hadd(g));
        r.ties += static_cast<index_t>(xsimd::hadd(e));
      }
      if (lanes) {
        m0.store_unaligned(lanes);
        m1.store_unaligned(lanes + width);
        m2.store_unaligned(lanes + 2 * width);
        m3.store_unaligned(lanes + 3 * width);
      }
    }
    for (; c < len; ++c) {
      if constexpr (Masked)
        if (bits_at(out, c, 1) != 0) continue;
      r.greater += s[c] > t;
      r.ties += s[c] == t;
    }
    return r;
  }

 public:

  /// The target's place with the distinct items of `exclude` (the target aside) left out; `s` is left
  /// unchanged. `mark` must hold no `epoch`.
  static target_rank evaluate(const float* s, index_t n, std::int32_t target, std::span<const std::int32_t> exclude,
                              std::uint32_t* mark, std::uint32_t epoch) {
    const float t = s[target];
    index_t left_out = 0, greater_out = 0, ties_out = 0;
    for (const std::int32_t h : exclude) {
      if (h == target || mark[h] == epoch) continue;
      mark[h] = epoch;
      ++left_out;
      greater_out += s[h] > t;
      ties_out += s[h] == t;
    }
    target_rank r = count(s + 1, n, t, nullptr);
    if (std::isnan(t)) return {n - 1 - left_out, 0};  // every candidate ranks above a NaN target
    r.greater -= greater_out;
    r.ties -= ties_out + 1;  // the target equals itself
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
  return detail::row_pass<void>::evaluate(scores.data(), n, target, exclude, mark.data(), 1);
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
  // The definition, kept plain (the batched evaluator is tested against it): every candidate's key, sorted.
  std::vector<std::uint64_t> keys;
  return detail::row_pass<void>::top_k_exact(scores.data(), n, mark.data(), 1, out, keys);
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
  index_t block_users = 0;  ///< users per block (0: the SGEMM micro-tile's rows on simd, 16 otherwise)
  index_t chunk_items = 0;  ///< items per score chunk, rounded up to a power of two >= 64 and >= one GEMM panel (0: 512)
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
/// Users are processed in blocks and items in chunks (docs/metrics.md, "The batched evaluator"); blocks are
/// shared over backend.pool when Backend has one (simd), each block's GEMMs run on one thread, and every
/// score is computed the same way whatever the blocking or chunking, so results equal rank_full on
/// users·itemsᵀ and do not depend on the thread count.
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
  require(options.chunk_items >= 0, where, "chunk_items must not be negative");
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
  using pass = detail::row_pass<arch>;
  index_t block = options.block_users;
  if (block == 0) {
    // simd: as many users as the SGEMM micro-tile has rows (14 with 16-float vectors, else 6), so each chunk's
    // GEMM is one row of micro-tiles over the packed itemsᵀ panels; any other backend: 16.
    if constexpr (!std::is_void_v<arch>)
      block = pass::width >= 16 ? 14 : 6;
    else
      block = 16;
  }
  // Items in chunks of `width` (a power of two, at least 64 items — one word of the exclusion bitmaps — and one
  // GEMM panel): a block's scores for one chunk (14 × 512 floats, 28 KiB) stay in L1 between the GEMM that
  // writes them and the pass that counts them.
  using packed_t = typename kernels<Backend>::packed_b;
  static_assert(std::has_single_bit(static_cast<std::uint64_t>(packed_t::panel_width)),
                "slim::metrics::rank_full_batched: the backend's GEMM panels must be a power of two wide");
  const int shift = std::max({6, std::countr_zero(static_cast<std::uint64_t>(packed_t::panel_width)),
                              static_cast<int>(std::bit_width(static_cast<std::uint64_t>(
                                  std::min<index_t>(options.chunk_items > 0 ? options.chunk_items : 512, n + 1) - 1)))});
  const index_t width = index_t{1} << shift;  // item i lies in chunk i >> shift
  const index_t n_chunks = (n + 1 + width - 1) / width;
  const index_t n_blocks = (n_users + block - 1) / block;
  thread_pool* pool = nullptr;
  if constexpr (requires { be.pool; }) pool = be.pool;
  const index_t parts = std::min<index_t>(n_blocks, pool ? static_cast<index_t>(pool->threads()) : 1);
  // Itemsᵀ packed once into the GEMM's own panels, so no chunk GEMM copies or strides through it; chunk c is
  // its columns c·width .. (each chunk starts a panel, as width is a multiple of the panel width).
  const packed_t items_t = kernels<Backend>::pack_b(be, transpose(items));

  // One part per thread, each a contiguous run of blocks with its own buffers.
  parallel_for(pool, parts, 1, [&](index_t p0, index_t p1) {
    Backend local = be;
    if constexpr (requires { local.pool; }) local.pool = nullptr;
    const index_t rows_max = std::min(block, n_users);
    const index_t ld = n_chunks * width;
    std::vector<float> scores(static_cast<std::size_t>(rows_max * ld));  // a block's rows
    std::vector<float> gathered(static_cast<std::size_t>(rows_max * d)), diag(static_cast<std::size_t>(rows_max * rows_max));
    // Per row of the block: its excluded items as a bitmap over item ids (one bit per item: duplicates and
    // order cost nothing, and a chunk's items are a run of words), the running counts and top-k, and the
    // sampled negatives with their scores.
    const index_t words = (ld + 63) / 64;
    std::vector<std::uint64_t> excluded(static_cast<std::size_t>(rows_max * words));
    std::vector<std::uint32_t> mark;  // the fallback's exclusion marks (filled from the bitmap)
    std::vector<target_rank> counts(static_cast<std::size_t>(rows_max));
    std::vector<detail::topk_run> runs(static_cast<std::size_t>(rows_max));
    const std::size_t n_neg = options.sampler ? static_cast<std::size_t>(options.negatives) : 0;
    std::vector<std::int32_t> seen, negatives(static_cast<std::size_t>(rows_max) * n_neg);
    std::vector<float> neg_scores(negatives.size());
    std::vector<std::uint64_t> keys;
    // Per row, the lane-wise maxima of its candidates so far (simd, 1 <= k <= max_lanes): the source of a
    // lower bound on its k-th best score, which keeps most items out of the top-k buffer.
    const bool with_lanes = !std::is_void_v<arch> && options.top_k >= 1 && options.top_k <= pass::max_lanes;
    std::vector<float> lanes(with_lanes ? static_cast<std::size_t>(rows_max * pass::max_lanes) : 0);
    for (index_t p = p0; p < p1; ++p) {
      const index_t b0 = p * n_blocks / parts, b1 = (p + 1) * n_blocks / parts;
      for (index_t b = b0; b < b1; ++b) {
        const index_t u0 = b * block, rows = std::min(block, n_users - u0);
        const matrix_view<const float> ub = subview(users, {u0, 0}, {rows, d});
        // The targets' scores: users · (their target items)ᵀ through the same GEMM, whose every entry is the
        // same sum in the same order as the chunk GEMMs' — so each equals its own column there bit for bit.
        for (index_t r = 0; r < rows; ++r)
          for (index_t j = 0; j < d; ++j)
            gathered[static_cast<std::size_t>(r * d + j)] = items(targets[static_cast<std::size_t>(u0 + r)], j);
        kernels<Backend>::gemm(local, 1.0f, ub,
                               transpose(matrix_view<const float>{gathered.data(), {rows, d}, {d, 1}}), 0.0f,
                               matrix_view<float>{diag.data(), {rows, rows}, {rows, 1}});
        for (index_t r = 0; r < rows; ++r) {
          const index_t u = u0 + r;
          const std::int32_t target = targets[static_cast<std::size_t>(u)];
          const auto history = detail::history_of(histories, u);
          std::uint64_t* bits = excluded.data() + r * words;
          std::fill(bits, bits + words, std::uint64_t{0});
          for (const std::int32_t h : history) bits[h >> 6] |= std::uint64_t{1} << (h & 63);
          bits[target >> 6] &= ~(std::uint64_t{1} << (target & 63));  // the target is never left out
          bits[0] |= 1;                                                // the padding item never enters
          counts[static_cast<std::size_t>(r)] = {};
          if (options.top_k > 0) runs[static_cast<std::size_t>(r)].reset(options.top_k);
          if (with_lanes)
            std::fill(lanes.begin() + r * pass::max_lanes, lanes.begin() + (r + 1) * pass::max_lanes,
                      -std::numeric_limits<float>::infinity());
          if (options.sampler) {
            seen.assign(history.begin(), history.end());
            seen.push_back(target);
            const index_t id = options.user_ids.empty() ? u : options.user_ids[static_cast<std::size_t>(u)];
            options.sampler->sample(id, seen, std::span<std::int32_t>(negatives.data() + r * static_cast<index_t>(n_neg), n_neg),
                                    options.stream);
          }
        }

        for (index_t c = 0; c < n_chunks; ++c) {
          const index_t first = c * width, cols = std::min(width, n + 1 - first);
          matrix_view<float> cv{scores.data() + first, {rows, cols}, {ld, 1}};
          kernels<Backend>::gemm(local, 1.0f, ub, items_t, first, 0.0f, cv);
          for (index_t r = 0; r < rows; ++r) {
            float* row = scores.data() + r * ld + first;
            if (options.sampler) {
              const index_t base = r * static_cast<index_t>(n_neg);
              for (std::size_t j = 0; j < n_neg; ++j) {
                const std::int32_t it = negatives[static_cast<std::size_t>(base) + j];
                if (it >= first && it < first + cols) neg_scores[static_cast<std::size_t>(base) + j] = row[it - first];
              }
            }
            const float t = diag[static_cast<std::size_t>(r * rows + r)];
            float* lr = with_lanes ? lanes.data() + r * pass::max_lanes : nullptr;
            const target_rank part = pass::count(row, cols, t, lr, excluded.data() + r * words + first / 64);
            counts[static_cast<std::size_t>(r)].greater += part.greater;
            counts[static_cast<std::size_t>(r)].ties += part.ties;
          }
        }
        if (options.top_k > 0)
          for (index_t r = 0; r < rows; ++r) {
            // The whole row once more (from L2): the k-th largest lane maximum bounds the k-th best score from
            // below, since k distinct candidates reach it, so only a few dozen items enter the buffer.
            detail::topk_run& run = runs[static_cast<std::size_t>(r)];
            if (with_lanes) run.raise_to(pass::kth_largest(lanes.data() + r * pass::max_lanes, options.top_k));
            pass::offer_range(scores.data() + r * ld, n + 1, 0, run, excluded.data() + r * words);
          }

        for (index_t r = 0; r < rows; ++r) {
          const index_t u = u0 + r;
          const std::int32_t target = targets[static_cast<std::size_t>(u)];
          const float t = diag[static_cast<std::size_t>(r * rows + r)];
          target_rank rank = counts[static_cast<std::size_t>(r)];
          if (std::isnan(t)) {  // every candidate ranks above a NaN target
            index_t left_out = 0;
            detail::for_each_bit(excluded.data() + r * words, 1, n + 1, [&](index_t) { ++left_out; });
            rank = {n - 1 - left_out, 0};
          }
          else
            rank.ties -= 1;  // the target equals itself
          result.ranks[static_cast<std::size_t>(u)] = rank;
          if (options.top_k > 0) {
            const std::span<std::int32_t> out(result.top.data() + u * options.top_k,
                                              static_cast<std::size_t>(options.top_k));
            detail::topk_run& run = runs[static_cast<std::size_t>(r)];
            if (static_cast<index_t>(run.len) >= options.top_k) {
              pass::order_top(run.keys.data(), run.len, out);
            } else {
              // Fewer than k candidates above −inf (NaN or −inf scores): the row again, selected exactly.
              std::vector<float> full(static_cast<std::size_t>(n) + 1);
              kernels<Backend>::gemm(local, 1.0f, subview(users, {u, 0}, {1, d}), items_t, 0, 0.0f,
                                     matrix_view<float>{full.data(), {1, n + 1}, {n + 1, 1}});
              mark.assign(static_cast<std::size_t>(n) + 1, 0u);
              detail::for_each_bit(excluded.data() + r * words, 0, n + 1,
                                   [&](index_t item) { mark[static_cast<std::size_t>(item)] = 1; });
              pass::top_k_exact(full.data(), n, mark.data(), 1, out, keys);
            }
          }
          if (options.sampler) {
            const std::size_t base = static_cast<std::size_t>(r) * n_neg;
            const std::span<const float> ns(neg_scores.data() + base, n_neg);
            result.sampled[static_cast<std::size_t>(u)] = rank_among(t, ns);
            if (options.top_k > 0) {
              keys.clear();
              keys.push_back(detail::topk_key(t, target));
              for (std::size_t j = 0; j < n_neg; ++j) keys.push_back(detail::topk_key(ns[j], negatives[base + j]));
              const auto kk = std::min<std::size_t>(static_cast<std::size_t>(options.top_k), keys.size());
              pass::order_top(keys.data(), keys.size(),
                              std::span<std::int32_t>(result.sampled_top.data() + u * options.top_k, kk));
            }
          }
        }
      }
    }
  });
  return result;
}

}  // namespace slim::metrics
