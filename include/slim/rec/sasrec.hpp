// slim — SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018) on slim's kernels,
// following the original TensorFlow code and its PyTorch port (pmixer/SASRec.pytorch):
//   x = E[item]·√d + P[position], dropout;  per block: q = LN(x), x = q + MHA(q, x, x) (causal, keys and
//   values from the un-normalised x), x = LN(x), x = x + FFN(x);  h = LN(x);  score(i) = h·E[i].
// Training: every position of the user's last `max_len` training steps predicts the next item, with binary
// cross-entropy against one sampled negative per position (the original) or full softmax cross-entropy.
//
// Layout: a batch packs each user's real positions row after row (no padding rows). Positions keep the
// original's numbering — the most recent item sits at position max_len−1 — and attention never sees padding,
// as the original's key masking ensures; the original's padding rows, zeroed after every block and never
// scored, contribute nothing, so leaving them out changes no result. Item 0 (padding) is never an input, a
// target, a negative or a candidate.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slim/backend/kernels.hpp"
#include "slim/nn/attention.hpp"
#include "slim/nn/context.hpp"
#include "slim/nn/dropout.hpp"
#include "slim/nn/embedding.hpp"
#include "slim/nn/feed_forward.hpp"
#include "slim/nn/init.hpp"
#include "slim/nn/layernorm.hpp"
#include "slim/rec/dataset.hpp"
#include "slim/rec/detail/encode.hpp"
#include "slim/rec/fusion.hpp"
#include "slim/rec/objective.hpp"

namespace slim::rec {

/// SASRec's sizes. The defaults are the paper's ML-1M setting.
struct sasrec_config {
  index_t dim = 50;                ///< d: item, position and hidden size
  index_t blocks = 2;              ///< self-attention blocks
  index_t heads = 1;               ///< attention heads (dim % heads == 0)
  index_t max_len = 200;           ///< n: positions (the most recent max_len items are used)
  float dropout = 0.2f;            ///< embedding and feed-forward dropout
  float attention_dropout = 0.2f;  ///< dropout on the attention weights (the original's, and torch's MHA)
  double layernorm_eps = 1e-8;     ///< the original code's epsilon
  rec_loss loss = rec_loss::bce;
};

/// One SASRec block: q = LN₁(x); x₁ = q + MHA(q, x, x); x₂ = LN₂(x₁); y = x₂ + FFN(x₂). Parameter names as
/// pmixer's port: attention_layernorms.i, attention_layers.i, forward_layernorms.i, forward_layers.i.
template <class Backend, class T = float>
class sasrec_block {
 public:
  /// Block i: dropout_p after each feed-forward layer, attention_dropout on the attention weights.
  sasrec_block(index_t i, index_t dim, index_t heads, float dropout_p, double eps, float attention_dropout = 0.0f)
      : attention_layernorm("attention_layernorms." + std::to_string(i), dim, eps),
        attention("attention_layers." + std::to_string(i), dim, heads, true, attention_dropout,
                  static_cast<std::uint32_t>(64 + i)),
        forward_layernorm("forward_layernorms." + std::to_string(i), dim, eps),
        feed("forward_layers." + std::to_string(i), dim, dim, dropout_p, static_cast<std::uint32_t>(1 + 2 * i)) {}

  nn::layernorm<Backend, T> attention_layernorm;
  nn::multihead_attention<Backend, T> attention;
  nn::layernorm<Backend, T> forward_layernorm;
  nn::feed_forward<Backend, T> feed;

  template <class F>
  void visit_parameters(F&& f) {
    attention_layernorm.visit_parameters(f);
    attention.visit_parameters(f);
    forward_layernorm.visit_parameters(f);
    feed.visit_parameters(f);
  }

