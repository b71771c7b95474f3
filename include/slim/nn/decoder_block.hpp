// slim — nn::decoder_block: one LLaMA block, x → x + o_proj(attn(rope(q), rope(k), v)) with q, k, v from
// RMSNorm(x), then h → h + down_proj(silu(gate_proj(n)) ⊙ up_proj(n)) with n = RMSNorm(h); grouped-query causal
// attention (query head h reads KV head h / (Hq/Hkv)), rotate-half RoPE, optional q/k/v bias (Qwen2) and o bias (LLaMA's attention_bias), LoRA on
// any projection. Training forward/backward over (B·S) rows, and a KV-cache forward for generation.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include "slim/backend/kernels.hpp"
#include "slim/nn/context.hpp"
#include "slim/nn/lora.hpp"
#include "slim/nn/parameter.hpp"
#include "slim/nn/rope.hpp"

namespace slim::nn {

/// Buffers a block's backward needs only while it runs: the blocks of one model share one set.
template <class T>
struct decoder_block_scratch {
  buffer<T> dmid, dact, dgate, dup, dxn, datt, dq, dk, dv, dqp, dkp;
};

/// One LLaMA decoder block with HF parameter names under `prefix` ("model.layers.3"). Rows of x are b·S + t.
template <class Backend, class T = float>
class decoder_block {
 public:
  using kernels_type = kernels<Backend>;
  using scratch_type = decoder_block_scratch<T>;

  decoder_block(const decoder_config& c, const std::string& prefix)
      : input_layernorm(prefix + ".input_layernorm.weight", c.hidden_size, parameter_role::norm),
        post_attention_layernorm(prefix + ".post_attention_layernorm.weight", c.hidden_size, parameter_role::norm),
        q_proj(prefix + ".self_attn.q_proj", c.hidden_size, c.num_heads * c.head_dim(), c.attention_bias),
        k_proj(prefix + ".self_attn.k_proj", c.hidden_size, c.num_kv_heads * c.head_dim(), c.attention_bias),
        v_proj(prefix + ".self_attn.v_proj", c.hidden_size, c.num_kv_heads * c.head_dim(), c.attention_bias),
        o_proj(prefix + ".self_attn.o_proj", c.num_heads * c.head_dim(), c.hidden_size, c.attention_output_bias),
        gate_proj(prefix + ".mlp.gate_proj", c.hidden_size, c.intermediate_size, false),
        up_proj(prefix + ".mlp.up_proj", c.hidden_size, c.intermediate_size, false),
        down_proj(prefix + ".mlp.down_proj", c.intermediate_size, c.hidden_size, false),
        heads_(c.num_heads),
        kv_heads_(c.num_kv_heads),
        head_dim_(c.head_dim()),
        eps_(static_cast<T>(c.rms_norm_eps)),
        scratch_(std::make_shared<scratch_type>()) {
    init_constant(input_layernorm, 1.0);
    init_constant(post_attention_layernorm, 1.0);
  }

  parameter<T> input_layernorm;           ///< (H)
  parameter<T> post_attention_layernorm;  ///< (H)
  lora_linear<Backend, T> q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj;

  /// Makes this block use `s` for its backward buffers (a model shares one among its blocks).
  void share_scratch(std::shared_ptr<scratch_type> s) noexcept { scratch_ = std::move(s); }

  /// The projection with HF module name `p`.
  lora_linear<Backend, T>& proj(projection p) noexcept {
    switch (p) {
      case projection::q_proj:
        return q_proj;
      case projection::k_proj:
        return k_proj;
      case projection::v_proj:
        return v_proj;
      case projection::o_proj:
        return o_proj;
      case projection::gate_proj:
        return gate_proj;
      case projection::up_proj:
        return up_proj;
      default:
        return down_proj;
    }
  }

  /// f(projection) for the seven projections, q … down.
  template <class F>
  void for_each_projection(F&& f) {
    for_each_attention(f);
    for_each_mlp(f);
  }

