// slim — nn::decoder_lm<Backend, Adapter, T>: the LLaMA-family causal language model (token embedding, N decoder
// blocks, final RMSNorm, LM head tied or untied) with HF parameter names, LoRA as the Adapter policy
// (`lora<q_proj, v_proj>`, or `no_adapter` for full fine-tuning), training forward/backward over right-padded
// batches, a KV-cache forward over left-padded batches for generation, and LoRA merge/unmerge.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "slim/backend/kernels.hpp"
#include "slim/nn/context.hpp"
#include "slim/nn/decoder_block.hpp"
#include "slim/nn/init.hpp"
#include "slim/nn/lora.hpp"
#include "slim/nn/parameter.hpp"
#include "slim/nn/rope.hpp"

namespace slim::nn {

/// A LLaMA-family decoder-only LM. Parameters (visit_parameters, in this order): model.embed_tokens.weight (V,H);
/// per layer i: model.layers.i.input_layernorm.weight, self_attn.{q,k,v}_proj.weight (+ .bias with
/// attention_bias), self_attn.o_proj.weight (+ .bias with attention_output_bias), post_attention_layernorm.weight,
/// mlp.{gate,up,down}_proj.weight, each projection followed by its LoRA factors "<module>.lora_A.weight" (r,in) and
/// "<module>.lora_B.weight" (out,r) when the Adapter targets it; model.norm.weight; lm_head.weight (V,H) unless tied.
/// Under `lora<...>` every base parameter is frozen with no gradient buffer.
template <class Backend, class Adapter = no_adapter, class T = float>
class decoder_lm {
 public:
  using kernels_type = kernels<Backend>;
  using adapter_type = Adapter;
  using value_type = T;

  explicit decoder_lm(const decoder_config& cfg, const lora_config& lcfg = {})
      : cfg_(cfg),
        lcfg_(lcfg),
        embed_tokens_("model.embed_tokens.weight", cfg.vocab_size, cfg.hidden_size, parameter_role::embedding),
        norm_("model.norm.weight", cfg.hidden_size, parameter_role::norm) {
    cfg_.validate();
    layers_.reserve(static_cast<std::size_t>(cfg.num_layers));
    const auto scratch = std::make_shared<typename decoder_block<Backend, T>::scratch_type>();
    for (index_t i = 0; i < cfg.num_layers; ++i) {
      layers_.emplace_back(cfg_, "model.layers." + std::to_string(i));
      layers_.back().share_scratch(scratch);
    }
    if (!cfg.tie_word_embeddings)
      lm_head_ = parameter<T>("lm_head.weight", cfg.vocab_size, cfg.hidden_size, parameter_role::weight);
    inv_freq_ = rope_frequencies<T>(cfg_);
    reset_parameters(0);
    for (index_t i = 0; i < cfg.num_layers; ++i)
      for (int p = 0; p < 7; ++p)
        if (Adapter::adapts(static_cast<projection>(p)))
          layers_[static_cast<std::size_t>(i)]
              .proj(static_cast<projection>(p))
              .add_adapter(lcfg, static_cast<std::uint32_t>(0x10000 + i * 8 + p));
    if constexpr (Adapter::freezes_base) visit_base_parameters([](parameter<T>& p) { p.freeze(); });
  }

  const decoder_config& config() const noexcept { return cfg_; }
  const lora_config& adapter_config() const noexcept { return lcfg_; }
  index_t num_layers() const noexcept { return cfg_.num_layers; }
  decoder_block<Backend, T>& layer(index_t i) { return layers_[static_cast<std::size_t>(i)]; }
  parameter<T>& embed_tokens() noexcept { return embed_tokens_; }
  parameter<T>& final_norm() noexcept { return norm_; }
  /// The LM head matrix (V,H): lm_head.weight, or the embedding when tied.
  parameter<T>& head() noexcept { return cfg_.tie_word_embeddings ? embed_tokens_ : lm_head_; }
  /// RoPE inverse frequencies (Dh/2), Llama-3 scaling applied.
  const std::vector<T>& inverse_frequencies() const noexcept { return inv_freq_; }

  /// The dropout state of the next forward (LoRA dropout is active only when ctx.training).
  void set_context(const step_context& ctx) noexcept { ctx_ = ctx; }

