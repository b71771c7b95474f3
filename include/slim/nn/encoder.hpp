// slim — nn::encoder: the BERT family (BertModel as HF transformers computes it, inference only) with HF
// weight names, mean or CLS pooling over the attention mask and optional L2 normalisation.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "slim/backend/common.hpp"
#include "slim/backend/kernels.hpp"
#include "slim/core/error.hpp"
#include "slim/core/tensor.hpp"
#include "slim/io/bert_config.hpp"
#include "slim/io/hf_checkpoint.hpp"
#include "slim/nn/context.hpp"
#include "slim/nn/layernorm.hpp"
#include "slim/nn/linear.hpp"
#include "slim/nn/parameter.hpp"

namespace slim::nn {

/// An encoder's shape: HF's BERT config fields (io/bert_config.hpp).
using encoder_config = io::bert_config;

/// How token states become one vector per sequence: `mean` averages the states of the tokens the
/// attention mask keeps (sentence-transformers' mean pooling); `cls` takes the first token's state.
enum class pooling : std::uint8_t { mean, cls };

/// Pooling and normalisation of `encoder::embed`. `normalize` divides each embedding by max(‖e‖₂, 1e-12)
/// (torch.nn.functional.normalize, sentence-transformers' Normalize module).
struct embed_options {
  nn::pooling pooling = nn::pooling::mean;
  bool normalize = false;
};

/// One post-LN transformer layer of a BERT encoder, HF's module names:
/// a = LN₁(x + dense(attention(q(x), k(x), v(x)))), y = LN₂(a + output(gelu(intermediate(a)))).
template <class Backend, class T = float>
struct encoder_layer {
  encoder_layer(const std::string& p, const encoder_config& c)
      : query(p + "attention.self.query", c.hidden_size, c.hidden_size),
        key(p + "attention.self.key", c.hidden_size, c.hidden_size),
        value(p + "attention.self.value", c.hidden_size, c.hidden_size),
        attention_output(p + "attention.output.dense", c.hidden_size, c.hidden_size),
        attention_norm(p + "attention.output.LayerNorm", c.hidden_size, c.layer_norm_eps),
        intermediate(p + "intermediate.dense", c.hidden_size, c.intermediate_size),
        output(p + "output.dense", c.intermediate_size, c.hidden_size),
        output_norm(p + "output.LayerNorm", c.hidden_size, c.layer_norm_eps) {}

  linear<Backend, T> query, key, value;  ///< (H,H) each, with bias
  linear<Backend, T> attention_output;   ///< (H,H)
  layernorm<Backend, T> attention_norm;  ///< (H)
  linear<Backend, T> intermediate;       ///< (I,H)
  linear<Backend, T> output;             ///< (H,I)
  layernorm<Backend, T> output_norm;     ///< (H)

  template <class F>
  void visit_parameters(F&& f) {
    query.visit_parameters(f);
    key.visit_parameters(f);
    value.visit_parameters(f);
    attention_output.visit_parameters(f);
    attention_norm.visit_parameters(f);
    intermediate.visit_parameters(f);
    output.visit_parameters(f);
    output_norm.visit_parameters(f);
  }
};

/// A BERT-family text encoder (inference): embeddings (word + token type + absolute position, then
/// LayerNorm) and `num_hidden_layers` post-LN layers with bidirectional attention, as HF's BertModel.
///
/// Batches are right-padded: `ids` (B,S) with an attention mask (B,S) whose rows are 1…1 0…0; the real
/// tokens of row b sit at positions 0…len_b−1. Each sequence is computed at its own length — padding never
/// enters a matrix product — so a sequence's outputs are the same (bit for bit) whatever else is in the
/// batch and however far it is padded. Results do not depend on the thread count.
///
/// Parameters carry HF's names without the "bert." prefix ("embeddings.word_embeddings.weight",
/// "encoder.layer.0.attention.self.query.weight", ...); `load` accepts either spelling. An encoder object
/// keeps scratch buffers: call it from one thread at a time.
template <class Backend, class T = float>
class encoder {
  encoder_config config_;  // first: validated before any parameter is sized

 public:
  using kernels_type = kernels<Backend>;
  using layer_type = encoder_layer<Backend, T>;

