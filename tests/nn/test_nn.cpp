// nn and train: every module's backward against central differences in double on the scalar backend (a whole
// SASRec block and the GRU layer over time included), the losses and the optimiser against closed forms, and
// the simd backend's float forward/backward against the scalar oracle.
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "slim/backend/scalar.hpp"
#include "slim/backend/simd.hpp"
#include "slim/nn/attention.hpp"
#include "slim/nn/dropout.hpp"
#include "slim/nn/embedding.hpp"
#include "slim/nn/feed_forward.hpp"
#include "slim/nn/gru.hpp"
#include "slim/nn/init.hpp"
#include "slim/nn/layernorm.hpp"
#include "slim/nn/linear.hpp"
#include "slim/rec/sasrec.hpp"
#include "slim/train/adam.hpp"
#include "slim/train/clip.hpp"
#include "slim/train/losses.hpp"
#include "support/check.hpp"

namespace slim::testing::nn_tests {

using sb = backend::scalar;
using simd_b = backend::simd<xsimd::sse2>;
constexpr sb be{};

template <class T = double>
tensor<T, 2> random_matrix(index_t r, index_t c, std::uint64_t seed, double lo = -1, double hi = 1) {
  tensor<T, 2> t({r, c});
  fill_uniform(t, seed, lo, hi);
  return t;
}
template <class T>
double weighted(const tensor<T, 2>& w, matrix_view<const T> y) {
  double s = 0;
  for (index_t i = 0; i < y.extent(0); ++i)
    for (index_t j = 0; j < y.extent(1); ++j) s += static_cast<double>(w(i, j)) * static_cast<double>(y(i, j));
  return s;
}

/// Checks every parameter gradient of `module` (already filled by one backward) against central
/// differences of `loss`, and the input gradient `dx` against differences in `x`.
template <class Module>
void check_module(const std::string& what, Module& module, tensor<double, 2>* x, const tensor<double, 2>* dx,
                  const std::function<double()>& loss) {
  std::vector<std::pair<std::string, std::vector<double>>> analytic;
  module.visit_parameters([&](nn::parameter<double>& p) {
    analytic.emplace_back(p.name, std::vector<double>(p.grad.begin(), p.grad.end()));
  });
  std::size_t i = 0;
  module.visit_parameters([&](nn::parameter<double>& p) {
    const auto numeric = numeric_gradient(p.value.data(), p.size(), loss);
    check_gradient(what + " " + p.name, analytic[i++].second.data(), numeric);
  });
  if (x) {
    const auto numeric = numeric_gradient(x->data(), x->size(), loss);
    check_gradient(what + " input", dx->data(), numeric);
  }
}

template <class Module>
void randomize(Module& m, std::uint64_t seed, double scale = 0.5) {
  m.visit_parameters([&](auto& p) { nn::init_uniform(p, -scale, scale, seed); });
}

}  // namespace slim::testing::nn_tests

using namespace slim;
using namespace slim::testing;
using namespace slim::testing::nn_tests;

TEST_CASE("nn::linear backward matches central differences, with and without bias", "[nn][gradients]") {
  for (const bool bias : {true, false}) {
    nn::linear<sb, double> lin("lin", 5, 3, bias);
    randomize(lin, 1);
    auto x = random_matrix(4, 5, 2);
    const auto w = random_matrix(4, 3, 3);
    tensor<double, 2> y({4, 3}), dx({4, 5});
    auto loss = [&] {
      lin.forward(be, x.view(), y.view());
      return weighted(w, matrix_view<const double>(y.view()));
    };
    loss();
    nn::zero_grad(lin);
    lin.backward(be, w.view(), dx.view());
    check_module(bias ? "linear+bias" : "linear", lin, &x, &dx, loss);
    // backward accumulates: a second call doubles every gradient
    const std::vector<double> once(lin.weight.grad.begin(), lin.weight.grad.end());
    lin.backward(be, w.view(), dx.view());
    for (index_t i = 0; i < lin.weight.size(); ++i) CHECK(lin.weight.grad(i) == 2 * once[static_cast<std::size_t>(i)]);
  }
}

