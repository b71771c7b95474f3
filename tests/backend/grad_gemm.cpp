// Gradient checks (gemm): kernels<scalar> backward ops against central differences in double.
//
// Loss L = Σ W ⊙ C with C = α·A·B (β = 0), so dL/dC = W. gemm_backward adds α·W·Bᵀ to dA and α·Aᵀ·W to dB;
// both gradient buffers start from non-zero values to check that the op accumulates. Operands are
// strided or transposed views; the numeric gradient perturbs every stored element, pads included (whose
// gradient must stay 0).
#include <array>
#include <string>
#include <vector>

#include "slim/backend/scalar.hpp"
#include "support/check.hpp"

namespace {

using slim::index_t;
using slim::matrix_view;
using slim::tensor;
using slim::tensor_view;
using K = slim::kernels<slim::backend::scalar>;
constexpr slim::backend::scalar be{};

/// A rows×cols double matrix stored with `pad` spare columns, or stored transposed and viewed through
/// slim::transpose.
struct matrix {
  tensor<double, 2> storage;
  matrix_view<double> view;
  matrix(index_t rows, index_t cols, bool transposed, index_t pad)
      : storage(transposed ? std::array<index_t, 2>{cols, rows + pad} : std::array<index_t, 2>{rows, cols + pad}) {
    const matrix_view<double> stored = transposed ? matrix_view<double>(storage.data(), {cols, rows}, {rows + pad, 1})
                                                  : matrix_view<double>(storage.data(), {rows, cols}, {cols + pad, 1});
    view = transposed ? slim::transpose(stored) : stored;
  }
  /// A gradient buffer with the same layout, filled with non-zero values.
  matrix like(std::uint64_t seed) const {
    matrix g(0, 0, false, 0);
    g.storage = storage;
    g.view = matrix_view<double>(g.storage.data(), view.extents(), view.strides());
    slim::testing::fill_uniform(g.storage, seed);
    return g;
  }
};

double weighted_sum(const matrix_view<const double>& c, const matrix_view<const double>& w) {
  double s = 0;
  for (index_t i = 0; i < c.extent(0); ++i)
    for (index_t j = 0; j < c.extent(1); ++j) s += w(i, j) * c(i, j);
  return s;
}

/// Analytic minus the gradient buffer's starting values, element by element over the storage.
std::vector<double> added(const tensor<double, 2>& after, const tensor<double, 2>& before) {
  std::vector<double> d(static_cast<std::size_t>(after.size()));
  for (index_t i = 0; i < after.size(); ++i) d[static_cast<std::size_t>(i)] = after.data()[i] - before.data()[i];
  return d;
}

}  // namespace

TEST_CASE("gemm_backward matches central differences (double), all transposes and strided views", "[gemm][grad]") {
  struct shape {
    index_t m, n, k, pad;
  };
  const double alpha = 1.5;
  std::uint64_t seed = 1;
  for (const shape& s : std::vector<shape>{{1, 1, 1, 0}, {3, 5, 4, 0}, {7, 2, 9, 2}, {6, 11, 5, 1}})
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      INFO(s.m << "x" << s.n << "x" << s.k << " pad " << s.pad << (ta ? " Aᵀ" : " A") << (tb ? "·Bᵀ" : "·B"));
      matrix a(s.m, s.k, ta, s.pad), b(s.k, s.n, tb, s.pad), w(s.m, s.n, false, s.pad);
      slim::testing::fill_uniform(a.storage, ++seed);
      slim::testing::fill_uniform(b.storage, ++seed);
      slim::testing::fill_uniform(w.storage, ++seed);
      tensor<double, 2> c({s.m, s.n});
      const auto loss = [&] {
        K::gemm(be, alpha, a.view, b.view, 0.0, c.view());
        return weighted_sum(c.view(), w.view);
      };
      matrix da = a.like(++seed), db = b.like(++seed);
      const auto da0 = da.storage, db0 = db.storage;
      K::gemm_backward(be, alpha, a.view, b.view, w.view, da.view, db.view);
      const auto num_a = slim::testing::numeric_gradient(a.storage.data(), a.storage.size(), loss);
      const auto num_b = slim::testing::numeric_gradient(b.storage.data(), b.storage.size(), loss);
      slim::testing::check_gradient("A", added(da.storage, da0).data(), num_a);
      slim::testing::check_gradient("B", added(db.storage, db0).data(), num_b);

      // An empty dB leaves only dA's contribution (the same as above); an empty dA only dB's.
      matrix da2 = a.like(seed), db2 = b.like(seed + 1);
      const auto db2_0 = db2.storage;
      K::gemm_backward(be, alpha, a.view, b.view, w.view, da2.view, matrix_view<double>{});
      CHECK(added(db2.storage, db2_0) == std::vector<double>(static_cast<std::size_t>(db2.storage.size()), 0.0));
      slim::testing::check_gradient("A (dB empty)", added(da2.storage, a.like(seed).storage).data(), num_a);
    }
}

TEST_CASE("gemm_batched_backward matches central differences, with a weight broadcast over the batch", "[gemm][grad]") {
  const index_t bt = 3, m = 4, n = 5, k = 6;
  const double alpha = -0.75;
  tensor<double, 3> x({bt, m, k}), wsum({bt, m, n}), c({bt, m, n});
  tensor<double, 2> weight({n, k});  // used as Wᵀ (k, n): a transposed view, batch stride 0
  slim::testing::fill_uniform(x, 1);
  slim::testing::fill_uniform(weight, 2);
  slim::testing::fill_uniform(wsum, 3);
  const tensor_view<double, 3> wt(weight.data(), {bt, k, n}, {0, 1, k});
  const auto loss = [&] {
    K::gemm_batched(be, alpha, x.view(), wt, 0.0, c.view());
    double s = 0;
    for (index_t i = 0; i < c.size(); ++i) s += wsum.data()[i] * c.data()[i];
    return s;
  };
  tensor<double, 3> dx({bt, m, k});
  tensor<double, 2> dweight({n, k});
  slim::testing::fill_uniform(dx, 4);
  slim::testing::fill_uniform(dweight, 5);
  const auto dx0 = dx;
  const auto dweight0 = dweight;
  const tensor_view<double, 3> dwt(dweight.data(), {bt, k, n}, {0, 1, k});
  K::gemm_batched_backward(be, alpha, x.view(), wt, wsum.view(), dx.view(), dwt);

  const auto num_x = slim::testing::numeric_gradient(x.data(), x.size(), loss);
  const auto num_w = slim::testing::numeric_gradient(weight.data(), weight.size(), loss);
  std::vector<double> got_x(static_cast<std::size_t>(dx.size())), got_w(static_cast<std::size_t>(dweight.size()));
  for (index_t i = 0; i < dx.size(); ++i) got_x[static_cast<std::size_t>(i)] = dx.data()[i] - dx0.data()[i];
  for (index_t i = 0; i < dweight.size(); ++i)
    got_w[static_cast<std::size_t>(i)] = dweight.data()[i] - dweight0.data()[i];
  slim::testing::check_gradient("X", got_x.data(), num_x);
  slim::testing::check_gradient("W (broadcast, summed over the batch)", got_w.data(), num_w);
}
