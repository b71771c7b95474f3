// slim — gradient clipping by global norm (torch.nn.utils.clip_grad_norm_), summed in double in parameter
// order so the norm does not depend on the thread count.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>
#include <type_traits>

#include "slim/core/error.hpp"
#include "slim/nn/parameter.hpp"

namespace slim::train {

/// The L2 norm of all trainable gradients of `module`.
template <class Module>
double gradient_norm(Module& mod) {
  double ss = 0;
  mod.visit_parameters([&](auto& p) {
    if (!p.trainable) return;
    for (const auto g : p.grad) ss += static_cast<double>(g) * static_cast<double>(g);
  });
  return std::sqrt(ss);
}

/// Scales every trainable gradient by max_norm / (norm + 1e-6) when the global norm exceeds max_norm, as
/// torch does. Returns the norm before clipping.
template <class Module>
double clip_gradient_norm(Module& mod, double max_norm) {
  require(max_norm > 0, "slim::train::clip_gradient_norm", "max_norm must be positive, got ", max_norm);
  const double norm = gradient_norm(mod);
  if (norm > max_norm) {
    const double s = max_norm / (norm + 1e-6);
    mod.visit_parameters([&](auto& p) {
      if (!p.trainable) return;
      for (auto& g : p.grad) g = static_cast<std::remove_reference_t<decltype(g)>>(static_cast<double>(g) * s);
    });
  }
  return norm;
}

}  // namespace slim::train
