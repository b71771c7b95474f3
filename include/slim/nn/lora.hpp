// slim — LoRA as a policy: the projection tags a decoder's matmuls carry (q_proj … down_proj), `lora<Targets...>`
// and `no_adapter`, the LoRA settings, and `lora_linear`: y = x·Wᵀ + b + scale·B(A·dropout(x)) with W (out, in)
// frozen and A (r, in), B (out, r) trainable, as PEFT's LoRA Linear computes it; merge/unmerge into W.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "slim/backend/kernels.hpp"
#include "slim/backend/packed_matrix.hpp"
#include "slim/core/half.hpp"
#include "slim/nn/context.hpp"
#include "slim/nn/init.hpp"
#include "slim/nn/parameter.hpp"

namespace slim::nn {

/// The seven matmuls of a LLaMA block, by their HF module names.
enum class projection : std::uint8_t { q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj };

/// The HF module name of a projection ("q_proj", …).
inline const char* projection_name(projection p) noexcept {
  constexpr const char* names[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  return names[static_cast<int>(p)];
}

/// Target tags for `lora<Targets...>`.
struct q_proj {
  static constexpr projection value = projection::q_proj;
};
struct k_proj {
  static constexpr projection value = projection::k_proj;
};
struct v_proj {
  static constexpr projection value = projection::v_proj;
};
struct o_proj {
  static constexpr projection value = projection::o_proj;
};
struct gate_proj {
  static constexpr projection value = projection::gate_proj;
};
struct up_proj {
  static constexpr projection value = projection::up_proj;
};
struct down_proj {
  static constexpr projection value = projection::down_proj;
};

/// Full fine-tuning: no adapter anywhere, every parameter trainable.
struct no_adapter {
  static constexpr bool adapts(projection) noexcept { return false; }
  static constexpr bool freezes_base = false;
};

/// LoRA on the listed projections (e.g. lora<q_proj, v_proj>); every base parameter is frozen (no gradient
/// buffer), only the LoRA factors train, as PEFT does by default.
template <class... Targets>
struct lora {
  static_assert(sizeof...(Targets) > 0, "slim::nn::lora needs at least one target projection (q_proj, ..., down_proj)");
  static constexpr bool adapts(projection p) noexcept { return ((Targets::value == p) || ...); }
  static constexpr bool freezes_base = true;
};

/// LoRA hyper-parameters as PEFT names them (r, lora_alpha, lora_dropout, use_rslora); `seed` keys the
/// initialisation of A.
struct lora_config {
  index_t rank = 8;
  double alpha = 16;
  double dropout = 0;
  bool use_rslora = false;
  std::uint64_t seed = 0;

  /// alpha / r, or alpha / √r with rsLoRA.
  double scale() const noexcept {
    return use_rslora ? alpha / std::sqrt(static_cast<double>(rank)) : alpha / static_cast<double>(rank);
  }
  void validate() const {
    require(rank > 0, "slim::nn::lora_config", "rank must be positive, got ", rank);
    require(dropout >= 0 && dropout < 1, "slim::nn::lora_config", "dropout ", dropout, " must lie in [0, 1)");
    require(std::isfinite(alpha), "slim::nn::lora_config", "alpha must be finite");
  }
};

/// A bias-optional linear map whose weight may carry a LoRA adapter:
/// y = x·Wᵀ + b + scale·(dropout(x)·Aᵀ)·Bᵀ. Without an adapter it is a plain linear map. forward caches views
/// of its input (keep it alive until backward) and the adapter's intermediate rows.
template <class Backend, class T = float>
class lora_linear {
 public:
  using kernels_type = kernels<Backend>;

  /// `name` is the module path ("model.layers.0.self_attn.q_proj"); `dropout_layer` the Philox layer id of
  /// the adapter's input dropout.
  lora_linear(const std::string& name, index_t in, index_t out, bool bias)
      : weight(name + ".weight", out, in, parameter_role::weight) {
    if (bias) this->bias = parameter<T>(name + ".bias", out, parameter_role::bias);
  }

  parameter<T> weight;  ///< (out, in)
  parameter<T> bias;    ///< (out); empty without bias
  parameter<T> lora_a;  ///< (r, in); empty without an adapter
  parameter<T> lora_b;  ///< (out, r)

  index_t in_features() const noexcept { return weight.cols; }
  index_t out_features() const noexcept { return weight.rows; }
  bool has_bias() const noexcept { return !bias.empty(); }
  bool has_adapter() const noexcept { return !lora_a.empty(); }
  bool merged() const noexcept { return merged_; }
  /// True when the weight is held in bf16 (store_weight_bf16); `weight.value` is then empty.
  bool weight_in_bf16() const noexcept { return w16_.size() > 0; }

  /// Keeps a frozen weight in bf16 only (rounded to nearest even), halving its memory; the matmuls then widen it
  /// to float (the gemm kernels' bf16 operands). Float models only; the weight must be frozen and unmerged, and
  /// loading or merging afterwards is refused (`weight.value` is empty).
  void store_weight_bf16() {
    constexpr const char* where = "slim::nn::lora_linear::store_weight_bf16";
    if constexpr (!std::is_same_v<T, float>) {
      throw error(where, weight.name, "bf16 storage needs a float model");
    } else {
      if (weight_in_bf16()) return;
      require(!weight.trainable, where, weight.name, " is trainable; only frozen weights are stored in bf16");
      require(!merged_, where, weight.name, " has a merged adapter");
      drop_packed();
      w16_ = tensor<bf16, 1>({weight.rows * weight.cols});
      for (index_t i = 0; i < w16_.size(); ++i) w16_.data()[i] = bf16(weight.value.data()[i]);
      weight.value = tensor<T, 1>();
    }
  }
  double scale() const noexcept { return scale_; }

  /// Writes the weight this map applies to `out` (out, in), on the host: W (widened from bf16 when stored so),
  /// plus scale·B·A when an adapter is present and not merged (summed in double, rounded once, as merge does).
  /// What a copy of the model elsewhere (nn::cuda_decoder_lm on the GPU) multiplies by.
  void effective_weight(matrix_view<T> out) const {
    require_shape(out, {out_features(), in_features()}, "slim::nn::lora_linear::effective_weight", "out");
    for (index_t i = 0; i < out_features(); ++i)
      for (index_t j = 0; j < in_features(); ++j)
        out(i, j) = weight_in_bf16() ? static_cast<T>(static_cast<float>(weight16()(i, j))) : weight.matrix()(i, j);
    if (has_adapter() && !merged_) add_delta(out, 1.0);
  }

  /// Copies the weight once into the layout x·Wᵀ reads (kernels<Backend>::pack_b), so that every inference
  /// forward product (x·Wᵀ outside training) until drop_packed() skips packing it — decoding multiplies each
  /// weight by one row per token. Results are bit-identical. The copy is dropped by anything that may change
  /// the weight here (visit_base, merge, unmerge, store_weight_bf16) and never read by a training forward; a
  /// weight changed through a reference kept from earlier must be followed by drop_packed(). generate() packs
  /// for its call and drops after. No-op for a weight stored in bf16 and on backends without packed products.
  void pack_weight(const Backend& be) {
    if constexpr (packs_rhs<kernels_type, T>)
      if (!weight_in_bf16()) packed_ = kernels_type::pack_b(be, transpose(weight.matrix()));
  }
  void drop_packed() noexcept { packed_.reset(); }
  bool weight_packed() const noexcept { return static_cast<bool>(packed_); }

  /// Adds an adapter of `cfg.rank` to this map: A Kaiming-uniform as PEFT initialises it (bound 1/√in, keyed by
  /// cfg.seed and A's name), B zero, so the map is unchanged until B trains.
  void add_adapter(const lora_config& cfg, std::uint32_t dropout_layer) {
    cfg.validate();
    const std::string stem = weight.name.substr(0, weight.name.size() - std::string(".weight").size());
    lora_a = parameter<T>(stem + ".lora_A.weight", cfg.rank, in_features(), parameter_role::weight);
    lora_b = parameter<T>(stem + ".lora_B.weight", out_features(), cfg.rank, parameter_role::weight);
    init_fan_in_uniform(lora_a, static_cast<double>(in_features()), cfg.seed);
    scale_ = cfg.scale();
    p_ = static_cast<float>(cfg.dropout);
    dropout_layer_ = dropout_layer;
  }

  /// Base parameters (weight, bias) only (drops a packed copy of the weight: the visitor may change it).
  template <class F>
  void visit_base(F&& f) {
    drop_packed();
    f(weight);
    if (has_bias()) f(bias);
  }
  /// LoRA factors only (A then B).
  template <class F>
  void visit_adapter(F&& f) {
    if (!has_adapter()) return;
    f(lora_a);
    f(lora_b);
  }

  /// y = x·Wᵀ + b + adapter; caches what backward needs.                            x (N,in), y (N,out)
  void forward(const Backend& be, const step_context& ctx, matrix_view<const T> x, matrix_view<T> y) {
    x_ = x;
    run(be, ctx, x, y);
  }

  /// The same map for inference (no dropout; nothing kept for backward).
  void apply(const Backend& be, matrix_view<const T> x, matrix_view<T> y) { run(be, step_context{}, x, y); }

  /// dW += dyᵀ·x, db += Σ dy (when trainable); adapter: dB += scale·dyᵀ·u, dA += scale·(dy·B)ᵀ·x̃ with
  /// u = x̃·Aᵀ, x̃ = dropout(x); dx (+)= dy·W + dropout′(scale·dy·B·A). With accumulate = false dx is overwritten;
  /// an empty dx is skipped.                                                       dy (N,out), dx (N,in)
  void backward(const Backend& be, matrix_view<const T> dy, matrix_view<T> dx, bool accumulate = true) {
    const index_t n = dy.extent(0);
    if (weight.trainable) kernels_type::gemm(be, T(1), transpose(dy), x_, T(1), weight.grad_matrix());
    if (has_bias() && bias.trainable) add_column_sums(be, dy, bias.grad_vector());
    if (!dx.empty()) times_weight(be, dy, false, accumulate ? T(1) : T(0), dx);
    if (!adapter_active()) return;
    const T s = static_cast<T>(scale_);
    const matrix_view<const T> u = u_.view(), xd = dropped_ ? matrix_view<const T>(xd_.view()) : x_;
    if (lora_b.trainable) kernels_type::gemm(be, s, transpose(dy), u, T(1), lora_b.grad_matrix());
    const auto du = du_.resize(n, rank());
    kernels_type::gemm(be, s, dy, lora_b.matrix(), T(0), du);
    if (lora_a.trainable)
      kernels_type::gemm(be, T(1), transpose(matrix_view<const T>(du)), xd, T(1), lora_a.grad_matrix());
    if (dx.empty()) return;
    if (dropped_) {
      const auto dxd = dxd_.resize(n, in_features());
      kernels_type::gemm(be, T(1), matrix_view<const T>(du), lora_a.matrix(), T(0), dxd);
      kernels_type::dropout_backward(be, matrix_view<const T>(dxd), p_, key_, 0, dx);
    } else {
      kernels_type::gemm(be, T(1), matrix_view<const T>(du), lora_a.matrix(), T(1), dx);
    }
  }

  /// W += scale·B·A (summed in double, rounded once); the adapter path is then skipped until unmerge.
  void merge() {
    if (!has_adapter() || merged_) return;
    require(!weight_in_bf16(), "slim::nn::lora_linear::merge", weight.name, " is stored in bf16: merge needs fp32");
    drop_packed();  // the weight changes
    add_delta(1.0);
    merged_ = true;
  }
  /// W −= scale·B·A (the same delta as merge, so W returns to its value up to one rounding per element).
  void unmerge() {
    if (!has_adapter() || !merged_) return;
    drop_packed();
    add_delta(-1.0);
    merged_ = false;
  }

 private:
  index_t rank() const noexcept { return lora_a.rows; }
  matrix_view<const bf16> weight16() const noexcept { return {w16_.data(), {weight.rows, weight.cols}}; }

  /// out = a·Wᵀ + β·out (transposed) or a·W + β·out, with W in T or in bf16; `inference`: from the packed copy
  /// when there is one.
  void times_weight(const Backend& be, matrix_view<const T> a, bool transposed, T beta, matrix_view<T> out,
                    bool inference = false) const {
    if constexpr (packs_rhs<kernels_type, T>) {
      if (inference && transposed && packed_) {
        kernels_type::gemm(be, T(1), a, *packed_, 0, beta, out);
        return;
      }
    }
    if constexpr (std::is_same_v<T, float>) {
      if (weight_in_bf16()) {
        kernels_type::gemm(be, 1.0f, a, transposed ? transpose(weight16()) : weight16(), beta, out);
        return;
      }
    }
    kernels_type::gemm(be, T(1), a, transposed ? transpose(weight.matrix()) : weight.matrix(), beta, out);
  }
  bool adapter_active() const noexcept { return has_adapter() && !merged_; }

  void run(const Backend& be, const step_context& ctx, matrix_view<const T> x, matrix_view<T> y) {
    constexpr const char* where = "slim::nn::lora_linear";
    require_shape(y, {x.extent(0), out_features()}, where, "y");
    times_weight(be, x, true, T(0), y, !ctx.training);
    if (has_bias()) add_bias_rows(be, bias.vector(), y);
    dropped_ = false;
    if (!adapter_active()) return;
    const index_t n = x.extent(0);
    matrix_view<const T> xd = x;
    if (ctx.training && p_ > 0.0f) {
      key_ = dropout_key(ctx, dropout_layer_);
      const auto buf = xd_.resize(n, in_features());
      kernels_type::dropout_forward(be, x, p_, key_, 0, buf);
      xd = buf;
      dropped_ = true;
    }
    const auto u = u_.resize(n, rank());
    kernels_type::gemm(be, T(1), xd, transpose(lora_a.matrix()), T(0), u);
    kernels_type::gemm(be, static_cast<T>(scale_), matrix_view<const T>(u), transpose(lora_b.matrix()), T(1), y);
  }

  void add_delta(double sign) { add_delta(weight.matrix(), sign); }
  /// w += sign·scale·B·A, each element's delta summed in double and added once.
  void add_delta(matrix_view<T> w, double sign) const {
    const index_t out = out_features(), in = in_features(), r = rank();
    const auto a = lora_a.matrix();
    const auto b = lora_b.matrix();
    std::vector<double> row(static_cast<std::size_t>(in));
    for (index_t i = 0; i < out; ++i) {
      std::fill(row.begin(), row.end(), 0.0);
      for (index_t k = 0; k < r; ++k) {
        const double bik = static_cast<double>(b(i, k));
        for (index_t j = 0; j < in; ++j) row[static_cast<std::size_t>(j)] += bik * static_cast<double>(a(k, j));
      }
      for (index_t j = 0; j < in; ++j)
        w(i, j) = static_cast<T>(static_cast<double>(w(i, j)) + sign * scale_ * row[static_cast<std::size_t>(j)]);
    }
  }

  double scale_ = 0;
  float p_ = 0;
  std::uint32_t dropout_layer_ = 0;
  std::uint64_t key_ = 0;
  bool merged_ = false, dropped_ = false;
  matrix_view<const T> x_;
  buffer<T> xd_, u_, du_, dxd_;
  tensor<bf16, 1> w16_;
  optional_packed_t<kernels_type, T> packed_;
};

}  // namespace slim::nn
