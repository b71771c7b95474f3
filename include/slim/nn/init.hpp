// slim — parameter initialisers with PyTorch's formulas (torch.nn.init), drawn from a Philox stream keyed by
// (seed, parameter name): a parameter's initial values do not depend on how many others exist or in what
// order they are initialised.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

#include "slim/core/philox.hpp"
#include "slim/nn/parameter.hpp"

namespace slim::nn {

/// The 64-bit Philox key of (seed, name): FNV-1a of the name, mixed with the seed by one Philox block.
inline std::uint64_t init_key(std::uint64_t seed, std::string_view name) noexcept {
  std::uint64_t h = 1469598103934665603ull;
  for (const char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  const philox_block b =
      philox4x32_10(philox_block{{static_cast<std::uint32_t>(h), static_cast<std::uint32_t>(h >> 32), 0x1417u, 0u}},
                    static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  return static_cast<std::uint64_t>(b.v[0]) | (static_cast<std::uint64_t>(b.v[1]) << 32);
}

/// Every value = c.
template <class T>
void init_constant(parameter<T>& p, double c) {
  for (T& x : p.value) x = static_cast<T>(c);
}

/// Uniform in [lo, hi).
template <class T>
void init_uniform(parameter<T>& p, double lo, double hi, std::uint64_t seed) {
  philox_stream rng(init_key(seed, p.name));
  for (T& x : p.value) x = static_cast<T>(lo + (hi - lo) * static_cast<double>(rng.uniform()));
}

/// Normal with the given mean and standard deviation.
template <class T>
void init_normal(parameter<T>& p, double mean, double stddev, std::uint64_t seed) {
  philox_stream rng(init_key(seed, p.name));
  for (T& x : p.value) x = static_cast<T>(mean + stddev * static_cast<double>(rng.normal()));
}

/// fan_in, fan_out of a (rows, cols) = (out, in) matrix as torch computes them; a vector has fan_in =
/// fan_out = its size.
template <class T>
std::pair<double, double> fans(const parameter<T>& p) noexcept {
  if (p.rank == 1) return {static_cast<double>(p.cols), static_cast<double>(p.cols)};
  return {static_cast<double>(p.cols), static_cast<double>(p.rows)};
}

/// torch.nn.init.xavier_uniform_: U(−a, a), a = gain·√(6 / (fan_in + fan_out)).
template <class T>
void init_xavier_uniform(parameter<T>& p, std::uint64_t seed, double gain = 1.0) {
  const auto [fi, fo] = fans(p);
  const double a = fi + fo > 0 ? gain * std::sqrt(6.0 / (fi + fo)) : 0.0;
  init_uniform(p, -a, a, seed);
}

/// torch.nn.init.xavier_normal_: N(0, σ²), σ = gain·√(2 / (fan_in + fan_out)).
template <class T>
void init_xavier_normal(parameter<T>& p, std::uint64_t seed, double gain = 1.0) {
  const auto [fi, fo] = fans(p);
  init_normal(p, 0.0, fi + fo > 0 ? gain * std::sqrt(2.0 / (fi + fo)) : 0.0, seed);
}

/// U(−1/√fan_in, 1/√fan_in): torch's default for nn.Linear weights and biases (kaiming_uniform with
/// a = √5 reduces to this bound), for nn.GRU (fan_in = hidden size) and nn.Conv1d.
template <class T>
void init_fan_in_uniform(parameter<T>& p, double fan_in, std::uint64_t seed) {
  const double a = fan_in > 0 ? 1.0 / std::sqrt(fan_in) : 0.0;
  init_uniform(p, -a, a, seed);
}

}  // namespace slim::nn
