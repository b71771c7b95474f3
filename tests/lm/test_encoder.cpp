// nn::encoder (BERT family) on tiny random configs built in code: the scalar backend in double against a
// plain-loop reference written here from BertModel's formulas (both GELU forms, mean and CLS pooling by
// hand), simd against scalar, embeddings bit-identical whatever the batch, padding and thread count, HF
// weight names with and without "bert.", and the errors for bad configs and bad inputs.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "slim/backend/scalar.hpp"
#include "slim/backend/simd.hpp"
#include "slim/io/bert_config.hpp"
#include "slim/nn/encoder.hpp"
#include "slim/nn/sentence_encoder.hpp"
#include "support/check.hpp"

namespace slim::testing::encoder_tests {

using sb = backend::scalar;
using simd_b = backend::simd<xsimd::sse2>;
using ids_t = tensor<std::int32_t, 2>;

nn::encoder_config tiny(index_t layers = 1, io::bert_activation act = io::bert_activation::gelu_erf) {
  return {.vocab_size = 37,
          .hidden_size = 12,
          .num_hidden_layers = layers,
          .num_attention_heads = 3,
          .intermediate_size = 20,
          .max_position_embeddings = 16,
          .type_vocab_size = 2,
          .layer_norm_eps = 1e-5,
          .hidden_act = act};
}

/// Every parameter uniform in [−0.5, 0.5) except norm weights in [0.5, 1.5), from a seed per parameter.
template <class Model>
void randomize(Model& m, std::uint64_t seed) {
  std::uint64_t k = 0;
  m.visit_parameters([&](auto& p) {
    const bool norm_weight = p.role == nn::parameter_role::norm && p.name.ends_with(".weight");
    philox_stream rng(seed * 1000 + k++);
    for (auto& x : p.value)
      x = static_cast<std::remove_reference_t<decltype(x)>>((norm_weight ? 0.5 : -0.5) +
                                                            static_cast<double>(rng.uniform()));
  });
}

/// Copies every parameter value (any element types) from `src` to `dst`, matched by visiting order.
template <class A, class B>
void copy_parameters(A& src, B& dst) {
  std::vector<std::vector<double>> values;
  src.visit_parameters([&](auto& p) { values.emplace_back(p.value.begin(), p.value.end()); });
  std::size_t i = 0;
  dst.visit_parameters([&](auto& p) {
    REQUIRE(values[i].size() == static_cast<std::size_t>(p.size()));
    for (index_t j = 0; j < p.size(); ++j)
      p.value.data()[j] = static_cast<std::remove_reference_t<decltype(p.value.data()[j])>>(values[i][j]);
    ++i;
  });
}

// ---- a plain-loop BertModel, from the formulas, for one unpadded sequence --------------------------------

using vec = std::vector<double>;
using mat = std::vector<vec>;  // rows

struct reference_weights {
  std::map<std::string, vec> t;  // by HF name, row-major
  const vec& operator[](const std::string& n) const { return t.at(n); }
};

mat ref_linear(const mat& x, const vec& w, const vec& b, index_t out) {
  const std::size_t in = x[0].size();
  mat y(x.size(), vec(static_cast<std::size_t>(out)));
  for (std::size_t i = 0; i < x.size(); ++i)
    for (index_t o = 0; o < out; ++o) {
      double s = b[static_cast<std::size_t>(o)];
      for (std::size_t c = 0; c < in; ++c) s += x[i][c] * w[static_cast<std::size_t>(o) * in + c];
      y[i][static_cast<std::size_t>(o)] = s;
    }
  return y;
}
mat ref_layernorm(const mat& x, const vec& w, const vec& b, double eps) {
  mat y = x;
  for (std::size_t i = 0; i < x.size(); ++i) {
    double mu = 0, var = 0;
    for (double v : x[i]) mu += v;
    mu /= static_cast<double>(x[i].size());
    for (double v : x[i]) var += (v - mu) * (v - mu);
    var /= static_cast<double>(x[i].size());
    for (std::size_t c = 0; c < x[i].size(); ++c) y[i][c] = (x[i][c] - mu) / std::sqrt(var + eps) * w[c] + b[c];
  }
  return y;
}

/// BertModel's last hidden state for one sequence (no padding), straight from the formulas.
mat reference_forward(const nn::encoder_config& c, const reference_weights& w, const std::vector<int>& ids,
                      const std::vector<int>& types) {
  const auto h = static_cast<std::size_t>(c.hidden_size);
  const std::size_t n = ids.size(), nh = static_cast<std::size_t>(c.num_attention_heads), dh = h / nh;
  mat x(n, vec(h));
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t j = 0; j < h; ++j)
      x[t][j] = w["embeddings.word_embeddings.weight"][static_cast<std::size_t>(ids[t]) * h + j] +
                w["embeddings.token_type_embeddings.weight"][static_cast<std::size_t>(types[t]) * h + j] +
                w["embeddings.position_embeddings.weight"][t * h + j];
  x = ref_layernorm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], c.layer_norm_eps);
  for (index_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    const auto lin = [&](const mat& in, const std::string& name, index_t out) {
      return ref_linear(in, w[p + name + ".weight"], w[p + name + ".bias"], out);
    };
    const mat q = lin(x, "attention.self.query", c.hidden_size), k = lin(x, "attention.self.key", c.hidden_size),
              v = lin(x, "attention.self.value", c.hidden_size);
    mat ctx(n, vec(h, 0.0));
    for (std::size_t hd = 0; hd < nh; ++hd)
      for (std::size_t i = 0; i < n; ++i) {
        vec s(n);
        double mx = -1e300, sum = 0;
        for (std::size_t j = 0; j < n; ++j) {
          double d = 0;
          for (std::size_t e = 0; e < dh; ++e) d += q[i][hd * dh + e] * k[j][hd * dh + e];
          s[j] = d / std::sqrt(static_cast<double>(dh));
          mx = std::max(mx, s[j]);
        }
        for (std::size_t j = 0; j < n; ++j) sum += (s[j] = std::exp(s[j] - mx));
        for (std::size_t j = 0; j < n; ++j)
          for (std::size_t e = 0; e < dh; ++e) ctx[i][hd * dh + e] += s[j] / sum * v[j][hd * dh + e];
      }
    mat a = lin(ctx, "attention.output.dense", c.hidden_size);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < h; ++j) a[i][j] += x[i][j];
    a = ref_layernorm(a, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"],
                      c.layer_norm_eps);
    mat mid = lin(a, "intermediate.dense", c.intermediate_size);
    for (auto& row : mid)
      for (double& u : row)
        u = c.hidden_act == io::bert_activation::gelu_erf
                ? 0.5 * u * (1.0 + std::erf(u / std::sqrt(2.0)))
                : 0.5 * u * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (u + 0.044715 * u * u * u)));
    mat y = lin(mid, "output.dense", c.hidden_size);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < h; ++j) y[i][j] += a[i][j];
    x = ref_layernorm(y, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], c.layer_norm_eps);
  }
  return x;
}