TEST_CASE("nn::embedding backward adds rows and leaves the padding row alone", "[nn][gradients]") {
  nn::embedding<sb, double> emb("emb", 6, 3, 0);
  randomize(emb, 4);
  std::vector<std::int32_t> ids = {2, 0, 5, 2, 1};
  const vector_view<const std::int32_t> idv(ids.data(), {5});
  const auto w = random_matrix(5, 3, 5);
  tensor<double, 2> y({5, 3});
  auto loss = [&] {
    emb.forward(be, idv, y.view());
    return weighted(w, matrix_view<const double>(y.view()));
  };
  loss();
  nn::zero_grad(emb);
  emb.backward(be, w.view());
  for (index_t c = 0; c < 3; ++c) {
    CHECK(emb.weight.grad(0 * 3 + c) == 0.0);                // padding row: no gradient
    CHECK(emb.weight.grad(2 * 3 + c) == w(0, c) + w(3, c));  // row 2 read twice
    CHECK(emb.weight.grad(4 * 3 + c) == 0.0);                // never read
  }
  std::vector<std::int32_t> bad = {6};
  CHECK_THROWS_AS(emb.forward(be, vector_view<const std::int32_t>(bad.data(), {1}), y.view()), slim::error);
}

TEST_CASE("nn::layernorm backward matches central differences", "[nn][gradients]") {
  nn::layernorm<sb, double> ln("ln", 6, 1e-5);
  randomize(ln, 6);
  auto x = random_matrix(4, 6, 7, -2, 2);
  const auto w = random_matrix(4, 6, 8);
  tensor<double, 2> y({4, 6}), dx({4, 6});
  auto loss = [&] {
    ln.forward(be, x.view(), y.view());
    return weighted(w, matrix_view<const double>(y.view()));
  };
  loss();
  nn::zero_grad(ln);
  ln.backward(be, w.view(), dx.view());
  check_module("layernorm", ln, &x, &dx, loss);
}

TEST_CASE("nn::dropout keeps its mask between forward and backward and depends on (seed, step, layer)",
          "[nn][gradients]") {
  nn::dropout<sb, double> drop(0.4f, 3);
  auto x = random_matrix(8, 16, 9);
  tensor<double, 2> y({8, 16}), y2({8, 16}), dx({8, 16});
  const nn::step_context ctx{true, 11, 5};
  drop.forward(be, ctx, x.view(), y.view());
  index_t dropped = 0;
  for (index_t i = 0; i < y.size(); ++i) {
    const double v = y.data()[i];
    if (v == 0)
      ++dropped;
    else
      CHECK(v == Approx(x.data()[i] / (1.0 - static_cast<double>(0.4f))).epsilon(1e-12));
  }
  CHECK(dropped > 20);
  CHECK(dropped < 90);  // 128 elements at p = 0.4: ~51 expected
  const auto w = random_matrix(8, 16, 10);
  drop.backward(be, w.view(), dx.view());
  const double keep_scale = 1.0 / (1.0 - static_cast<double>(0.4f));
  for (index_t i = 0; i < y.size(); ++i)
    CHECK(dx.data()[i] == Approx(y.data()[i] == 0 ? 0.0 : w.data()[i] * keep_scale).epsilon(1e-12));
  // another step or another layer draws another mask; evaluation is the identity
  drop.forward(be, nn::step_context{true, 11, 6}, x.view(), y2.view());
  bool differs = false;
  for (index_t i = 0; i < y.size(); ++i) differs |= (y.data()[i] == 0) != (y2.data()[i] == 0);
  CHECK(differs);
  drop.forward(be, nn::step_context{false, 11, 5}, x.view(), y2.view());
  for (index_t i = 0; i < y.size(); ++i) CHECK(y2.data()[i] == x.data()[i]);
}

TEST_CASE("nn::feed_forward (ReLU, dropout) backward matches central differences", "[nn][gradients]") {
  nn::feed_forward<sb, double> ff("ff", 4, 6, 0.3f, 1);
  randomize(ff, 12);
  auto x = random_matrix(5, 4, 13);
  const auto w = random_matrix(5, 4, 14);
  tensor<double, 2> y({5, 4}), dx({5, 4});
  const nn::step_context ctx{true, 3, 1};
  auto loss = [&] {
    ff.forward(be, ctx, x.view(), y.view());
    return weighted(w, matrix_view<const double>(y.view()));
  };
  loss();
  nn::zero_grad(ff);
  ff.backward(be, w.view(), dx.view());
  check_module("feed_forward", ff, &x, &dx, loss);
}

