// slim — GRU4Rec (Hidasi et al., ICLR 2016) in RecBole's form for next-item prediction: item embedding →
// dropout → one GRU layer → dense map back to the embedding size → score(i) = h·E[i], trained with softmax
// cross-entropy over every item (or SASRec's one-negative BCE).
//
// Training runs each user's last `max_len` training steps as one sequence (a loss at every position),
// packed time-major over the batch — where RecBole cuts every prefix into its own example and runs the GRU
// once per prefix, which gives each target the same state but costs a GRU pass per prefix. Item 0
// (padding) is never an input, a target, a negative or a softmax column.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slim/backend/kernels.hpp"
#include "slim/nn/context.hpp"
#include "slim/nn/dropout.hpp"
#include "slim/nn/embedding.hpp"
#include "slim/nn/gru.hpp"
#include "slim/nn/init.hpp"
#include "slim/nn/linear.hpp"
#include "slim/rec/dataset.hpp"
#include "slim/rec/detail/encode.hpp"
#include "slim/rec/fusion.hpp"
#include "slim/rec/objective.hpp"

namespace slim::rec {

/// GRU4Rec's sizes; the defaults are RecBole's.
struct gru4rec_config {
  index_t embedding_size = 64;
  index_t hidden_size = 128;
  index_t max_len = 200;  ///< the most recent max_len items of a history are used
  float dropout = 0.3f;   ///< on the item embeddings
  bool gru_bias = false;  ///< RecBole builds its nn.GRU with bias=False
  rec_loss loss = rec_loss::ce;
};

/// GRU4Rec with a fusion policy (docs/rec.md). Element type T: float on every backend, or double on
/// backend::scalar (gradient checks). Parameter names follow RecBole's: item_embedding, gru_layers, dense.
template <class Backend, class Fusion = id_only, class T = float>
class gru4rec {
  gru4rec_config cfg_;
  index_t num_items_;

 public:
  using backend_type = Backend;
  using value_type = T;
  using fusion_module = typename Fusion::template module<Backend, T>;
  static constexpr std::string_view name = "gru4rec";
  static_assert(FusionPolicy<Fusion, Backend, T>,
                "slim::rec::gru4rec: Fusion must model rec::FusionPolicy (fusion.hpp)");

  /// A model for items 1..num_items, initialised from `seed` as RecBole does: embedding Glorot-normal, GRU
  /// weights Glorot-uniform (biases, if any, U(±1/√H) as torch), the dense layer torch's default; padding
  /// row 0 set to zero.
  gru4rec(const gru4rec_config& cfg, index_t num_items, std::uint64_t seed, side_information<T> side = {})
      : cfg_(cfg),
        num_items_(num_items),
        item_embedding("item_embedding", num_items + 1, cfg.embedding_size, 0),
        emb_dropout(cfg.dropout, 0),
        gru_layers("gru_layers", cfg.embedding_size, cfg.hidden_size, cfg.gru_bias),
        dense("dense", cfg.hidden_size, cfg.embedding_size),
        fusion("fusion", cfg.embedding_size, num_items, side) {
    constexpr const char* where = "slim::rec::gru4rec";
    require(num_items >= 1, where, "num_items must be positive, got ", num_items);
    require(cfg.embedding_size > 0 && cfg.hidden_size > 0 && cfg.max_len > 0, where,
            "embedding_size, hidden_size and max_len must be positive");
    reset_parameters(seed);
  }

  nn::embedding<Backend, T> item_embedding;  ///< (num_items+1, E), row 0 padding
  nn::dropout<Backend, T> emb_dropout;
  nn::gru<Backend, T> gru_layers;  ///< E -> H
  nn::linear<Backend, T> dense;    ///< H -> E
  fusion_module fusion;

  const gru4rec_config& config() const noexcept { return cfg_; }
  index_t num_items() const noexcept { return num_items_; }
  index_t dim() const noexcept { return cfg_.embedding_size; }

  template <class F>
  void visit_parameters(F&& f) {
    item_embedding.visit_parameters(f);
    gru_layers.visit_parameters(f);
    dense.visit_parameters(f);
    fusion.visit_parameters(f);
  }

