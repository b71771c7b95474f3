// slim — nn::multihead_attention: torch.nn.MultiheadAttention's layer (packed input projection with bias,
// scaled dot-product attention per head, output projection with bias, dropout on the attention
// probabilities) over a batch of variable-length sequences packed row after row, causal by default.
// Without probability dropout (evaluation, or p = 0) the fused attention kernel runs and no probability
// is stored; with it, each sequence's probabilities are materialised (GEMM, masked softmax, dropout,
// GEMM), as torch does.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "slim/backend/kernels.hpp"
#include "slim/nn/context.hpp"
#include "slim/nn/init.hpp"
#include "slim/nn/linear.hpp"
#include "slim/nn/parameter.hpp"

namespace slim::nn {

/// A batch of sequences stored one after another: sequence s owns rows [offsets[s], offsets[s+1]).
/// offsets has count()+1 non-decreasing entries starting at 0.
struct packed_sequences {
  std::span<const index_t> offsets;

  index_t count() const noexcept { return offsets.empty() ? 0 : static_cast<index_t>(offsets.size()) - 1; }
  index_t rows() const noexcept { return offsets.empty() ? 0 : offsets.back(); }
  index_t begin(index_t s) const noexcept { return offsets[static_cast<std::size_t>(s)]; }
  index_t length(index_t s) const noexcept {
    return offsets[static_cast<std::size_t>(s) + 1] - offsets[static_cast<std::size_t>(s)];
  }
  /// Throws slim::error unless the offsets are well formed and cover exactly `rows` rows.
  void check(index_t rows, const char* where) const {
    require(!offsets.empty() && offsets.front() == 0, where, "offsets must start at 0");
    for (std::size_t i = 1; i < offsets.size(); ++i)
      require(offsets[i] >= offsets[i - 1], where, "offsets must not decrease (at ", i, ")");
    require(offsets.back() == rows, where, "the sequences cover ", offsets.back(), " rows, the input has ", rows);
  }
};

/// Multi-head attention, query from one input and keys/values from another (both (N, dim), packed the
/// same way): q = x_q·W_qᵀ + b_q, [k v] = x_kv·[W_k; W_v]ᵀ + [b_k b_v], o = softmax(q·kᵀ/√Dh + mask)·v per
/// head and sequence, y = o·W_oᵀ + b_o. Parameter names follow torch: in_proj_weight (3·dim, dim),
/// in_proj_bias (3·dim), out_proj.weight (dim, dim), out_proj.bias (dim).
template <class Backend, class T = float>
class multihead_attention {
 public:
  using kernels_type = kernels<Backend>;

  /// `dropout`: probability of dropping an attention weight in training (torch's `dropout` argument);
  /// `dropout_layer`: its Philox layer id (distinct from the model's other dropout layers).
  multihead_attention(const std::string& name, index_t dim, index_t heads, bool causal = true, float dropout = 0.0f,
                      std::uint32_t dropout_layer = 0)
      : in_proj_weight(name + ".in_proj_weight", 3 * dim, dim, parameter_role::weight),
        in_proj_bias(name + ".in_proj_bias", 3 * dim, parameter_role::bias),
        out_proj(name + ".out_proj", dim, dim),
        heads_(heads),
        causal_(causal),
        dropout_(dropout),
        dropout_layer_(dropout_layer) {
    require(heads > 0 && dim % heads == 0, "slim::nn::multihead_attention", "dim ", dim,
            " is not a positive multiple of heads ", heads);
    require(dropout >= 0.0f && dropout < 1.0f, "slim::nn::multihead_attention", "dropout ", dropout,
            " must lie in [0, 1)");
  }

  parameter<T> in_proj_weight;  ///< (3·dim, dim): rows [0,dim) W_q, [dim,2dim) W_k, [2dim,3dim) W_v
  parameter<T> in_proj_bias;    ///< (3·dim)
  linear<Backend, T> out_proj;  ///< (dim, dim) with bias

