// Text fusions (rec/fusion_text.hpp): each policy's backward against central differences (double, scalar
// backend, dropout on, users repeated over rows), whole-backbone gradients, simd against scalar, the padding
// row, shape errors, and a synthetic world whose signal lives in the side information only, where every
// text fusion beats id_only on validation NDCG@10 in both backbones.
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <tuple>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "slim/backend/scalar.hpp"
#include "slim/backend/simd.hpp"
#include "slim/rec/evaluate.hpp"
#include "slim/rec/fusion.hpp"
#include "slim/rec/gru4rec.hpp"
#include "slim/rec/sasrec.hpp"
#include "slim/rec/trainer.hpp"
#include "support/check.hpp"

namespace slim::testing::rec_fusion {

using sb = backend::scalar;
using simd_b = backend::simd<xsimd::sse2>;

static_assert(rec::FusionPolicy<rec::text_concat, sb, double>);
static_assert(rec::FusionPolicy<rec::slim_fusion, sb, double>);
static_assert(rec::FusionPolicy<rec::text_matching, sb, double>);
static_assert(rec::FusionPolicy<rec::slim_fusion, simd_b, float>);
static_assert(!rec::text_concat::identity && !rec::slim_fusion::identity && !rec::text_matching::identity);

template <class T>
double dot(matrix_view<const T> a, const tensor<double, 2>& w) {
  double s = 0;
  for (index_t i = 0; i < a.extent(0); ++i)
    for (index_t c = 0; c < a.extent(1); ++c) s += static_cast<double>(a(i, c)) * w(i, c);
  return s;
}

/// L = Σ w_e⊙e + ½Σ e² + Σ w_s⊙s + ½Σ s² over e = items_forward(id), s = users_forward(h, rows); checks
/// ∂L/∂id, ∂L/∂h and every parameter gradient against central differences. Backward must add to what the
/// gradients held before. Returns the module for further checks.
template <class Policy>
void check_module_gradients(const rec::side_information<double>& side, index_t dim, index_t num_items,
                            const std::vector<index_t>& rows, float dropout, std::uint64_t seed) {
  const sb be{};
  const nn::step_context ctx{true, seed, 3};
  typename Policy::template module<sb, double> m("fusion", dim, num_items, side, rec::text_fusion_config{dropout});
  m.reset_parameters(seed);
  // non-zero biases, so the bias path is exercised away from its initial value
  m.visit_parameters([&](nn::parameter<double>& p) {
    if (p.role == nn::parameter_role::bias) nn::init_uniform(p, -0.5, 0.5, seed + 1);
  });
  const index_t n = static_cast<index_t>(rows.size());
  tensor<double, 2> id({num_items + 1, dim}), h({n, dim}), we({num_items + 1, dim}), ws({n, dim});
  fill_uniform(id, seed + 2);
  fill_uniform(h, seed + 3);
  fill_uniform(we, seed + 4);
  fill_uniform(ws, seed + 5);
  auto loss = [&] {
    const auto e = m.items_forward(be, ctx, id.view());
    double l = dot(e, we);
    for (index_t i = 0; i < e.extent(0); ++i)
      for (index_t c = 0; c < dim; ++c) l += 0.5 * e(i, c) * e(i, c);
    const auto s = m.users_forward(be, ctx, h.view(), rows);
    l += dot(s, ws);
    for (index_t i = 0; i < n; ++i)
      for (index_t c = 0; c < dim; ++c) l += 0.5 * s(i, c) * s(i, c);
    return l;
  };
  // analytic: dL/de = w_e + e, dL/ds = w_s + s, into gradients that already hold values
  nn::zero_grad(m);
  tensor<double, 2> de({num_items + 1, dim}), ds({n, dim}), did({num_items + 1, dim}), dh({n, dim});
  const auto e = m.items_forward(be, ctx, id.view());
  for (index_t i = 0; i < num_items + 1; ++i)
    for (index_t c = 0; c < dim; ++c) de(i, c) = we(i, c) + e(i, c);
  for (index_t c = 0; c < dim; ++c) CHECK(e(0, c) == 0.0);  // padding: exactly zero
  const auto s = m.users_forward(be, ctx, h.view(), rows);
  for (index_t i = 0; i < n; ++i)
    for (index_t c = 0; c < dim; ++c) ds(i, c) = ws(i, c) + s(i, c);
  fill_uniform(did, seed + 6);
  fill_uniform(dh, seed + 7);
  const tensor<double, 2> did0 = did, dh0 = dh;
  m.items_backward(be, de.view(), did.view());
  m.users_backward(be, ds.view(), dh.view());
  std::vector<double> g_id, g_h;
  for (index_t i = 0; i < did.size(); ++i) g_id.push_back(did.data()[i] - did0.data()[i]);
  for (index_t i = 0; i < dh.size(); ++i) g_h.push_back(dh.data()[i] - dh0.data()[i]);
  std::vector<std::vector<double>> analytic;
  m.visit_parameters([&](nn::parameter<double>& p) { analytic.emplace_back(p.grad.begin(), p.grad.end()); });

  const std::string tag = std::string(Policy::name) + " ";
  check_gradient(tag + "id_table", g_id.data(), numeric_gradient(id.data(), id.size(), loss), 1e-7, 1e-6);
  check_gradient(tag + "states", g_h.data(), numeric_gradient(h.data(), h.size(), loss), 1e-7, 1e-6);
  std::size_t k = 0;
  m.visit_parameters([&](nn::parameter<double>& p) {
    check_gradient(tag + p.name, analytic[k++].data(), numeric_gradient(p.value.data(), p.size(), loss), 1e-7, 1e-6);
  });
  // the padding row gets nothing; text matching leaves the whole ID gradient alone
  for (index_t c = 0; c < dim; ++c) CHECK(g_id[static_cast<std::size_t>(c)] == 0.0);
  if constexpr (std::is_same_v<Policy, rec::text_matching>)
    for (const double g : g_id) CHECK(g == 0.0);
}

/// Every parameter gradient of a backbone's train_batch against central differences of its loss.
template <class Model>
void check_model_gradients(Model& model, const rec::sequence_split& split, std::span<const index_t> users) {
  const sb be{};
  const nn::step_context ctx{true, 99, 3};
  nn::zero_grad(model);
  model.train_batch(be, ctx, split, users, 2);
  std::vector<std::vector<double>> analytic;
  model.visit_parameters([&](nn::parameter<double>& p) { analytic.emplace_back(p.grad.begin(), p.grad.end()); });
  auto loss = [&] { return model.train_batch(be, ctx, split, users, 2); };
  std::size_t i = 0;
  model.visit_parameters([&](nn::parameter<double>& p) {
    check_gradient(std::string(Model::name) + " " + p.name, analytic[i++].data(),
                   numeric_gradient(p.value.data(), p.size(), loss), 1e-7, 1e-5);
  });
}

/// Random sequences over num_items items.
inline rec::sequence_split random_world(index_t users, index_t num_items, index_t min_len, index_t max_len,
                                        std::uint64_t seed) {
  rec::dataset d;
  d.num_items = num_items;
  philox_stream rng(seed);
  for (index_t u = 0; u < users; ++u) {
    const index_t len = min_len + static_cast<index_t>(rng.below(static_cast<std::uint32_t>(max_len - min_len + 1)));
    std::vector<rec::item_id> s;
    for (index_t j = 0; j < len; ++j)
      s.push_back(static_cast<rec::item_id>(1 + rng.below(static_cast<std::uint32_t>(num_items))));
    d.sequences.push_back(std::move(s));
  }
  return rec::leave_one_out(d);
}

/// A world whose signal lives in the side information: `clusters` clusters of `per_cluster` items each;
/// every user belongs to one cluster and interacts with `min_len`..`max_len` random items of it. Item text
/// = its cluster's centroid + noise, a user's rationale = the user's cluster centroid (in another space) +
/// noise. With ~2 interactions per item, ID embeddings see each item too rarely to learn its cluster.
struct cluster_world {
  rec::sequence_split split;
  tensor<float, 2> item_text, user_text;