template <class Model>
reference_weights weights_of(Model& m) {
  reference_weights w;
  m.visit_parameters([&](auto& p) { w.t[p.name] = vec(p.value.begin(), p.value.end()); });
  return w;
}

/// A right-padded batch: row r holds seqs[r] then `pad_id` up to width s; mask 1 on the real tokens.
void make_batch(const std::vector<std::vector<int>>& seqs, index_t s, ids_t& ids, ids_t& mask, int pad_id = 0) {
  const auto b = static_cast<index_t>(seqs.size());
  ids = ids_t({b, s});
  mask = ids_t({b, s});
  for (index_t r = 0; r < b; ++r)
    for (index_t t = 0; t < s; ++t) {
      const bool real = t < static_cast<index_t>(seqs[static_cast<std::size_t>(r)].size());
      ids(r, t) = real ? seqs[static_cast<std::size_t>(r)][static_cast<std::size_t>(t)] : pad_id;
      mask(r, t) = real ? 1 : 0;
    }
}

std::vector<int> random_ids(std::size_t n, int vocab, std::uint64_t seed) {
  philox_stream rng(seed);
  std::vector<int> v(n);
  for (auto& x : v) x = static_cast<int>(rng.uniform() * static_cast<float>(vocab)) % vocab;
  return v;
}

