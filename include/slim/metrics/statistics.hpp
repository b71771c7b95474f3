// slim — statistics over evaluations: mean ± sample standard deviation over seeds, paired differences
// between two models on the same users (with Student's t), and sparsity groups (users split into equal
// groups by training-history length, metric means per group).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"
#include "slim/metrics/metric.hpp"

namespace slim::metrics {

/// Mean and sample standard deviation (divisor n − 1) of n values; std is NaN for n < 2, mean NaN for n = 0.
struct summary {
  index_t n = 0;
  double mean = std::numeric_limits<double>::quiet_NaN();
  double std = std::numeric_limits<double>::quiet_NaN();
};

/// mean ± sample std of `values` (e.g. one metric over seeds); summed in order (two-pass for the std).
inline summary summarize(std::span<const double> values) {
  summary s;
  s.n = static_cast<index_t>(values.size());
  if (s.n == 0) return s;
  double sum = 0;
  for (const double v : values) sum += v;
  s.mean = sum / static_cast<double>(s.n);
  if (s.n < 2) return s;
  double ss = 0;
  for (const double v : values) ss += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(ss / static_cast<double>(s.n - 1));
  return s;
}

namespace detail {
/// Regularised incomplete beta I_x(a, b) by its continued fraction (modified Lentz), using the symmetry
/// I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges slowly.
inline double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - incomplete_beta(b, a, 1 - x);
  const double log_front =
      a * std::log(x) + b * std::log1p(-x) - std::log(a) - (std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b));
  constexpr double tiny = 1e-300, eps = 1e-15;
  // 1 + d1/(1 + d2/(1 + ...)) with d_{2m} = m(b−m)x / ((a+2m−1)(a+2m)),
  // d_{2m+1} = −(a+m)(a+b+m)x / ((a+2m)(a+2m+1)).
  double f = 1, c = 1, d = 0;
  for (int j = 1; j < 10000; ++j) {
    const int m = j / 2;
    const double dj = (j % 2 == 0) ? m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
                                   : -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 + dj * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1 + dj / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    const double delta = c * d;
    f *= delta;
    if (std::abs(delta - 1) < eps) break;
  }
  return std::exp(log_front) / f;
}
}  // namespace detail

/// Two-sided p-value of Student's t statistic with `df` degrees of freedom: P(|T| ≥ |t|) = I_{df/(df+t²)}(df/2, 1/2).
inline double student_t_two_sided_p(double t, double df) {
  require(df > 0, "slim::metrics::student_t_two_sided_p", "degrees of freedom must be positive, got ", df);
  if (std::isnan(t)) return std::numeric_limits<double>::quiet_NaN();
  if (std::isinf(t)) return 0;
  return detail::incomplete_beta(df / 2, 0.5, df / (df + t * t));
}

/// Paired comparison of model A against model B over the same n units (users, or seeds):
/// d_i = a_i − b_i, mean and sample std of d, t = mean / (std / √n) with n − 1 degrees of freedom, and its
/// two-sided p-value. With std = 0: t = 0 when mean = 0, else ±inf (p = 0); t and p are NaN for n < 2.
struct paired_difference {
  index_t n = 0;
  double mean = std::numeric_limits<double>::quiet_NaN();
  double std = std::numeric_limits<double>::quiet_NaN();
  double t = std::numeric_limits<double>::quiet_NaN();
  double p = std::numeric_limits<double>::quiet_NaN();
};

/// The paired difference a − b; a and b must have the same length (same units, same order).
inline paired_difference compare_paired(std::span<const double> a, std::span<const double> b) {
  require(a.size() == b.size(), "slim::metrics::compare_paired", "paired samples differ in length: ", a.size(), " and ",
          b.size());
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  const summary s = summarize(d);
  paired_difference r;
  r.n = s.n;
  r.mean = s.mean;
  r.std = s.std;
  if (s.n < 2) return r;
  if (s.std == 0) {
    r.t = s.mean == 0 ? 0.0 : std::copysign(std::numeric_limits<double>::infinity(), s.mean);
    r.p = s.mean == 0 ? 1.0 : 0.0;
    return r;
  }
  r.t = s.mean / (s.std / std::sqrt(static_cast<double>(s.n)));
  r.p = student_t_two_sided_p(r.t, static_cast<double>(s.n - 1));
  return r;
}

/// Users split into `count` groups of equal size (sizes differ by at most one)
/// by training-history length, ascending: group 0 holds the sparsest users. Users of equal length are
/// ordered by user index, so the split is deterministic.
struct sparsity_groups {
  int count = 0;
  std::vector<int> group_of;        ///< (users) group of each user
  std::vector<index_t> size;        ///< (count) users per group
  std::vector<index_t> min_length;  ///< (count) shortest history in the group
  std::vector<index_t> max_length;  ///< (count) longest history in the group
};

/// Splits users by `lengths` (one training-history length per user) into `count` groups (default 5):
/// the users sorted by (length, index) take positions 0..n−1, and group g holds positions
/// [⌊g·n/count⌋, ⌊(g+1)·n/count⌋).
inline sparsity_groups make_sparsity_groups(std::span<const index_t> lengths, int count = 5) {
  constexpr const char* where = "slim::metrics::make_sparsity_groups";
  require(count >= 1, where, "group count must be positive, got ", count);
  const auto n = static_cast<index_t>(lengths.size());
  require(n >= count, where, n, " users cannot fill ", count, " groups");
  std::vector<index_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), index_t{0});
  std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) {
    return lengths[static_cast<std::size_t>(a)] < lengths[static_cast<std::size_t>(b)];
  });
  sparsity_groups g;
  g.count = count;
  g.group_of.assign(static_cast<std::size_t>(n), 0);
  g.size.assign(static_cast<std::size_t>(count), 0);
  g.min_length.assign(static_cast<std::size_t>(count), 0);
  g.max_length.assign(static_cast<std::size_t>(count), 0);
  for (int grp = 0; grp < count; ++grp) {
    const index_t b = grp * n / count, e = (grp + 1) * n / count;
    g.size[static_cast<std::size_t>(grp)] = e - b;
    g.min_length[static_cast<std::size_t>(grp)] = lengths[static_cast<std::size_t>(order[static_cast<std::size_t>(b)])];
    g.max_length[static_cast<std::size_t>(grp)] =
        lengths[static_cast<std::size_t>(order[static_cast<std::size_t>(e - 1)])];
    for (index_t p = b; p < e; ++p) g.group_of[static_cast<std::size_t>(order[static_cast<std::size_t>(p)])] = grp;
  }
  return g;
}

/// Means of every metric of `e` within each group: result[g][m] (users in user order).
inline std::vector<std::vector<double>> group_means(const evaluation& e, const sparsity_groups& g) {
  require(static_cast<index_t>(g.group_of.size()) == e.num_users(), "slim::metrics::group_means", "groups cover ",
          g.group_of.size(), " users, the evaluation ", e.num_users());
  std::vector<std::vector<double>> out(static_cast<std::size_t>(g.count), std::vector<double>(e.values.size(), 0.0));
  for (std::size_t m = 0; m < e.values.size(); ++m) {
    for (std::size_t u = 0; u < g.group_of.size(); ++u)
      out[static_cast<std::size_t>(g.group_of[u])][m] += e.values[m][u];
    for (int grp = 0; grp < g.count; ++grp)
      out[static_cast<std::size_t>(grp)][m] /= static_cast<double>(g.size[static_cast<std::size_t>(grp)]);
  }
  return out;
}

}  // namespace slim::metrics