  index_t dim() const noexcept { return in_proj_weight.cols; }
  index_t heads() const noexcept { return heads_; }
  index_t head_dim() const noexcept { return dim() / heads_; }
  bool causal() const noexcept { return causal_; }
  float dropout() const noexcept { return dropout_; }

  template <class F>
  void visit_parameters(F&& f) {
    f(in_proj_weight);
    f(in_proj_bias);
    out_proj.visit_parameters(f);
  }

  /// torch's initialisation: in_proj_weight xavier-uniform, biases 0, out_proj.weight U(±1/√dim).
  void reset_parameters(std::uint64_t seed) {
    init_xavier_uniform(in_proj_weight, seed);
    init_constant(in_proj_bias, 0.0);
    init_fan_in_uniform(out_proj.weight, static_cast<double>(dim()), seed);
    init_constant(out_proj.bias, 0.0);
  }

  /// y = MHA(x_q, x_kv) per sequence (probability dropout when ctx.training). Caches views of both inputs.
  ///                                                                               x_q, x_kv, y (N,dim)
  void forward(const Backend& be, const step_context& ctx, matrix_view<const T> x_q, matrix_view<const T> x_kv,
               packed_sequences seqs, matrix_view<T> y) {
    constexpr const char* where = "slim::nn::multihead_attention::forward";
    const index_t n = x_q.extent(0), d = dim();
    require_shape(x_q, {n, d}, where, "x_q");
    require_shape(x_kv, {n, d}, where, "x_kv");
    require_shape(y, {n, d}, where, "y");
    seqs.check(n, where);
    xq_ = x_q;
    xkv_ = x_kv;
    seqs_ = seqs;
    const auto q = q_.resize(n, d), kv = kv_.resize(n, 2 * d), o = o_.resize(n, d);
    lse_.resize(n, heads_);
    project(be, x_q, 0, d, q);
    project(be, x_kv, d, 2 * d, kv);
    materialized_ = ctx.training && dropout_ > 0.0f;
    if (materialized_) {
      key_ = dropout_key(ctx, dropout_layer_);
      probabilities_forward(be, seqs);
    } else {
      const Backend one = serial(be);
      parallel_for(pool_of(be), seqs.count(), 1, [&](index_t s0, index_t s1) {
        for (index_t s = s0; s < s1; ++s) {
          if (seqs.length(s) == 0) continue;
          kernels_type::attention_forward(one, head_view(q_, s, 0), head_view(kv_, s, 0), head_view(kv_, s, d), scale(),
                                          causal_, vector_view<const std::int32_t>{}, head_view(o_, s, 0), lse_view(s));
        }
      });
    }
    out_proj.forward(be, o, y);
  }

  /// Inference for the last query of each sequence only: y[s] = MHA output at the last row of sequence s,
  /// given x_q_last[s] (the query input at that row) and x_kv for every row. Caches nothing for backward.
  ///                                                         x_q_last, y (S,dim); x_kv (N,dim)
  void apply_last(const Backend& be, matrix_view<const T> x_q_last, matrix_view<const T> x_kv, packed_sequences seqs,
                  matrix_view<T> y) {
    constexpr const char* where = "slim::nn::multihead_attention::apply_last";
    const index_t n = x_kv.extent(0), d = dim(), count = seqs.count();
    require_shape(x_q_last, {count, d}, where, "x_q_last");
    require_shape(x_kv, {n, d}, where, "x_kv");
    require_shape(y, {count, d}, where, "y");
    seqs.check(n, where);
    for (index_t s = 0; s < count; ++s) require(seqs.length(s) > 0, where, "sequence ", s, " is empty");
    const auto q = q_.resize(count, d), kv = kv_.resize(n, 2 * d), o = o_.resize(count, d);
    lse_.resize(count, heads_);
    project(be, x_q_last, 0, d, q);
    project(be, x_kv, d, 2 * d, kv);
    const Backend one = serial(be);
    const index_t dh = head_dim();
    parallel_for(pool_of(be), count, 1, [&](index_t s0, index_t s1) {
      for (index_t s = s0; s < s1; ++s) {
        const index_t len = seqs.length(s), row = seqs.begin(s);
        const tensor_view<const T, 4> qs(q_.data() + s * d, {1, 1, heads_, dh}, {d, d, dh, 1});
        const tensor_view<const T, 4> ks(kv_.data() + row * 2 * d, {1, len, heads_, dh}, {len * 2 * d, 2 * d, dh, 1});
        const tensor_view<const T, 4> vs(kv_.data() + row * 2 * d + d, {1, len, heads_, dh},
                                         {len * 2 * d, 2 * d, dh, 1});
        const tensor_view<T, 4> os(o_.data() + s * d, {1, 1, heads_, dh}, {d, d, dh, 1});
        const tensor_view<T, 3> ls(lse_.data() + s * heads_, {1, heads_, 1}, {heads_, 1, 1});
        // one query against every key: causal visibility (j ≤ 0 + L − 1) admits them all
        kernels_type::attention_forward(one, qs, ks, vs, scale(), causal_, vector_view<const std::int32_t>{}, os, ls);
      }
    });
    out_proj.apply(be, o, y);
  }