// ---- the cases -------------------------------------------------------------------------------------------

TEST_CASE("encoder: scalar double matches a plain-loop BertModel, both GELU forms, and pooling by hand", "[encoder]") {
  for (const auto act : {io::bert_activation::gelu_erf, io::bert_activation::gelu_tanh}) {
    const auto cfg = tiny(2, act);
    nn::encoder<sb, double> enc(cfg);
    randomize(enc, 7);
    const auto w = weights_of(enc);
    const std::vector<std::vector<int>> seqs = {{2, 5, 9, 11, 30}, {36, 1, 0}, {4}};
    const std::vector<std::vector<int>> types = {{0, 0, 1, 1, 1}, {0, 1, 1}, {1}};
    ids_t ids, mask, tt;
    make_batch(seqs, 7, ids, mask, 3);
    make_batch(types, 7, tt, mask);
    tensor<double, 3> hidden({3, 7, cfg.hidden_size});
    enc.hidden_states(sb{}, ids.view(), mask.view(), tt.view(), hidden.view());
    tensor<double, 2> mean({3, cfg.hidden_size}), cls({3, cfg.hidden_size}), mean_n({3, cfg.hidden_size});
    enc.embed(sb{}, ids.view(), mask.view(), mean.view(), {.pooling = nn::pooling::mean}, tt.view());
    enc.embed(sb{}, ids.view(), mask.view(), cls.view(), {.pooling = nn::pooling::cls}, tt.view());
    enc.embed(sb{}, ids.view(), mask.view(), mean_n.view(), {.pooling = nn::pooling::mean, .normalize = true},
              tt.view());
    for (std::size_t r = 0; r < seqs.size(); ++r) {
      const mat ref = reference_forward(cfg, w, seqs[r], types[r]);
      const auto ri = static_cast<index_t>(r);
      vec avg(static_cast<std::size_t>(cfg.hidden_size), 0.0);
      for (index_t t = 0; t < 7; ++t)
        for (index_t j = 0; j < cfg.hidden_size; ++j) {
          const bool real = t < static_cast<index_t>(ref.size());
          const double want = real ? ref[static_cast<std::size_t>(t)][static_cast<std::size_t>(j)] : 0.0;
          CHECK(std::abs(hidden(ri, t, j) - want) < 1e-12);
          if (real) avg[static_cast<std::size_t>(j)] += want / static_cast<double>(ref.size());
        }
      double norm = 0;
      for (double a : avg) norm += a * a;
      norm = std::sqrt(norm);
      for (index_t j = 0; j < cfg.hidden_size; ++j) {
        CHECK(std::abs(mean(ri, j) - avg[static_cast<std::size_t>(j)]) < 1e-12);
        CHECK(std::abs(cls(ri, j) - ref[0][static_cast<std::size_t>(j)]) < 1e-12);
        CHECK(std::abs(mean_n(ri, j) - avg[static_cast<std::size_t>(j)] / norm) < 1e-12);
      }
    }
    // mean and CLS pooling differ on a sequence of more than one token
    CHECK(std::abs(mean(0, 0) - cls(0, 0)) > 1e-6);
  }
}

TEST_CASE("encoder: simd float matches scalar double", "[encoder]") {
  const auto cfg = tiny(3);
  nn::encoder<sb, double> ref(cfg);
  randomize(ref, 11);
  nn::encoder<simd_b, float> fast(cfg);
  nn::encoder<sb, float> plain(cfg);
  copy_parameters(ref, fast);
  copy_parameters(ref, plain);
  ids_t ids, mask;
  make_batch({random_ids(13, 37, 1), random_ids(1, 37, 2), random_ids(9, 37, 3), random_ids(16, 37, 4)}, 16, ids, mask);
  tensor<double, 3> want({4, 16, cfg.hidden_size});
  tensor<float, 3> got({4, 16, cfg.hidden_size}), got_plain({4, 16, cfg.hidden_size});
  ref.hidden_states(sb{}, ids.view(), mask.view(), {}, want.view());
  fast.hidden_states(simd_b{}, ids.view(), mask.view(), {}, got.view());
  plain.hidden_states(sb{}, ids.view(), mask.view(), {}, got_plain.view());
  SLIM_CHECK_CLOSE(got, want, 2e-5, 2e-5);
  SLIM_CHECK_CLOSE(got_plain, want, 2e-5, 2e-5);
}

