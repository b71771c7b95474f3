// slim — nn::dropout: inverted dropout whose mask is a pure function of (seed, step, layer, element), so
// backward recomputes it instead of storing it and every backend draws the same mask.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>

#include "slim/backend/kernels.hpp"
#include "slim/nn/context.hpp"

namespace slim::nn {

/// Drops each element with probability p in training (kept ones scaled by 1/(1−p)); the identity in
/// evaluation or when p = 0. `layer` must differ between the dropout layers of one model.
template <class Backend, class T = float>
class dropout {
 public:
  using kernels_type = kernels<Backend>;

  dropout(float p, std::uint32_t layer) : p_(p), layer_(layer) {
    require(p >= 0.0f && p < 1.0f, "slim::nn::dropout", "p = ", p, " must lie in [0, 1)");
  }

  float p() const noexcept { return p_; }
  std::uint32_t layer() const noexcept { return layer_; }
  bool active(const step_context& ctx) const noexcept { return ctx.training && p_ > 0.0f; }

  /// y = mask⊙x/(1−p) in training, y = x otherwise; y may be x.                              x, y (N,D)
  void forward(const Backend& be, const step_context& ctx, matrix_view<const T> x, matrix_view<T> y) {
    key_ = dropout_key(ctx, layer_);
    on_ = active(ctx);
    // the mask of element (n, d) is a function of its linear index n·D + d, so dense rows run as one
    if (on_ && same_layout(x, y))
      kernels_type::dropout_forward(be, flat(x), p_, key_, 0, flat(y));
    else if (on_)
      kernels_type::dropout_forward(be, x, p_, key_, 0, y);
    else if (x.data_handle() != y.data_handle())
      copy_rows(be, x, y);
  }

  /// dx += mask⊙dy/(1−p) (the mask of the last forward), or dx += dy.                      dy, dx (N,D)
  void backward(const Backend& be, matrix_view<const T> dy, matrix_view<T> dx) {
    if (on_ && same_layout(dy, dx))
      kernels_type::dropout_backward(be, flat(dy), p_, key_, 0, flat(dx));
    else if (on_)
      kernels_type::dropout_backward(be, dy, p_, key_, 0, dx);
    else
      add_rows(be, dy, dx);
  }

 private:
  template <class A, class B>
  static bool same_layout(matrix_view<A> a, matrix_view<B> b) noexcept {
    return a.extent(0) == b.extent(0) && a.extent(1) == b.extent(1) && flat(a).extent(0) == 1 && flat(b).extent(0) == 1;
  }

  float p_;
  std::uint32_t layer_;
  std::uint64_t key_ = 0;
  bool on_ = false;
};

}  // namespace slim::nn