  /// Accumulates parameter gradients, dx_q += ∂L/∂x_q and dx_kv += ∂L/∂x_kv (they may be the same
  /// buffer when x_q and x_kv were; either may be empty).                       dy, dx_q, dx_kv (N,dim)
  void backward(const Backend& be, matrix_view<const T> dy, matrix_view<T> dx_q, matrix_view<T> dx_kv) {
    const index_t n = dy.extent(0), d = dim();
    const auto d_o = do_.resize(n, d);
    out_proj.backward(be, dy, d_o, false);
    const auto dq = dq_.zeros(n, d), dkv = dkv_.zeros(n, 2 * d);
    const Backend one = serial(be);
    const packed_sequences seqs = seqs_;
    if (materialized_)
      probabilities_backward(be);
    else
      parallel_for(pool_of(be), seqs.count(), 1, [&](index_t s0, index_t s1) {
        for (index_t s = s0; s < s1; ++s) {
          if (seqs.length(s) == 0) continue;
          kernels_type::attention_backward(one, head_view(q_, s, 0), head_view(kv_, s, 0), head_view(kv_, s, d),
                                           head_view(o_, s, 0), head_view(do_, s, 0), lse_view(s), scale(), causal_,
                                           vector_view<const std::int32_t>{}, head_view(dq_, s, 0),
                                           head_view(dkv_, s, 0), head_view(dkv_, s, d));
        }
      });
    project_backward(be, xq_, dq, 0, d, dx_q);
    project_backward(be, xkv_, dkv, d, 2 * d, dx_kv);
  }

 private:
  T scale() const { return static_cast<T>(1.0 / std::sqrt(static_cast<double>(head_dim()))); }

  /// Rows [r0, r0 + rows) of head h of sequence s in a packed (N, C) buffer, from column c0: (rows, Dh).
  matrix_view<T> head_rows(buffer<T>& b, index_t s, index_t c0, index_t h, index_t r0, index_t rows) const {
    const index_t ld = b.cols();
    return {b.data() + (seqs_.begin(s) + r0) * ld + c0 + h * head_dim(), {rows, head_dim()}, {ld, 1}};
  }

  /// Causal attention runs over blocks of `query_block` queries: block [r0, r1) needs keys [0, r1) only, so
  /// about half of the score matrix is never computed. Non-causal attention is one block of every key.
  static constexpr index_t query_block = 32;
  index_t block_count(index_t len) const noexcept {
    return causal_ ? (len + query_block - 1) / query_block : (len > 0 ? 1 : 0);
  }
  /// Queries [r0, r1) and keys [0, keys) of block b of a sequence of length len.
  void block_range(index_t len, index_t b, index_t& r0, index_t& r1, index_t& keys) const noexcept {
    if (!causal_) {
      r0 = 0;
      r1 = keys = len;
      return;
    }
    r0 = b * query_block;
    r1 = std::min(len, r0 + query_block);
    keys = r1;
  }
  /// Probabilities stored for one head of a sequence of length len: Σ over blocks of queries × keys.
  index_t head_cells(index_t len) const noexcept {
    index_t cells = 0, r0 = 0, r1 = 0, keys = 0;
    for (index_t b = 0; b < block_count(len); ++b) {
      block_range(len, b, r0, r1, keys);
      cells += (r1 - r0) * keys;
    }
    return cells;
  }

