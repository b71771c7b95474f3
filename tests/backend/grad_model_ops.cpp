// Gradient checks (model_ops): kernels<scalar> backward ops against central differences in double.
// Each loss is L = Σ w ⊙ output for fixed random weights w, so the backward's upstream gradient is w.
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "slim/backend/scalar.hpp"
#include "support/check.hpp"

namespace slim::testing::model_ops_grad {

using K = kernels<backend::scalar>;
constexpr backend::scalar be{};

template <std::size_t R>
tensor<double, R> random_tensor(std::array<index_t, R> shape, std::uint64_t seed, double lo = -1, double hi = 1) {
  tensor<double, R> t(shape);
  fill_uniform(t, seed, lo, hi);
  return t;
}
template <class T, std::size_t R>
double weighted_sum(const tensor<T, R>& w, const tensor<T, R>& x) {
  double s = 0;
  for (index_t i = 0; i < x.size(); ++i) s += w.data()[i] * x.data()[i];
  return s;
}
template <std::size_t R>
void check(const std::string& name, tensor<double, R>& x, const tensor<double, R>& analytic,
           const std::function<double()>& loss) {
  const std::vector<double> numeric = numeric_gradient(x.data(), x.size(), loss);
  check_gradient(name, analytic.data(), numeric);
}

struct attention_shape {
  index_t batch, queries, keys, q_heads, kv_heads, head_dim;
  bool causal;
  std::vector<std::int32_t> kv_begin;  // empty: no padding
};

}  // namespace slim::testing::model_ops_grad

TEST_CASE("model_ops gradient: attention dq, dk, dv match central differences", "[gradients][attention]") {
  using namespace slim;
  using namespace slim::testing;
  using namespace slim::testing::model_ops_grad;
  const std::vector<attention_shape> shapes = {
      // GQA 4/2, causal with L > S, left padding 2 on the second sequence.
      {2, 3, 5, 4, 2, 3, true, {0, 2}},
      // S > L, causal: query 0 sees no key (its row must get no gradient), MQA.
      {1, 4, 3, 2, 1, 2, true, {}},
      // Not causal, Hq = Hkv, a fully padded second sequence.
      {2, 3, 4, 3, 3, 4, false, {1, 4}},
      // Decoding: one query against the cache.
      {2, 1, 6, 4, 1, 3, true, {0, 3}},
  };
  std::uint64_t seed = 10;
  for (const attention_shape& sh : shapes) {
    INFO("B " << sh.batch << " S " << sh.queries << " L " << sh.keys << " Hq " << sh.q_heads << " Hkv " << sh.kv_heads
              << " Dh " << sh.head_dim << (sh.causal ? " causal" : ""));
    auto q = random_tensor<4>({sh.batch, sh.queries, sh.q_heads, sh.head_dim}, seed += 10);
    auto k = random_tensor<4>({sh.batch, sh.keys, sh.kv_heads, sh.head_dim}, seed + 1);
    auto v = random_tensor<4>({sh.batch, sh.keys, sh.kv_heads, sh.head_dim}, seed + 2);
    const auto w = random_tensor<4>({sh.batch, sh.queries, sh.q_heads, sh.head_dim}, seed + 3);
    tensor<std::int32_t, 1> kvb({static_cast<index_t>(sh.kv_begin.size())});
    for (std::size_t b = 0; b < sh.kv_begin.size(); ++b) kvb(static_cast<index_t>(b)) = sh.kv_begin[b];
    const vector_view<const std::int32_t> kv_begin = kvb.view();
    const double scale = 0.7;
    tensor<double, 4> o(q.extents());
    tensor<double, 3> lse({sh.batch, sh.q_heads, sh.queries});
    auto loss = [&] {
      K::attention_forward(be, q.view(), k.view(), v.view(), scale, sh.causal, kv_begin, o.view(), lse.view());
      return weighted_sum(w, o);
    };
    loss();
    tensor<double, 4> dq(q.extents()), dk(k.extents()), dv(v.extents());
    K::attention_backward(be, q.view(), k.view(), v.view(), o.view(), w.view(), lse.view(), scale, sh.causal, kv_begin,
                          dq.view(), dk.view(), dv.view());
    for (index_t i = 0; i < o.size(); ++i) REQUIRE(std::isfinite(o.data()[i]));
    check("attention dq", q, dq, loss);
    check("attention dk", k, dk, loss);
    check("attention dv", v, dv, loss);
    // A second call accumulates: every gradient doubles (up to the rounding of the longer sums).
    loss();  // numeric_gradient left o and lse at a perturbed input
    tensor<double, 4> dq2 = dq, dk2 = dk, dv2 = dv;
    K::attention_backward(be, q.view(), k.view(), v.view(), o.view(), w.view(), lse.view(), scale, sh.causal, kv_begin,
                          dq2.view(), dk2.view(), dv2.view());
    for (index_t i = 0; i < dq.size(); ++i)
      CHECK(dq2.data()[i] == Approx(2 * dq.data()[i]).epsilon(1e-12).margin(1e-15));
    for (index_t i = 0; i < dk.size(); ++i)
      CHECK(dk2.data()[i] == Approx(2 * dk.data()[i]).epsilon(1e-12).margin(1e-15));
    for (index_t i = 0; i < dv.size(); ++i)
      CHECK(dv2.data()[i] == Approx(2 * dv.data()[i]).epsilon(1e-12).margin(1e-15));
  }
}