  cluster_world(index_t users, index_t clusters, index_t per_cluster, index_t min_len, index_t max_len,
                std::uint64_t seed)
      : item_text({clusters * per_cluster + 1, 16}), user_text({users, 12}) {
    philox_stream rng(seed);
    tensor<float, 2> item_centre({clusters, 16}), user_centre({clusters, 12});
    for (auto& x : item_centre) x = static_cast<float>(rng.normal());
    for (auto& x : user_centre) x = static_cast<float>(rng.normal());
    rec::dataset d;
    d.num_items = clusters * per_cluster;
    for (index_t i = 1; i <= d.num_items; ++i)  // item i belongs to cluster (i-1) / per_cluster
      for (index_t c = 0; c < 16; ++c)
        item_text(i, c) = item_centre((i - 1) / per_cluster, c) + 0.3f * static_cast<float>(rng.normal());
    for (index_t c = 0; c < 16; ++c) item_text(0, c) = std::nanf("");  // padding: never read
    for (index_t u = 0; u < users; ++u) {
      const index_t k = static_cast<index_t>(rng.below(static_cast<std::uint32_t>(clusters)));
      for (index_t c = 0; c < 12; ++c) user_text(u, c) = user_centre(k, c) + 0.3f * static_cast<float>(rng.normal());
      const index_t len = min_len + static_cast<index_t>(rng.below(static_cast<std::uint32_t>(max_len - min_len + 1)));
      std::vector<rec::item_id> s;
      for (index_t j = 0; j < len; ++j)
        s.push_back(static_cast<rec::item_id>(
            k * per_cluster + 1 + static_cast<index_t>(rng.below(static_cast<std::uint32_t>(per_cluster)))));
      d.sequences.push_back(std::move(s));
    }
    split = rec::leave_one_out(d);
  }
  rec::side_information<float> side() const { return {item_text.view(), user_text.view()}; }
};

}  // namespace slim::testing::rec_fusion