  /// Calls f(h, r0, r1, keys, offset) for every head and query block of sequence s, where offset is the
  /// block's first element in the probability buffers; blocks are (r1 − r0, keys) row-major matrices.
  template <class F>
  void for_each_block(index_t s, F&& f) const {
    const index_t len = seqs_.length(s), cells = head_cells(len);
    for (index_t h = 0; h < heads_; ++h) {
      index_t offset = pofs_[static_cast<std::size_t>(s)] + h * cells, r0 = 0, r1 = 0, keys = 0;
      for (index_t b = 0; b < block_count(len); ++b) {
        block_range(len, b, r0, r1, keys);
        f(h, r0, r1, keys, offset);
        offset += (r1 - r0) * keys;
      }
    }
  }
  matrix_view<T> block_view(buffer<T>& b, index_t offset, index_t rows, index_t keys) const {
    return {b.data() + offset, {rows, keys}};
  }

  /// Materialised forward, per sequence, head and query block: P = softmax(scale·q·kᵀ + causal mask),
  /// P' = dropout(P) (the mask indexed by the element's place in the probability buffer), o = P'·v.
  /// P and P' are kept for backward.
  void probabilities_forward(const Backend& be, packed_sequences seqs) {
    pofs_.assign(static_cast<std::size_t>(seqs.count()) + 1, 0);
    for (index_t s = 0; s < seqs.count(); ++s)
      pofs_[static_cast<std::size_t>(s) + 1] = pofs_[static_cast<std::size_t>(s)] + heads_ * head_cells(seqs.length(s));
    const index_t total = pofs_.back(), d = dim();
    p_.resize(1, total);
    pd_.resize(1, total);
    const Backend one = serial(be);
    parallel_for(pool_of(be), seqs.count(), 1, [&](index_t s0, index_t s1) {
      for (index_t s = s0; s < s1; ++s)
        for_each_block(s, [&](index_t h, index_t r0, index_t r1, index_t keys, index_t off) {
          const index_t rows = r1 - r0;
          const auto p = block_view(p_, off, rows, keys), pd = block_view(pd_, off, rows, keys);
          kernels_type::gemm(one, T(1), matrix_view<const T>(head_rows(q_, s, 0, h, r0, rows)),
                             transpose(matrix_view<const T>(head_rows(kv_, s, 0, h, 0, keys))), T(0), p);
          const tensor_view<T, 3> p3(p.data_handle(), {1, rows, keys});
          kernels_type::softmax_forward(one, tensor_view<const T, 3>(p3), scale(), causal_, p3);
          kernels_type::dropout_forward(one, matrix_view<const T>(p), dropout_, key_, static_cast<std::uint64_t>(off),
                                        pd);
          kernels_type::gemm(one, T(1), matrix_view<const T>(pd),
                             matrix_view<const T>(head_rows(kv_, s, d, h, 0, keys)), T(0),
                             head_rows(o_, s, 0, h, r0, rows));
        });
    });
  }

