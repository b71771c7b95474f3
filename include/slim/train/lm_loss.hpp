// slim — language-model losses: next-token NLL over the tokens a mask selects (SLIM: the rationale tokens only),
// and knowledge distillation KL(teacher ‖ student) at temperature τ against full teacher logits or the
// teacher's top-k, scaled by τ² as Hinton et al. (2015) do so gradient magnitudes do not shrink with τ.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "slim/backend/kernels.hpp"
#include "slim/core/error.hpp"
#include "slim/core/tensor.hpp"
#include "slim/core/thread_pool.hpp"
#include "slim/nn/context.hpp"

namespace slim::train {

/// The target id of a row that does not count (PyTorch's default ignore_index).
inline constexpr std::int32_t ignore_target = -100;

/// Next-token targets of a (B,S) batch as the training forward lays out its logits (row b·S + t): the target of
/// column t is ids[b, t+1] when loss_mask[b, t+1] ≠ 0, else ignore_target; the last column never counts.
/// loss_mask marks the tokens to be predicted (SLIM: the rationale, not the prompt or the padding); an empty mask
/// counts every next token.                                               ids, loss_mask (B,S); targets (B·S)
inline void next_token_targets(tensor_view<const std::int32_t, 2> ids, tensor_view<const std::uint8_t, 2> loss_mask,
                               std::span<std::int32_t> targets) {
  constexpr const char* where = "slim::train::next_token_targets";
  const index_t b = ids.extent(0), s = ids.extent(1);
  require(static_cast<index_t>(targets.size()) == b * s, where, "targets has ", targets.size(), " entries, ids ",
          b * s);
  if (!loss_mask.empty()) require_shape(loss_mask, {b, s}, where, "loss_mask");
  for (index_t i = 0; i < b; ++i)
    for (index_t t = 0; t < s; ++t) {
      const bool counts = t + 1 < s && (loss_mask.empty() || loss_mask(i, t + 1) != 0);
      targets[static_cast<std::size_t>(i * s + t)] = counts ? ids(i, t + 1) : ignore_target;
    }
}

/// Mean token NLL over the rows whose target is not ignore_target: L = (1/C)·Σₙ (lse(zₙ) − zₙ[tₙ]), C the number
/// of counted rows (L = 0 when C = 0). forward keeps views of logits and targets for backward.
template <class Backend, class T = float>
class token_nll {
 public:
  using kernels_type = kernels<Backend>;

  /// The loss of logits (N,V) against targets (N).
  double forward(const Backend& be, matrix_view<const T> logits, vector_view<const std::int32_t> targets) {
    const index_t n = logits.extent(0);
    logits_ = logits;
    targets_ = targets;
    loss_.resize(1, n);
    lse_.resize(1, n);
    counted_ = kernels_type::cross_entropy_forward(be, logits, targets, ignore_target, row(loss_), row(lse_));
    double sum = 0;
    for (index_t i = 0; i < n; ++i) sum += static_cast<double>(loss_.view()(0, i));
    return counted_ ? sum / static_cast<double>(counted_) : 0.0;
  }

  /// dlogits += weight·∂L/∂logits = weight/C·(softmax(zₙ) − onehot(tₙ)) on counted rows.     dlogits (N,V)
  void backward(const Backend& be, matrix_view<T> dlogits, double weight = 1.0) {
    if (counted_ == 0) return;
    const index_t n = logits_.extent(0);
    const auto d = dloss_.resize(1, n);
    std::fill(d.data_handle(), d.data_handle() + n, static_cast<T>(weight / static_cast<double>(counted_)));
    kernels_type::cross_entropy_backward(be, logits_, targets_, vector_view<const T>(row(lse_)), ignore_target,
                                         vector_view<const T>(row(dloss_)), dlogits);
  }

  /// Rows counted by the last forward.
  index_t counted() const noexcept { return counted_; }

 private:
  static vector_view<T> row(nn::buffer<T>& b) { return {b.data(), {b.cols()}}; }
  matrix_view<const T> logits_;
  vector_view<const std::int32_t> targets_;
  nn::buffer<T> loss_, lse_, dloss_;
  index_t counted_ = 0;
};

/// Distillation loss L = τ²/C · Σₙ KL(p_T,n ‖ p_S,n) over the rows a mask counts (C of them; L = 0 when none), with
/// p_S = softmax(z_S/τ) over the vocabulary and p_T = softmax(z_T/τ) over the full vocabulary, or over the
/// teacher's top-k entries only (the rest of the vocabulary gets probability 0). ∂L/∂z_S = τ/C·(p_S − p_T).
/// Sums run in double, row by row; the result does not depend on the thread count.
template <class Backend, class T = float>
class kl_distillation {
 public:
  explicit kl_distillation(double temperature = 1.0) : tau_(temperature) {
    require(temperature > 0 && std::isfinite(temperature), "slim::train::kl_distillation", "temperature ", temperature,
            " must be positive and finite");
  }
  double temperature() const noexcept { return tau_; }

  /// Full-vocabulary KD. student, teacher (N,V); row_mask (N) (≠ 0: counts) or empty (every row counts).
  double forward(const Backend& be, matrix_view<const T> student, matrix_view<const T> teacher,
                 std::span<const std::uint8_t> row_mask = {}) {
    constexpr const char* where = "slim::train::kl_distillation::forward";
    require_shape(teacher, {student.extent(0), student.extent(1)}, where, "teacher");
    return run(be, student, teacher, {}, {}, row_mask, where);
  }

