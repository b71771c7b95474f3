// slim — nn::layernorm: y = (x − μ)·rstd·w + b over the last dimension, as torch.nn.LayerNorm.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>

#include "slim/backend/kernels.hpp"
#include "slim/nn/context.hpp"
#include "slim/nn/init.hpp"
#include "slim/nn/parameter.hpp"

namespace slim::nn {

/// LayerNorm with affine weight (init 1) and bias (init 0). forward caches its input view and the row
/// statistics; backward accumulates dw, db and dx.
template <class Backend, class T = float>
class layernorm {
 public:
  using kernels_type = kernels<Backend>;

  layernorm(const std::string& name, index_t dim, double eps = 1e-5)
      : weight(name + ".weight", dim, parameter_role::norm),
        bias(name + ".bias", dim, parameter_role::norm),
        eps_(eps) {
    init_constant(weight, 1.0);
  }

  parameter<T> weight;  ///< (D)
  parameter<T> bias;    ///< (D)

  index_t dim() const noexcept { return weight.cols; }
  double eps() const noexcept { return eps_; }

  template <class F>
  void visit_parameters(F&& f) {
    f(weight);
    f(bias);
  }

  /// y = (x − μ)·rstd·w + b.                                                                x, y (N,D)
  void forward(const Backend& be, matrix_view<const T> x, matrix_view<T> y) {
    x_ = x;
    const auto mean = mean_.resize(1, x.extent(0)), rstd = rstd_.resize(1, x.extent(0));
    kernels_type::layernorm_forward(be, x, weight.vector(), bias.vector(), static_cast<T>(eps_), y, mean[0], rstd[0]);
  }

  /// Forward without caching (inference).
  void apply(const Backend& be, matrix_view<const T> x, matrix_view<T> y) const {
    kernels_type::layernorm_forward(be, x, weight.vector(), bias.vector(), static_cast<T>(eps_), y, vector_view<T>{},
                                    vector_view<T>{});
  }

  /// dx += ∂L/∂x, dw += Σ dy⊙x̂, db += Σ dy (frozen weights get nothing; dx may be empty). dy, dx (N,D)
  void backward(const Backend& be, matrix_view<const T> dy, matrix_view<T> dx) {
    kernels_type::layernorm_backward(be, x_, weight.vector(), mean_.view()[0], rstd_.view()[0], dy, dx,
                                     weight.trainable ? weight.grad_vector() : vector_view<T>{},
                                     bias.trainable ? bias.grad_vector() : vector_view<T>{});
  }

 private:
  double eps_;
  matrix_view<const T> x_;
  buffer<T> mean_, rstd_;
};

}  // namespace slim::nn
