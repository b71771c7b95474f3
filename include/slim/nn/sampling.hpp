// slim — choosing the next token from a row of logits: greedy argmax, or a seeded draw from the distribution
// after temperature, top-k and top-p (applied in that order, as Hugging Face's logits warpers are).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/core/philox.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::nn {

/// How the next token is chosen. Conventions:
///   * `greedy` (or `temperature == 0`): the largest logit; ties go to the lower id; NaN is never chosen.
///   * Otherwise the logits are warped in Hugging Face's order — divided by `temperature`, cut to the `top_k`
///     largest (0 = off), then cut to the smallest most-probable set whose probability is ≥ `top_p` (1 = off)
///     — and one token is drawn from what is left, renormalised.
///   * top-k and top-p rank candidates by logit, descending, ties to the lower id. top-k keeps exactly k
///     tokens (HF also keeps every token tied with the k-th; slim breaks the tie by id). top-p sums
///     probabilities after the top-k cut, in rank order, and stops at the first prefix that reaches top_p.
///   * NaN logits are never candidates; −inf logits have probability 0; if any logit is +inf, the +inf tokens
///     share the probability equally.
struct sampling_config {
  bool greedy = true;        ///< argmax; the fields below are then ignored
  double temperature = 1.0;  ///< > 0 (0 means greedy); logits are divided by it
  index_t top_k = 0;         ///< keep the k most likely tokens; 0 = no cut
  double top_p = 1.0;        ///< in (0, 1]: keep the smallest most-likely set with probability ≥ top_p

  /// True when the choice is an argmax (no random draw).
  constexpr bool is_greedy() const noexcept { return greedy || temperature == 0.0; }

  /// Throws slim::error naming the field unless the values are usable.
  void validate() const {
    if (!(temperature >= 0.0) || !std::isfinite(temperature))
      throw error("slim::nn::sampling_config", "temperature",
                  "must be finite and >= 0, got " + std::to_string(temperature));
    if (top_k < 0) throw error("slim::nn::sampling_config", "top_k", "must be >= 0, got " + std::to_string(top_k));
    if (!(top_p > 0.0 && top_p <= 1.0))
      throw error("slim::nn::sampling_config", "top_p", "must be in (0, 1], got " + std::to_string(top_p));
  }
};

/// One candidate of a warped distribution: token id and its probability.
struct token_probability {
  std::int32_t id;
  double probability;
};

/// The index of the largest logit, ties to the lower id, NaN skipped. Throws slim::error when the row is empty
/// or every logit is NaN. (All −inf gives id 0: every token is tied.)
template <class T>
std::int32_t argmax_token(std::span<const T> logits) {
  std::int32_t best = -1;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const T v = logits[i];
    if (std::isnan(v)) continue;
    if (best < 0 || v > logits[static_cast<std::size_t>(best)]) best = static_cast<std::int32_t>(i);
  }
  if (best < 0) throw error("slim::nn::argmax_token", "", "no token to choose: the logits row is empty or all NaN");
  return best;
}

