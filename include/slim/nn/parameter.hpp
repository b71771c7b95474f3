// slim — a trainable tensor: value, gradient, name and role, and the visiting convention every nn module
// follows (`visit_parameters(f)` calls f(parameter&) on each of its parameters in a fixed order).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/core/tensor.hpp"

namespace slim::nn {

/// What a parameter is, so an optimiser can treat kinds differently (e.g. L2 on embeddings only, no
/// decay on norms and biases).
enum class parameter_role : std::uint8_t { weight, bias, embedding, norm };

/// A parameter of rank 1 or 2: value and gradient (same shape, contiguous), a dotted name as PyTorch's
/// state_dict spells it ("attention_layers.0.in_proj_weight"), a role, and a trainable flag (a frozen
/// parameter keeps its gradient at zero and optimisers skip it). Gradients accumulate (+=); zero them
/// once per step. `freeze()` also releases the gradient buffer (a frozen base model under LoRA holds no
/// gradient memory); a parameter without one has `has_grad() == false` and empty gradient views.
template <class T>
struct parameter {
  std::string name;
  parameter_role role = parameter_role::weight;
  bool trainable = true;
  index_t rows = 0;  ///< rank 2: (rows, cols); rank 1: rows = 1, cols = n
  index_t cols = 0;
  int rank = 0;
  tensor<T, 1> value;
  tensor<T, 1> grad;

  parameter() = default;
  /// A matrix parameter (rows, cols), zero-initialised.
  parameter(std::string n, index_t r, index_t c, parameter_role ro = parameter_role::weight)
      : name(std::move(n)), role(ro), rows(r), cols(c), rank(2), value({r * c}), grad({r * c}) {
    require(r >= 0 && c >= 0, "slim::nn::parameter", name, ": negative shape");
  }
  /// A vector parameter (n), zero-initialised.
  parameter(std::string n, index_t size, parameter_role ro)
      : name(std::move(n)), role(ro), rows(1), cols(size), rank(1), value({size}), grad({size}) {
    require(size >= 0, "slim::nn::parameter", name, ": negative shape");
  }

  index_t size() const noexcept { return value.size(); }
  bool empty() const noexcept { return rank == 0; }

  matrix_view<T> matrix() noexcept { return {value.data(), {rows, cols}}; }
  matrix_view<const T> matrix() const noexcept { return {value.data(), {rows, cols}}; }
  matrix_view<T> grad_matrix() noexcept {
    if (!has_grad()) return {};
    return {grad.data(), {rows, cols}};
  }
  vector_view<T> vector() noexcept { return value.view(); }
  vector_view<const T> vector() const noexcept { return value.view(); }
  vector_view<T> grad_vector() noexcept { return grad.view(); }

  /// True when a gradient buffer is allocated (always, unless frozen by `freeze()` with a non-empty value).
  bool has_grad() const noexcept { return grad.size() == value.size(); }
  /// Not trainable, and the gradient buffer released.
  void freeze() {
    trainable = false;
    grad = tensor<T, 1>();
  }
  /// Trainable again, with a zero gradient buffer.
  void unfreeze() {
    trainable = true;
    if (!has_grad()) grad = tensor<T, 1>({value.size()});
  }

  void zero_grad() noexcept {
    if (grad.size()) std::memset(grad.data(), 0, static_cast<std::size_t>(grad.size()) * sizeof(T));
  }
};

/// Zeroes every gradient of `module`.
template <class Module>
void zero_grad(Module& mod) {
  mod.visit_parameters([](auto& p) { p.zero_grad(); });
}

/// Number of scalars in `module`'s parameters (trainable or not).
template <class Module>
index_t count_parameters(Module& mod) {
  index_t n = 0;
  mod.visit_parameters([&](auto& p) { n += p.size(); });
  return n;
}

/// A copy of every parameter value of a module, in visiting order (for keeping the best epoch).
template <class T>
using parameter_snapshot = std::vector<tensor<T, 1>>;

/// Copies the values of `module`'s parameters into `out` (resized to match).
template <class T, class Module>
void save_values(Module& mod, parameter_snapshot<T>& out) {
  out.clear();
  mod.visit_parameters([&](parameter<T>& p) { out.push_back(p.value); });
}

/// Restores values saved by `save_values`; throws slim::error when the module's parameters differ in
/// number or size from the snapshot.
template <class T, class Module>
void load_values(Module& mod, const parameter_snapshot<T>& in) {
  std::size_t i = 0;
  mod.visit_parameters([&](parameter<T>& p) {
    require(i < in.size(), "slim::nn::load_values", "the snapshot has ", in.size(), " tensors, the module more");
    require(in[i].size() == p.size(), "slim::nn::load_values", "parameter ", p.name, " has ", p.size(),
            " values, the snapshot ", in[i].size());
    if (p.size()) std::memcpy(p.value.data(), in[i].data(), static_cast<std::size_t>(p.size()) * sizeof(T));
    ++i;
  });
  require(i == in.size(), "slim::nn::load_values", "the snapshot has ", in.size(), " tensors, the module ", i);
}

}  // namespace slim::nn