  /// Every parameter, base and adapter, in the order documented above.
  template <class F>
  void visit_parameters(F&& f) {
    packed_head_.reset();  // the visitor may change the weights: packed copies go (the layers drop their own)
    f(embed_tokens_);
    for (auto& l : layers_) l.visit_parameters(f);
    f(norm_);
    if (!cfg_.tie_word_embeddings) f(lm_head_);
  }
  /// Base parameters only (the names of an HF checkpoint).
  template <class F>
  void visit_base_parameters(F&& f) {
    packed_head_.reset();
    f(embed_tokens_);
    for (auto& l : layers_) l.visit_base(f);
    f(norm_);
    if (!cfg_.tie_word_embeddings) f(lm_head_);
  }
  /// LoRA factors only, named "model.layers.i.self_attn.q_proj.lora_A.weight" (PEFT's file keys without the
  /// "base_model.model." prefix).
  template <class F>
  void visit_adapters(F&& f) {
    for (auto& l : layers_) l.visit_adapters(f);
  }

  /// HF's initialisation for a model built in code: matrices N(0, stddev²), biases 0, norms 1 (keyed by seed
  /// and name). LoRA factors are left alone.
  void reset_parameters(std::uint64_t seed, double stddev = 0.02) {
    visit_base_parameters([&](parameter<T>& p) {
      if (p.role == parameter_role::norm)
        init_constant(p, 1.0);
      else if (p.role == parameter_role::bias)
        init_constant(p, 0.0);
      else
        init_normal(p, 0.0, stddev, seed);
    });
  }

  /// Loads every base parameter by its HF name from a checkpoint (io::hf_checkpoint, or anything with contains,
  /// dir and read(name, view)); shapes are checked exactly and stored dtypes converted. A tensor the model needs and
  /// the checkpoint lacks throws slim::error naming the folder and the tensor; tensors the model does not use
  /// are ignored; a tied model reads no lm_head.weight. LoRA factors are left alone.
  template <class Checkpoint>
  void load(const Checkpoint& ck) {
    visit_base_parameters([&](parameter<T>& p) {
      if (!ck.contains(p.name)) throw error(ck.dir(), "tensor " + p.name, "missing from the checkpoint");
      require(p.value.size() == p.rows * p.cols, "slim::nn::decoder_lm::load", p.name,
              " is stored in bf16 (store_frozen_weights_bf16): load before converting");
      if (p.rank == 2)
        ck.read(p.name, p.matrix());
      else
        ck.read(p.name, p.vector());
    });
  }

  /// Training forward: ids (B,S) right-padded, position of column t = t; logits (B·S, V), row b·S + t. Caches
  /// the activations backward needs.
  void forward(const Backend& be, tensor_view<const std::int32_t, 2> ids, matrix_view<T> logits) {
    constexpr const char* where = "slim::nn::decoder_lm::forward";
    check_ids(ids, where);
    require_shape(logits, {ids.extent(0) * ids.extent(1), cfg_.vocab_size}, where, "logits");
    run_blocks(be, ids, ctx_);
    head_forward(be, hs_.back().view(), logits, true);
  }

  /// Inference forward to the final RMSNorm: out (B·S, H), row b·S + t, for right-padded ids (B,S) (causal, so
  /// a row's states at its real positions do not depend on its padding). No dropout; the activations of a
  /// previous training forward are overwritten. What pooled sentence embeddings read.
  void hidden_states(const Backend& be, tensor_view<const std::int32_t, 2> ids, matrix_view<T> out) {
    constexpr const char* where = "slim::nn::decoder_lm::hidden_states";
    check_ids(ids, where);
    require_shape(out, {ids.extent(0) * ids.extent(1), cfg_.hidden_size}, where, "out");
    for (index_t i = 0; i < ids.extent(0); ++i)
      for (index_t t = 0; t < ids.extent(1); ++t)
        require(ids(i, t) >= 0 && ids(i, t) < cfg_.vocab_size, where, "token id ", ids(i, t), " at (", i, ", ", t,
                ") lies outside the vocabulary [0, ", cfg_.vocab_size, ")");
    run_blocks(be, ids, step_context{});
    kernels_type::rmsnorm_forward(be, matrix_view<const T>(hs_.back().view()), norm_.vector(),
                                  static_cast<T>(cfg_.rms_norm_eps), out, vector_view<T>{});
  }