  /// Every parameter in HF order, each projection's LoRA factors (if any) right after its weight and bias.
  template <class F>
  void visit_parameters(F&& f) {
    f(input_layernorm);
    for_each_attention([&](lora_linear<Backend, T>& l) {
      l.visit_base(f);
      l.visit_adapter(f);
    });
    f(post_attention_layernorm);
    for_each_mlp([&](lora_linear<Backend, T>& l) {
      l.visit_base(f);
      l.visit_adapter(f);
    });
  }
  template <class F>
  void visit_base(F&& f) {
    f(input_layernorm);
    for_each_attention([&](lora_linear<Backend, T>& l) { l.visit_base(f); });
    f(post_attention_layernorm);
    for_each_mlp([&](lora_linear<Backend, T>& l) { l.visit_base(f); });
  }
  template <class F>
  void visit_adapters(F&& f) {
    for_each_attention([&](lora_linear<Backend, T>& l) { l.visit_adapter(f); });
    for_each_mlp([&](lora_linear<Backend, T>& l) { l.visit_adapter(f); });
  }

  /// y = block(x) for `batch` sequences of S = N/batch rows each, causal within each sequence; pos (N) are
  /// the RoPE positions. Caches views of x and every activation backward needs (keep x alive).
  ///                                                          x, y (N,H); pos (N) int32; inv_freq (Dh/2)
  void forward(const Backend& be, const step_context& ctx, matrix_view<const T> x, index_t batch,
               vector_view<const std::int32_t> pos, vector_view<const T> inv_freq, matrix_view<T> y) {
    constexpr const char* where = "slim::nn::decoder_block::forward";
    const index_t n = x.extent(0), hid = x.extent(1);
    require(batch > 0 && n % batch == 0, where, "rows ", n, " are not a multiple of the batch ", batch);
    require_shape(y, {n, hid}, where, "y");
    batch_ = batch;
    seq_ = n / batch;
    x_ = x;
    pos_ = pos;
    inv_freq_ = inv_freq;
    const auto xn1 = xn1_.resize(n, hid);
    rstd1_.resize(1, n);
    kernels_type::rmsnorm_forward(be, x, input_layernorm.vector(), eps_, xn1, rstd_view(rstd1_));
    const auto q = q_.resize(n, heads_ * head_dim_), k = k_.resize(n, kv_heads_ * head_dim_),
               v = v_.resize(n, kv_heads_ * head_dim_), att = att_.resize(n, heads_ * head_dim_);
    q_proj.forward(be, ctx, xn1, q);
    k_proj.forward(be, ctx, xn1, k);
    v_proj.forward(be, ctx, xn1, v);
    kernels_type::rope_forward(be, rows3(q_, heads_), pos, inv_freq, rows3(q_, heads_));
    kernels_type::rope_forward(be, rows3(k_, kv_heads_), pos, inv_freq, rows3(k_, kv_heads_));
    lse_.resize(batch, heads_ * seq_);
    kernels_type::attention_forward(be, seq4(q_, heads_), seq4(k_, kv_heads_), seq4(v_, kv_heads_), scale(), true,
                                    vector_view<const std::int32_t>{}, seq4(att_, heads_), lse3());
    const auto hmid = hmid_.resize(n, hid);
    o_proj.forward(be, ctx, att, hmid);
    add_rows(be, x, hmid);
    mlp_forward(be, ctx, hmid, y, true);
  }