/// Embeds every sequence of `seqs` in one batch padded to width `s` with `pad_id`.
template <class Enc, class Be>
tensor<float, 2> embed_batch(Enc& enc, const Be& be, const std::vector<std::vector<int>>& seqs, index_t s,
                             nn::embed_options opt, int pad_id = 0) {
  ids_t ids, mask;
  make_batch(seqs, s, ids, mask, pad_id);
  tensor<float, 2> out({static_cast<index_t>(seqs.size()), enc.hidden_size()});
  enc.embed(be, ids.view(), mask.view(), out.view(), opt);
  return out;
}

bool same_bits(const float* a, const float* b, index_t n) {
  return std::memcmp(a, b, static_cast<std::size_t>(n) * sizeof(float)) == 0;
}

TEST_CASE("encoder: embeddings are bit-identical whatever the batch, padding and thread count", "[encoder]") {
  // wide enough that the GEMMs run several micro-tiles in both dimensions, with odd tails
  const nn::encoder_config cfg{.vocab_size = 101,
                               .hidden_size = 72,
                               .num_hidden_layers = 2,
                               .num_attention_heads = 6,
                               .intermediate_size = 150,
                               .max_position_embeddings = 80,
                               .layer_norm_eps = 1e-12};
  nn::encoder<simd_b, float> enc(cfg);
  randomize(enc, 5);
  std::vector<std::vector<int>> seqs;
  for (std::size_t n : {1u, 7u, 40u, 15u, 2u, 33u, 64u}) seqs.push_back(random_ids(n, 101, 100 + n));
  thread_pool pool(3);
  for (const auto pool_opt : {nn::pooling::mean, nn::pooling::cls}) {
    const nn::embed_options opt{.pooling = pool_opt, .normalize = true};
    const tensor<float, 2> all = embed_batch(enc, simd_b{}, seqs, 64, opt);
    const tensor<float, 2> wide = embed_batch(enc, simd_b{}, seqs, 80, opt, 7);
    const tensor<float, 2> threaded = embed_batch(enc, simd_b{{}, &pool}, seqs, 70, opt);
    const std::vector<std::vector<int>> reversed(seqs.rbegin(), seqs.rend());
    const tensor<float, 2> rev = embed_batch(enc, simd_b{}, reversed, 64, opt);
    const index_t h = cfg.hidden_size, b = static_cast<index_t>(seqs.size());
    CHECK(same_bits(all.data(), wide.data(), b * h));
    CHECK(same_bits(all.data(), threaded.data(), b * h));
    for (index_t r = 0; r < b; ++r) {
      const auto& sq = seqs[static_cast<std::size_t>(r)];
      const tensor<float, 2> alone = embed_batch(enc, simd_b{}, {sq}, static_cast<index_t>(sq.size()), opt);
      INFO("sequence " << r << " of " << sq.size() << " tokens");
      CHECK(same_bits(alone.data(), all.data() + r * h, h));
      CHECK(same_bits(rev.data() + (b - 1 - r) * h, all.data() + r * h, h));
    }
  }
  // the padding ids really are ignored: a batch padded with a different id gives the same states
  tensor<float, 3> h1({2, 50, cfg.hidden_size}), h2({2, 50, cfg.hidden_size});
  ids_t ids, mask;
  make_batch({seqs[1], seqs[3]}, 50, ids, mask, 0);
  enc.hidden_states(simd_b{}, ids.view(), mask.view(), {}, h1.view());
  make_batch({seqs[1], seqs[3]}, 50, ids, mask, 99);
  enc.hidden_states(simd_b{}, ids.view(), mask.view(), {}, h2.view());
  CHECK(same_bits(h1.data(), h2.data(), h1.size()));
}