  void reset_parameters(std::uint64_t seed) {
    init_xavier_normal(item_embedding.weight, seed);
    std::fill(item_embedding.weight.value.data(), item_embedding.weight.value.data() + dim(), T(0));
    gru_layers.reset_parameters(seed);  // biases (when present) as torch
    init_xavier_uniform(gru_layers.weight_ih, seed);
    init_xavier_uniform(gru_layers.weight_hh, seed);
    dense.reset_parameters(seed);
    fusion.reset_parameters(seed);
  }

  /// Forward and backward over the training positions of `users`: gradients are ADDED (zero them
  /// before); returns the mean loss over the batch's positions. Users without a position are skipped.
  double train_batch(const Backend& be, const nn::step_context& ctx, const sequence_split& split,
                     std::span<const index_t> users, std::uint64_t epoch) {
    constexpr const char* where = "slim::rec::gru4rec::train_batch";
    // the users with training positions, longest first (ties in batch order), and their windows
    order_.clear();
    lengths_.clear();
    for (const index_t u : users) {
      require(u >= 0 && u < split.num_users(), where, "user ", u, " outside [0, ", split.num_users(), ")");
      const index_t m = training_steps(split.train[static_cast<std::size_t>(u)], cfg_.max_len);
      if (m == 0) continue;
      order_.push_back(u);
      lengths_.push_back(m);
    }
    if (order_.empty()) return 0.0;
    sort_by_length();
    const index_t steps = lengths_[perm_[0]];
    std::vector<std::vector<std::int32_t>> negs;
    if (cfg_.loss == rec_loss::bce) {
      negs.resize(perm_.size());
      for (std::size_t k = 0; k < perm_.size(); ++k) {
        const index_t u = order_[perm_[k]];
        negs[k].resize(static_cast<std::size_t>(lengths_[perm_[k]]));
        negatives_sampler_.sample(ctx.seed, epoch, u, split.train[static_cast<std::size_t>(u)], negs[k]);
      }
    }
    in_ids_.clear();
    targets_.clear();
    negatives_.clear();
    row_users_.clear();
    batch_sizes_.clear();
    for (index_t t = 0; t < steps; ++t) {
      index_t k = 0;
      for (; k < static_cast<index_t>(perm_.size()) && lengths_[perm_[static_cast<std::size_t>(k)]] > t; ++k) {
        const std::size_t ks = static_cast<std::size_t>(k);
        const index_t u = order_[perm_[ks]], m = lengths_[perm_[ks]];
        const auto& s = split.train[static_cast<std::size_t>(u)];
        const index_t at = static_cast<index_t>(s.size()) - 1 - m + t;
        in_ids_.push_back(s[static_cast<std::size_t>(at)]);
        targets_.push_back(s[static_cast<std::size_t>(at + 1)]);
        if (!negs.empty()) negatives_.push_back(negs[ks][static_cast<std::size_t>(t)]);
        row_users_.push_back(u);
      }
      batch_sizes_.push_back(k);
    }
    const index_t n = static_cast<index_t>(in_ids_.size());
    const auto table = fusion.items_forward(be, ctx, item_embedding.weight.matrix());
    const auto o = run(be, ctx, table);
    const auto s = fusion.users_forward(be, ctx, o, row_users_);
    const auto ds = ds_.zeros(n, dim());
    const auto dtable = dtable_target();
    const T scale = T(1) / static_cast<T>(n);
    const double loss = objective_(be, cfg_.loss, s, table, targets_, negatives_, ds, dtable, scale);
    const auto dout = do_.zeros(n, dim());
    fusion.users_backward(be, ds, dout);
    const auto dh = dh_.zeros(n, cfg_.hidden_size);
    dense.backward(be, dout, dh);
    const auto dxd = dxd_.zeros(n, dim());
    gru_layers.backward(be, dh, dxd);
    const auto dx = dx_.zeros(n, dim());
    emb_dropout.backward(be, dxd, dx);
    kernels<Backend>::embedding_backward(be, vector_view<const std::int32_t>(in_ids_.data(), {n}), dx, dtable);
    if constexpr (!Fusion::identity) fusion.items_backward(be, dtable, item_embedding.weight.grad_matrix());
    return loss * static_cast<double>(scale);
  }

