// slim — nn::gru: one GRU layer run over time (torch.nn.GRU, one layer, one direction, h₀ = 0) on a batch
// of sequences packed time-major as torch's PackedSequence: step t holds the first batch_sizes[t]
// sequences (sorted by length, longest first), so the sequences alive at step t are a prefix of those
// alive at step t−1. The input-side products of all steps are one GEMM; each step adds one hidden-side
// GEMM and the gru_cell kernel. Backward runs back through time and ends with one GEMM per weight.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "slim/backend/kernels.hpp"
#include "slim/nn/context.hpp"
#include "slim/nn/init.hpp"
#include "slim/nn/parameter.hpp"

namespace slim::nn {

/// Step sizes of a time-major packed batch: batch_sizes[t] sequences at step t, non-increasing, > 0.
struct packed_steps {
  std::span<const index_t> batch_sizes;

  index_t steps() const noexcept { return static_cast<index_t>(batch_sizes.size()); }
  index_t size(index_t t) const noexcept { return batch_sizes[static_cast<std::size_t>(t)]; }
  /// Throws slim::error unless the sizes are positive, non-increasing and sum to `rows`.
  void check(index_t rows, const char* where) const {
    index_t total = 0;
    for (std::size_t t = 0; t < batch_sizes.size(); ++t) {
      require(batch_sizes[t] > 0, where, "batch_sizes[", t, "] = ", batch_sizes[t], " must be positive");
      require(t == 0 || batch_sizes[t] <= batch_sizes[t - 1], where, "batch_sizes must not increase (at ", t, ")");
      total += batch_sizes[t];
    }
    require(total == rows, where, "batch_sizes sum to ", total, ", the input has ", rows, " rows");
  }
};

/// GRU layer with torch's layout: weight_ih (3H, in), weight_hh (3H, H), bias_ih, bias_hh (3H), gates in
/// the order (r, z, n). `bias = false` leaves the biases out (RecBole's GRU4Rec does).
template <class Backend, class T = float>
class gru {
 public:
  using kernels_type = kernels<Backend>;

  gru(const std::string& name, index_t input, index_t hidden, bool bias = true)
      : weight_ih(name + ".weight_ih_l0", 3 * hidden, input, parameter_role::weight),
        weight_hh(name + ".weight_hh_l0", 3 * hidden, hidden, parameter_role::weight) {
    if (bias) {
      bias_ih = parameter<T>(name + ".bias_ih_l0", 3 * hidden, parameter_role::bias);
      bias_hh = parameter<T>(name + ".bias_hh_l0", 3 * hidden, parameter_role::bias);
    }
  }

  parameter<T> weight_ih, weight_hh, bias_ih, bias_hh;

  index_t input_size() const noexcept { return weight_ih.cols; }
  index_t hidden_size() const noexcept { return weight_hh.cols; }
  bool has_bias() const noexcept { return !bias_ih.empty(); }

  template <class F>
  void visit_parameters(F&& f) {
    f(weight_ih);
    f(weight_hh);
    if (has_bias()) {
      f(bias_ih);
      f(bias_hh);
    }
  }

  /// torch's default: every parameter U(−1/√H, 1/√H).
  void reset_parameters(std::uint64_t seed) {
    visit_parameters([&](parameter<T>& p) { init_fan_in_uniform(p, static_cast<double>(hidden_size()), seed); });
  }