TEST_CASE("nn::multihead_attention over packed sequences matches central differences", "[nn][gradients]") {
  const float p = GENERATE(0.0f, 0.3f);  // fused kernel; materialised probabilities with dropout
  INFO("attention dropout " << p);
  const nn::step_context ctx{true, 21, 4};
  nn::multihead_attention<sb, double> mha("mha", 6, 2, true, p, 9);
  randomize(mha, 15);
  std::vector<index_t> offsets = {0, 3, 4, 4, 8, 78};  // lengths 3, 1, 0, 4, 70 (three query blocks of 32)
  const nn::packed_sequences seqs{offsets};
  auto xq = random_matrix(78, 6, 16), xkv = random_matrix(78, 6, 17);
  const auto w = random_matrix(78, 6, 18);
  tensor<double, 2> y({78, 6}), dxq({78, 6}), dxkv({78, 6});
  auto loss = [&] {
    mha.forward(be, ctx, xq.view(), xkv.view(), seqs, y.view());
    return weighted(w, matrix_view<const double>(y.view()));
  };
  loss();
  nn::zero_grad(mha);
  mha.backward(be, w.view(), dxq.view(), dxkv.view());
  check_module("attention", mha, &xq, &dxq, loss);
  check_gradient("attention x_kv", dxkv.data(), numeric_gradient(xkv.data(), xkv.size(), loss));
  // causal and per sequence: the first row of each sequence attends only to itself, so changing another
  // sequence leaves it unchanged
  tensor<double, 2> y0 = y;
  xkv(5, 0) += 1.0;  // sequence 3
  loss();
  for (index_t c = 0; c < 6; ++c) {
    CHECK(y(0, c) == y0(0, c));
    CHECK(y(3, c) == y0(3, c));
  }
  CHECK(y(7, 0) != y0(7, 0));
}

TEST_CASE("nn::multihead_attention: the materialised, blocked path equals the fused kernel when nothing is dropped",
          "[nn]") {
  // p = 1e-7 takes the materialised path (probabilities stored per causal query block) but keeps every
  // weight here (its kept weights are scaled by 1/(1 − 1e-7)), so it must match the fused kernel (p = 0).
  nn::multihead_attention<sb, double> fused("mha", 8, 2, true, 0.0f, 9), blocked("mha", 8, 2, true, 1e-7f, 9);
  randomize(fused, 40);
  randomize(blocked, 40);
  std::vector<index_t> offsets = {0, 33, 34, 100, 164};  // lengths 33, 1, 66, 64
  const nn::packed_sequences seqs{offsets};
  const auto xq = random_matrix(164, 8, 41), xkv = random_matrix(164, 8, 42);
  tensor<double, 2> y1({164, 8}), y2({164, 8});
  const nn::step_context ctx{true, 1, 1};
  fused.forward(be, ctx, xq.view(), xkv.view(), seqs, y1.view());
  blocked.forward(be, ctx, xq.view(), xkv.view(), seqs, y2.view());
  SLIM_CHECK_CLOSE(y2, y1, 1e-6, 1e-6);  // the 1/(1 − 1e-7) scale moves outputs by ~1e-7
}

TEST_CASE("nn::gru over packed time steps matches central differences", "[nn][gradients]") {
  for (const bool bias : {true, false}) {
    nn::gru<sb, double> g("gru", 3, 4, bias);
    randomize(g, 19);
    std::vector<index_t> sizes = {3, 3, 2, 1};  // sequences of lengths 4, 3, 2
    const nn::packed_steps steps{sizes};
    auto x = random_matrix(9, 3, 20);
    const auto w = random_matrix(9, 4, 21);
    tensor<double, 2> h({9, 4}), dx({9, 3});
    auto loss = [&] {
      g.forward(be, x.view(), steps, h.view());
      return weighted(w, matrix_view<const double>(h.view()));
    };
    loss();
    nn::zero_grad(g);
    g.backward(be, w.view(), dx.view());
    check_module(bias ? "gru+bias" : "gru", g, &x, &dx, loss);
  }
}

