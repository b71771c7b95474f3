// slim — value types shared by every backend's kernels: enums and small configuration aggregates.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>
#include <cstdint>

namespace slim::backend {

/// GELU form: `tanh` is the approximation GPT-2 uses, `erf` the exact form BERT uses.
enum class gelu_approximation { tanh, erf };

/// Adam / AdamW hyper-parameters (PyTorch's defaults and meanings).
struct adam_config {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // Adam: L2 added to the gradient; AdamW: decoupled decay of the weights
};

/// Inverse RoPE frequencies inv_freq[i] = θ^(−2i/Dh), i < Dh/2, as HF computes them (in float).
template <class T>
void rope_inverse_frequencies(int head_dim, double theta, T* out) {
  for (int i = 0; i < head_dim / 2; ++i)
    out[i] = static_cast<T>(1.0 / std::pow(theta, static_cast<double>(2 * i) / head_dim));
}

}  // namespace slim::backend
