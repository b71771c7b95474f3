// Gradient checks (rows): kernels<scalar> backward ops against central differences in double.
// Each op's loss is L = Σ r⊙out with fixed random weights r, so ∂L/∂out = r is fed to backward as dy.
// Gradients start at a non-zero value that is subtracted afterwards: backward must accumulate.
#include <cstdint>
#include <functional>
#include <vector>

#include "slim/backend/scalar.hpp"
#include "support/check.hpp"

namespace {

using slim::index_t;
using K = slim::kernels<slim::backend::scalar>;
constexpr slim::backend::scalar be{};
constexpr double start = 0.375;  // initial content of every gradient buffer

slim::tensor<double, 2> random_matrix(index_t n, index_t d, std::uint64_t seed, double lo = -1, double hi = 1) {
  slim::tensor<double, 2> t({n, d});
  slim::testing::fill_uniform(t, seed, lo, hi);
  return t;
}
slim::tensor<double, 1> random_vector(index_t n, std::uint64_t seed, double lo = -1, double hi = 1) {
  slim::tensor<double, 1> t({n});
  slim::testing::fill_uniform(t, seed, lo, hi);
  return t;
}
template <std::size_t R>
slim::tensor<double, R> filled(std::array<index_t, R> shape, double v) {
  slim::tensor<double, R> t(shape);
  for (auto& e : t) e = v;
  return t;
}
/// Σ r⊙out over all elements.
template <std::size_t R>
double weighted(const slim::tensor<double, R>& out, const slim::tensor<double, R>& r) {
  double s = 0;
  for (index_t i = 0; i < out.size(); ++i) s += out.data()[i] * r.data()[i];
  return s;
}
/// CHECKs grad − start against the central differences of `loss` with respect to `x`.
template <std::size_t R>
void check(const std::string& name, const slim::tensor<double, R>& grad, slim::tensor<double, R>& x,
           const std::function<double()>& loss) {
  std::vector<double> analytic(static_cast<std::size_t>(grad.size()));
  for (index_t i = 0; i < grad.size(); ++i) analytic[static_cast<std::size_t>(i)] = grad.data()[i] - start;
  const auto numeric = slim::testing::numeric_gradient(x.data(), x.size(), loss);
  slim::testing::check_gradient(name, analytic.data(), numeric);
}

}  // namespace

TEST_CASE("rmsnorm_backward matches central differences (x and w)", "[grad][norm]") {
  const index_t n = 3, d = 7;
  auto x = random_matrix(n, d, 1, -2, 2);
  auto w = random_vector(d, 2, 0.5, 1.5);
  const auto r = random_matrix(n, d, 3);
  auto y = filled<2>({n, d}, 0);
  auto rstd = filled<1>({n}, 0);
  auto loss = [&] {
    K::rmsnorm_forward(be, x.view(), w.view(), 1e-5, y.view(), rstd.view());
    return weighted(y, r);
  };
  loss();
  auto dx = filled<2>({n, d}, start);
  auto dw = filled<1>({d}, start);
  K::rmsnorm_backward(be, x.view(), w.view(), rstd.view(), r.view(), dx.view(), dw.view());
  check("rmsnorm dx", dx, x, loss);
  check("rmsnorm dw", dw, w, loss);
}

TEST_CASE("layernorm_backward matches central differences (x, w and b)", "[grad][norm]") {
  const index_t n = 3, d = 6;
  auto x = random_matrix(n, d, 11, -1, 3);
  auto w = random_vector(d, 12, 0.5, 1.5);
  auto b = random_vector(d, 13);
  const auto r = random_matrix(n, d, 14);
  auto y = filled<2>({n, d}, 0);
  auto mean = filled<1>({n}, 0), rstd = filled<1>({n}, 0);
  auto loss = [&] {
    K::layernorm_forward(be, x.view(), w.view(), b.view(), 1e-5, y.view(), mean.view(), rstd.view());
    return weighted(y, r);
  };
  loss();
  auto dx = filled<2>({n, d}, start);
  auto dw = filled<1>({d}, start), db = filled<1>({d}, start);
  K::layernorm_backward(be, x.view(), w.view(), mean.view(), rstd.view(), r.view(), dx.view(), dw.view(), db.view());
  check("layernorm dx", dx, x, loss);
  check("layernorm dw", dw, w, loss);
  check("layernorm db", db, b, loss);
}

