// slim — the training objective shared by the sequential backbones: which positions of a user's training
// sequence are trained on, the sampled negatives, and the loss of scores s·E[i] (binary cross-entropy
// against one sampled negative per position, or softmax cross-entropy over every item) with its gradients.
// Item 0 (padding) is never a target, a negative or a softmax column.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "slim/backend/kernels.hpp"
#include "slim/core/philox.hpp"
#include "slim/nn/context.hpp"
#include "slim/rec/dataset.hpp"
#include "slim/train/losses.hpp"

namespace slim::rec {

/// The training loss of a backbone.
enum class rec_loss {
  bce,  ///< binary cross-entropy: the target against one sampled negative per position (SASRec's own)
  ce,   ///< softmax cross-entropy over every item (RecBole's default), padding excluded
};

inline std::string_view loss_name(rec_loss l) noexcept { return l == rec_loss::bce ? "bce" : "ce"; }

/// The number of training positions of a user: the last m = min(|train| − 1, max_len) steps, step j taking
/// input train[|train|−1−m+j] and target train[|train|−m+j].
inline index_t training_steps(const std::vector<item_id>& train, index_t max_len) noexcept {
  return std::max<index_t>(0, std::min<index_t>(static_cast<index_t>(train.size()) - 1, max_len));
}

/// Philox key of the training negatives of (user, epoch) under the run's seed.
inline std::uint64_t negative_key(std::uint64_t seed, std::uint64_t epoch, index_t user) noexcept {
  const auto u = static_cast<std::uint64_t>(user);
  const philox_block b = philox4x32_10(philox_block{{static_cast<std::uint32_t>(u), static_cast<std::uint32_t>(u >> 32),
                                                     static_cast<std::uint32_t>(epoch), 0x4e4547u}},
                                       static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  return static_cast<std::uint64_t>(b.v[0]) | (static_cast<std::uint64_t>(b.v[1]) << 32);
}

/// Training negatives of one user: per position j, uniform over 1..num_items, redrawn while it is in the
/// user's training sequence (the original SASRec's random_neq). Position j reads its own Philox stream, so
/// the draws depend on (seed, epoch, user, j) only.
class training_negatives {
 public:
  explicit training_negatives(index_t num_items)
      : num_items_(num_items), seen_(static_cast<std::size_t>(num_items) + 1, 0) {}

  /// Fills out[j] for the positions j of `user`, whose training sequence is `train`.
  void sample(std::uint64_t seed, std::uint64_t epoch, index_t user, const std::vector<item_id>& train,
              std::span<std::int32_t> out) {
    constexpr const char* where = "slim::rec::training_negatives";
    index_t distinct = 0;
    for (const item_id it : train) {
      require(it >= 1 && it <= num_items_, where, "user ", user, " has item ", it, " outside [1, ", num_items_, "]");
      distinct += seen_[static_cast<std::size_t>(it)] == 0;
      seen_[static_cast<std::size_t>(it)] = 1;
    }
    if (distinct >= num_items_) {
      for (const item_id it : train) seen_[static_cast<std::size_t>(it)] = 0;
      throw error(where, "user " + std::to_string(user), "has interacted with every item: no negative can be drawn");
    }
    const std::uint64_t key = negative_key(seed, epoch, user);
    for (std::size_t j = 0; j < out.size(); ++j) {
      philox_stream rng(key, static_cast<std::uint64_t>(j) << 32);
      std::int32_t item = 0;
      do item = static_cast<std::int32_t>(1 + rng.below(static_cast<std::uint32_t>(num_items_)));
      while (seen_[static_cast<std::size_t>(item)]);
      out[j] = item;
    }
    for (const item_id it : train) seen_[static_cast<std::size_t>(it)] = 0;
  }

 private:
  index_t num_items_;
  std::vector<std::uint8_t> seen_;
};

/// The loss of user vectors s (N, d) against an item table E (num_items+1, d) with row-wise targets (and,
/// for BCE, negatives): returns the SUM over rows and adds scale·∂/∂s to ds and scale·∂/∂E to dE.
template <class Backend, class T>
class item_objective {
 public:
  double operator()(const Backend& be, rec_loss loss, matrix_view<const T> s, matrix_view<const T> table,
                    std::span<const std::int32_t> targets, std::span<const std::int32_t> negatives, matrix_view<T> ds,
                    matrix_view<T> dtable, T scale) {
    const index_t n = s.extent(0);
    require(static_cast<index_t>(targets.size()) == n, "slim::rec::item_objective", "targets has ", targets.size(),
            " entries for ", n, " rows");
    if (loss == rec_loss::bce) {
      require(static_cast<index_t>(negatives.size()) == n, "slim::rec::item_objective", "negatives has ",
              negatives.size(), " entries for ", n, " rows");
      return bce(be, s, table, targets, negatives, ds, dtable, scale);
    }
    return ce(be, s, table, targets, ds, dtable, scale);
  }

 private:
  /// Σₙ softplus(−s·E[tₙ]) + softplus(s·E[negₙ]).
  double bce(const Backend& be, matrix_view<const T> s, matrix_view<const T> table,
             std::span<const std::int32_t> targets, std::span<const std::int32_t> negatives, matrix_view<T> ds,
             matrix_view<T> dtable, T scale) {
    const index_t n = s.extent(0), d = s.extent(1);
    const auto lg = logits_.resize(1, 2 * n);
    T* pos = lg.data_handle();
    T* neg = pos + n;
    parallel_for(nn::pool_of(be), n, 256, [&](index_t r0, index_t r1) {
      for (index_t r = r0; r < r1; ++r) {
        const T* sr = &s(r, 0);
        const T* et = &table(targets[static_cast<std::size_t>(r)], 0);
        const T* en = &table(negatives[static_cast<std::size_t>(r)], 0);
        T a = T(0), b = T(0);
        for (index_t c = 0; c < d; ++c) {
          a += sr[c] * et[c];
          b += sr[c] * en[c];
        }
        pos[r] = a;
        neg[r] = b;
      }
    });
    const auto lb = labels_.resize(1, 2 * n);
    std::fill(lb.data_handle(), lb.data_handle() + n, T(1));
    std::fill(lb.data_handle() + n, lb.data_handle() + 2 * n, T(0));
    const auto g = grad_.zeros(1, 2 * n);
    const auto count = static_cast<std::size_t>(2 * n);
    const double loss =
        train::bce_with_logits<T>(std::span<const T>(pos, count), std::span<const T>(lb.data_handle(), count), {},
                                  std::span<T>(g.data_handle(), count), scale);
    const T* gp = g.data_handle();
    const T* gn = gp + n;
    parallel_for(nn::pool_of(be), n, 256, [&](index_t r0, index_t r1) {
      for (index_t r = r0; r < r1; ++r) {
        T* dr = &ds(r, 0);
        const T* et = &table(targets[static_cast<std::size_t>(r)], 0);
        const T* en = &table(negatives[static_cast<std::size_t>(r)], 0);
        for (index_t c = 0; c < d; ++c) dr[c] += gp[r] * et[c] + gn[r] * en[c];
      }
    });
    // the item table's gradient: rows added in row order (deterministic)
    for (index_t r = 0; r < n; ++r) {
      const T* sr = &s(r, 0);
      T* dt = &dtable(targets[static_cast<std::size_t>(r)], 0);
      T* dn = &dtable(negatives[static_cast<std::size_t>(r)], 0);
      for (index_t c = 0; c < d; ++c) {
        dt[c] += gp[r] * sr[c];
        dn[c] += gn[r] * sr[c];
      }
    }
    return loss;
  }

  /// Softmax CE over items 1..num_items: the table's row 0 (padding) is not a column.
  double ce(const Backend& be, matrix_view<const T> s, matrix_view<const T> table,
            std::span<const std::int32_t> targets, matrix_view<T> ds, matrix_view<T> dtable, T scale) {
    const index_t n = s.extent(0), items = table.extent(0) - 1;
    shifted_.resize(static_cast<std::size_t>(n));
    for (index_t r = 0; r < n; ++r) shifted_[static_cast<std::size_t>(r)] = targets[static_cast<std::size_t>(r)] - 1;
    return train::table_softmax_cross_entropy<Backend, T>(
        be, s, nn::row_range(table, 1, items), vector_view<const std::int32_t>(shifted_.data(), {n}), -1, ds,
        nn::row_range(dtable, 1, items), scale, ce_logits_, ce_dlogits_);
  }

  std::vector<std::int32_t> shifted_;
  nn::buffer<T> logits_, labels_, grad_, ce_logits_, ce_dlogits_;
};

}  // namespace slim::rec