  /// An encoder of the given shape, every weight 0 and every norm weight 1 (fill it with `load` or through
  /// `visit_parameters`), every parameter frozen (inference only: no gradient buffers). Throws slim::error
  /// when the config is inconsistent.
  explicit encoder(const encoder_config& c)
      : config_((c.validate(), c)),
        word_embeddings("embeddings.word_embeddings.weight", c.vocab_size, c.hidden_size, parameter_role::embedding),
        position_embeddings("embeddings.position_embeddings.weight", c.max_position_embeddings, c.hidden_size,
                            parameter_role::embedding),
        token_type_embeddings("embeddings.token_type_embeddings.weight", c.type_vocab_size, c.hidden_size,
                              parameter_role::embedding),
        embedding_norm("embeddings.LayerNorm", c.hidden_size, c.layer_norm_eps) {
    layers.reserve(static_cast<std::size_t>(c.num_hidden_layers));
    for (index_t i = 0; i < c.num_hidden_layers; ++i)
      layers.emplace_back("encoder.layer." + std::to_string(i) + ".", c);
    // inference only: no parameter is trained, so none keeps a gradient buffer
    visit_parameters([](parameter<T>& p) {
      if constexpr (requires { p.freeze(); })
        p.freeze();
      else
        p.trainable = false;
    });
  }

  parameter<T> word_embeddings;        ///< (V,H)
  parameter<T> position_embeddings;    ///< (P,H)
  parameter<T> token_type_embeddings;  ///< (types,H)
  layernorm<Backend, T> embedding_norm;
  std::vector<layer_type> layers;

  /// An encoder read from an HF model folder: its config.json (io::parse_bert_config) and weights
  /// (model.safetensors or shards, io::hf_checkpoint). Errors name the file and the field or tensor.
  static encoder from_pretrained(const std::string& dir) {
    const io::hf_checkpoint ck(dir);
    encoder e(io::parse_bert_config(ck.config(), ck.dir() + "/config.json"));
    e.load(ck);
    return e;
  }

  const encoder_config& config() const noexcept { return config_; }
  index_t hidden_size() const noexcept { return config_.hidden_size; }

  /// Calls f(parameter<T>&) on every parameter in HF's state_dict order.
  template <class F>
  void visit_parameters(F&& f) {
    f(word_embeddings);
    f(position_embeddings);
    f(token_type_embeddings);
    embedding_norm.visit_parameters(f);
    for (auto& l : layers) l.visit_parameters(f);
  }

  /// Reads every parameter from an HF checkpoint (io::hf_checkpoint, or anything with the same
  /// `contains(name)`, `read(name, view)` and `dir()`), under its own name or with a "bert." prefix. Shapes
  /// must match exactly (the checkpoint's read checks them); a missing tensor throws slim::error naming the
  /// folder and the tensor. Other tensors (the pooler, position_ids) are ignored. Nothing is kept from the
  /// checkpoint after loading.
  template <class Checkpoint>
  void load(const Checkpoint& ck) {
    tensor<float, 1> staging;
    visit_parameters([&](parameter<T>& p) {
      std::string name = p.name;
      if (!ck.contains(name)) {
        if (!ck.contains("bert." + name))
          throw error(std::string(ck.dir()), "tensor " + p.name,
                      "missing from the checkpoint (also looked for bert." + p.name + ")");
        name = "bert." + name;
      }
      float* dst = nullptr;
      if constexpr (std::is_same_v<T, float>) {
        dst = p.value.data();
      } else {
        if (staging.size() < p.size()) staging = tensor<float, 1>({p.size()});
        dst = staging.data();
      }
      if (p.rank == 2)
        ck.read(name, matrix_view<float>(dst, {p.rows, p.cols}));
      else
        ck.read(name, vector_view<float>(dst, {p.cols}));
      if constexpr (!std::is_same_v<T, float>)
        for (index_t i = 0; i < p.size(); ++i) p.value.data()[i] = static_cast<T>(dst[i]);
    });
  }

  /// The last layer's token states: out[b, t] for t < len_b, and 0 at padded positions (HF fills those with
  /// the states of the padding tokens; they carry no meaning). `token_types` may be empty (all type 0) and
  /// `attention_mask` may be empty (no padding).      ids, attention_mask, token_types (B,S) int32; out (B,S,H)
  void hidden_states(const Backend& be, tensor_view<const std::int32_t, 2> ids,
                     tensor_view<const std::int32_t, 2> attention_mask, tensor_view<const std::int32_t, 2> token_types,
                     tensor_view<T, 3> out) {
    constexpr const char* where = "slim::nn::encoder::hidden_states";
    const index_t b = ids.extent(0), s = ids.extent(1), h = hidden_size();
    require_shape(out, {b, s, h}, where, "out");
    require(out.has_unit_inner_stride(), where, "out needs a unit stride in the hidden dimension");
    const matrix_view<const T> x = run(be, ids, attention_mask, token_types, where);
    for (index_t r = 0; r < b; ++r) {
      const index_t len = length(r), row = offsets_[static_cast<std::size_t>(r)];
      for (index_t t = 0; t < s; ++t) {
        T* o = &out(r, t, 0);
        if (t < len)
          std::copy_n(&x(row + t, 0), h, o);
        else
          std::fill_n(o, h, T(0));
      }
    }
  }

