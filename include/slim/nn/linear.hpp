// slim — nn::linear: y = x·Wᵀ + b with W (out, in) as torch.nn.Linear stores it.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>

#include "slim/backend/kernels.hpp"
#include "slim/nn/context.hpp"
#include "slim/nn/init.hpp"
#include "slim/nn/parameter.hpp"

namespace slim::nn {

/// Affine map over rows. forward caches a view of its input; the caller keeps the input alive until
/// backward, which accumulates into the parameter gradients and into dx.
template <class Backend, class T = float>
class linear {
 public:
  using kernels_type = kernels<Backend>;

  linear(const std::string& name, index_t in, index_t out, bool bias = true)
      : weight(name + ".weight", out, in, parameter_role::weight) {
    if (bias) this->bias = parameter<T>(name + ".bias", out, parameter_role::bias);
  }

  parameter<T> weight;  ///< (out, in)
  parameter<T> bias;    ///< (out); empty without bias

  index_t in_features() const noexcept { return weight.cols; }
  index_t out_features() const noexcept { return weight.rows; }
  bool has_bias() const noexcept { return !bias.empty(); }

  template <class F>
  void visit_parameters(F&& f) {
    f(weight);
    if (has_bias()) f(bias);
  }

  /// torch's default: weight and bias U(−1/√in, 1/√in).
  void reset_parameters(std::uint64_t seed) {
    init_fan_in_uniform(weight, static_cast<double>(in_features()), seed);
    if (has_bias()) init_fan_in_uniform(bias, static_cast<double>(in_features()), seed);
  }

  /// y = x·Wᵀ + b.                                                                 x (N,in), y (N,out)
  void forward(const Backend& be, matrix_view<const T> x, matrix_view<T> y) {
    x_ = x;
    apply(be, x, y);
  }

  /// y = x·Wᵀ + b without caching anything (inference).
  void apply(const Backend& be, matrix_view<const T> x, matrix_view<T> y) const {
    require_shape(y, {x.extent(0), out_features()}, "slim::nn::linear", "y");
    kernels_type::gemm(be, T(1), x, transpose(weight.matrix()), T(0), y);
    if (has_bias()) add_bias_rows(be, bias.vector(), y);
  }

  /// dW += dyᵀ·x, db += Σₙ dy[n], dx += dy·W (dx may be empty: skipped). With accumulate = false, dx is
  /// overwritten (dx = dy·W) instead, which spares the caller zeroing it.          dy (N,out), dx (N,in)
  void backward(const Backend& be, matrix_view<const T> dy, matrix_view<T> dx, bool accumulate = true) {
    if (weight.trainable) kernels_type::gemm(be, T(1), transpose(dy), x_, T(1), weight.grad_matrix());
    if (has_bias() && bias.trainable) add_column_sums(be, dy, bias.grad_vector());
    if (!dx.empty()) kernels_type::gemm(be, T(1), dy, weight.matrix(), accumulate ? T(1) : T(0), dx);
  }

 private:
  matrix_view<const T> x_;
};

}  // namespace slim::nn