  /// The item representations scored against users (num_items+1, dim), row 0 padding (evaluation mode).
  matrix_view<const T> item_table(const Backend& be) {
    return fusion.items_forward(be, nn::step_context{}, item_embedding.weight.matrix());
  }

  /// User representations for evaluation (no dropout): row r is the output after the last item of
  /// histories[r] (its most recent max_len items), through the user fusion for user users[r].
  ///                                                                                         out (R, dim)
  void encode(const Backend& be, std::span<const std::vector<item_id>> histories, std::span<const index_t> users,
              matrix_view<T> out) {
    constexpr const char* where = "slim::rec::gru4rec::encode";
    detail::encode_in_chunks(
        *this, be, histories, users, out, 512, where, [&](matrix_view<const T> table, index_t r0, index_t rn) {
          order_.resize(static_cast<std::size_t>(rn));
          lengths_.resize(static_cast<std::size_t>(rn));
          for (index_t r = 0; r < rn; ++r) {
            order_[static_cast<std::size_t>(r)] = r0 + r;
            lengths_[static_cast<std::size_t>(r)] =
                static_cast<index_t>(detail::recent_items(histories, r0 + r, cfg_.max_len, num_items_, where).size());
          }
          sort_by_length();
          in_ids_.clear();
          batch_sizes_.clear();
          last_row_.assign(static_cast<std::size_t>(rn), 0);
          const index_t steps = lengths_[perm_[0]];
          for (index_t t = 0; t < steps; ++t) {
            index_t k = 0;
            for (; k < rn && lengths_[perm_[static_cast<std::size_t>(k)]] > t; ++k) {
              const std::size_t p = perm_[static_cast<std::size_t>(k)];
              const auto& h = histories[static_cast<std::size_t>(order_[p])];
              const index_t m = lengths_[p];
              if (t == m - 1) last_row_[p] = static_cast<index_t>(in_ids_.size());
              in_ids_.push_back(h[h.size() - static_cast<std::size_t>(m - t)]);
            }
            batch_sizes_.push_back(k);
          }
          const auto o = run(be, nn::step_context{}, table);
          const auto last = last_.resize(rn, dim());
          for (index_t r = 0; r < rn; ++r)
            std::copy_n(&o(last_row_[static_cast<std::size_t>(r)], 0), dim(), &last(r, 0));
          return matrix_view<const T>(last);
        });
  }

 private:
  /// perm_: indices into order_/lengths_, longest first, ties in their given order.
  void sort_by_length() {
    perm_.resize(lengths_.size());
    std::iota(perm_.begin(), perm_.end(), std::size_t{0});
    std::stable_sort(perm_.begin(), perm_.end(),
                     [&](std::size_t a, std::size_t b) { return lengths_[a] > lengths_[b]; });
  }

  /// Embedding, dropout, GRU and dense over the packed rows in in_ids_ / batch_sizes_; returns (N, E).
  matrix_view<const T> run(const Backend& be, const nn::step_context& ctx, matrix_view<const T> table) {
    const index_t n = static_cast<index_t>(in_ids_.size());
    const auto x = x_.resize(n, dim());
    kernels<Backend>::embedding_forward(be, table, vector_view<const std::int32_t>(in_ids_.data(), {n}), x);
    emb_dropout.forward(be, ctx, x, x);
    const auto h = h_.resize(n, cfg_.hidden_size);
    gru_layers.forward(be, x, nn::packed_steps{batch_sizes_}, h);
    const auto o = o_.resize(n, dim());
    dense.forward(be, h, o);
    return o;
  }

  matrix_view<T> dtable_target() {
    if constexpr (Fusion::identity)
      return item_embedding.weight.grad_matrix();
    else
      return dtable_.zeros(num_items_ + 1, dim());
  }

  std::vector<index_t> order_, lengths_, row_users_, batch_sizes_, last_row_;
  std::vector<std::size_t> perm_;
  std::vector<std::int32_t> in_ids_, targets_, negatives_;
  training_negatives negatives_sampler_{num_items_};
  item_objective<Backend, T> objective_;
  nn::buffer<T> x_, h_, o_, ds_, do_, dh_, dxd_, dx_, dtable_, last_;
};

}  // namespace slim::rec