  /// y = block(x). Caches x (keep it alive until backward).                                  x, y (N,dim)
  void forward(const Backend& be, const nn::step_context& ctx, matrix_view<const T> x, nn::packed_sequences seqs,
               matrix_view<T> y) {
    const index_t n = x.extent(0), d = x.extent(1);
    const auto q = q_.resize(n, d), a = x1_.resize(n, d), x2 = x2_.resize(n, d);
    attention_layernorm.forward(be, x, q);
    attention.forward(be, ctx, q, x, seqs, a);
    nn::add_rows(be, matrix_view<const T>(q), a);  // x₁ = q + MHA(q, x)
    forward_layernorm.forward(be, a, x2);
    feed.forward(be, ctx, x2, y);
    nn::add_rows(be, matrix_view<const T>(x2), y);  // y = x₂ + FFN(x₂)
  }

  /// Inference for the last row of each sequence only (evaluation): y[s] = block(x)[last row of s].
  ///                                                                    x (N,dim), y (sequences, dim)
  void apply_last(const Backend& be, matrix_view<const T> x, nn::packed_sequences seqs, matrix_view<T> y) {
    const index_t count = seqs.count(), d = x.extent(1);
    const auto xl = q_.resize(count, d);
    for (index_t s = 0; s < count; ++s) std::copy_n(&x(seqs.begin(s) + seqs.length(s) - 1, 0), d, &xl(s, 0));
    const auto q = x1_.resize(count, d);
    attention_layernorm.apply(be, xl, q);
    const auto a = g1_.resize(count, d);
    attention.apply_last(be, q, x, seqs, a);
    nn::add_rows(be, matrix_view<const T>(q), a);
    const auto x2 = x2_.resize(count, d);
    forward_layernorm.apply(be, a, x2);
    feed.apply(be, x2, y);
    nn::add_rows(be, matrix_view<const T>(x2), y);
  }

  /// dx += ∂L/∂x.                                                                             dy, dx (N,dim)
  void backward(const Backend& be, matrix_view<const T> dy, matrix_view<T> dx) {
    const index_t n = dy.extent(0), d = dy.extent(1);
    const auto g2 = g2_.resize(n, d);
    nn::copy_rows(be, dy, g2);  // the residual path
    feed.backward(be, dy, g2);
    const auto g1 = g1_.zeros(n, d);
    forward_layernorm.backward(be, g2, g1);
    const auto gq = gq_.resize(n, d);
    nn::copy_rows(be, matrix_view<const T>(g1), gq);  // the residual path
    attention.backward(be, g1, gq, dx);
    attention_layernorm.backward(be, gq, dx);
  }

 private:
  nn::buffer<T> q_, x1_, x2_, g2_, g1_, gq_;
};

/// SASRec with a fusion policy (docs/rec.md). Element type T: float on every backend, or double on
/// backend::scalar (gradient checks).
template <class Backend, class Fusion = id_only, class T = float>
class sasrec {
  sasrec_config cfg_;
  index_t num_items_;

 public:
  using backend_type = Backend;
  using value_type = T;
  using fusion_module = typename Fusion::template module<Backend, T>;
  static constexpr std::string_view name = "sasrec";
  static_assert(FusionPolicy<Fusion, Backend, T>,
                "slim::rec::sasrec: Fusion must model rec::FusionPolicy (fusion.hpp)");

  /// A model for items 1..num_items, parameters initialised from `seed` as the original code does:
  /// Glorot-uniform matrices and embeddings, zero biases, LayerNorm (1, 0), padding row 0.
  sasrec(const sasrec_config& cfg, index_t num_items, std::uint64_t seed, side_information<T> side = {})
      : cfg_(cfg),
        num_items_(num_items),
        item_emb("item_emb", num_items + 1, cfg.dim, 0),
        pos_emb("pos_emb", cfg.max_len, cfg.dim),
        emb_dropout(cfg.dropout, 0),
        last_layernorm("last_layernorm", cfg.dim, cfg.layernorm_eps),
        fusion("fusion", cfg.dim, num_items, side) {
    constexpr const char* where = "slim::rec::sasrec";
    require(num_items >= 1, where, "num_items must be positive, got ", num_items);
    require(cfg.dim > 0 && cfg.blocks >= 0 && cfg.max_len > 0, where, "dim, max_len must be positive, blocks >= 0");
    blocks.reserve(static_cast<std::size_t>(cfg.blocks));
    for (index_t i = 0; i < cfg.blocks; ++i)
      blocks.emplace_back(i, cfg.dim, cfg.heads, cfg.dropout, cfg.layernorm_eps, cfg.attention_dropout);
    reset_parameters(seed);
  }

