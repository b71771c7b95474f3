// slim — xsimd kernels: Adam / AdamW steps (PyTorch semantics, see the scalar header). Ops not defined here
// fall back to Base (scalar). Elementwise and memory-bound: vectorised, split into fixed chunks over the pool.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>
#include <cstdint>
#include <xsimd/xsimd.hpp>

#include "slim/backend/scalar/optimizer.hpp"

namespace slim::backend::detail {

template <class Arch, class Base>
struct simd_optimizer : Base {
  using Base::adam_step;
  using Base::adamw_step;

  /// g' = g + wd·θ; m = β₁m + (1−β₁)g'; v = β₂v + (1−β₂)g'²; θ −= (lr/bc₁)·m/(√v/√bc₂ + ε).
  /// param, grad, m, v (P); step t ≥ 1.
  static void adam_step(const backend::simd<Arch>& be, vector_view<float> param, vector_view<const float> grad,
                        vector_view<float> m, vector_view<float> v, const adam_config& cfg, std::int64_t step) {
    adam_update<false>(be, "slim::adam_step", param, grad, m, v, cfg, step);
  }

  /// θ −= lr·wd·θ (decoupled), then the Adam step above with wd = 0. param, grad, m, v (P); step t ≥ 1.
  static void adamw_step(const backend::simd<Arch>& be, vector_view<float> param, vector_view<const float> grad,
                         vector_view<float> m, vector_view<float> v, const adam_config& cfg, std::int64_t step) {
    adam_update<true>(be, "slim::adamw_step", param, grad, m, v, cfg, step);
  }

 private:
  using batch = xsimd::batch<float, Arch>;
  static constexpr index_t width = static_cast<index_t>(batch::size);

  /// The same sequence of float operations as the scalar oracle, on one batch or one lane (T = float).
  template <bool Decoupled, class V>
  static void adam_element(V& theta, V g, V& m, V& v, float decay, float wd, float b1, float b2, float step_size,
                           float bc2_sqrt, float eps) {
    if constexpr (Decoupled)
      theta = theta * V(decay);
    else
      g = g + V(wd) * theta;
    m = V(b1) * m + V(1.0f - b1) * g;
    v = V(b2) * v + V(1.0f - b2) * g * g;
    const V denom = sqrt(v) / V(bc2_sqrt) + V(eps);
    theta = theta - V(step_size) * (m / denom);
  }
  static batch sqrt(const batch& x) { return xsimd::sqrt(x); }
  static float sqrt(float x) { return std::sqrt(x); }

  template <bool Decoupled>
  static void adam_update(const backend::simd<Arch>& be, const char* where, vector_view<float> param,
                          vector_view<const float> grad, vector_view<float> m, vector_view<float> v,
                          const adam_config& cfg, std::int64_t step) {
    const adam_scalars s = check_adam<float>(where, param, grad, m, v, cfg, step);
    const float decay = 1.0f - cfg.lr * cfg.weight_decay, wd = cfg.weight_decay, b1 = cfg.beta1, b2 = cfg.beta2;
    const float step_size = static_cast<float>(s.step_size);
    const float bc2_sqrt = static_cast<float>(s.bias_correction2_sqrt), eps = cfg.eps;
    float *pp = param.data_handle(), *mp = m.data_handle(), *vp = v.data_handle();
    const float* gp = grad.data_handle();
    constexpr index_t chunk = 1 << 15;  // 32K parameters (~900 KiB of the four arrays) per task
    parallel_for(be.pool, param.extent(0), chunk, [&](index_t i0, index_t i1) {
      index_t i = i0;
      for (; i + width <= i1; i += width) {
        batch theta = batch::load_unaligned(pp + i), mv = batch::load_unaligned(mp + i);
        batch vv = batch::load_unaligned(vp + i);
        adam_element<Decoupled>(theta, batch::load_unaligned(gp + i), mv, vv, decay, wd, b1, b2, step_size, bc2_sqrt,
                                eps);
        theta.store_unaligned(pp + i);
        mv.store_unaligned(mp + i);
        vv.store_unaligned(vp + i);
      }
      for (; i < i1; ++i)
        adam_element<Decoupled, float>(pp[i], gp[i], mp[i], vp[i], decay, wd, b1, b2, step_size, bc2_sqrt, eps);
    });
  }
};

}  // namespace slim::backend::detail