TEST_CASE("encoder: an absent mask means no padding", "[encoder]") {
  nn::encoder<sb, double> enc(tiny(1));
  randomize(enc, 3);
  ids_t ids, mask;
  make_batch({{1, 2, 3, 4}, {5, 6, 7, 8}}, 4, ids, mask);
  tensor<double, 2> a({2, 12}), b({2, 12});
  enc.embed(sb{}, ids.view(), mask.view(), a.view());
  enc.embed(sb{}, ids.view(), {}, b.view());
  CHECK(std::memcmp(a.data(), b.data(), sizeof(double) * 24) == 0);
}

/// An in-memory stand-in for io::hf_checkpoint: tensors by name, read with an exact shape check.
struct fake_checkpoint {
  std::map<std::string, std::pair<std::vector<index_t>, std::vector<float>>> tensors;
  std::string dir() const { return "fake_dir"; }
  bool contains(std::string_view n) const { return tensors.count(std::string(n)) != 0; }
  template <std::size_t R>
  void read(std::string_view n, tensor_view<float, R> out) const {
    const auto& [shape, data] = tensors.at(std::string(n));
    if (shape.size() != R) throw error("fake_dir", "tensor " + std::string(n), "rank");
    for (std::size_t r = 0; r < R; ++r)
      if (shape[r] != out.extent(r)) throw error("fake_dir", "tensor " + std::string(n), "shape");
    std::memcpy(out.data_handle(), data.data(), data.size() * sizeof(float));
  }
};

TEST_CASE("encoder: load reads HF names with or without bert., and names a missing tensor", "[encoder]") {
  const auto cfg = tiny(2);
  nn::encoder<sb, double> src(cfg);
  randomize(src, 21);
  fake_checkpoint ck;
  src.visit_parameters([&](auto& p) {
    std::vector<index_t> shape = p.rank == 2 ? std::vector<index_t>{p.rows, p.cols} : std::vector<index_t>{p.cols};
    ck.tensors["bert." + p.name] = {shape, std::vector<float>(p.value.begin(), p.value.end())};
  });
  ck.tensors["pooler.dense.weight"] = {{12, 12}, std::vector<float>(144, 1.0f)};  // ignored
  nn::encoder<sb, double> dst(cfg);
  dst.load(ck);
  std::size_t mismatched = 0;
  std::vector<vec> a, b;
  src.visit_parameters([&](auto& p) { a.emplace_back(p.value.begin(), p.value.end()); });
  dst.visit_parameters([&](auto& p) { b.emplace_back(p.value.begin(), p.value.end()); });
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = 0; j < a[i].size(); ++j) mismatched += static_cast<float>(a[i][j]) != b[i][j];
  CHECK(mismatched == 0);

  ck.tensors.erase("bert.encoder.layer.1.intermediate.dense.bias");
  try {
    dst.load(ck);
    FAIL("no error for a missing tensor");
  } catch (const error& e) {
    CHECK(e.where() == "fake_dir");
    CHECK(e.place() == "tensor encoder.layer.1.intermediate.dense.bias");
  }
  // a transposed weight is a shape error from the checkpoint's read
  auto& q = ck.tensors["bert.encoder.layer.0.intermediate.dense.weight"];
  q.first = {12, 20};
  ck.tensors["encoder.layer.1.intermediate.dense.bias"] = {{20}, std::vector<float>(20, 0.0f)};
  CHECK_THROWS_AS(dst.load(ck), error);
}