  /// Top-k KD: the teacher's k largest logits (values) and their vocabulary ids (indices), (N,k) each.
  double forward_topk(const Backend& be, matrix_view<const T> student, matrix_view<const T> values,
                      matrix_view<const std::int32_t> indices, std::span<const std::uint8_t> row_mask = {}) {
    constexpr const char* where = "slim::train::kl_distillation::forward_topk";
    const index_t n = student.extent(0), v = student.extent(1), k = values.extent(1);
    require_shape(values, {n, k}, where, "values");
    require_shape(indices, {n, k}, where, "indices");
    require(k > 0, where, "k must be positive");
    for (index_t r = 0; r < n; ++r)
      for (index_t j = 0; j < k; ++j)
        require(indices(r, j) >= 0 && indices(r, j) < v, where, "indices(", r, ", ", j, ") = ", indices(r, j),
                " lies outside [0, ", v, ")");
    return run(be, student, {}, values, indices, row_mask, where);
  }

  /// dstudent += weight·∂L/∂z_S for the last forward.                                     dstudent (N,V)
  void backward(const Backend& be, matrix_view<T> dstudent, double weight = 1.0) {
    const index_t n = student_.extent(0), v = student_.extent(1);
    require_shape(dstudent, {n, v}, "slim::train::kl_distillation::backward", "dstudent");
    if (counted_ == 0) return;
    const double c = weight * tau_ / static_cast<double>(counted_);
    parallel_for(nn::pool_of(be), n, nn::rows_per_task(v), [&](index_t r0, index_t r1) {
      std::vector<double> pt;
      for (index_t r = r0; r < r1; ++r) {
        if (!counts(r)) continue;
        teacher_probabilities(r, pt);
        const double ls = lse_s_[static_cast<std::size_t>(r)];
        for (index_t j = 0; j < v; ++j) {
          const double ps = std::exp(static_cast<double>(student_(r, j)) / tau_ - ls);
          dstudent(r, j) += static_cast<T>(c * (ps - pt[static_cast<std::size_t>(j)]));
        }
      }
    });
  }

  index_t counted() const noexcept { return counted_; }

 private:
  bool counts(index_t r) const noexcept { return mask_.empty() || mask_[static_cast<std::size_t>(r)] != 0; }

  static double log_sum_exp(const double* x, index_t n) {
    double mx = -std::numeric_limits<double>::infinity();
    for (index_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
    if (!std::isfinite(mx)) return mx;
    double s = 0;
    for (index_t i = 0; i < n; ++i) s += std::exp(x[i] - mx);
    return mx + std::log(s);
  }

  /// p_T of row r over the whole vocabulary (zeros outside the top-k).
  void teacher_probabilities(index_t r, std::vector<double>& pt) const {
    const index_t v = student_.extent(1);
    pt.assign(static_cast<std::size_t>(v), 0.0);
    if (!teacher_.empty()) {
      for (index_t j = 0; j < v; ++j) pt[static_cast<std::size_t>(j)] = static_cast<double>(teacher_(r, j)) / tau_;
      const double l = log_sum_exp(pt.data(), v);
      for (double& x : pt) x = std::exp(x - l);
    } else {
      const index_t k = values_.extent(1);
      std::vector<double> a(static_cast<std::size_t>(k));
      for (index_t j = 0; j < k; ++j) a[static_cast<std::size_t>(j)] = static_cast<double>(values_(r, j)) / tau_;
      const double l = log_sum_exp(a.data(), k);
      for (index_t j = 0; j < k; ++j)
        pt[static_cast<std::size_t>(indices_(r, j))] += std::exp(a[static_cast<std::size_t>(j)] - l);
    }
  }

  double run(const Backend& be, matrix_view<const T> student, matrix_view<const T> teacher, matrix_view<const T> values,
             matrix_view<const std::int32_t> indices, std::span<const std::uint8_t> row_mask, const char* where) {
    const index_t n = student.extent(0), v = student.extent(1);
    require(row_mask.empty() || static_cast<index_t>(row_mask.size()) == n, where, "row_mask has ", row_mask.size(),
            " entries, the logits ", n, " rows");
    student_ = student;
    teacher_ = teacher;
    values_ = values;
    indices_ = indices;
    mask_ = row_mask;
    counted_ = 0;
    for (index_t r = 0; r < n; ++r) counted_ += counts(r) ? 1 : 0;
    lse_s_.assign(static_cast<std::size_t>(n), 0.0);
    std::vector<double> kl(static_cast<std::size_t>(n), 0.0);
    parallel_for(nn::pool_of(be), n, nn::rows_per_task(v), [&](index_t r0, index_t r1) {
      std::vector<double> zs(static_cast<std::size_t>(v)), pt;
      for (index_t r = r0; r < r1; ++r) {
        if (!counts(r)) continue;
        for (index_t j = 0; j < v; ++j) zs[static_cast<std::size_t>(j)] = static_cast<double>(student(r, j)) / tau_;
        const double ls = log_sum_exp(zs.data(), v);
        lse_s_[static_cast<std::size_t>(r)] = ls;
        teacher_probabilities(r, pt);
        double acc = 0;
        for (index_t j = 0; j < v; ++j) {
          const double p = pt[static_cast<std::size_t>(j)];
          if (p > 0) acc += p * (std::log(p) - (zs[static_cast<std::size_t>(j)] - ls));
        }
        kl[static_cast<std::size_t>(r)] = acc;
      }
    });
    if (counted_ == 0) return 0.0;
    double sum = 0;
    for (const double x : kl) sum += x;
    return tau_ * tau_ * sum / static_cast<double>(counted_);
  }

  double tau_;
  matrix_view<const T> student_, teacher_, values_;
  matrix_view<const std::int32_t> indices_;
  std::span<const std::uint8_t> mask_;
  std::vector<double> lse_s_;
  index_t counted_ = 0;
};

}  // namespace slim::train