TEST_CASE("model_ops gradient: the attention oracle matches a hand computation", "[gradients][attention]") {
  using namespace slim;
  using namespace slim::testing::model_ops_grad;
  // One query q = 1 and keys k = (0, ln 3) with scale 1: p = (1/4, 3/4); v = (2, 6) → o = 5, lse = ln 4.
  // Causal with S = 1, L = 2: the query is the last position, so it sees both keys.
  tensor<double, 4> q({1, 1, 1, 1}), k({1, 2, 1, 1}), v({1, 2, 1, 1}), o({1, 1, 1, 1});
  tensor<double, 3> lse({1, 1, 1});
  q(0, 0, 0, 0) = 1;
  k(0, 0, 0, 0) = 0, k(0, 1, 0, 0) = std::log(3.0);
  v(0, 0, 0, 0) = 2, v(0, 1, 0, 0) = 6;
  K::attention_forward(be, q.view(), k.view(), v.view(), 1.0, true, {}, o.view(), lse.view());
  CHECK(o(0, 0, 0, 0) == Approx(5.0).epsilon(1e-14));
  CHECK(lse(0, 0, 0) == Approx(std::log(4.0)).epsilon(1e-14));
  // With S = 2 = L causal, query 0 sees key 0 only: o = v0 = 2, lse = 0.
  tensor<double, 4> q2({1, 2, 1, 1}), o2({1, 2, 1, 1});
  tensor<double, 3> lse2({1, 1, 2});
  q2(0, 0, 0, 0) = q2(0, 1, 0, 0) = 1;
  K::attention_forward(be, q2.view(), k.view(), v.view(), 1.0, true, {}, o2.view(), lse2.view());
  CHECK(o2(0, 0, 0, 0) == 2.0);
  CHECK(lse2(0, 0, 0) == 0.0);
  CHECK(o2(0, 1, 0, 0) == Approx(5.0).epsilon(1e-14));
}

TEST_CASE("model_ops gradient: gru cell dgx, dgh, dh match central differences", "[gradients][gru]") {
  using namespace slim;
  using namespace slim::testing;
  using namespace slim::testing::model_ops_grad;
  const index_t n = 3, hidden = 4;
  auto gx = random_tensor<2>({n, 3 * hidden}, 21, -2, 2);
  auto gh = random_tensor<2>({n, 3 * hidden}, 22, -2, 2);
  auto h = random_tensor<2>({n, hidden}, 23);
  const auto w = random_tensor<2>({n, hidden}, 24);
  tensor<double, 2> out({n, hidden});
  auto loss = [&] {
    K::gru_cell_forward(be, gx.view(), gh.view(), h.view(), out.view());
    return weighted_sum(w, out);
  };
  tensor<double, 2> dgx(gx.extents()), dgh(gh.extents()), dh(h.extents());
  K::gru_cell_backward(be, gx.view(), gh.view(), h.view(), w.view(), dgx.view(), dgh.view(), dh.view());
  check("gru dgx", gx, dgx, loss);
  check("gru dgh", gh, dgh, loss);
  check("gru dh", h, dh, loss);
}