TEST_CASE("encoder: bad inputs are errors naming the place", "[encoder]") {
  nn::encoder<sb, float> enc(tiny(1));
  tensor<float, 2> out({2, 12});
  ids_t ids, mask;
  const auto place_of = [&](const ids_t& i, const ids_t& m) {
    try {
      enc.embed(sb{}, i.view(), m.view(), out.view());
    } catch (const error& e) {
      return e.place() + " | " + e.message();
    }
    return std::string("no error");
  };
  make_batch({{1, 2, 3}, {4, 37}}, 3, ids, mask);
  CHECK_THAT(place_of(ids, mask), Catch::Matchers::StartsWith("ids[1][1]"));
  make_batch({{1, 2, 3}, {4, 5}}, 3, ids, mask);
  mask(1, 0) = 0;  // left padding
  mask(1, 2) = 1;
  CHECK_THAT(place_of(ids, mask), Catch::Matchers::Contains("right-padded"));
  mask(1, 0) = 1;
  mask(1, 2) = 2;
  CHECK_THAT(place_of(ids, mask), Catch::Matchers::StartsWith("attention_mask[1][2]"));
  make_batch({{1, 2, 3}, {}}, 3, ids, mask);
  CHECK_THAT(place_of(ids, mask), Catch::Matchers::Contains("no token"));
  make_batch({random_ids(17, 37, 1), {4}}, 17, ids, mask);  // max_position_embeddings = 16
  CHECK_THAT(place_of(ids, mask), Catch::Matchers::Contains("max_position_embeddings"));
  make_batch({{1, 2, 3}, {4, 5}}, 3, ids, mask);
  ids_t types({2, 3});
  types(0, 1) = 2;
  CHECK_THROWS_WITH(enc.embed(sb{}, ids.view(), mask.view(), out.view(), {}, types.view()),
                    Catch::Matchers::Contains("token_types[0][1]"));
  tensor<float, 2> wrong({3, 12});
  CHECK_THROWS_AS(enc.embed(sb{}, ids.view(), mask.view(), wrong.view()), error);
}

io::json minilm_like() {
  return io::json::parse(R"({"architectures": ["BertModel"], "hidden_act": "gelu", "hidden_size": 384,
    "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
    "num_attention_heads": 12, "num_hidden_layers": 6, "pad_token_id": 0, "position_embedding_type": "absolute",
    "type_vocab_size": 2, "vocab_size": 30522})");
}

std::string config_error(const io::json& j) {
  try {
    (void)io::parse_bert_config(j, "dir/config.json");
  } catch (const error& e) {
    CHECK(e.where() == "dir/config.json");
    return e.place();
  }
  return "no error";
}

TEST_CASE("bert_config: HF fields, defaults, and errors naming file and field", "[encoder][config]") {
  const auto c = io::parse_bert_config(minilm_like(), "x");
  CHECK(c.hidden_size == 384);
  CHECK(c.num_hidden_layers == 6);
  CHECK(c.num_attention_heads == 12);
  CHECK(c.head_dim() == 32);
  CHECK(c.intermediate_size == 1536);
  CHECK(c.vocab_size == 30522);
  CHECK(c.layer_norm_eps == 1e-12);
  CHECK(c.hidden_act == io::bert_activation::gelu_erf);
  auto j = minilm_like();
  j.erase("max_position_embeddings");
  j.erase("type_vocab_size");
  j.erase("layer_norm_eps");
  j.erase("hidden_act");
  j.erase("model_type");
  const auto d = io::parse_bert_config(j, "x");
  CHECK(d.max_position_embeddings == 512);
  CHECK(d.type_vocab_size == 2);
  CHECK(d.layer_norm_eps == 1e-12);
  j["hidden_act"] = "gelu_new";
  CHECK(io::parse_bert_config(j, "x").hidden_act == io::bert_activation::gelu_tanh);

  auto bad = [](const char* field, io::json value) {
    auto k = minilm_like();
    if (value.is_null())
      k.erase(field);
    else
      k[field] = std::move(value);
    return config_error(k);
  };
  CHECK(bad("hidden_size", nullptr) == "field hidden_size");
  CHECK(bad("hidden_size", 385) == "field num_attention_heads");
  CHECK(bad("num_hidden_layers", 0) == "field num_hidden_layers");
  CHECK(bad("intermediate_size", -4) == "field intermediate_size");
  CHECK(bad("vocab_size", "many") == "field vocab_size");
  CHECK(bad("hidden_act", "relu") == "field hidden_act");
  CHECK(bad("model_type", "roberta") == "field model_type");
  CHECK(bad("position_embedding_type", "relative_key") == "field position_embedding_type");
  CHECK(bad("layer_norm_eps", -1.0) == "field layer_norm_eps");
  CHECK(bad("type_vocab_size", 0) == "field type_vocab_size");
  CHECK(config_error(io::json::array()) == "");
  // read_bert_config names the file it could not read
  CHECK_THROWS_WITH(io::read_bert_config("/nonexistent/slim_encoder_dir"),
                    Catch::Matchers::Contains("/nonexistent/slim_encoder_dir"));
  // an encoder refuses an inconsistent config built in code
  auto e = tiny();
  e.num_attention_heads = 5;
  CHECK_THROWS_AS((nn::encoder<sb, float>(e)), error);
}