TEST_CASE("nn::gru equals the GRU recurrence written out for one sequence", "[nn]") {
  nn::gru<sb, double> g("gru", 2, 3, true);
  randomize(g, 22);
  std::vector<index_t> sizes = {1, 1, 1};
  auto x = random_matrix(3, 2, 23);
  tensor<double, 2> h({3, 3});
  g.forward(be, x.view(), nn::packed_steps{sizes}, h.view());
  std::vector<double> state(3, 0.0);
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  for (index_t t = 0; t < 3; ++t) {
    std::vector<double> gi(9), gh(9), next(3);
    for (index_t r = 0; r < 9; ++r) {
      gi[r] = g.bias_ih.value(r);
      gh[r] = g.bias_hh.value(r);
      for (index_t c = 0; c < 2; ++c) gi[r] += g.weight_ih.value(r * 2 + c) * x(t, c);
      for (index_t c = 0; c < 3; ++c) gh[r] += g.weight_hh.value(r * 3 + c) * state[c];
    }
    for (index_t c = 0; c < 3; ++c) {
      const double r = sig(gi[c] + gh[c]), z = sig(gi[3 + c] + gh[3 + c]);
      const double n = std::tanh(gi[6 + c] + r * gh[6 + c]);
      next[c] = (1 - z) * n + z * state[c];
    }
    state = next;
    for (index_t c = 0; c < 3; ++c) CHECK(h(t, c) == Approx(state[c]).epsilon(1e-12));
  }
}

TEST_CASE("a whole SASRec block (LayerNorms, attention, feed-forward, residuals) matches central differences",
          "[nn][gradients]") {
  rec::sasrec_block<sb, double> block(0, 4, 2, 0.25f, 1e-8, 0.2f);
  randomize(block, 24);
  std::vector<index_t> offsets = {0, 4, 6};
  const nn::packed_sequences seqs{offsets};
  auto x = random_matrix(6, 4, 25);
  const auto w = random_matrix(6, 4, 26);
  tensor<double, 2> y({6, 4}), dx({6, 4});
  const nn::step_context ctx{true, 7, 2};
  auto loss = [&] {
    block.forward(be, ctx, x.view(), seqs, y.view());
    return weighted(w, matrix_view<const double>(y.view()));
  };
  loss();
  nn::zero_grad(block);
  block.backward(be, w.view(), dx.view());
  check_module("sasrec block", block, &x, &dx, loss);
}

TEST_CASE("sasrec_block::apply_last equals the full forward's last row of each sequence (evaluation)", "[nn]") {
  rec::sasrec_block<sb, double> block(1, 6, 3, 0.3f, 1e-8);
  randomize(block, 36);
  std::vector<index_t> offsets = {0, 5, 6, 13};
  const nn::packed_sequences seqs{offsets};
  const auto x = random_matrix(13, 6, 37);
  tensor<double, 2> y({13, 6}), last({3, 6});
  block.forward(be, nn::step_context{}, x.view(), seqs, y.view());
  block.apply_last(be, x.view(), seqs, last.view());
  for (index_t s = 0; s < 3; ++s)
    for (index_t c = 0; c < 6; ++c) CHECK(last(s, c) == Approx(y(offsets[s + 1] - 1, c)).epsilon(1e-12));
}

TEST_CASE("bce_with_logits: value and gradient match the closed form, stable at large logits", "[train][losses]") {
  std::vector<double> x = {-3.0, 0.5, 40.0, -800.0, 800.0}, y = {1, 0, 1, 0, 1}, g(5, 0.0);
  const double loss = train::bce_with_logits<double>(x, y, {}, g, 0.5);
  double want = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double p = 1 / (1 + std::exp(-x[i]));
    if (std::abs(x[i]) < 100) want += -std::log(y[i] == 1 ? p : 1 - p);
    CHECK(g[i] == Approx(0.5 * (p - y[i])).margin(1e-15));
  }
  CHECK(std::isfinite(loss));
  CHECK(loss == Approx(want).epsilon(1e-12));  // the |x| = 800 terms contribute exactly 0
  std::vector<double> one = {-800.0}, label = {1.0};
  CHECK(train::bce_with_logits<double>(one, label, {}, {}, 1.0) == Approx(800.0));
}

TEST_CASE("nn::buffer zeroes what a growth hands out, keeps its storage within the headroom, rejects huge shapes",
          "[nn][buffer]") {
  nn::buffer<float> b;
  auto v = b.resize(40, 10);
  CHECK(v.extent(0) == 40);
  CHECK(v.extent(1) == 10);
  bool zero = true;
  for (index_t i = 0; i < 40; ++i)
    for (index_t j = 0; j < 10; ++j) zero = zero && v(i, j) == 0.0f;
  CHECK(zero);
  for (index_t i = 0; i < 40; ++i)
    for (index_t j = 0; j < 10; ++j) v(i, j) = 1.0f;
  const float* storage = b.data();
  b.resize(10, 10);  // smaller: same storage
  CHECK(b.data() == storage);
  CHECK(b.rows() == 10);
  b.resize(50, 10);  // 500 elements fit the quarter of headroom over 400
  CHECK(b.data() == storage);
  b.zeros(50, 10);
  CHECK(b.view()(49, 9) == 0.0f);
  b.resize(51, 10);  // 510 do not: new storage, the part in use zeroed
  const auto w = b.view();
  zero = true;
  for (index_t i = 0; i < 51; ++i)
    for (index_t j = 0; j < 10; ++j) zero = zero && w(i, j) == 0.0f;
  CHECK(zero);
  // the headroom would overflow the element count: an error, not a wrapped size
  CHECK_THROWS_WITH(b.resize(std::numeric_limits<index_t>::max() - 1, 1), Catch::Contains("too large"));
  CHECK_THROWS_WITH(b.resize(std::numeric_limits<index_t>::max() / 2, 1), Catch::Contains("overflows"));  // bytes
}