  /// Backward of the last forward: accumulates into every trainable parameter's gradient.   dlogits (B·S, V)
  void backward(const Backend& be, matrix_view<const T> dlogits) {
    constexpr const char* where = "slim::nn::decoder_lm::backward";
    const index_t n = static_cast<index_t>(ids_.size()), hid = cfg_.hidden_size;
    require(n > 0 && hs_.size() == layers_.size() + 1, where, "backward needs a training forward first");
    require_shape(dlogits, {n, cfg_.vocab_size}, where, "dlogits");
    parameter<T>& w = head();
    if (w.trainable)
      kernels_type::gemm(be, T(1), transpose(dlogits), matrix_view<const T>(xf_.view()), T(1), w.grad_matrix());
    const auto dxf = dxf_.resize(n, hid);
    kernels_type::gemm(be, T(1), dlogits, w.matrix(), T(0), dxf);
    auto dh = dh_[0].zeros(n, hid);
    kernels_type::rmsnorm_backward(be, hs_.back().view(), norm_.vector(), rstd_f_view(), matrix_view<const T>(dxf), dh,
                                   norm_.trainable ? norm_.grad_vector() : vector_view<T>{});
    int cur = 0;
    for (std::size_t l = layers_.size(); l-- > 0;) {
      // the first block's input gradient feeds only the embedding
      const auto dx = l == 0 && !embed_tokens_.trainable ? matrix_view<T>{} : dh_[1 - cur].zeros(n, hid);
      layers_[l].backward(be, dh_[cur].view(), dx);
      cur = 1 - cur;
    }
    if (embed_tokens_.trainable)
      kernels_type::embedding_backward(be, ids_view(), dh_[cur].view(), embed_tokens_.grad_matrix());
  }

  /// Key/value storage of every layer for `batch` sequences of up to `capacity` columns.
  struct kv_cache {
    index_t batch = 0, capacity = 0;
    index_t length = 0;                      ///< columns filled so far
    std::vector<std::int32_t> kv_begin;      ///< (batch): first real column of each sequence
    std::vector<tensor<T, 1>> keys, values;  ///< per layer (batch, capacity, Hkv, Dh)
    /// Forget the contents (keep the storage).
    void clear() noexcept {
      length = 0;
      std::fill(kv_begin.begin(), kv_begin.end(), 0);
    }
  };

  kv_cache make_cache(index_t batch, index_t capacity) const {
    require(batch > 0 && capacity > 0, "slim::nn::decoder_lm::make_cache", "batch ", batch, " and capacity ", capacity,
            " must be positive");
    require(capacity <= cfg_.max_positions, "slim::nn::decoder_lm::make_cache", "capacity ", capacity,
            " exceeds max_position_embeddings ", cfg_.max_positions);
    kv_cache c;
    c.batch = batch;
    c.capacity = capacity;
    c.kv_begin.assign(static_cast<std::size_t>(batch), 0);
    const index_t per = batch * capacity * cfg_.num_kv_heads * cfg_.head_dim();
    for (index_t l = 0; l < cfg_.num_layers; ++l) {
      c.keys.emplace_back(std::array<index_t, 1>{per});
      c.values.emplace_back(std::array<index_t, 1>{per});
    }
    return c;
  }

