// slim — nn::feed_forward: the position-wise feed-forward layer of a Transformer block, as SASRec uses
// it: y = dropout(W₂·dropout(relu(W₁x + b₁)) + b₂) (the residual is the caller's).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "slim/nn/context.hpp"
#include "slim/nn/dropout.hpp"
#include "slim/nn/linear.hpp"

namespace slim::nn {

/// y = max(x, 0) elementwise; y may be x.                                                     x, y (N,D)
template <class Backend, class T>
void relu_forward(const Backend& be, matrix_view<in_t<T>> x, matrix_view<T> y) {
  for_each_span(be, x, y, [](const T* xs, T* ys, index_t m) {
    for (index_t c = 0; c < m; ++c) ys[c] = xs[c] > T(0) ? xs[c] : T(0);
  });
}

/// dy ⊙ [y > 0] written over dy in place, given the forward output y.                       y, dy (N,D)
template <class Backend, class T>
void relu_backward_inplace(const Backend& be, matrix_view<in_t<T>> y, matrix_view<T> dy) {
  for_each_span(be, y, dy, [](const T* ys, T* g, index_t m) {
    for (index_t c = 0; c < m; ++c) g[c] = ys[c] > T(0) ? g[c] : T(0);
  });
}

/// Two linear layers with a ReLU between, dropout after each (PyTorch SASRec's PointWiseFeedForward; the
/// original TensorFlow code writes the same as two 1×1 convolutions). Dropout layers use ids
/// `first_dropout_layer` and `first_dropout_layer + 1`.
template <class Backend, class T = float>
class feed_forward {
 public:
  feed_forward(const std::string& name, index_t dim, index_t hidden, float dropout_p, std::uint32_t first_dropout_layer)
      : conv1(name + ".conv1", dim, hidden),
        conv2(name + ".conv2", hidden, dim),
        drop1(dropout_p, first_dropout_layer),
        drop2(dropout_p, first_dropout_layer + 1) {}

  linear<Backend, T> conv1;  ///< (hidden, dim)
  linear<Backend, T> conv2;  ///< (dim, hidden)
  dropout<Backend, T> drop1, drop2;

  template <class F>
  void visit_parameters(F&& f) {
    conv1.visit_parameters(f);
    conv2.visit_parameters(f);
  }

  /// y = drop₂(conv2(drop₁(relu(conv1(x))))).                                                  x, y (N,dim)
  void forward(const Backend& be, const step_context& ctx, matrix_view<const T> x, matrix_view<T> y) {
    const index_t n = x.extent(0), hidden = conv1.out_features();
    const auto h = h_.resize(n, hidden);
    conv1.forward(be, x, h);
    relu_forward(be, h, h);
    const auto hd = drop1.active(ctx) ? hd_.resize(n, hidden) : h;
    drop1.forward(be, ctx, h, hd);
    conv2.forward(be, hd, y);
    drop2.forward(be, ctx, y, y);
  }

  /// Inference (no dropout, nothing cached): y = conv2(relu(conv1(x))).                       x, y (N,dim)
  void apply(const Backend& be, matrix_view<const T> x, matrix_view<T> y) {
    const auto h = h_.resize(x.extent(0), conv1.out_features());
    conv1.apply(be, x, h);
    relu_forward(be, h, h);
    conv2.apply(be, h, y);
  }

  /// Accumulates parameter gradients and dx += ∂L/∂x.                                          dy, dx (N,dim)
  void backward(const Backend& be, matrix_view<const T> dy, matrix_view<T> dx) {
    const index_t n = dy.extent(0), dim = dy.extent(1), hidden = conv1.out_features();
    const auto g = g_.zeros(n, dim);
    drop2.backward(be, dy, g);
    const auto ghd = ghd_.resize(n, hidden);
    conv2.backward(be, g, ghd, false);
    const auto gh = gh_.zeros(n, hidden);
    drop1.backward(be, ghd, gh);
    relu_backward_inplace(be, h_.view(), gh);
    conv1.backward(be, gh, dx);
  }

 private:
  buffer<T> h_, hd_, g_, ghd_, gh_;
};

}  // namespace slim::nn