/// The distribution a sampled step draws from: the surviving candidates in ascending id order with
/// probabilities (computed in double) that sum to 1. For a greedy config, the single argmax with probability 1.
template <class T>
std::vector<token_probability> token_distribution(std::span<const T> logits, const sampling_config& cfg) {
  cfg.validate();
  if (cfg.is_greedy()) return {{argmax_token(logits), 1.0}};
  constexpr double inf = std::numeric_limits<double>::infinity();
  const auto logit = [&](std::int32_t i) { return static_cast<double>(logits[static_cast<std::size_t>(i)]); };
  // Candidates: with any +inf logit, the +inf tokens (equal share); otherwise the finite ones.
  bool has_pos_inf = false;
  for (const T v : logits) has_pos_inf = has_pos_inf || static_cast<double>(v) == inf;
  std::vector<std::int32_t> idx;
  idx.reserve(logits.size());
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const double v = static_cast<double>(logits[i]);
    if (has_pos_inf ? v == inf : std::isfinite(v)) idx.push_back(static_cast<std::int32_t>(i));
  }
  if (idx.empty()) return {{argmax_token(logits), 1.0}};  // all −inf: id 0 (all tied); all NaN: throws
  // Rank order: logit descending, ties to the lower id (dividing by a temperature > 0 keeps it).
  const auto before = [&](std::int32_t a, std::int32_t b) {
    const double la = logit(a), lb = logit(b);
    return la > lb || (la == lb && a < b);
  };
  if (cfg.top_k > 0 && static_cast<std::size_t>(cfg.top_k) < idx.size()) {
    std::nth_element(idx.begin(), idx.begin() + (cfg.top_k - 1), idx.end(), before);
    idx.resize(static_cast<std::size_t>(cfg.top_k));
    std::sort(idx.begin(), idx.end());
  }
  // Softmax of logit / temperature over the kept set, summed in id order.
  double top = -inf;
  for (const std::int32_t i : idx) top = std::max(top, logit(i));
  std::vector<token_probability> out(idx.size());
  double total = 0;
  for (std::size_t j = 0; j < idx.size(); ++j) {
    const double w = has_pos_inf ? 1.0 : std::exp((logit(idx[j]) - top) / cfg.temperature);
    out[j] = {idx[j], w};
    total += w;
  }
  for (auto& c : out) c.probability /= total;
  if (cfg.top_p >= 1.0 || out.size() == 1) return out;

  // top-p: the shortest rank-order prefix whose probability reaches top_p (at least one token). Rank the
  // first m candidates only, doubling m until the prefix is found: O(V log m) rather than a full sort.
  std::vector<std::size_t> rank(out.size());
  for (std::size_t j = 0; j < rank.size(); ++j) rank[j] = j;
  const auto rank_before = [&](std::size_t a, std::size_t b) { return before(out[a].id, out[b].id); };
  std::size_t n = 0;
  for (std::size_t m = std::min<std::size_t>(64, rank.size());; m = std::min(2 * m, rank.size())) {
    std::partial_sort(rank.begin(), rank.begin() + static_cast<std::ptrdiff_t>(m), rank.end(), rank_before);
    double cum = 0;
    for (n = 0; n < m;) {
      cum += out[rank[n]].probability;
      ++n;
      if (cum >= cfg.top_p) break;
    }
    if (cum >= cfg.top_p || m == rank.size()) break;
  }
  rank.resize(n);
  std::sort(rank.begin(), rank.end());  // back to id order
  std::vector<token_probability> kept(n);
  double sum = 0;
  for (std::size_t j = 0; j < n; ++j) {
    kept[j] = out[rank[j]];
    sum += kept[j].probability;
  }
  for (auto& c : kept) c.probability /= sum;
  return kept;
}

/// The uniform double in [0, 1) (53 random bits) that sampling step `step` of stream `stream` under `seed`
/// uses: one Philox4x32-10 block with counter (step, stream ^ domain tag) and key `seed`. A pure function of
/// the three numbers, so a row's draws depend neither on the other rows of its batch nor on the thread count.
constexpr double sampling_uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t step) noexcept {
  constexpr std::uint32_t domain = 0x53414d50u;  // "SAMP": keeps these blocks apart from philox_stream(seed)'s
  const philox_block b = philox4x32_10(
      philox_block{{static_cast<std::uint32_t>(step), static_cast<std::uint32_t>(step >> 32),
                    static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32) ^ domain}},
      static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  const std::uint64_t bits = (static_cast<std::uint64_t>(b.v[0] >> 5) << 26) | (b.v[1] >> 6);  // 27 + 26 bits
  return static_cast<double>(bits) * (1.0 / 9007199254740992.0);                               // / 2^53
}

/// Draws from `dist` (as returned by token_distribution) with `u` in [0, 1): the first candidate, in the
/// order given (ascending id), whose cumulative probability exceeds u·(sum of probabilities).
inline std::int32_t draw_token(std::span<const token_probability> dist, double u) {
  if (dist.empty()) throw error("slim::nn::draw_token", "", "empty distribution");
  double total = 0;
  for (const auto& c : dist) total += c.probability;
  const double target = u * total;
  double cum = 0;
  for (const auto& c : dist) {
    cum += c.probability;
    if (cum > target) return c.id;
  }
  return dist.back().id;  // only reachable through rounding when u is within an ulp of 1
}

/// Chooses the next token from one row of logits: argmax when `cfg` is greedy, else a draw from
/// token_distribution with sampling_uniform(seed, stream, step).
template <class T>
std::int32_t select_token(std::span<const T> logits, const sampling_config& cfg, std::uint64_t seed,
                          std::uint64_t stream, std::uint64_t step) {
  if (cfg.is_greedy()) return argmax_token(logits);
  const std::vector<token_probability> dist = token_distribution(logits, cfg);
  if (dist.size() == 1) return dist[0].id;
  return draw_token(dist, sampling_uniform(seed, stream, step));
}

}  // namespace slim::nn