TEST_CASE("tokenize_batch: [CLS] text [SEP], truncation to max_length, right padding", "[encoder][text]") {
  const auto tok = text::wordpiece::from_vocab_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\n##b\n", "vocab");
  const std::vector<std::string> texts = {"a b a", "ab", "", "a a a a a a a a"};
  const auto b = nn::tokenize_batch(tok, texts, 6, 0);
  REQUIRE(b.ids.extent(0) == 4);
  REQUIRE(b.ids.extent(1) == 6);
  const std::vector<std::vector<std::int32_t>> want = {{2, 5, 6, 5, 3}, {2, 5, 7, 3}, {2, 3}, {2, 5, 5, 5, 5, 3}};
  for (index_t r = 0; r < 4; ++r)
    for (index_t t = 0; t < 6; ++t) {
      const auto& w = want[static_cast<std::size_t>(r)];
      const bool real = t < static_cast<index_t>(w.size());
      INFO("row " << r << " column " << t);
      CHECK(b.ids(r, t) == (real ? w[static_cast<std::size_t>(t)] : 0));
      CHECK(b.mask(r, t) == (real ? 1 : 0));
    }
  CHECK_THROWS_AS(nn::tokenize_batch(tok, texts, 2), error);  // no room for text
}

/// A temporary sentence-transformers folder with the given files.
struct temp_folder {
  std::string dir;
  explicit temp_folder(const std::map<std::string, std::string>& files) {
    dir = (std::filesystem::temp_directory_path() / ("slim_encoder_test_" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(dir);
    for (const auto& [name, text] : files) {
      const std::string path = dir + "/" + name;
      std::filesystem::create_directories(std::filesystem::path(path).parent_path());
      std::ofstream(path) << text;
    }
  }
  ~temp_folder() { std::filesystem::remove_all(dir); }
};

TEST_CASE("read_sentence_settings: max length, pooling mode, normalisation, unsupported modes", "[encoder][text]") {
  const std::string modules = R"([{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
    {"idx":1,"name":"1","path":"pool","type":"sentence_transformers.models.Pooling"}NORMALIZE])";
  const auto folder = [&](const std::string& pooling, bool normalize, const char* st = nullptr) {
    std::string m = modules;
    m.replace(m.find("NORMALIZE"), 9,
              normalize
                  ? R"(,{"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"})"
                  : "");
    std::map<std::string, std::string> files = {{"modules.json", m}, {"pool/config.json", pooling}};
    if (st) files["sentence_bert_config.json"] = st;
    return files;
  };
  {
    temp_folder f(folder(R"({"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false})", false,
                         R"({"max_seq_length": 128, "do_lower_case": false})"));
    const auto s = nn::read_sentence_settings(f.dir, 512);
    CHECK(s.max_seq_length == 128);
    CHECK(s.options.pooling == nn::pooling::cls);
    CHECK_FALSE(s.options.normalize);
  }
  {
    temp_folder f(folder(R"({"pooling_mode_mean_tokens": true})", true));
    const auto s = nn::read_sentence_settings(f.dir, 300);
    CHECK(s.max_seq_length == 300);
    CHECK(s.options.pooling == nn::pooling::mean);
    CHECK(s.options.normalize);
  }
  {
    temp_folder f(folder(R"({"pooling_mode_mean_tokens": false, "pooling_mode_max_tokens": true})", false));
    CHECK_THROWS_WITH(nn::read_sentence_settings(f.dir, 512), Catch::Matchers::Contains("pooling_mode_max_tokens"));
  }
  {
    temp_folder f(folder(R"({"pooling_mode_mean_tokens": false})", false));
    CHECK_THROWS_WITH(nn::read_sentence_settings(f.dir, 512), Catch::Matchers::Contains("no pooling mode"));
  }
}

}  // namespace slim::testing::encoder_tests
