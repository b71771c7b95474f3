// slim — nn::decoder_config (the LLaMA-family model description) and the RoPE inverse frequencies as HF computes
// them, including Llama-3 `rope_scaling` (long wavelengths divided by `factor`, short ones kept, a smooth blend
// between).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>
#include <numbers>
#include <vector>

#include "slim/io/llama_config.hpp"

namespace slim::nn {

/// The model description of nn::decoder_lm (see io::llama_config for the fields and io::read_llama_config for
/// reading one from an HF config.json).
using decoder_config = io::llama_config;
using rope_scaling_config = io::rope_scaling_config;
using io::rope_scaling_type;

/// inv_freqᵢ = 1 / θ^(2i/Dh), i < Dh/2, evaluated in T step by step as transformers does in float32
/// (exponent, power, reciprocal), then Llama-3 scaling when configured: with wavelength λ = 2π/inv_freq,
/// λ_lo = L₀/low_freq_factor, λ_hi = L₀/high_freq_factor (L₀ = original_max_position_embeddings):
/// λ > λ_lo → inv_freq/factor; λ < λ_hi → unchanged; otherwise (1−s)·inv_freq/factor + s·inv_freq with
/// s = (L₀/λ − low_freq_factor)/(high_freq_factor − low_freq_factor).
template <class T>
std::vector<T> rope_frequencies(const decoder_config& c) {
  const index_t dh = c.head_dim();
  std::vector<T> f(static_cast<std::size_t>(dh / 2));
  for (index_t i = 0; i < dh / 2; ++i) {
    const T e = static_cast<T>(2 * i) / static_cast<T>(dh);
    const T p = static_cast<T>(std::pow(static_cast<double>(static_cast<T>(c.rope_theta)), static_cast<double>(e)));
    f[static_cast<std::size_t>(i)] = T(1) / p;
  }
  if (c.rope_scaling.type == rope_scaling_type::llama3) {
    const auto& r = c.rope_scaling;
    const T factor = static_cast<T>(r.factor), lo = static_cast<T>(r.low_freq_factor),
            old_len = static_cast<T>(r.original_max_position_embeddings);
    const T lo_wavelen = static_cast<T>(static_cast<double>(r.original_max_position_embeddings) / r.low_freq_factor);
    const T hi_wavelen = static_cast<T>(static_cast<double>(r.original_max_position_embeddings) / r.high_freq_factor);
    const T span = static_cast<T>(r.high_freq_factor - r.low_freq_factor);
    for (T& x : f) {
      // torch evaluates `scalar / tensor` as reciprocal(tensor)·scalar
      const T wavelen = (T(1) / x) * static_cast<T>(2 * std::numbers::pi);
      const T scaled = wavelen > lo_wavelen ? x / factor : x;
      if (wavelen < hi_wavelen || wavelen > lo_wavelen) {
        x = scaled;
        continue;
      }
      const T s = ((T(1) / wavelen) * old_len - lo) / span;
      x = (T(1) - s) * scaled / factor + s * scaled;
    }
  }
  return f;
}

}  // namespace slim::nn