TEST_CASE("table softmax cross-entropy matches central differences across chunks", "[train][losses]") {
  auto h = random_matrix(70, 3, 27), table = random_matrix(5, 3, 28);
  std::vector<std::int32_t> targets(70);
  for (std::size_t i = 0; i < targets.size(); ++i) targets[i] = static_cast<std::int32_t>((i * 7) % 5);
  targets[4] = -1;  // ignored
  const vector_view<const std::int32_t> tv(targets.data(), {70});
  tensor<double, 2> dh({70, 3}), dt({5, 3});
  nn::buffer<double> s1, s2;
  auto loss = [&] {
    return train::table_softmax_cross_entropy<sb, double>(be, h.view(), table.view(), tv, -1, {}, {}, 0.1, s1, s2);
  };
  const double l = train::table_softmax_cross_entropy<sb, double>(be, h.view(), table.view(), tv, -1, dh.view(),
                                                                  dt.view(), 0.1, s1, s2);
  // the sum of per-row losses, written out
  double want = 0;
  for (index_t n = 0; n < 70; ++n) {
    if (targets[n] < 0) continue;
    double z = 0, lt = 0;
    for (index_t v = 0; v < 5; ++v) {
      double s = 0;
      for (index_t c = 0; c < 3; ++c) s += h(n, c) * table(v, c);
      z += std::exp(s);
      if (v == targets[n]) lt = s;
    }
    want += std::log(z) - lt;
  }
  CHECK(l == Approx(want).epsilon(1e-12));
  auto scaled = [&] { return 0.1 * loss(); };
  check_gradient("ce dh", dh.data(), numeric_gradient(h.data(), h.size(), scaled));
  check_gradient("ce dtable", dt.data(), numeric_gradient(table.data(), table.size(), scaled));
  for (index_t c = 0; c < 3; ++c) CHECK(dh(4, c) == 0.0);  // the ignored row
}

TEST_CASE("train::adam: the first step moves each weight by lr against its gradient's sign; groups apply",
          "[train][adam]") {
  nn::linear<sb, double> lin("lin", 3, 2, true);
  randomize(lin, 29);
  const std::vector<double> w0(lin.weight.value.begin(), lin.weight.value.end());
  const std::vector<double> b0(lin.bias.value.begin(), lin.bias.value.end());
  for (index_t i = 0; i < 6; ++i) lin.weight.grad(i) = (i % 2 ? 1.0 : -1.0) * (0.1 + i);
  for (index_t i = 0; i < 2; ++i) lin.bias.grad(i) = 0.3;
  train::adam<sb, double> opt(backend::adam_config{.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 0.0f});
  opt.add_group([](const nn::parameter<double>& p) { return p.role == nn::parameter_role::bias; },
                backend::adam_config{.lr = 0.5f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 0.0f});
  opt.attach(lin);
  opt.step(be);
  // with m̂ = g and v̂ = g², the first update is lr·g/|g|
  for (index_t i = 0; i < 6; ++i)
    CHECK(lin.weight.value(i) == Approx(w0[i] - 0.01f * (i % 2 ? 1.0 : -1.0)).epsilon(1e-6));
  for (index_t i = 0; i < 2; ++i) CHECK(lin.bias.value(i) == Approx(b0[i] - 0.5f).epsilon(1e-6));
  CHECK(opt.steps() == 1);
}