  /// One embedding per sequence: the last layer's states pooled as `options` says (mean over the tokens
  /// the mask keeps, or the first token's), then L2-normalised when asked. `token_types` may be empty (all
  /// type 0), `attention_mask` empty (no padding).   ids, attention_mask, token_types (B,S) int32; out (B,H)
  void embed(const Backend& be, tensor_view<const std::int32_t, 2> ids,
             tensor_view<const std::int32_t, 2> attention_mask, matrix_view<T> out, embed_options options = {},
             tensor_view<const std::int32_t, 2> token_types = {}) {
    constexpr const char* where = "slim::nn::encoder::embed";
    const index_t b = ids.extent(0), h = hidden_size();
    require_shape(out, {b, h}, where, "out");
    require(out.has_unit_inner_stride(), where, "out needs a unit stride in the hidden dimension");
    const matrix_view<const T> x = run(be, ids, attention_mask, token_types, where);
    std::vector<double> acc(static_cast<std::size_t>(h));
    for (index_t r = 0; r < b; ++r) {
      const index_t len = length(r), row = offsets_[static_cast<std::size_t>(r)];
      T* o = &out(r, 0);
      if (options.pooling == pooling::cls) {
        std::copy_n(&x(row, 0), h, o);
      } else {  // Σₜ x[t] / len, summed in token order
        std::fill(acc.begin(), acc.end(), 0.0);
        for (index_t t = 0; t < len; ++t) {
          const T* xs = &x(row + t, 0);
          for (index_t c = 0; c < h; ++c) acc[static_cast<std::size_t>(c)] += static_cast<double>(xs[c]);
        }
        for (index_t c = 0; c < h; ++c)
          o[c] = static_cast<T>(acc[static_cast<std::size_t>(c)] / static_cast<double>(len));
      }
      if (options.normalize) {
        double ss = 0;
        for (index_t c = 0; c < h; ++c) ss += static_cast<double>(o[c]) * static_cast<double>(o[c]);
        const double inv = 1.0 / std::max(std::sqrt(ss), 1e-12);
        for (index_t c = 0; c < h; ++c) o[c] = static_cast<T>(static_cast<double>(o[c]) * inv);
      }
    }
  }

 private:
  index_t length(index_t r) const noexcept {
    return offsets_[static_cast<std::size_t>(r) + 1] - offsets_[static_cast<std::size_t>(r)];
  }

  /// Checks the inputs and records each row's length (offsets_) and the packed ids, types and positions.
  void pack(tensor_view<const std::int32_t, 2> ids, tensor_view<const std::int32_t, 2> mask,
            tensor_view<const std::int32_t, 2> types, const char* where) {
    require_valid(ids, where, "ids");
    const index_t b = ids.extent(0), s = ids.extent(1);
    // a default-constructed view (all extents 0) means "not given"
    const bool has_mask = mask.extent(0) != 0 || mask.extent(1) != 0;
    const bool has_types = types.extent(0) != 0 || types.extent(1) != 0;
    if (has_mask) require_shape(mask, {b, s}, where, "attention_mask");
    if (has_types) require_shape(types, {b, s}, where, "token_types");
    offsets_.assign(1, 0);
    ids_.clear();
    types_.clear();
    positions_.clear();
    for (index_t r = 0; r < b; ++r) {
      index_t len = s;
      if (has_mask) {
        len = 0;
        while (len < s && mask(r, len) == 1) ++len;
        for (index_t t = len; t < s; ++t)
          if (mask(r, t) != 0)
            throw error(where, "attention_mask[" + std::to_string(r) + "][" + std::to_string(t) + "]",
                        mask(r, t) == 1 ? "batches must be right-padded: a 1 after a 0"
                                        : "entries must be 0 or 1, found " + std::to_string(mask(r, t)));
      }
      require(len > 0, where, "row ", r, " has no token (its attention mask is all 0)");
      if (len > config_.max_position_embeddings)
        throw error(where, "row " + std::to_string(r),
                    std::to_string(len) + " tokens, more than max_position_embeddings " +
                        std::to_string(config_.max_position_embeddings) + " (truncate the input)");
      for (index_t t = 0; t < len; ++t) {
        const std::int32_t id = ids(r, t), ty = has_types ? types(r, t) : 0;
        if (id < 0 || id >= config_.vocab_size)
          throw error(where, "ids[" + std::to_string(r) + "][" + std::to_string(t) + "]",
                      "id " + std::to_string(id) + " outside [0, " + std::to_string(config_.vocab_size) + ")");
        if (ty < 0 || ty >= config_.type_vocab_size)
          throw error(where, "token_types[" + std::to_string(r) + "][" + std::to_string(t) + "]",
                      "type " + std::to_string(ty) + " outside [0, " + std::to_string(config_.type_vocab_size) + ")");
        ids_.push_back(id);
        types_.push_back(ty);
        positions_.push_back(static_cast<std::int32_t>(t));
      }
      offsets_.push_back(offsets_.back() + len);
    }
  }