  /// Inference with a KV cache. The first call (cache.length == 0) is the prefill: ids (B,S) left-padded, kv_begin
  /// (B) the first real column of each row (empty: no padding; padding columns must still hold valid ids);
  /// later calls pass the next columns (usually (B,1)) and an empty kv_begin. Position of column t of row b is
  /// t − kv_begin[b]. last_logits (B,V) receives the logits of each row's last column. Invalidates a pending
  /// backward.
  void forward_cached(const Backend& be, tensor_view<const std::int32_t, 2> ids, std::span<const std::int32_t> kv_begin,
                      kv_cache& cache, matrix_view<T> last_logits) {
    constexpr const char* where = "slim::nn::decoder_lm::forward_cached";
    const index_t b = ids.extent(0), s = ids.extent(1), n = b * s, hid = cfg_.hidden_size;
    require(b == cache.batch, where, "ids have ", b, " rows, the cache ", cache.batch);
    require(s > 0, where, "ids have no columns");
    require(static_cast<index_t>(cache.keys.size()) == cfg_.num_layers, where, "the cache was made for another model");
    require(cache.length + s <= cache.capacity, where, "the cache holds ", cache.capacity, " columns; ", cache.length,
            " are filled and ", s, " more were given");
    require_shape(last_logits, {b, cfg_.vocab_size}, where, "last_logits");
    if (cache.length == 0) {
      require(kv_begin.empty() || static_cast<index_t>(kv_begin.size()) == b, where, "kv_begin has ", kv_begin.size(),
              " entries, the batch ", b);
      for (index_t i = 0; i < b; ++i) {
        const std::int32_t k = kv_begin.empty() ? 0 : kv_begin[static_cast<std::size_t>(i)];
        require(k >= 0 && k < s, where, "kv_begin[", i, "] = ", k, " must lie in [0, ", s, ")");
        cache.kv_begin[static_cast<std::size_t>(i)] = k;
      }
    } else {
      require(kv_begin.empty(), where, "kv_begin is given at the prefill only");
    }
    ids_.resize(static_cast<std::size_t>(n));
    pos_.resize(static_cast<std::size_t>(n));
    for (index_t i = 0; i < b; ++i)
      for (index_t t = 0; t < s; ++t) {
        ids_[static_cast<std::size_t>(i * s + t)] = ids(i, t);
        pos_[static_cast<std::size_t>(i * s + t)] = static_cast<std::int32_t>(
            std::max<index_t>(0, cache.length + t - cache.kv_begin[static_cast<std::size_t>(i)]));
      }
    const vector_view<const std::int32_t> kvb(cache.kv_begin.data(), {b});
    hs_.resize(2);
    kernels_type::embedding_forward(be, embed_tokens_.matrix(), ids_view(), hs_[0].resize(n, hid));
    int cur = 0;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      layers_[l].forward_cached(be, hs_[cur].view(), b, pos_view(), freq_view(), kvb, cache.keys[l].data(),
                                cache.values[l].data(), cache.capacity, cache.length, hs_[1 - cur].resize(n, hid));
      cur = 1 - cur;
    }
    cache.length += s;
    const auto last = last_.resize(b, hid);
    for (index_t i = 0; i < b; ++i)
      std::copy(&hs_[cur].view()(i * s + s - 1, 0), &hs_[cur].view()(i * s + s - 1, 0) + hid, &last(i, 0));
    head_forward(be, last, last_logits, false);
    ids_.clear();  // no backward after an inference pass
  }

  /// Packs every projection weight and the LM head for inference (lora_linear::pack_weight): decoding then
  /// reads each weight once per token instead of repacking it per product, at the cost of one more copy of the
  /// float weights until drop_packed_weights(). Training forwards never read the copies; load, reset_parameters
  /// and the parameter visitors drop them (a weight changed through a reference kept from earlier needs
  /// drop_packed_weights()). generate() packs for its call, unless already packed, and drops after. Logits are
  /// bit-identical either way.
  void pack_weights(const Backend& be) {
    for_each_projection([&](auto& proj) { proj.pack_weight(be); });
    if constexpr (packs_rhs<kernels_type, T>) packed_head_ = kernels_type::pack_b(be, transpose(head().matrix()));
  }
  bool weights_packed() const noexcept { return static_cast<bool>(packed_head_); }
  void drop_packed_weights() noexcept {
    for_each_projection([](auto& proj) { proj.drop_packed(); });
    packed_head_.reset();
  }

  /// Merges every LoRA adapter into its base weight (W += scale·B·A, in double, rounded once).
  void merge_adapters() {
    for_each_projection([](auto& proj) { proj.merge(); });
  }
  /// Stores every frozen projection weight (q … down) in bf16 only, halving the frozen base's memory; call it after
  /// load. The embedding, norms and LM head stay in T. Float models only.
  void store_frozen_weights_bf16() {
    for_each_projection([](auto& proj) {
      if (!proj.weight.trainable) proj.store_weight_bf16();
    });
  }

  /// Undoes merge_adapters (W −= the same delta).
  void unmerge_adapters() {
    for_each_projection([](auto& proj) { proj.unmerge(); });
  }
  /// The largest |logit difference| on `ids` between the adapter path and the merged weights; the model is left
  /// unmerged. A check to run before exporting merged weights.
  double merge_difference(const Backend& be, tensor_view<const std::int32_t, 2> ids) {
    const index_t n = ids.extent(0) * ids.extent(1);
    tensor<T, 2> a({n, cfg_.vocab_size}), m({n, cfg_.vocab_size});
    unmerge_adapters();
    forward(be, ids, a.view());
    merge_adapters();
    forward(be, ids, m.view());
    unmerge_adapters();
    ids_.clear();
    double worst = 0;
    for (index_t i = 0; i < a.size(); ++i)
      worst = std::max(worst, std::abs(static_cast<double>(a.data()[i]) - static_cast<double>(m.data()[i])));
    return worst;
  }