  nn::embedding<Backend, T> item_emb;  ///< (num_items+1, dim), row 0 padding
  nn::embedding<Backend, T> pos_emb;   ///< (max_len, dim)
  nn::dropout<Backend, T> emb_dropout;
  std::vector<sasrec_block<Backend, T>> blocks;
  nn::layernorm<Backend, T> last_layernorm;
  fusion_module fusion;

  const sasrec_config& config() const noexcept { return cfg_; }
  index_t num_items() const noexcept { return num_items_; }
  index_t dim() const noexcept { return cfg_.dim; }

  template <class F>
  void visit_parameters(F&& f) {
    item_emb.visit_parameters(f);
    pos_emb.visit_parameters(f);
    for (auto& b : blocks) b.visit_parameters(f);
    last_layernorm.visit_parameters(f);
    fusion.visit_parameters(f);
  }

  void reset_parameters(std::uint64_t seed) {
    init_xavier_uniform(item_emb.weight, seed);
    std::fill(item_emb.weight.value.data(), item_emb.weight.value.data() + cfg_.dim, T(0));  // padding row
    init_xavier_uniform(pos_emb.weight, seed);
    for (auto& b : blocks) {
      init_xavier_uniform(b.attention.in_proj_weight, seed);
      init_constant(b.attention.in_proj_bias, 0.0);
      init_xavier_uniform(b.attention.out_proj.weight, seed);
      init_constant(b.attention.out_proj.bias, 0.0);
      init_xavier_uniform(b.feed.conv1.weight, seed);
      init_constant(b.feed.conv1.bias, 0.0);
      init_xavier_uniform(b.feed.conv2.weight, seed);
      init_constant(b.feed.conv2.bias, 0.0);
    }
    fusion.reset_parameters(seed);
  }

  /// Forward and backward over the training positions of `users` (rows of split.train): gradients are
  /// ADDED to the parameters' (zero them before); returns the mean loss over the batch's positions.
  /// Users without a training position are skipped. Negatives depend on (ctx.seed, epoch, user, position).
  double train_batch(const Backend& be, const nn::step_context& ctx, const sequence_split& split,
                     std::span<const index_t> users, std::uint64_t epoch) {
    build_training_rows(ctx, split, users, epoch);
    const index_t n = static_cast<index_t>(in_ids_.size());
    if (n == 0) return 0.0;
    const auto table = fusion.items_forward(be, ctx, item_emb.weight.matrix());
    const auto h = forward_rows(be, ctx, table);
    const auto s = fusion.users_forward(be, ctx, h, row_users_);
    const auto ds = ds_.zeros(n, dim());
    const auto dtable = dtable_target(be);
    const T scale = T(1) / static_cast<T>(n);
    const double loss = objective_(be, cfg_.loss, s, table, targets_, negatives_, ds, dtable, scale);
    // back through the user fusion, the last LayerNorm and the blocks
    const auto dh = dh_.zeros(n, dim());
    fusion.users_backward(be, ds, dh);
    auto dx = dx_[cfg_.blocks].zeros(n, dim());
    last_layernorm.backward(be, dh, dx);
    for (index_t b = cfg_.blocks; b-- > 0;) {
      const auto dprev = dx_[b].zeros(n, dim());
      blocks[static_cast<std::size_t>(b)].backward(be, dx, dprev);
      dx = dprev;
    }
    // embedding dropout, then the positional and item tables (the latter scaled by √d)
    const auto de = de_.zeros(n, dim());
    emb_dropout.backward(be, dx, de);
    kernels<Backend>::embedding_backward(be, vector_view<const std::int32_t>(pos_ids_.data(), {n}), de,
                                         pos_emb.weight.grad_matrix());
    scale_rows(be, de, static_cast<T>(std::sqrt(static_cast<double>(dim()))));
    kernels<Backend>::embedding_backward(be, vector_view<const std::int32_t>(in_ids_.data(), {n}), de, dtable);
    if constexpr (!Fusion::identity) fusion.items_backward(be, dtable, item_emb.weight.grad_matrix());
    return loss * static_cast<double>(scale);
  }