  /// h[row of step t] = GRU state after step t, h₀ = 0. Caches a view of x.          x (N,in), h (N,H)
  void forward(const Backend& be, matrix_view<const T> x, packed_steps steps, matrix_view<T> h) {
    constexpr const char* where = "slim::nn::gru::forward";
    const index_t n = x.extent(0), hd = hidden_size();
    require_shape(x, {n, input_size()}, where, "x");
    require_shape(h, {n, hd}, where, "h");
    steps.check(n, where);
    x_ = x;
    h_ = h;
    sizes_.assign(steps.batch_sizes.begin(), steps.batch_sizes.end());
    const auto gx = gx_.resize(n, 3 * hd), gh = gh_.resize(n, 3 * hd), hp = hprev_.resize(n, hd);
    kernels_type::gemm(be, T(1), x, transpose(weight_ih.matrix()), T(0), gx);
    if (has_bias()) add_bias_rows(be, bias_ih.vector(), gx);
    index_t off = 0, prev = 0;
    for (index_t t = 0; t < steps.steps(); ++t) {
      const index_t k = steps.size(t);
      const auto hprev = row_range(hp, off, k);
      if (t == 0)
        std::fill(hprev.data_handle(), hprev.data_handle() + k * hd, T(0));
      else
        copy_rows(be, matrix_view<const T>(row_range(h, prev, k)), hprev);
      const auto ght = row_range(gh, off, k);
      kernels_type::gemm(be, T(1), hprev, transpose(weight_hh.matrix()), T(0), ght);
      if (has_bias()) add_bias_rows(be, bias_hh.vector(), ght);
      kernels_type::gru_cell_forward(be, row_range(gx, off, k), ght, hprev, row_range(h, off, k));
      prev = off;
      off += k;
    }
  }

  /// dh: ∂L/∂h for every row (the output's gradient, not through time). Accumulates parameter gradients and
  /// dx += ∂L/∂x (dx may be empty).                                                  dh (N,H), dx (N,in)
  void backward(const Backend& be, matrix_view<const T> dh, matrix_view<T> dx) {
    const index_t n = dh.extent(0), hd = hidden_size(), steps = static_cast<index_t>(sizes_.size());
    require_shape(dh, {n, hd}, "slim::nn::gru::backward", "dh");
    const auto dgx = dgx_.zeros(n, 3 * hd), dgh = dgh_.zeros(n, 3 * hd);
    std::vector<index_t> offsets(static_cast<std::size_t>(steps) + 1, 0);
    for (index_t t = 0; t < steps; ++t) offsets[t + 1] = offsets[t] + sizes_[t];
    const index_t k0 = steps ? sizes_[0] : 0;
    auto carry = carry_.zeros(k0, hd), next = next_.zeros(k0, hd), total = total_.resize(k0, hd);
    for (index_t t = steps; t-- > 0;) {
      const index_t k = sizes_[t], off = offsets[t];
      const index_t k_after = t + 1 < steps ? sizes_[t + 1] : 0;  // rows whose state step t+1 read
      const auto tot = row_range(total, 0, k);
      copy_rows(be, matrix_view<const T>(row_range(dh, off, k)), tot);
      if (k_after) add_rows(be, matrix_view<const T>(row_range(carry, 0, k_after)), row_range(tot, 0, k_after));
      const auto hprev = row_range(hprev_.view(), off, k);
      const auto nx = row_range(next, 0, k);
      std::fill(nx.data_handle(), nx.data_handle() + k * hd, T(0));
      kernels_type::gru_cell_backward(be, row_range(gx_.view(), off, k), row_range(gh_.view(), off, k), hprev, tot,
                                      row_range(dgx, off, k), row_range(dgh, off, k), t > 0 ? nx : matrix_view<T>{});
      if (t > 0) kernels_type::gemm(be, T(1), row_range(dgh, off, k), weight_hh.matrix(), T(1), nx);
      std::swap(carry, next);
    }
    if (weight_ih.trainable) kernels_type::gemm(be, T(1), transpose(dgx), x_, T(1), weight_ih.grad_matrix());
    if (weight_hh.trainable)
      kernels_type::gemm(be, T(1), transpose(dgh), matrix_view<const T>(hprev_.view()), T(1), weight_hh.grad_matrix());
    if (has_bias()) {
      if (bias_ih.trainable) add_column_sums(be, matrix_view<const T>(dgx), bias_ih.grad_vector());
      if (bias_hh.trainable) add_column_sums(be, matrix_view<const T>(dgh), bias_hh.grad_vector());
    }
    if (!dx.empty()) kernels_type::gemm(be, T(1), dgx, weight_ih.matrix(), T(1), dx);
  }

 private:
  matrix_view<const T> x_;
  matrix_view<T> h_;
  std::vector<index_t> sizes_;
  buffer<T> gx_, gh_, hprev_, dgx_, dgh_, carry_, next_, total_;
};

}  // namespace slim::nn