TEST_CASE("rope_backward matches central differences", "[grad][rope]") {
  const index_t n = 3, h = 2, dh = 6;
  slim::tensor<double, 3> x({n, h, dh}), y({n, h, dh}), r({n, h, dh});
  slim::testing::fill_uniform(x, 21);
  slim::testing::fill_uniform(r, 22);
  const std::vector<std::int32_t> pos{0, 5, 4097};
  const slim::vector_view<const std::int32_t> p(pos.data(), {n});
  slim::tensor<double, 1> f({dh / 2});
  slim::backend::rope_inverse_frequencies(static_cast<int>(dh), 10000.0, f.data());
  auto loss = [&] {
    K::rope_forward(be, x.view(), p, f.view(), y.view());
    return weighted(y, r);
  };
  auto dx = filled<3>({n, h, dh}, start);
  K::rope_backward(be, r.view(), p, f.view(), dx.view());
  check("rope dx", dx, x, loss);
}

TEST_CASE("softmax_backward matches central differences (plain and causal, with scale)", "[grad][softmax]") {
  for (const bool causal : {false, true}) {
    INFO("causal " << causal);
    const index_t bt = 2, s = 3, l = 5;
    slim::tensor<double, 3> x({bt, s, l}), y({bt, s, l}), r({bt, s, l});
    slim::testing::fill_uniform(x, 31, -3, 3);
    slim::testing::fill_uniform(r, 32);
    const double scale = 0.7;
    auto loss = [&] {
      K::softmax_forward(be, x.view(), scale, causal, y.view());
      return weighted(y, r);
    };
    loss();
    auto dx = filled<3>({bt, s, l}, start);
    K::softmax_backward(be, y.view(), r.view(), scale, dx.view());
    check("softmax dx", dx, x, loss);
  }
}

TEST_CASE("silu, gelu and swiglu backward match central differences", "[grad][activation]") {
  using slim::backend::gelu_approximation;
  const index_t n = 3, d = 9;
  auto x = random_matrix(n, d, 41, -6, 6);
  auto up = random_matrix(n, d, 42, -2, 2);
  const auto r = random_matrix(n, d, 43);
  auto y = filled<2>({n, d}, 0);
  {
    auto loss = [&] {
      K::silu_forward(be, x.view(), y.view());
      return weighted(y, r);
    };
    auto dx = filled<2>({n, d}, start);
    K::silu_backward(be, x.view(), r.view(), dx.view());
    check("silu dx", dx, x, loss);
  }
  for (const auto a : {gelu_approximation::tanh, gelu_approximation::erf}) {
    INFO("gelu form " << static_cast<int>(a));
    auto loss = [&] {
      K::gelu_forward(be, x.view(), a, y.view());
      return weighted(y, r);
    };
    auto dx = filled<2>({n, d}, start);
    K::gelu_backward(be, x.view(), r.view(), a, dx.view());
    check("gelu dx", dx, x, loss);
  }
  {
    auto loss = [&] {
      K::swiglu_forward(be, x.view(), up.view(), y.view());
      return weighted(y, r);
    };
    auto dgate = filled<2>({n, d}, start), dup = filled<2>({n, d}, start);
    K::swiglu_backward(be, x.view(), up.view(), r.view(), dgate.view(), dup.view());
    check("swiglu dgate", dgate, x, loss);
    check("swiglu dup", dup, up, loss);
  }
}

TEST_CASE("dropout_backward matches central differences", "[grad][dropout]") {
  const index_t n = 4, d = 9;
  auto x = random_matrix(n, d, 51);
  const auto r = random_matrix(n, d, 52);
  auto y = filled<2>({n, d}, 0);
  const float p = 0.4f;
  auto loss = [&] {
    K::dropout_forward(be, x.view(), p, 99, 7, y.view());
    return weighted(y, r);
  };
  auto dx = filled<2>({n, d}, start);
  K::dropout_backward(be, r.view(), p, 99, 7, dx.view());
  check("dropout dx", dx, x, loss);
  index_t dropped = 0;  // the check is only meaningful if some elements were dropped and some kept
  for (double g : dx) dropped += g == start;
  CHECK(dropped > 0);
  CHECK(dropped < n * d);
}