  /// The item representations scored against users (num_items+1, dim), row 0 padding (evaluation mode).
  matrix_view<const T> item_table(const Backend& be) {
    return fusion.items_forward(be, nn::step_context{}, item_emb.weight.matrix());
  }

  /// User representations for evaluation (no dropout): row r is the output at the last position of
  /// histories[r] (its most recent max_len items), through the user fusion for user users[r]. A history
  /// must not be empty.                                                                     out (R, dim)
  void encode(const Backend& be, std::span<const std::vector<item_id>> histories, std::span<const index_t> users,
              matrix_view<T> out) {
    constexpr const char* where = "slim::rec::sasrec::encode";
    detail::encode_in_chunks(
        *this, be, histories, users, out, 256, where, [&](matrix_view<const T> table, index_t r0, index_t rn) {
          in_ids_.clear();
          pos_ids_.clear();
          offsets_.assign(1, 0);
          for (index_t r = r0; r < r0 + rn; ++r) {
            const auto items = detail::recent_items(histories, r, cfg_.max_len, num_items_, where);
            const index_t m = static_cast<index_t>(items.size());
            for (index_t j = 0; j < m; ++j) {
              in_ids_.push_back(items[static_cast<std::size_t>(j)]);
              pos_ids_.push_back(static_cast<std::int32_t>(cfg_.max_len - m + j));
            }
            offsets_.push_back(static_cast<index_t>(in_ids_.size()));
          }
          // every block but the last over every row; the last block only for the last row of each sequence
          const auto x = run_blocks(be, nn::step_context{}, table, cfg_.blocks > 0 ? cfg_.blocks - 1 : 0);
          const auto last = last_.resize(rn, dim());
          if (cfg_.blocks > 0) {
            blocks[static_cast<std::size_t>(cfg_.blocks - 1)].apply_last(be, x, nn::packed_sequences{offsets_}, last);
          } else {
            for (index_t r = 0; r < rn; ++r)
              std::copy_n(&x(offsets_[static_cast<std::size_t>(r) + 1] - 1, 0), dim(), &last(r, 0));
          }
          const auto hl = hlast_.resize(rn, dim());
          last_layernorm.apply(be, last, hl);
          return matrix_view<const T>(hl);
        });
  }

 private:
  /// Rows of the batch: per user, its last m training steps in order.
  void build_training_rows(const nn::step_context& ctx, const sequence_split& split, std::span<const index_t> users,
                           std::uint64_t epoch) {
    in_ids_.clear();
    pos_ids_.clear();
    targets_.clear();
    negatives_.clear();
    row_users_.clear();
    offsets_.assign(1, 0);
    for (const index_t u : users) {
      require(u >= 0 && u < split.num_users(), "slim::rec::sasrec::train_batch", "user ", u, " outside [0, ",
              split.num_users(), ")");
      const auto& s = split.train[static_cast<std::size_t>(u)];
      const index_t m = training_steps(s, cfg_.max_len);
      if (m == 0) continue;
      const index_t n = static_cast<index_t>(s.size());
      for (index_t j = 0; j < m; ++j) {
        const index_t at = n - 1 - m + j;
        in_ids_.push_back(s[static_cast<std::size_t>(at)]);
        targets_.push_back(s[static_cast<std::size_t>(at + 1)]);
        pos_ids_.push_back(static_cast<std::int32_t>(cfg_.max_len - m + j));
        row_users_.push_back(u);
      }
      offsets_.push_back(static_cast<index_t>(in_ids_.size()));
      if (cfg_.loss == rec_loss::bce) {
        const std::size_t first = negatives_.size();
        negatives_.resize(first + static_cast<std::size_t>(m));
        negatives_sampler_.sample(ctx.seed, epoch, u, s, std::span<std::int32_t>(negatives_).subspan(first));
      }
    }
  }