using namespace slim;
using namespace slim::testing;
using namespace slim::testing::rec_fusion;

TEST_CASE("text fusions: every gradient matches central differences (users repeated over rows, dropout on and off)",
          "[rec][fusion][gradients]") {
  const index_t num_items = 7, dim = 5;
  tensor<double, 2> items({num_items + 1, 4}), users({4, 3});
  fill_uniform(items, 21);
  fill_uniform(users, 22);
  for (index_t c = 0; c < 4; ++c) items(0, c) = 1e3;  // padding row: must not reach anything
  const std::vector<index_t> rows = {2, 0, 2, 1, 2, 0, 3, 3};
  const rec::side_information<double> both{items.view(), users.view()}, items_only{items.view(), {}};
  for (const float p : {0.0f, 0.3f}) {
    INFO("dropout " << p);
    check_module_gradients<rec::text_concat>(both, dim, num_items, rows, p, 31);
    check_module_gradients<rec::text_concat>(items_only, dim, num_items, rows, p, 32);
    check_module_gradients<rec::slim_fusion>(both, dim, num_items, rows, p, 33);
    check_module_gradients<rec::text_matching>(both, dim, num_items, rows, p, 34);
    check_module_gradients<rec::text_matching>(items_only, dim, num_items, rows, p, 35);
  }
}