  /// Materialised backward, per block: dP' = do·vᵀ, dv += P'ᵀ·do, dP = dropout′(dP'), dS = softmax′(P, dP)
  /// (the scale included), dq += dS·k, dk += dSᵀ·q.
  void probabilities_backward(const Backend& be) {
    const index_t total = pofs_.back(), d = dim();
    dpd_.resize(1, total);
    dp_.resize(1, total);
    const Backend one = serial(be);
    const packed_sequences seqs = seqs_;
    parallel_for(pool_of(be), seqs.count(), 1, [&](index_t s0, index_t s1) {
      for (index_t s = s0; s < s1; ++s)
        for_each_block(s, [&](index_t h, index_t r0, index_t r1, index_t keys, index_t off) {
          const index_t rows = r1 - r0;
          const matrix_view<const T> dout(head_rows(do_, s, 0, h, r0, rows));
          const auto dpd = block_view(dpd_, off, rows, keys), dp = block_view(dp_, off, rows, keys);
          kernels_type::gemm(one, T(1), dout, transpose(matrix_view<const T>(head_rows(kv_, s, d, h, 0, keys))), T(0),
                             dpd);
          kernels_type::gemm(one, T(1), transpose(matrix_view<const T>(block_view(pd_, off, rows, keys))), dout, T(1),
                             head_rows(dkv_, s, d, h, 0, keys));
          std::fill(dp.data_handle(), dp.data_handle() + dp.size(), T(0));
          kernels_type::dropout_backward(one, matrix_view<const T>(dpd), dropout_, key_,
                                         static_cast<std::uint64_t>(off), dp);
          std::fill(dpd.data_handle(), dpd.data_handle() + dpd.size(), T(0));  // dP' is spent: it receives dS
          const tensor_view<const T, 3> p3(p_.data() + off, {1, rows, keys}), dp3(dp.data_handle(), {1, rows, keys});
          kernels_type::softmax_backward(one, p3, dp3, scale(), tensor_view<T, 3>(dpd.data_handle(), {1, rows, keys}));
          const matrix_view<const T> ds(dpd);
          kernels_type::gemm(one, T(1), ds, matrix_view<const T>(head_rows(kv_, s, 0, h, 0, keys)), T(1),
                             head_rows(dq_, s, 0, h, r0, rows));
          kernels_type::gemm(one, T(1), transpose(ds), matrix_view<const T>(head_rows(q_, s, 0, h, r0, rows)), T(1),
                             head_rows(dkv_, s, 0, h, 0, keys));
        });
    });
  }

  /// out = x·W[r0:r0+rows]ᵀ + b[r0:r0+rows].
  void project(const Backend& be, matrix_view<const T> x, index_t r0, index_t rows, matrix_view<T> out) const {
    const matrix_view<const T> w = row_range(in_proj_weight.matrix(), r0, rows);
    kernels_type::gemm(be, T(1), x, transpose(w), T(0), out);
    add_bias_rows(be, vector_view<const T>{in_proj_bias.value.data() + r0, {rows}}, out);
  }
  void project_backward(const Backend& be, matrix_view<const T> x, matrix_view<const T> g, index_t r0, index_t rows,
                        matrix_view<T> dx) {
    if (in_proj_weight.trainable)
      kernels_type::gemm(be, T(1), transpose(g), x, T(1), row_range(in_proj_weight.grad_matrix(), r0, rows));
    if (in_proj_bias.trainable) add_column_sums(be, g, vector_view<T>{in_proj_bias.grad.data() + r0, {rows}});
    if (!dx.empty())
      kernels_type::gemm(be, T(1), g, matrix_view<const T>(row_range(in_proj_weight.matrix(), r0, rows)), T(1), dx);
  }

  /// Sequence s of a packed (N, C) buffer as (1, len, heads, Dh), starting at column c0.
  tensor_view<T, 4> head_view(buffer<T>& b, index_t s, index_t c0) const {
    const index_t len = seqs_.length(s), ld = b.cols(), dh = head_dim();
    return {b.data() + seqs_.begin(s) * ld + c0, {1, len, heads_, dh}, {len * ld, ld, dh, 1}};
  }
  /// lse rows of sequence s, stored (N, heads), as (1, heads, len).
  tensor_view<T, 3> lse_view(index_t s) {
    const index_t len = seqs_.length(s);
    return {lse_.data() + seqs_.begin(s) * heads_, {1, heads_, len}, {len * heads_, 1, heads_}};
  }

  index_t heads_;
  bool causal_;
  float dropout_;
  std::uint32_t dropout_layer_;
  bool materialized_ = false;
  std::uint64_t key_ = 0;
  matrix_view<const T> xq_, xkv_;
  packed_sequences seqs_;
  std::vector<index_t> pofs_;
  buffer<T> q_, kv_, o_, lse_, do_, dq_, dkv_, p_, pd_, dpd_, dp_;
};

}  // namespace slim::nn