TEST_CASE("model_ops gradient: embedding dtable matches central differences", "[gradients][embedding]") {
  using namespace slim;
  using namespace slim::testing;
  using namespace slim::testing::model_ops_grad;
  auto table = random_tensor<2>({5, 3}, 31);
  tensor<std::int32_t, 1> ids({6});
  const std::int32_t id_values[6] = {1, 3, 1, 0, 1, 4};  // repeats accumulate; row 2 is unused
  for (index_t i = 0; i < 6; ++i) ids(i) = id_values[i];
  const auto w = random_tensor<2>({6, 3}, 32);
  tensor<double, 2> out({6, 3});
  auto loss = [&] {
    K::embedding_forward(be, table.view(), ids.view(), out.view());
    return weighted_sum(w, out);
  };
  tensor<double, 2> dtable(table.extents());
  K::embedding_backward(be, ids.view(), w.view(), dtable.view());
  check("embedding dtable", table, dtable, loss);
}

TEST_CASE("model_ops gradient: cross-entropy dlogits matches central differences", "[gradients][cross_entropy]") {
  using namespace slim;
  using namespace slim::testing;
  using namespace slim::testing::model_ops_grad;
  constexpr std::int32_t ignore = -100;
  auto logits = random_tensor<2>({4, 5}, 41, -3, 3);
  tensor<std::int32_t, 1> targets({4});
  const std::int32_t t[4] = {2, ignore, 0, 4};
  for (index_t i = 0; i < 4; ++i) targets(i) = t[i];
  const auto c = random_tensor<1>({4}, 42, 0.5, 2);  // per-row weights: the upstream dloss
  tensor<double, 1> losses({4}), lse({4});
  auto loss = [&] {
    CHECK(K::cross_entropy_forward(be, logits.view(), targets.view(), ignore, losses.view(), lse.view()) == 3);
    return weighted_sum(c, losses);
  };
  loss();
  tensor<double, 2> dlogits(logits.extents());
  K::cross_entropy_backward(be, logits.view(), targets.view(), lse.view(), ignore, c.view(), dlogits.view());
  check("cross-entropy dlogits", logits, dlogits, loss);
  for (index_t v = 0; v < 5; ++v) CHECK(dlogits(1, v) == 0.0);  // the ignored row
}

TEST_CASE("model_ops gradient: topk dx matches central differences", "[gradients][topk]") {
  using namespace slim;
  using namespace slim::testing;
  using namespace slim::testing::model_ops_grad;
  // Distinct values 0.1 apart in a shuffled order, so a step of 1e-6 never changes the selection.
  tensor<double, 2> x({2, 7});
  const int perm[2][7] = {{3, 6, 0, 5, 1, 4, 2}, {6, 2, 4, 0, 3, 1, 5}};
  for (index_t i = 0; i < 2; ++i)
    for (index_t j = 0; j < 7; ++j) x(i, j) = 0.1 * perm[i][j] - 0.2;
  const auto w = random_tensor<2>({2, 3}, 51);
  tensor<double, 2> values({2, 3});
  tensor<std::int32_t, 2> indices({2, 3});
  auto loss = [&] {
    K::topk_forward(be, x.view(), 3, values.view(), indices.view());
    return weighted_sum(w, values);
  };
  loss();
  CHECK(indices(0, 0) == 1);  // the largest of row 0 is column 1 (perm 6)
  tensor<double, 2> dx(x.extents());
  K::topk_backward(be, indices.view(), w.view(), dx.view());
  check("topk dx", x, dx, loss);
}