  /// dx += ∂L/∂x given dy = ∂L/∂y of the last forward; parameter gradients accumulate (trainable ones only). An
  /// empty dx skips the input gradient (what the first block of a model with a frozen embedding needs).
  ///                                                                                    dy, dx (N,H)
  void backward(const Backend& be, matrix_view<const T> dy, matrix_view<T> dx) {
    const index_t n = dy.extent(0), hid = dy.extent(1), inter = gate_.cols();
    scratch_type& sc = *scratch_;
    // MLP half: dmid = dy + RMSNorm′(gate/up′(down′(dy)))
    const auto dmid = sc.dmid.resize(n, hid);
    copy_rows(be, dy, dmid);
    const auto dact = sc.dact.resize(n, inter);
    down_proj.backward(be, dy, dact, false);
    const auto dgate = sc.dgate.zeros(n, inter), dup = sc.dup.zeros(n, inter);
    kernels_type::swiglu_backward(be, gate_.view(), up_.view(), matrix_view<const T>(dact), dgate, dup);
    const auto dxn = sc.dxn.resize(n, hid);
    gate_proj.backward(be, dgate, dxn, false);
    up_proj.backward(be, dup, dxn, true);
    kernels_type::rmsnorm_backward(be, hmid_.view(), post_attention_layernorm.vector(), rstd_view(rstd2_),
                                   matrix_view<const T>(dxn), dmid, norm_grad(post_attention_layernorm));
    if (!dx.empty()) add_rows(be, matrix_view<const T>(dmid), dx);
    // attention half
    const auto datt = sc.datt.resize(n, heads_ * head_dim_);
    o_proj.backward(be, dmid, datt, false);
    sc.dq.zeros(n, heads_ * head_dim_);
    sc.dk.zeros(n, kv_heads_ * head_dim_);
    sc.dv.zeros(n, kv_heads_ * head_dim_);
    kernels_type::attention_backward(be, seq4(q_, heads_), seq4(k_, kv_heads_), seq4(v_, kv_heads_), seq4(att_, heads_),
                                     seq4(sc.datt, heads_), lse3(), scale(), true, vector_view<const std::int32_t>{},
                                     seq4(sc.dq, heads_), seq4(sc.dk, kv_heads_), seq4(sc.dv, kv_heads_));
    const auto dqp = sc.dqp.zeros(n, heads_ * head_dim_), dkp = sc.dkp.zeros(n, kv_heads_ * head_dim_);
    kernels_type::rope_backward(be, rows3(sc.dq, heads_), pos_, inv_freq_, rows3(sc.dqp, heads_));
    kernels_type::rope_backward(be, rows3(sc.dk, kv_heads_), pos_, inv_freq_, rows3(sc.dkp, kv_heads_));
    const bool want_dxn = !dx.empty() || input_layernorm.trainable;
    const matrix_view<T> dxn_or_none = want_dxn ? dxn : matrix_view<T>{};
    q_proj.backward(be, dqp, dxn_or_none, false);
    k_proj.backward(be, dkp, dxn_or_none, true);
    v_proj.backward(be, sc.dv.view(), dxn_or_none, true);
    if (want_dxn)
      kernels_type::rmsnorm_backward(be, x_, input_layernorm.vector(), rstd_view(rstd1_), matrix_view<const T>(dxn), dx,
                                     norm_grad(input_layernorm));
  }

  /// Inference with a KV cache: x holds S = N/batch new columns per sequence; their keys and values are written
  /// to columns [length, length + S) of the caches (B, capacity, Hkv, Dh), and each query attends to cache
  /// columns [kv_begin[b], its own column]. Invalidates a pending backward.
  ///                                                                         x, y (N,H); pos (N) int32
  void forward_cached(const Backend& be, matrix_view<const T> x, index_t batch, vector_view<const std::int32_t> pos,
                      vector_view<const T> inv_freq, vector_view<const std::int32_t> kv_begin, T* k_cache, T* v_cache,
                      index_t capacity, index_t length, matrix_view<T> y) {
    const index_t n = x.extent(0), hid = x.extent(1), s = n / batch, kvw = kv_heads_ * head_dim_;
    batch_ = batch;
    seq_ = s;
    const auto xn = xn1_.resize(n, hid);
    kernels_type::rmsnorm_forward(be, x, input_layernorm.vector(), eps_, xn, vector_view<T>{});
    const auto q = q_.resize(n, heads_ * head_dim_), k = k_.resize(n, kvw), v = v_.resize(n, kvw),
               att = att_.resize(n, heads_ * head_dim_);
    q_proj.apply(be, xn, q);
    k_proj.apply(be, xn, k);
    v_proj.apply(be, xn, v);
    kernels_type::rope_forward(be, rows3(q_, heads_), pos, inv_freq, rows3(q_, heads_));
    kernels_type::rope_forward(be, rows3(k_, kv_heads_), pos, inv_freq, rows3(k_, kv_heads_));
    for (index_t b = 0; b < batch; ++b) {
      T* kd = k_cache + (b * capacity + length) * kvw;
      T* vd = v_cache + (b * capacity + length) * kvw;
      std::copy(k.data_handle() + b * s * kvw, k.data_handle() + (b + 1) * s * kvw, kd);
      std::copy(v.data_handle() + b * s * kvw, v.data_handle() + (b + 1) * s * kvw, vd);
    }
    const index_t keys = length + s;
    const tensor_view<const T, 4> kc(k_cache, {batch, keys, kv_heads_, head_dim_}, {capacity * kvw, kvw, head_dim_, 1});
    const tensor_view<const T, 4> vc(v_cache, {batch, keys, kv_heads_, head_dim_}, {capacity * kvw, kvw, head_dim_, 1});
    lse_.resize(batch, heads_ * s);
    kernels_type::attention_forward(be, seq4(q_, heads_), kc, vc, scale(), true, kv_begin, seq4(att_, heads_), lse3());
    const auto hmid = hmid_.resize(n, hid);
    o_proj.apply(be, att, hmid);
    add_rows(be, x, hmid);
    mlp_forward(be, step_context{}, hmid, y, false);
  }