  /// Embedding, dropout and the first `count` blocks over the rows in in_ids_/pos_ids_/offsets_; returns
  /// the output (N, dim).
  matrix_view<T> run_blocks(const Backend& be, const nn::step_context& ctx, matrix_view<const T> table, index_t count) {
    const index_t n = static_cast<index_t>(in_ids_.size()), d = dim();
    if (static_cast<index_t>(x_.size()) < cfg_.blocks + 1) x_.resize(static_cast<std::size_t>(cfg_.blocks) + 1);
    if (static_cast<index_t>(dx_.size()) < cfg_.blocks + 1) dx_.resize(static_cast<std::size_t>(cfg_.blocks) + 1);
    const auto x0 = x_[0].resize(n, d);
    const vector_view<const std::int32_t> ids(in_ids_.data(), {n}), pos(pos_ids_.data(), {n});
    kernels<Backend>::embedding_forward(be, table, ids, x0);
    const auto p = pe_.resize(n, d);
    pos_emb.forward(be, pos, p);
    const T sqrt_d = static_cast<T>(std::sqrt(static_cast<double>(d)));
    nn::for_each_span(be, matrix_view<const T>(p), x0, [&](const T* ps, T* xs, index_t m) {
      for (index_t c = 0; c < m; ++c) xs[c] = xs[c] * sqrt_d + ps[c];
    });
    emb_dropout.forward(be, ctx, x0, x0);
    const nn::packed_sequences seqs{offsets_};
    matrix_view<T> x = x0;
    for (index_t b = 0; b < count; ++b) {
      const auto y = x_[static_cast<std::size_t>(b) + 1].resize(n, d);
      blocks[static_cast<std::size_t>(b)].forward(be, ctx, x, seqs, y);
      x = y;
    }
    return x;
  }

  /// Training forward: blocks, then the last LayerNorm over every row. Returns h (N, dim).
  matrix_view<const T> forward_rows(const Backend& be, const nn::step_context& ctx, matrix_view<const T> table) {
    const auto x = run_blocks(be, ctx, table, cfg_.blocks);
    const auto h = h_.resize(x.extent(0), dim());
    last_layernorm.forward(be, x, h);
    return h;
  }

  /// Where the gradient of the item table goes: the ID table's own gradient for an identity fusion, else a
  /// zeroed (num_items+1, dim) buffer that items_backward consumes.
  matrix_view<T> dtable_target(const Backend&) {
    if constexpr (Fusion::identity)
      return item_emb.weight.grad_matrix();
    else
      return dtable_.zeros(num_items_ + 1, dim());
  }

  static void scale_rows(const Backend& be, matrix_view<T> x, T s) {
    nn::for_each_span(be, x, x, [&](T*, T* xs, index_t m) {
      for (index_t c = 0; c < m; ++c) xs[c] *= s;
    });
  }

  std::vector<std::int32_t> in_ids_, pos_ids_, targets_, negatives_, shifted_;
  std::vector<index_t> row_users_, offsets_;
  training_negatives negatives_sampler_{num_items_};
  item_objective<Backend, T> objective_;
  std::vector<nn::buffer<T>> x_, dx_;
  nn::buffer<T> pe_, h_, ds_, dh_, de_, dtable_, last_, hlast_;
};

}  // namespace slim::rec