 private:
  vector_view<const std::int32_t> ids_view() const { return {ids_.data(), {static_cast<index_t>(ids_.size())}}; }
  vector_view<const std::int32_t> pos_view() const { return {pos_.data(), {static_cast<index_t>(pos_.size())}}; }
  vector_view<const T> freq_view() const { return {inv_freq_.data(), {static_cast<index_t>(inv_freq_.size())}}; }
  vector_view<T> rstd_f_view() { return {rstd_f_.data(), {rstd_f_.cols()}}; }

  /// f(projection) for every projection of every block.
  template <class F>
  void for_each_projection(F&& f) {
    for (auto& l : layers_) l.for_each_projection(f);
  }

  /// ids must be a non-empty (B,S) with S within max_position_embeddings.
  void check_ids(tensor_view<const std::int32_t, 2> ids, const char* where) const {
    const index_t b = ids.extent(0), s = ids.extent(1);
    require(b > 0 && s > 0, where, "ids must be non-empty, got (", b, ", ", s, ")");
    require(s <= cfg_.max_positions, where, "sequence length ", s, " exceeds max_position_embeddings ",
            cfg_.max_positions);
  }

  /// Embedding and every block for right-padded ids (B,S), position of column t = t, under `ctx`: hs_[0..L]
  /// hold the inputs of each block and the last block's output (what backward and the head read).
  void run_blocks(const Backend& be, tensor_view<const std::int32_t, 2> ids, const step_context& ctx) {
    const index_t b = ids.extent(0), s = ids.extent(1), n = b * s, hid = cfg_.hidden_size;
    batch_ = b;
    ids_.resize(static_cast<std::size_t>(n));
    pos_.resize(static_cast<std::size_t>(n));
    for (index_t i = 0; i < b; ++i)
      for (index_t t = 0; t < s; ++t) {
        ids_[static_cast<std::size_t>(i * s + t)] = ids(i, t);
        pos_[static_cast<std::size_t>(i * s + t)] = static_cast<std::int32_t>(t);
      }
    hs_.resize(layers_.size() + 1);
    kernels_type::embedding_forward(be, embed_tokens_.matrix(), ids_view(), hs_[0].resize(n, hid));
    for (std::size_t l = 0; l < layers_.size(); ++l)
      layers_[l].forward(be, ctx, hs_[l].view(), b, pos_view(), freq_view(), hs_[l + 1].resize(n, hid));
  }

  /// logits = RMSNorm(h)·Wᵀ (the normalised rows kept for backward when `training`).
  void head_forward(const Backend& be, matrix_view<const T> h, matrix_view<T> logits, bool training) {
    const index_t n = h.extent(0);
    const auto xf = xf_.resize(n, cfg_.hidden_size);
    rstd_f_.resize(1, n);
    kernels_type::rmsnorm_forward(be, h, norm_.vector(), static_cast<T>(cfg_.rms_norm_eps), xf,
                                  training ? rstd_f_view() : vector_view<T>{});
    if constexpr (packs_rhs<kernels_type, T>) {
      if (packed_head_ && !training) {
        kernels_type::gemm(be, T(1), matrix_view<const T>(xf), *packed_head_, 0, T(0), logits);
        return;
      }
    }
    kernels_type::gemm(be, T(1), matrix_view<const T>(xf), transpose(head().matrix()), T(0), logits);
  }

  decoder_config cfg_;
  lora_config lcfg_;
  parameter<T> embed_tokens_;
  std::vector<decoder_block<Backend, T>> layers_;
  parameter<T> norm_;
  parameter<T> lm_head_;
  std::vector<T> inv_freq_;
  step_context ctx_{};
  index_t batch_ = 0;
  std::vector<std::int32_t> ids_, pos_;
  std::vector<buffer<T>> hs_;
  buffer<T> xf_, rstd_f_, dxf_, last_;
  buffer<T> dh_[2];
  optional_packed_t<kernels_type, T> packed_head_;
};

}  // namespace slim::nn