 private:
  template <class F>
  void for_each_attention(F&& f) {
    f(q_proj);
    f(k_proj);
    f(v_proj);
    f(o_proj);
  }
  template <class F>
  void for_each_mlp(F&& f) {
    f(gate_proj);
    f(up_proj);
    f(down_proj);
  }

  /// y = h + down(silu(gate(n)) ⊙ up(n)), n = RMSNorm(h).
  void mlp_forward(const Backend& be, const step_context& ctx, matrix_view<const T> h, matrix_view<T> y,
                   bool training) {
    const index_t n = h.extent(0), hid = h.extent(1), inter = gate_proj.out_features();
    const auto xn2 = xn2_.resize(n, hid);
    rstd2_.resize(1, n);
    kernels_type::rmsnorm_forward(be, h, post_attention_layernorm.vector(), eps_, xn2, rstd_view(rstd2_));
    const auto gate = gate_.resize(n, inter), up = up_.resize(n, inter), act = act_.resize(n, inter);
    if (training) {
      gate_proj.forward(be, ctx, xn2, gate);
      up_proj.forward(be, ctx, xn2, up);
    } else {
      gate_proj.apply(be, xn2, gate);
      up_proj.apply(be, xn2, up);
    }
    kernels_type::swiglu_forward(be, matrix_view<const T>(gate), matrix_view<const T>(up), act);
    if (training)
      down_proj.forward(be, ctx, act, y);
    else
      down_proj.apply(be, act, y);
    add_rows(be, h, y);
  }

  T scale() const { return static_cast<T>(1.0 / std::sqrt(static_cast<double>(head_dim_))); }
  static vector_view<T> rstd_view(buffer<T>& b) { return {b.data(), {b.cols()}}; }
  static vector_view<T> norm_grad(parameter<T>& w) { return w.trainable ? w.grad_vector() : vector_view<T>{}; }
  /// A (N, heads·Dh) buffer as (N, heads, Dh).
  tensor_view<T, 3> rows3(buffer<T>& b, index_t heads) const { return {b.data(), {b.rows(), heads, head_dim_}}; }
  /// A (B·S, heads·Dh) buffer as (B, S, heads, Dh).
  tensor_view<T, 4> seq4(buffer<T>& b, index_t heads) const { return {b.data(), {batch_, seq_, heads, head_dim_}}; }
  tensor_view<T, 3> lse3() { return {lse_.data(), {batch_, heads_, seq_}}; }

  index_t heads_, kv_heads_, head_dim_;
  T eps_;
  index_t batch_ = 0, seq_ = 0;
  matrix_view<const T> x_;
  vector_view<const std::int32_t> pos_;
  vector_view<const T> inv_freq_;
  buffer<T> xn1_, rstd1_, q_, k_, v_, att_, lse_, hmid_, xn2_, rstd2_, gate_, up_, act_;
  std::shared_ptr<scratch_type> scratch_;
};

}  // namespace slim::nn
