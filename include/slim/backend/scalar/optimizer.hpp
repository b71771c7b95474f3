// slim — scalar reference kernels: Adam / AdamW steps with PyTorch's semantics. See docs/kernels.md.
//
// PyTorch (torch.optim.Adam / AdamW, amsgrad off): bias corrections bc₁ = 1 − β₁ᵗ, bc₂ = 1 − β₂ᵗ computed in
// double, step size lr/bc₁, denominator √v/√bc₂ + ε. Adam adds wd·θ to the gradient (L2); AdamW first
// scales θ by 1 − lr·wd (decoupled decay) and then takes the plain Adam step.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>
#include <cstdint>

#include "slim/backend/common.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::detail {

/// The per-step scalars of an Adam update: lr/bc₁ and √bc₂ (in double, as PyTorch computes them).
struct adam_scalars {
  double step_size = 0;
  double bias_correction2_sqrt = 1;
};

/// Validates the four (P) views (contiguous), the configuration and step ≥ 1; returns the step scalars.
template <class T>
adam_scalars check_adam(const char* where, vector_view<T> param, vector_view<const T> grad, vector_view<T> m,
                        vector_view<T> v, const adam_config& cfg, std::int64_t step) {
  require_valid(param, where, "param");
  const index_t n = param.extent(0);
  require_shape(grad, {n}, where, "grad");
  require_shape(m, {n}, where, "m");
  require_shape(v, {n}, where, "v");
  require(param.has_unit_inner_stride() && grad.has_unit_inner_stride() && m.has_unit_inner_stride() &&
              v.has_unit_inner_stride(),
          where, "param, grad, m and v must be contiguous");
  require(step >= 1, where, "step ", step, " must be at least 1 (the first step is 1)");
  require(cfg.beta1 >= 0 && cfg.beta1 < 1 && cfg.beta2 >= 0 && cfg.beta2 < 1, where, "betas (", cfg.beta1, ", ",
          cfg.beta2, ") must lie in [0, 1)");
  require(cfg.lr >= 0 && cfg.eps >= 0 && cfg.weight_decay >= 0, where, "lr, eps and weight_decay must be >= 0");
  const double t = static_cast<double>(step);
  adam_scalars s;
  s.step_size = static_cast<double>(cfg.lr) / (1.0 - std::pow(static_cast<double>(cfg.beta1), t));
  s.bias_correction2_sqrt = std::sqrt(1.0 - std::pow(static_cast<double>(cfg.beta2), t));
  return s;
}

struct scalar_optimizer {
  /// g' = g + wd·θ; m = β₁m + (1−β₁)g'; v = β₂v + (1−β₂)g'²; θ −= (lr/bc₁)·m/(√v/√bc₂ + ε).
  /// param, grad, m, v (P); step t ≥ 1.
  template <class T>
  static void adam_step(const backend::scalar&, vector_view<T> param, vector_view<in_t<T>> grad, vector_view<T> m,
                        vector_view<T> v, const adam_config& cfg, std::int64_t step) {
    adam_update<T, false>("slim::adam_step", param, grad, m, v, cfg, step);
  }

  /// θ −= lr·wd·θ (decoupled), then the Adam step above with wd = 0. param, grad, m, v (P); step t ≥ 1.
  template <class T>
  static void adamw_step(const backend::scalar&, vector_view<T> param, vector_view<in_t<T>> grad, vector_view<T> m,
                         vector_view<T> v, const adam_config& cfg, std::int64_t step) {
    adam_update<T, true>("slim::adamw_step", param, grad, m, v, cfg, step);
  }

 private:
  template <class T, bool Decoupled>
  static void adam_update(const char* where, vector_view<T> param, vector_view<const T> grad, vector_view<T> m,
                          vector_view<T> v, const adam_config& cfg, std::int64_t step) {
    const adam_scalars s = check_adam<T>(where, param, grad, m, v, cfg, step);
    const T lr = static_cast<T>(cfg.lr), b1 = static_cast<T>(cfg.beta1), b2 = static_cast<T>(cfg.beta2);
    const T eps = static_cast<T>(cfg.eps), wd = static_cast<T>(cfg.weight_decay);
    const T step_size = static_cast<T>(s.step_size), bc2_sqrt = static_cast<T>(s.bias_correction2_sqrt);
    for (index_t i = 0; i < param.extent(0); ++i) {
      T theta = param(i), g = grad(i);
      if constexpr (Decoupled)
        theta *= T(1) - lr * wd;
      else
        g += wd * theta;
      m(i) = b1 * m(i) + (T(1) - b1) * g;
      v(i) = b2 * v(i) + (T(1) - b2) * g * g;
      const T denom = std::sqrt(v(i)) / bc2_sqrt + eps;
      param(i) = theta - step_size * (m(i) / denom);
    }
  }
};

}  // namespace slim::backend::detail