TEST_CASE("clip_gradient_norm scales the global gradient norm down to the limit only when above it", "[train]") {
  nn::linear<sb, double> lin("lin", 2, 2, true);
  for (auto& g : lin.weight.grad) g = 1.0;
  for (auto& g : lin.bias.grad) g = 2.0;  // norm √(4 + 8) = √12
  CHECK(train::clip_gradient_norm(lin, 10.0) == Approx(std::sqrt(12.0)));
  CHECK(lin.bias.grad(0) == 2.0);
  CHECK(train::clip_gradient_norm(lin, 1.0) == Approx(std::sqrt(12.0)));
  CHECK(train::gradient_norm(lin) == Approx(1.0).epsilon(1e-5));
}

namespace slim::testing::nn_tests {
/// Copies every parameter value of a double module into a float one (same visiting order).
template <class A, class B>
void copy_parameters(A& from, B& to) {
  std::vector<std::vector<double>> v;
  from.visit_parameters([&](nn::parameter<double>& p) { v.emplace_back(p.value.begin(), p.value.end()); });
  std::size_t i = 0;
  to.visit_parameters([&](nn::parameter<float>& p) {
    for (index_t j = 0; j < p.size(); ++j) p.value(j) = static_cast<float>(v[i][static_cast<std::size_t>(j)]);
    ++i;
  });
}
template <class A, class B>
void compare_gradients(const std::string& what, A& ref, B& got, double atol, double rtol) {
  std::vector<tensor<double, 1>> g;
  ref.visit_parameters([&](nn::parameter<double>& p) { g.push_back(p.grad); });
  std::size_t i = 0;
  got.visit_parameters([&](nn::parameter<float>& p) {
    INFO(what << " gradient of " << p.name);
    SLIM_CHECK_CLOSE(p.grad, g[i], atol, rtol);
    ++i;
  });
}
}  // namespace slim::testing::nn_tests

TEST_CASE("simd<sse2> float forward and backward of a SASRec block and the GRU match the scalar oracle", "[nn][simd]") {
  thread_pool pool(2);
  simd_b sbe{};
  sbe.pool = &pool;
  {
    rec::sasrec_block<sb, double> ref(0, 8, 2, 0.2f, 1e-8, 0.2f);
    rec::sasrec_block<simd_b, float> got(0, 8, 2, 0.2f, 1e-8, 0.2f);
    randomize(ref, 30);
    copy_parameters(ref, got);
    std::vector<index_t> offsets = {0, 37, 38, 90, 200};
    const nn::packed_sequences seqs{offsets};
    const auto x = random_matrix(200, 8, 31);
    const auto w = random_matrix(200, 8, 32);
    const auto xf = convert<float>(x);
    const auto wf = convert<float>(w);
    tensor<double, 2> y({200, 8}), dx({200, 8});
    tensor<float, 2> yf({200, 8}), dxf({200, 8});
    const nn::step_context ctx{true, 5, 9};
    ref.forward(be, ctx, x.view(), seqs, y.view());
    got.forward(sbe, ctx, xf.view(), seqs, yf.view());
    SLIM_CHECK_CLOSE(yf, y, 2e-5, 2e-5);
    nn::zero_grad(ref);
    nn::zero_grad(got);
    ref.backward(be, w.view(), dx.view());
    got.backward(sbe, wf.view(), dxf.view());
    SLIM_CHECK_CLOSE(dxf, dx, 1e-4, 1e-4);
    compare_gradients("sasrec block", ref, got, 1e-3, 1e-4);
  }
  {
    nn::gru<sb, double> ref("gru", 5, 7, true);
    nn::gru<simd_b, float> got("gru", 5, 7, true);
    randomize(ref, 33);
    copy_parameters(ref, got);
    std::vector<index_t> sizes = {4, 4, 3, 3, 3, 1};
    const nn::packed_steps steps{sizes};
    const auto x = random_matrix(18, 5, 34);
    const auto w = random_matrix(18, 7, 35);
    const auto xf = convert<float>(x);
    const auto wf = convert<float>(w);
    tensor<double, 2> h({18, 7}), dx({18, 5});
    tensor<float, 2> hf({18, 7}), dxf({18, 5});
    ref.forward(be, x.view(), steps, h.view());
    got.forward(sbe, xf.view(), steps, hf.view());
    SLIM_CHECK_CLOSE(hf, h, 1e-5, 1e-5);
    nn::zero_grad(ref);
    nn::zero_grad(got);
    ref.backward(be, w.view(), dx.view());
    got.backward(sbe, wf.view(), dxf.view());
    SLIM_CHECK_CLOSE(dxf, dx, 1e-5, 1e-4);
    compare_gradients("gru", ref, got, 1e-4, 1e-4);
  }
}
