// slim — nn::embedding: a lookup table (num, dim) as torch.nn.Embedding, with an optional padding row that
// never receives a gradient from this module.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "slim/backend/kernels.hpp"
#include "slim/nn/context.hpp"
#include "slim/nn/parameter.hpp"

namespace slim::nn {

/// out[n] = weight[ids[n]]. `padding_idx` (−1: none) names a row whose gradient this module leaves alone,
/// as torch's padding_idx does (initialisers are the caller's business: torch zeroes that row).
template <class Backend, class T = float>
class embedding {
 public:
  using kernels_type = kernels<Backend>;

  embedding(const std::string& name, index_t num, index_t dim, index_t padding_idx = -1)
      : weight(name + ".weight", num, dim, parameter_role::embedding), padding_idx_(padding_idx) {
    require(padding_idx >= -1 && padding_idx < num, "slim::nn::embedding", "padding_idx ", padding_idx,
            " outside [-1, ", num, ")");
  }

  parameter<T> weight;  ///< (num, dim)

  index_t num() const noexcept { return weight.rows; }
  index_t dim() const noexcept { return weight.cols; }

  template <class F>
  void visit_parameters(F&& f) {
    f(weight);
  }

  /// out[n] = weight[ids[n]]; ids outside [0, num) throw. Caches the ids view (keep it alive until backward).
  ///                                                                                  ids (N), out (N,dim)
  void forward(const Backend& be, vector_view<const std::int32_t> ids, matrix_view<T> out) {
    ids_ = ids;
    kernels_type::embedding_forward(be, weight.matrix(), ids, out);
  }

  /// weight.grad[ids[n]] += dout[n] (rows in n order), except the padding row.            dout (N,dim)
  void backward(const Backend& be, matrix_view<const T> dout) {
    if (!weight.trainable) return;
    std::vector<T> keep;
    T* pad = padding_idx_ >= 0 ? weight.grad.data() + padding_idx_ * dim() : nullptr;
    if (pad) keep.assign(pad, pad + dim());
    kernels_type::embedding_backward(be, ids_, dout, weight.grad_matrix());
    if (pad) std::memcpy(pad, keep.data(), static_cast<std::size_t>(dim()) * sizeof(T));
  }

 private:
  index_t padding_idx_;
  vector_view<const std::int32_t> ids_;
};

}  // namespace slim::nn