TEST_CASE("text fusions inside SASRec and GRU4Rec: every parameter gradient matches central differences",
          "[rec][fusion][gradients]") {
  const auto split = random_world(5, 9, 3, 9, 41);
  const std::vector<index_t> users = {0, 1, 2, 3, 4};
  tensor<double, 2> items({split.num_items + 1, 3}), user_text({split.num_users(), 2});
  fill_uniform(items, 42);
  fill_uniform(user_text, 43);
  const rec::side_information<double> side{items.view(), user_text.view()};
  const rec::sasrec_config sc{.dim = 4, .blocks = 1, .heads = 2, .max_len = 5};
  const rec::gru4rec_config gc{.embedding_size = 4, .hidden_size = 3, .max_len = 5, .gru_bias = true};
  {
    rec::sasrec<sb, rec::slim_fusion, double> m(sc, split.num_items, 3, side);
    m.fusion.configure({.dropout = 0.2f});
    check_model_gradients(m, split, users);
  }
  {
    rec::sasrec<sb, rec::text_matching, double> m(sc, split.num_items, 3, side);
    check_model_gradients(m, split, users);
  }
  {
    rec::gru4rec<sb, rec::text_concat, double> m(gc, split.num_items, 3, side);
    check_model_gradients(m, split, users);
  }
  {
    rec::gru4rec<sb, rec::slim_fusion, double> m(
        {.embedding_size = 4, .hidden_size = 3, .max_len = 5, .gru_bias = true, .loss = rec::rec_loss::bce},
        split.num_items, 3, side);
    check_model_gradients(m, split, users);
  }
}

TEST_CASE("text fusions: simd<sse2> forward and backward match the scalar reference", "[rec][fusion][simd]") {
  const index_t num_items = 37, dim = 12;
  tensor<float, 2> items({num_items + 1, 13}), users({9, 5}), id({num_items + 1, dim}), h({23, dim});
  fill_uniform(items, 51);
  fill_uniform(users, 52);
  fill_uniform(id, 53);
  fill_uniform(h, 54);
  std::vector<index_t> rows;
  for (index_t r = 0; r < 23; ++r) rows.push_back((r * 5) % 9);
  const rec::side_information<float> side{items.view(), users.view()};
  const nn::step_context ctx{true, 7, 2};
  auto run = [&](auto be, auto tag) {
    using B = decltype(be);
    (void)tag;
    typename rec::slim_fusion::template module<B, float> m("fusion", dim, num_items, side, {.dropout = 0.25f});
    m.reset_parameters(9);
    const auto e = m.items_forward(be, ctx, id.view());
    const auto s = m.users_forward(be, ctx, h.view(), rows);
    tensor<float, 2> out_e({num_items + 1, dim}), out_s({23, dim}), did({num_items + 1, dim}), dh({23, dim});
    for (index_t i = 0; i < out_e.size(); ++i) out_e.data()[i] = e.data_handle()[i];
    for (index_t i = 0; i < out_s.size(); ++i) out_s.data()[i] = s.data_handle()[i];
    nn::zero_grad(m);
    m.items_backward(be, out_e.view(), did.view());  // dL/de = e, dL/ds = s
    m.users_backward(be, out_s.view(), dh.view());
    std::vector<tensor<float, 1>> grads;
    m.visit_parameters([&](nn::parameter<float>& p) { grads.push_back(p.grad); });
    return std::make_tuple(out_e, out_s, did, dh, grads);
  };
  const auto [se, ss, sid, sh, sg] = run(sb{}, 0);
  const auto [ve, vs, vid, vh, vg] = run(simd_b{}, 0);
  SLIM_CHECK_CLOSE(ve, se, 1e-5, 1e-5);
  SLIM_CHECK_CLOSE(vs, ss, 1e-5, 1e-5);
  SLIM_CHECK_CLOSE(vid, sid, 1e-5, 1e-5);
  SLIM_CHECK_CLOSE(vh, sh, 1e-5, 1e-5);
  REQUIRE(vg.size() == 4);
  for (std::size_t k = 0; k < vg.size(); ++k) SLIM_CHECK_CLOSE(vg[k], sg[k], 1e-4, 1e-5);
}