  /// Head-split view of sequence r's rows in a packed (N,H) buffer: (1, len, heads, Dh).
  tensor_view<T, 4> heads_of(buffer<T>& m, index_t r) const {
    const index_t h = hidden_size(), nh = config_.num_attention_heads, dh = config_.head_dim();
    const index_t len = length(r);
    return {m.data() + offsets_[static_cast<std::size_t>(r)] * h, {1, len, nh, dh}, {len * h, h, dh, 1}};
  }

  /// The whole forward pass over the packed rows; returns the last layer's states (N,H).
  matrix_view<const T> run(const Backend& be, tensor_view<const std::int32_t, 2> ids,
                           tensor_view<const std::int32_t, 2> mask, tensor_view<const std::int32_t, 2> types,
                           const char* where) {
    pack(ids, mask, types, where);
    const index_t n = offsets_.back(), h = hidden_size(), nh = config_.num_attention_heads;
    const index_t rows = static_cast<index_t>(offsets_.size()) - 1;
    // embeddings: (word + type) + position, as HF adds them, then LayerNorm
    const auto e = e_.resize(n, h), x = x_.resize(n, h);
    {
      const T* w = word_embeddings.value.data();
      const T* ty = token_type_embeddings.value.data();
      const T* p = position_embeddings.value.data();
      for (index_t i = 0; i < n; ++i) {
        const T* wr = w + static_cast<index_t>(ids_[static_cast<std::size_t>(i)]) * h;
        const T* tr = ty + static_cast<index_t>(types_[static_cast<std::size_t>(i)]) * h;
        const T* pr = p + static_cast<index_t>(positions_[static_cast<std::size_t>(i)]) * h;
        T* er = &e(i, 0);
        for (index_t c = 0; c < h; ++c) er[c] = (wr[c] + tr[c]) + pr[c];
      }
    }
    embedding_norm.apply(be, e, x);
    const auto q = q_.resize(n, h), k = k_.resize(n, h), v = v_.resize(n, h), o = o_.resize(n, h);
    const auto a = a_.resize(n, h), mid = mid_.resize(n, config_.intermediate_size);
    lse_.resize(1, n * nh);
    const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(config_.head_dim())));
    const auto act = config_.hidden_act == io::bert_activation::gelu_erf ? backend::gelu_approximation::erf
                                                                         : backend::gelu_approximation::tanh;
    for (auto& l : layers) {
      l.query.apply(be, x, q);
      l.key.apply(be, x, k);
      l.value.apply(be, x, v);
      const Backend one = serial(be);
      parallel_for(pool_of(be), rows, 1, [&](index_t r0, index_t r1) {
        for (index_t r = r0; r < r1; ++r) {
          const index_t len = length(r);
          const tensor_view<T, 3> lse(lse_.data() + offsets_[static_cast<std::size_t>(r)] * nh, {1, nh, len});
          kernels_type::attention_forward(one, tensor_view<const T, 4>(heads_of(q_, r)),
                                          tensor_view<const T, 4>(heads_of(k_, r)),
                                          tensor_view<const T, 4>(heads_of(v_, r)), scale, false,
                                          vector_view<const std::int32_t>{}, heads_of(o_, r), lse);
        }
      });
      l.attention_output.apply(be, o, a);  // a = dense(o) + x, then LN₁ → e
      add_rows(be, matrix_view<const T>(x), a);
      l.attention_norm.apply(be, a, e);
      l.intermediate.apply(be, e, mid);  // mid = gelu(intermediate(e))
      kernels_type::gelu_forward(be, matrix_view<const T>(mid), act, mid);
      l.output.apply(be, mid, a);  // a = output(mid) + e, then LN₂ → x
      add_rows(be, matrix_view<const T>(e), a);
      l.output_norm.apply(be, a, x);
    }
    return x;
  }

  std::vector<index_t> offsets_;
  std::vector<std::int32_t> ids_, types_, positions_;
  buffer<T> e_, x_, q_, k_, v_, o_, a_, mid_, lse_;
};

}  // namespace slim::nn