TEST_CASE("text fusions: the padding item has an exactly zero representation and receives no gradient",
          "[rec][fusion][padding]") {
  const auto split = random_world(30, 20, 2, 12, 61);
  tensor<double, 2> items({21, 6}), users({30, 4});
  fill_uniform(items, 62);
  fill_uniform(users, 63);
  for (index_t c = 0; c < 6; ++c) items(0, c) = std::nan("");  // never read
  const rec::side_information<double> side{items.view(), users.view()};
  std::vector<index_t> all(30);
  for (index_t u = 0; u < 30; ++u) all[static_cast<std::size_t>(u)] = u;
  const sb be{};
  const nn::step_context ctx{true, 5, 1};
  auto check = [&](auto& model, auto& table_param) {
    nn::zero_grad(model);
    model.train_batch(be, ctx, split, all, 1);
    const auto t = model.item_table(be);
    double row1 = 0;
    for (index_t c = 0; c < model.dim(); ++c) {
      CHECK(t(0, c) == 0.0);
      CHECK(table_param.grad(c) == 0.0);
      row1 += std::abs(t(1, c));
    }
    CHECK(row1 > 0.0);
    bool finite = true;
    model.visit_parameters([&](nn::parameter<double>& p) {
      for (const double g : p.grad) finite = finite && std::isfinite(g);
    });
    CHECK(finite);
  };
  rec::sasrec<sb, rec::text_concat, double> a({.dim = 6, .blocks = 1, .max_len = 8, .dropout = 0.2f}, 20, 1, side);
  a.fusion.configure({.dropout = 0.5f});
  check(a, a.item_emb.weight);
  rec::gru4rec<sb, rec::slim_fusion, double> b({.embedding_size = 6, .hidden_size = 5, .max_len = 8}, 20, 1, side);
  check(b, b.item_embedding.weight);
  rec::gru4rec<sb, rec::text_matching, double> c({.embedding_size = 6, .hidden_size = 5, .max_len = 8}, 20, 1, side);
  check(c, c.item_embedding.weight);
}

TEST_CASE("text fusions: side information of the wrong shape and bad user rows throw slim::error",
          "[rec][fusion][errors]") {
  tensor<float, 2> items({11, 4}), short_items({10, 4}), users({5, 3}), no_cols({5, 0});
  fill_uniform(items, 71);
  fill_uniform(users, 72);
  using tc = rec::text_concat::module<sb, float>;
  using sf = rec::slim_fusion::module<sb, float>;
  using tm = rec::text_matching::module<sb, float>;
  const rec::side_information<float> good{items.view(), users.view()};
  CHECK_NOTHROW(tc("f", 8, 10, good));
  CHECK_NOTHROW(sf("f", 8, 10, good));
  CHECK_NOTHROW(tm("f", 8, 10, good));
  CHECK_NOTHROW(tm("f", 8, 10, {items.view(), {}}));
  CHECK_NOTHROW(tc("f", 8, 10, {items.view(), {}}));
  // item table: missing, one row short (no padding row), no columns
  CHECK_THROWS_AS((tc("f", 8, 10, {})), slim::error);
  CHECK_THROWS_AS((sf("f", 8, 10, {{}, users.view()})), slim::error);
  CHECK_THROWS_AS((tm("f", 8, 10, {{}, users.view()})), slim::error);
  CHECK_THROWS_AS((tc("f", 8, 10, {short_items.view(), {}})), slim::error);
  CHECK_THROWS_AS((sf("f", 8, 10, {short_items.view(), users.view()})), slim::error);
  CHECK_THROWS_AS((tm("f", 8, 10, {short_items.view(), {}})), slim::error);
  CHECK_THROWS_AS((tc("f", 8, 10, {matrix_view<const float>(no_cols.view()), {}})), slim::error);
  // user table: SLIM's fusion needs one; a user table without columns is refused
  CHECK_THROWS_AS((sf("f", 8, 10, {items.view(), {}})), slim::error);
  CHECK_THROWS_AS((sf("f", 8, 10, {items.view(), no_cols.view()})), slim::error);
  CHECK_THROWS_AS((tm("f", 8, 10, {items.view(), no_cols.view()})), slim::error);
  CHECK_THROWS_WITH((sf("f", 8, 10, {short_items.view(), users.view()})), Catch::Contains("side.items"));
  CHECK_THROWS_WITH((sf("f", 8, 10, {items.view(), {}})), Catch::Contains("side.users"));
  // through a backbone's constructor
  CHECK_THROWS_AS((rec::sasrec<sb, rec::slim_fusion>({.dim = 8}, 10, 1, {short_items.view(), users.view()})),
                  slim::error);
  CHECK_THROWS_AS((rec::gru4rec<sb, rec::text_concat>({.embedding_size = 8}, 11, 1, good)), slim::error);
  // at run time: a wrong ID table, a user outside side.users, a row count that does not match
  const sb be{};
  sf m("f", 8, 10, good);
  tensor<float, 2> id({11, 8}), wrong_id({11, 7}), h({3, 8});
  CHECK_THROWS_AS((m.items_forward(be, {}, wrong_id.view())), slim::error);
  CHECK_NOTHROW(m.items_forward(be, {}, id.view()));
  const std::vector<index_t> ok = {0, 4, 4}, outside = {0, 5, 1}, negative = {0, -1, 1}, two = {0, 1};
  CHECK_NOTHROW(m.users_forward(be, {}, h.view(), ok));
  CHECK_THROWS_AS((m.users_forward(be, {}, h.view(), outside)), slim::error);
  CHECK_THROWS_AS((m.users_forward(be, {}, h.view(), negative)), slim::error);
  CHECK_THROWS_AS((m.users_forward(be, {}, h.view(), two)), slim::error);
  // after a refused call the module still maps each row to its own user
  const auto s = m.users_forward(be, {}, h.view(), ok);
  for (index_t c = 0; c < 8; ++c) CHECK(s(1, c) == s(2, c));
}

TEST_CASE("text fusions: parameter names, initialisation, and the user side reading each row's own user",
          "[rec][fusion]") {
  tensor<float, 2> items({11, 4}), users({5, 3});
  fill_uniform(items, 81);
  fill_uniform(users, 82);
  rec::slim_fusion::module<sb, float> m("fusion", 8, 10, {items.view(), users.view()});
  m.reset_parameters(4);
  std::vector<std::string> names;
  m.visit_parameters([&](nn::parameter<float>& p) { names.push_back(p.name); });
  CHECK(names ==
        std::vector<std::string>{"fusion.g_l.weight", "fusion.g_l.bias", "fusion.g_f.weight", "fusion.g_f.bias"});
  // Glorot-uniform bound √(6 / (fan_in + fan_out)), zero biases
  const double bl = std::sqrt(6.0 / (4 + 8)), bf = std::sqrt(6.0 / (3 + 8));
  double max_l = 0, max_f = 0;
  for (const float w : m.g_l().weight.value) max_l = std::max(max_l, std::abs(static_cast<double>(w)));
  for (const float w : m.g_f().weight.value) max_f = std::max(max_f, std::abs(static_cast<double>(w)));
  CHECK(max_l <= bl);
  CHECK(max_l > 0.7 * bl);  // 32 draws: the largest is near the bound
  CHECK(max_f <= bf);
  CHECK(max_f > 0.7 * bf);
  for (const float b : m.g_l().bias.value) CHECK(b == 0.0f);
  for (const float b : m.g_f().bias.value) CHECK(b == 0.0f);
  // s_n − h_n depends on row_users[n] only
  const sb be{};
  tensor<float, 2> h({4, 8});
  fill_uniform(h, 83);
  const std::vector<index_t> rows = {3, 1, 3, 0};
  const auto s = m.users_forward(be, {}, h.view(), rows);
  for (index_t c = 0; c < 8; ++c) {
    CHECK(s(0, c) - h(0, c) == Approx(s(2, c) - h(2, c)).margin(1e-6));
    // and equals W_f·r_u (bias 0)
    double want = 0;
    for (index_t k = 0; k < 3; ++k) want += m.g_f().weight.value(c * 3 + k) * users(3, k);
    CHECK(s(0, c) - h(0, c) == Approx(want).margin(1e-5));
  }
  // text_matching without users is the identity on the user side and has g_l only
  rec::text_matching::module<sb, float> t("fusion", 8, 10, {items.view(), {}});
  CHECK_FALSE(t.has_user_side());
  CHECK_THROWS_AS((t.g_f()), slim::error);
  CHECK(nn::count_parameters(t) == 8 * 4 + 8);
  const auto same = t.users_forward(be, {}, h.view(), rows);
  CHECK(same.data_handle() == h.data());
}

TEST_CASE("side information that carries the signal: every text fusion beats id_only on validation NDCG@10",
          "[rec][fusion][learning]") {
  // 400 items in 10 clusters, 300 users with 5–8 items of their cluster: ~1,950 interactions, ~5 per item
  const cluster_world world(300, 10, 40, 5, 8, 91);
  const auto& split = world.split;
  const auto side = world.side();
  const simd_b be{};
  rec::train_config tc;
  tc.epochs = 6;
  tc.batch_size = 32;
  tc.adam.lr = 5e-3f;
  tc.eval_every = tc.epochs;  // one validation, after the last epoch
  tc.eval.full = false;
  auto valid_ndcg = [&](auto& model) { return rec::fit(be, model, split, tc).valid->sampled.mean("ndcg@10"); };
  const rec::sasrec_config sc{.dim = 16, .blocks = 1, .heads = 1, .max_len = 8, .dropout = 0.1f};
  const rec::gru4rec_config gc{.embedding_size = 16, .hidden_size = 16, .max_len = 8, .dropout = 0.1f};
  // The margin: the mean of 300 per-user NDCG values in [0, 1] has a standard error below 0.5/√300 ≈ 0.029,
  // so a difference of two such means has one below 0.041; 0.15 is more than 3.5 of those. Chance is
  // ≈ 0.045 (the target among 101 candidates); knowing the cluster alone puts the target among the ≈ 11
  // candidates of its cluster, ≈ 0.41.
  constexpr double margin = 0.15;
  SECTION("SASRec") {
    rec::sasrec<simd_b> ids(sc, split.num_items, 1);
    const double base = valid_ndcg(ids);
    rec::sasrec<simd_b, rec::text_concat> text(sc, split.num_items, 1, side);
    rec::sasrec<simd_b, rec::slim_fusion> slim(sc, split.num_items, 1, side);
    rec::sasrec<simd_b, rec::text_matching> match(sc, split.num_items, 1, side);
    const auto id_before = match.item_emb.weight.value;
    const double t = valid_ndcg(text), s = valid_ndcg(slim), m = valid_ndcg(match);
    INFO("SASRec validation NDCG@10: id_only " << base << ", text_concat " << t << ", slim_fusion " << s
                                               << ", text_matching " << m);
    CHECK(t > base + margin);
    CHECK(s > base + margin);
    CHECK(m > base + margin);
    // text matching never moved the ID table: its gradient stayed zero through every step
    CHECK(std::equal(id_before.begin(), id_before.end(), match.item_emb.weight.value.begin()));
    double g = 0;
    for (const float x : match.item_emb.weight.grad) g += std::abs(x);
    CHECK(g == 0.0);
  }
  SECTION("GRU4Rec") {
    rec::gru4rec<simd_b> ids(gc, split.num_items, 1);
    const double base = valid_ndcg(ids);
    rec::gru4rec<simd_b, rec::text_concat> text(gc, split.num_items, 1, side);
    rec::gru4rec<simd_b, rec::slim_fusion> slim(gc, split.num_items, 1, side);
    rec::gru4rec<simd_b, rec::text_matching> match(gc, split.num_items, 1, side);
    const auto id_before = match.item_embedding.weight.value;
    const double t = valid_ndcg(text), s = valid_ndcg(slim), m = valid_ndcg(match);
    INFO("GRU4Rec validation NDCG@10: id_only " << base << ", text_concat " << t << ", slim_fusion " << s
                                                << ", text_matching " << m);
    CHECK(t > base + margin);
    CHECK(s > base + margin);
    CHECK(m > base + margin);
    CHECK(std::equal(id_before.begin(), id_before.end(), match.item_embedding.weight.value.begin()));
    double g = 0;
    for (const float x : match.item_embedding.weight.grad) g += std::abs(x);
    CHECK(g == 0.0);
  }
}
