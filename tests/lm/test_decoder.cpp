// decoder_lm: config.json parsing and its errors, Llama-3 RoPE frequencies, a whole block and the whole tiny model
// against central differences in double on the scalar backend (GQA, q/k/v bias, tied and untied head, LoRA with
// dropout), LoRA at B = 0 equal to the base, merged weights equal to the adapter path, frozen base without
// gradient buffers, simd against scalar, the KV cache against the training forward and across batch
// compositions, the LM losses (masked NLL by hand, KL against finite differences) and the LR schedule.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "slim/backend/scalar.hpp"
#include "slim/backend/simd.hpp"
#include "slim/io/hf_checkpoint.hpp"
#include "slim/io/llama_config.hpp"
#include "slim/io/safetensors.hpp"
#include "slim/nn/decoder_lm.hpp"
#include "slim/nn/lora.hpp"
#include "slim/train/adam.hpp"
#include "slim/train/lm_loss.hpp"
#include "slim/train/schedule.hpp"
#include "support/check.hpp"

namespace slim::testing::lm_tests {

using sb = backend::scalar;
using simd_b = backend::simd<xsimd::sse2>;
using all_lora = nn::lora<nn::q_proj, nn::k_proj, nn::v_proj, nn::o_proj, nn::gate_proj, nn::up_proj, nn::down_proj>;

nn::decoder_config tiny_config(bool tied = false, bool bias = true) {
  nn::decoder_config c;
  c.vocab_size = 13;
  c.hidden_size = 12;
  c.intermediate_size = 10;
  c.num_layers = 2;
  c.num_heads = 3;
  c.num_kv_heads = 1;
  c.max_positions = 64;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 100;
  c.tie_word_embeddings = tied;
  c.attention_bias = bias;
  c.attention_output_bias = bias;
  return c;
}

/// Uniform values keyed by (seed, name): norms around 1, everything else in ±scale.
template <class Model>
void randomize(Model& m, std::uint64_t seed, double scale) {
  m.visit_parameters([&](auto& p) {
    philox_stream rng(nn::init_key(seed, p.name));
    for (auto& x : p.value) {
      const double u = 2 * static_cast<double>(rng.uniform()) - 1;
      x = static_cast<std::remove_reference_t<decltype(x)>>(p.role == nn::parameter_role::norm ? 1 + 0.2 * u
                                                                                               : scale * u);
    }
  });
}

/// Copies base parameter values between models of the same config (any element types).
template <class From, class To>
void copy_base(From& from, To& to) {
  std::vector<std::vector<double>> vals;
  from.visit_base_parameters([&](auto& p) { vals.emplace_back(p.value.begin(), p.value.end()); });
  std::size_t i = 0;
  to.visit_base_parameters([&](auto& p) {
    REQUIRE(vals[i].size() == static_cast<std::size_t>(p.size()));
    for (index_t j = 0; j < p.size(); ++j)
      p.value.data()[j] =
          static_cast<std::remove_reference_t<decltype(p.value.data()[j])>>(vals[i][static_cast<std::size_t>(j)]);
    ++i;
  });
}

tensor<std::int32_t, 2> make_ids(index_t b, index_t s, index_t vocab, std::uint64_t seed) {
  tensor<std::int32_t, 2> ids({b, s});
  philox_stream rng(seed);
  for (auto& x : ids) x = static_cast<std::int32_t>(rng.below(static_cast<std::uint32_t>(vocab)));
  return ids;
}

double rel_error(const float* a, const float* b, index_t n) {
  double num = 0, den = 0;
  for (index_t i = 0; i < n; ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

/// Checks the analytic gradient of every parameter `visit` reaches (up to `per` elements each, spread over the
/// tensor) against central differences of `loss`.
template <class Visit>
void check_parameter_gradients(Visit&& visit, const std::function<double()>& loss, index_t per = 10) {
  visit([&](nn::parameter<double>& p) {
    if (!p.trainable) return;
    REQUIRE(p.has_grad());
    const index_t n = p.size(), step = std::max<index_t>(1, n / per);
    std::vector<double> analytic, numeric;
    for (index_t i = 0; i < n; i += step) {
      double* x = p.value.data() + i;
      const double keep = *x, h = 1e-6;
      *x = keep + h;
      const double up = loss();
      *x = keep - h;
      const double down = loss();
      *x = keep;
      numeric.push_back((up - down) / (2 * h));
      analytic.push_back(p.grad.data()[i]);
    }
    check_gradient(p.name, analytic.data(), numeric, 1e-7, 1e-5);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// config.json

struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    path = std::filesystem::temp_directory_path() /
           ("slim_lm_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::string write(const std::string& name, const std::string& text) const {
    const auto p = (path / name).string();
    std::ofstream(p) << text;
    return p;
  }
};

const char* llama_json = R"({
  "architectures": ["LlamaForCausalLM"], "hidden_act": "silu", "hidden_size": 48, "intermediate_size": 80,
  "num_hidden_layers": 2, "num_attention_heads": 6, "num_key_value_heads": 2, "rms_norm_eps": 1e-05,
  "rope_theta": 500000.0, "vocab_size": 300, "tie_word_embeddings": true, "max_position_embeddings": 4096,
  "attention_bias": false,
  "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 1024}
})";

std::string with(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

/// The message of the slim::error `f` throws ("" when it throws none).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const slim::error& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("llama config.json: every field is read, kv heads default to heads", "[lm][config]") {
  temp_dir d;
  const auto c = io::read_llama_config(d.write("config.json", llama_json));
  CHECK(c.hidden_size == 48);
  CHECK(c.intermediate_size == 80);
  CHECK(c.num_layers == 2);
  CHECK(c.num_heads == 6);
  CHECK(c.num_kv_heads == 2);
  CHECK(c.head_dim() == 8);
  CHECK(c.rms_norm_eps == 1e-5);
  CHECK(c.rope_theta == 500000.0);
  CHECK(c.vocab_size == 300);
  CHECK(c.tie_word_embeddings);
  CHECK(c.max_positions == 4096);
  CHECK(!c.attention_bias);
  CHECK(c.rope_scaling.type == io::rope_scaling_type::llama3);
  CHECK(c.rope_scaling.factor == 8.0);
  CHECK(c.rope_scaling.original_max_position_embeddings == 1024);
  const auto q = io::read_llama_config(
      d.write("qwen.json", with(with(llama_json, "\"num_key_value_heads\": 2, ", ""), "\"attention_bias\": false",
                                "\"attention_bias\": true, \"head_dim\": 16")));
  CHECK(q.num_kv_heads == 6);
  CHECK(q.attention_bias);
  CHECK(q.attention_output_bias);  // transformers' LLaMA: attention_bias is on q, k, v and o
  CHECK(q.head_dim() == 16);
  // Qwen2: q/k/v biases and none on o, whatever attention_bias says; sliding windows are refused
  const auto qwen2 = io::read_llama_config(d.write(
      "qwen2.json", R"({"model_type": "qwen2", "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
                        "num_attention_heads": 2, "vocab_size": 5, "use_sliding_window": false})"));
  CHECK(qwen2.attention_bias);
  CHECK(!qwen2.attention_output_bias);
  const auto sliding = error_of([&] {
    io::read_llama_config(d.write(
        "qwen2_sliding.json", R"({"model_type": "qwen2", "hidden_size": 8, "intermediate_size": 8,
                                  "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 5,
                                  "use_sliding_window": true})"));
  });
  CHECK(sliding.find("use_sliding_window") != std::string::npos);
  const auto none = io::read_llama_config(d.write(
      "none.json", R"({"hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
                      "vocab_size": 5, "rope_scaling": null})"));
  CHECK(none.rope_scaling.type == io::rope_scaling_type::none);
  CHECK(!none.tie_word_embeddings);
}

TEST_CASE("llama config.json: inconsistent or unsupported values name the file and the field", "[lm][config]") {
  temp_dir d;
  const auto expect = [&](const std::string& name, const std::string& text, const std::string& field,
                          const std::string& words) {
    const auto path = d.write(name, text);
    const auto msg = error_of([&] { io::read_llama_config(path); });
    INFO(msg);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find(field) != std::string::npos);
    CHECK(msg.find(words) != std::string::npos);
  };
  expect("a.json",
         with(with(llama_json, "\"num_attention_heads\": 6", "\"num_attention_heads\": 5"),
              "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 1"),
         "field num_attention_heads", "not divisible");
  expect("b.json", with(llama_json, "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 4"),
         "field num_key_value_heads", "not a multiple");
  expect("c.json", with(llama_json, "\"rope_type\": \"llama3\"", "\"rope_type\": \"yarn\""), "rope_scaling",
         "not supported");
  expect("d.json", with(llama_json, "\"hidden_size\": 48, ", ""), "field hidden_size", "missing");
  expect("e.json", with(llama_json, "\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": -1"), "field rms_norm_eps",
         "positive");
  expect("f.json", with(llama_json, "\"high_freq_factor\": 4.0", "\"high_freq_factor\": 0.5"),
         "field rope_scaling/high_freq_factor", "exceed");
  expect("g.json", with(llama_json, "\"vocab_size\": 300", "\"vocab_size\": \"300\""), "field vocab_size", "");
  expect("h.json", with(llama_json, "\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\""), "field hidden_act",
         "not supported");
}

TEST_CASE("RoPE frequencies: HF's default and Llama-3 scaling on hand-computed values", "[lm][rope]") {
  nn::decoder_config c = tiny_config();
  c.hidden_size = 8;
  c.num_heads = 1;
  c.num_kv_heads = 1;
  c.rope_theta = 10000;  // head_dim 8: inv_freq = 1, 0.1, 0.01, 0.001; wavelengths 2π, 20π, 200π, 2000π
  const auto plain = nn::rope_frequencies<double>(c);
  REQUIRE(plain.size() == 4);
  CHECK(plain[1] == Approx(0.1).epsilon(1e-14));
  CHECK(plain[3] == Approx(0.001).epsilon(1e-14));
  c.rope_scaling = {io::rope_scaling_type::llama3, 8.0, 1.0, 4.0, 1024};  // λ_lo = 1024, λ_hi = 256
  const auto s = nn::rope_frequencies<double>(c);
  CHECK(s[0] == Approx(1.0).epsilon(1e-14));       // 2π < 256: kept
  CHECK(s[1] == Approx(0.1).epsilon(1e-14));       // 20π ≈ 62.8 < 256: kept
  CHECK(s[3] == Approx(0.000125).epsilon(1e-12));  // 2000π > 1024: divided by 8
  // 200π ≈ 628 in between: s = (1024/(200π) − 1)/3, f = 0.01·((1 − s)/8 + s)
  CHECK(s[2] == Approx(0.0030867609670112745).epsilon(1e-12));
}

/// Writes `m`'s base parameters as an HF checkpoint folder (config.json is the caller's), optionally leaving out
/// or transposing one tensor.
template <class Model>
void write_checkpoint(Model& m, const std::string& dir, const std::string& drop = "",
                      const std::string& transpose = "") {
  std::vector<io::tensor_entry> entries;
  m.visit_base_parameters([&](nn::parameter<float>& p) {
    if (p.name == drop) return;
    std::vector<index_t> shape = p.rank == 2 ? std::vector<index_t>{p.rows, p.cols} : std::vector<index_t>{p.cols};
    if (p.name == transpose) std::swap(shape[0], shape[1]);
    entries.push_back(
        io::f32_entry(p.name, shape, std::span<const float>(p.value.data(), static_cast<std::size_t>(p.size()))));
  });
  io::write_safetensors(dir + "/model.safetensors", entries);
}

TEST_CASE("decoder_lm::load: HF names, exact shapes, missing and transposed tensors refused", "[lm][load]") {
  temp_dir d;
  const auto cfg_text = R"({"hidden_size": 12, "intermediate_size": 10, "num_hidden_layers": 2,
    "num_attention_heads": 3, "num_key_value_heads": 1, "vocab_size": 13, "rms_norm_eps": 1e-5, "rope_theta": 100,
    "attention_bias": true, "tie_word_embeddings": false, "max_position_embeddings": 64})";
  d.write("config.json", cfg_text);
  nn::decoder_lm<simd_b> src(tiny_config(false, true));
  randomize(src, 12, 0.3);
  write_checkpoint(src, d.path.string());
  const io::hf_checkpoint ck(d.path.string());
  const auto cfg = io::parse_llama_config(ck.config(), d.path.string() + "/config.json");
  nn::decoder_lm<simd_b, nn::lora<nn::q_proj>> dst(cfg);
  dst.load(ck);
  const auto ids = make_ids(2, 5, 13, 3);
  tensor<float, 2> a({10, 13}), b({10, 13});
  src.forward(simd_b{}, ids.view(), a.view());
  dst.forward(simd_b{}, ids.view(), b.view());
  for (index_t i = 0; i < a.size(); ++i) REQUIRE(a.data()[i] == b.data()[i]);
  CHECK(ck.contains("model.layers.1.self_attn.k_proj.bias"));
  CHECK(ck.contains("model.layers.1.self_attn.o_proj.bias"));

  temp_dir d2;
  d2.write("config.json", cfg_text);
  write_checkpoint(src, d2.path.string(), "model.layers.1.mlp.up_proj.weight");
  {
    const io::hf_checkpoint ck2(d2.path.string());
    const auto msg = error_of([&] { dst.load(ck2); });
    INFO(msg);
    CHECK(msg.find(d2.path.string()) != std::string::npos);
    CHECK(msg.find("model.layers.1.mlp.up_proj.weight") != std::string::npos);
  }
  temp_dir d3;
  write_checkpoint(src, d3.path.string(), "", "model.layers.0.mlp.down_proj.weight");
  {
    const io::hf_checkpoint ck3(d3.path.string());
    const auto msg = error_of([&] { dst.load(ck3); });
    INFO(msg);
    CHECK(msg.find("model.layers.0.mlp.down_proj.weight") != std::string::npos);
    CHECK(msg.find("model.safetensors") != std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// gradients in double

TEST_CASE("decoder block: every gradient matches central differences (GQA 6:2, q/k/v bias, LoRA with dropout)",
          "[lm][grad]") {
  nn::decoder_config c = tiny_config();
  c.hidden_size = 12;
  c.num_heads = 6;
  c.num_kv_heads = 2;
  c.head_dim_override = 4;
  c.intermediate_size = 10;
  const bool with_lora = GENERATE(false, true);
  nn::decoder_block<sb, double> block(c, "model.layers.0");
  if (with_lora) {
    block.proj(nn::projection::q_proj).add_adapter({.rank = 2, .alpha = 3, .dropout = 0.3, .seed = 5}, 1);
    block.proj(nn::projection::down_proj).add_adapter({.rank = 3, .alpha = 2, .dropout = 0.0, .seed = 6}, 2);
    block.proj(nn::projection::v_proj).add_adapter({.rank = 2, .alpha = 4, .dropout = 0.5, .use_rslora = true}, 3);
  }
  randomize(block, 11, 0.4);
  const index_t b = 2, s = 4, n = b * s;
  tensor<double, 2> x({n, c.hidden_size}), r({n, c.hidden_size}), y({n, c.hidden_size}), dx({n, c.hidden_size});
  fill_uniform(x, 1);
  fill_uniform(r, 2);
  std::vector<std::int32_t> pos(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) pos[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i % s + 3);
  const auto freq = nn::rope_frequencies<double>(c);
  const vector_view<const std::int32_t> pv(pos.data(), {n});
  const vector_view<const double> fv(freq.data(), {static_cast<index_t>(freq.size())});
  const nn::step_context ctx{.training = true, .seed = 9, .step = 4};
  const auto loss = [&] {
    block.forward(sb{}, ctx, x.view(), b, pv, fv, y.view());
    double l = 0;
    for (index_t i = 0; i < y.size(); ++i) l += y.data()[i] * r.data()[i];
    return l;
  };
  nn::zero_grad(block);
  loss();
  block.backward(sb{}, r.view(), dx.view());
  check_parameter_gradients([&](auto&& f) { block.visit_parameters(f); }, loss);
  check_gradient("dx", dx.data(), numeric_gradient(x.data(), x.size(), loss), 1e-7, 1e-5);
}

TEST_CASE("decoder_lm: every gradient of the whole model matches central differences", "[lm][grad]") {
  const bool tied = GENERATE(false, true);
  nn::decoder_lm<sb, nn::no_adapter, double> m(tiny_config(tied, !tied));
  randomize(m, 3, 0.3);
  const auto ids = make_ids(2, 5, 13, 4);
  tensor<double, 2> logits({10, 13}), r({10, 13});
  fill_uniform(r, 5);
  const auto loss = [&] {
    m.forward(sb{}, ids.view(), logits.view());
    double l = 0;
    for (index_t i = 0; i < logits.size(); ++i) l += logits.data()[i] * r.data()[i];
    return l;
  };
  nn::zero_grad(m);
  loss();
  m.backward(sb{}, r.view());
  check_parameter_gradients([&](auto&& f) { m.visit_parameters(f); }, loss, 8);
}

TEST_CASE("decoder_lm with LoRA: adapter gradients match central differences under the masked NLL", "[lm][grad]") {
  nn::decoder_lm<sb, nn::lora<nn::q_proj, nn::v_proj, nn::up_proj>, double> m(tiny_config(),
                                                                              {.rank = 2, .alpha = 5, .dropout = 0.25});
  randomize(m, 8, 0.3);  // B ≠ 0, so A's gradient is not trivially zero
  m.set_context({.training = true, .seed = 2, .step = 1});
  const auto ids = make_ids(2, 6, 13, 9);
  tensor<std::uint8_t, 2> mask({2, 6});
  for (index_t t = 2; t < 6; ++t) mask(0, t) = mask(1, t - 1) = 1;
  std::vector<std::int32_t> targets(12);
  train::next_token_targets(ids.view(), mask.view(), targets);
  const vector_view<const std::int32_t> tv(targets.data(), {12});
  tensor<double, 2> logits({12, 13}), dlogits({12, 13});
  train::token_nll<sb, double> nll;
  const auto loss = [&] {
    m.forward(sb{}, ids.view(), logits.view());
    return nll.forward(sb{}, logits.view(), tv);
  };
  nn::zero_grad(m);
  loss();
  nll.backward(sb{}, dlogits.view());
  m.backward(sb{}, dlogits.view());
  index_t adapters = 0;
  m.visit_adapters([&](nn::parameter<double>&) { ++adapters; });
  CHECK(adapters == 2 * 3 * 2);
  check_parameter_gradients([&](auto&& f) { m.visit_adapters(f); }, loss);
}

// ---------------------------------------------------------------------------------------------------------------
// LoRA

TEST_CASE("LoRA: B = 0 gives exactly the base logits; the base is frozen without gradient buffers", "[lm][lora]") {
  nn::decoder_lm<simd_b, nn::no_adapter> base(tiny_config());
  nn::decoder_lm<simd_b, all_lora> adapted(tiny_config(), {.rank = 4, .alpha = 8, .seed = 3});
  randomize(base, 1, 0.3);
  copy_base(base, adapted);
  const auto ids = make_ids(3, 7, 13, 2);
  tensor<float, 2> a({21, 13}), b({21, 13});
  base.forward(simd_b{}, ids.view(), a.view());
  adapted.forward(simd_b{}, ids.view(), b.view());
  for (index_t i = 0; i < a.size(); ++i) REQUIRE(a.data()[i] == b.data()[i]);

  adapted.visit_base_parameters([](nn::parameter<float>& p) {
    CHECK(!p.trainable);
    CHECK(!p.has_grad());
    CHECK(p.grad.size() == 0);
  });
  // A is Kaiming-uniform with bound 1/√in, B is zero
  adapted.visit_adapters([](nn::parameter<float>& p) {
    CHECK(p.trainable);
    CHECK(p.has_grad());
    const bool is_a = p.name.find("lora_A") != std::string::npos;
    float mx = 0;
    for (float x : p.value) mx = std::max(mx, std::abs(x));
    if (is_a) {
      CHECK(mx > 0.5f / std::sqrt(static_cast<float>(p.cols)));
      CHECK(mx <= 1.0f / std::sqrt(static_cast<float>(p.cols)));
    } else {
      CHECK(mx == 0.0f);
    }
  });
  CHECK(adapted.adapter_config().scale() == 2.0);
  train::adam<simd_b> opt({}, train::adam_variant::adamw);
  opt.attach(adapted);
  CHECK(opt.size() == 2 * 7 * 2);
  // a backward touches only adapter gradients: B's are non-zero, A's zero (dA ∝ B = 0)
  tensor<float, 2> d({21, 13});
  fill_uniform(d, 4);
  nn::zero_grad(adapted);
  adapted.backward(simd_b{}, d.view());
  adapted.visit_adapters([](nn::parameter<float>& p) {
    double ss = 0;
    for (float g : p.grad) ss += static_cast<double>(g) * g;
    if (p.name.find("lora_A") != std::string::npos)
      CHECK(ss == 0.0);
    else
      CHECK(ss > 0.0);
  });
  CHECK(nn::lora_config{.rank = 16, .alpha = 8, .use_rslora = true}.scale() == 2.0);
}

TEST_CASE("LoRA: merged weights reproduce the adapter path; unmerge restores the base", "[lm][lora]") {
  nn::decoder_lm<simd_b, nn::lora<nn::q_proj, nn::v_proj, nn::down_proj>> m(
      tiny_config(true, true), {.rank = 3, .alpha = 7, .use_rslora = true, .seed = 1});
  randomize(m, 6, 0.3);
  const auto ids = make_ids(2, 6, 13, 7);
  std::vector<float> before;
  m.visit_base_parameters(
      [&](nn::parameter<float>& p) { before.insert(before.end(), p.value.begin(), p.value.end()); });
  const double diff = m.merge_difference(simd_b{}, ids.view());
  CHECK(diff < 1e-5);
  CHECK(diff >= 0.0);
  std::vector<float> after;
  m.visit_base_parameters([&](nn::parameter<float>& p) { after.insert(after.end(), p.value.begin(), p.value.end()); });
  REQUIRE(before.size() == after.size());
  for (std::size_t i = 0; i < before.size(); ++i) REQUIRE(std::abs(before[i] - after[i]) <= 1e-6f);

  // independent merge: W + scale·B·A computed here into a plain model
  nn::decoder_lm<simd_b, nn::no_adapter> plain(tiny_config(true, true));
  copy_base(m, plain);
  const double scale = 7.0 / std::sqrt(3.0);
  for (index_t l = 0; l < 2; ++l)
    for (auto p : {nn::projection::q_proj, nn::projection::v_proj, nn::projection::down_proj}) {
      auto& src = m.layer(l).proj(p);
      auto& dst = plain.layer(l).proj(p);
      for (index_t i = 0; i < src.out_features(); ++i)
        for (index_t j = 0; j < src.in_features(); ++j) {
          double acc = 0;
          for (index_t k = 0; k < 3; ++k)
            acc += static_cast<double>(src.lora_b.matrix()(i, k)) * src.lora_a.matrix()(k, j);
          dst.weight.matrix()(i, j) = static_cast<float>(src.weight.matrix()(i, j) + scale * acc);
        }
    }
  tensor<float, 2> a({12, 13}), b({12, 13});
  m.forward(simd_b{}, ids.view(), a.view());
  plain.forward(simd_b{}, ids.view(), b.view());
  CHECK(rel_error(a.data(), b.data(), a.size()) < 1e-5);
  double delta = 0;  // the adapters matter: their logits differ from the base's
  nn::decoder_lm<simd_b, nn::no_adapter> unadapted(tiny_config(true, true));
  copy_base(m, unadapted);
  unadapted.forward(simd_b{}, ids.view(), b.view());
  delta = rel_error(a.data(), b.data(), a.size());
  CHECK(delta > 1e-2);
}

TEST_CASE("LoRA: effective_weight is the weight the layer applies, merged or not, bf16-stored or not", "[lm][lora]") {
  using adapter = nn::lora<nn::q_proj, nn::down_proj>;
  nn::decoder_lm<simd_b, adapter> m(tiny_config(), {.rank = 3, .alpha = 5, .seed = 2});
  randomize(m, 8, 0.3);
  auto& q = m.layer(1).proj(nn::projection::q_proj);
  auto& k = m.layer(1).proj(nn::projection::k_proj);  // no adapter: the weight itself
  tensor<float, 2> wq({q.out_features(), q.in_features()}), wk({k.out_features(), k.in_features()});
  const std::vector<float> q_before(q.weight.value.begin(), q.weight.value.end());
  q.effective_weight(wq.view());
  k.effective_weight(wk.view());
  CHECK(std::equal(q_before.begin(), q_before.end(), q.weight.value.begin()));  // the layer is left alone
  CHECK(std::equal(wk.data(), wk.data() + wk.size(), k.weight.value.begin()));
  // independently: W + (α/r)·B·A, summed here in double
  double worst = 0, moved = 0;
  for (index_t i = 0; i < q.out_features(); ++i)
    for (index_t j = 0; j < q.in_features(); ++j) {
      double acc = 0;
      for (index_t r = 0; r < 3; ++r) acc += static_cast<double>(q.lora_b.matrix()(i, r)) * q.lora_a.matrix()(r, j);
      const double want = q.weight.matrix()(i, j) + 5.0 / 3.0 * acc;
      worst = std::max(worst, std::abs(wq(i, j) - want));
      moved = std::max(moved, std::abs(want - q.weight.matrix()(i, j)));
    }
  CHECK(worst <= 1e-6);
  CHECK(moved > 1e-2);  // the adapter is not zero, so the check above can fail
  // merged, the weight already holds the delta: the same matrix comes back
  m.merge_adapters();
  tensor<float, 2> merged({q.out_features(), q.in_features()});
  q.effective_weight(merged.view());
  CHECK(std::equal(merged.data(), merged.data() + merged.size(), wq.data()));
  m.unmerge_adapters();
  // stored in bf16: the widened bf16 weight plus the delta
  m.store_frozen_weights_bf16();
  tensor<float, 2> w16({q.out_features(), q.in_features()});
  q.effective_weight(w16.view());
  worst = 0;
  for (index_t i = 0; i < q.out_features(); ++i)
    for (index_t j = 0; j < q.in_features(); ++j) {
      const double base = static_cast<float>(bf16(q_before[static_cast<std::size_t>(i * q.in_features() + j)]));
      worst = std::max(worst, std::abs(w16(i, j) - (base + (wq(i, j) - q_before[static_cast<std::size_t>(
                                                                             i * q.in_features() + j)]))));
    }
  CHECK(worst <= 1e-6);
  tensor<float, 2> wrong({q.out_features() + 1, q.in_features()});
  CHECK_THROWS_AS(q.effective_weight(wrong.view()), slim::error);
}

TEST_CASE("LoRA: a frozen base stored in bf16 computes as the bf16-rounded float base", "[lm][lora]") {
  using adapter = nn::lora<nn::q_proj, nn::v_proj, nn::gate_proj>;
  nn::decoder_lm<simd_b, adapter> m(tiny_config(), {.rank = 2, .alpha = 4});
  nn::decoder_lm<simd_b, adapter> ref(tiny_config(), {.rank = 2, .alpha = 4});
  randomize(m, 21, 0.3);
  randomize(ref, 21, 0.3);  // the same values, adapters included (keyed by name)
  for (index_t l = 0; l < 2; ++l)
    for (int p = 0; p < 7; ++p)
      for (float& w : ref.layer(l).proj(static_cast<nn::projection>(p)).weight.value) w = static_cast<float>(bf16(w));
  m.store_frozen_weights_bf16();
  CHECK(m.layer(1).proj(nn::projection::down_proj).weight_in_bf16());
  CHECK(m.layer(1).proj(nn::projection::down_proj).weight.value.size() == 0);
  const auto ids = make_ids(2, 6, 13, 17);
  tensor<float, 2> a({12, 13}), b({12, 13}), d({12, 13});
  m.forward(simd_b{}, ids.view(), a.view());
  ref.forward(simd_b{}, ids.view(), b.view());
  CHECK(rel_error(a.data(), b.data(), a.size()) < 1e-6);
  fill_uniform(d, 2);
  nn::zero_grad(m);
  nn::zero_grad(ref);
  m.backward(simd_b{}, d.view());
  ref.backward(simd_b{}, d.view());
  std::vector<std::vector<float>> want;
  ref.visit_adapters([&](nn::parameter<float>& p) { want.emplace_back(p.grad.begin(), p.grad.end()); });
  std::size_t i = 0;
  m.visit_adapters([&](nn::parameter<float>& p) {
    INFO(p.name);
    CHECK(rel_error(p.grad.data(), want[i++].data(), p.size()) < 1e-5);
  });
  CHECK_THROWS_AS(m.merge_adapters(), slim::error);
  nn::decoder_lm<simd_b> full(tiny_config());
  CHECK_THROWS_AS(full.layer(0).q_proj.store_weight_bf16(), slim::error);  // a trainable weight stays in float
}

// ---------------------------------------------------------------------------------------------------------------
// backends and the KV cache

TEST_CASE("decoder_lm: simd logits and gradients match the scalar backend", "[lm][simd]") {
  nn::decoder_config c = tiny_config();
  c.hidden_size = 48;
  c.num_heads = 6;
  c.num_kv_heads = 2;
  c.intermediate_size = 40;
  c.vocab_size = 61;
  c.rope_scaling = {io::rope_scaling_type::llama3, 4.0, 1.0, 4.0, 16};
  nn::decoder_lm<sb, nn::lora<nn::q_proj, nn::o_proj>> ref(c, {.rank = 4});
  nn::decoder_lm<simd_b, nn::lora<nn::q_proj, nn::o_proj>> got(c, {.rank = 4});
  randomize(ref, 2, 0.2);
  randomize(got, 2, 0.2);
  thread_pool pool(2);
  simd_b be{};
  be.pool = &pool;
  const auto ids = make_ids(3, 9, 61, 1);
  tensor<float, 2> a({27, 61}), b({27, 61}), d({27, 61});
  ref.forward(sb{}, ids.view(), a.view());
  got.forward(be, ids.view(), b.view());
  CHECK(rel_error(b.data(), a.data(), a.size()) < 1e-5);
  fill_uniform(d, 3);
  nn::zero_grad(ref);
  nn::zero_grad(got);
  ref.backward(sb{}, d.view());
  got.backward(be, d.view());
  std::vector<std::vector<float>> ga;
  ref.visit_adapters([&](nn::parameter<float>& p) { ga.emplace_back(p.grad.begin(), p.grad.end()); });
  std::size_t i = 0;
  got.visit_adapters([&](nn::parameter<float>& p) {
    INFO(p.name);
    CHECK(rel_error(p.grad.data(), ga[i].data(), p.size()) < 1e-4);
    ++i;
  });
}

TEST_CASE("KV cache: prefill + one-token decode reproduces the training forward's logits", "[lm][cache]") {
  nn::decoder_config c = tiny_config(false, true);
  c.hidden_size = 24;
  c.num_heads = 6;
  c.num_kv_heads = 2;
  c.intermediate_size = 20;
  c.vocab_size = 37;
  c.rope_scaling = {io::rope_scaling_type::llama3, 8.0, 1.0, 4.0, 8};
  nn::decoder_lm<simd_b, nn::lora<nn::v_proj>> m(c, {.rank = 2});
  randomize(m, 4, 0.3);
  const index_t len = 11, prefill = 5;
  const auto ids = make_ids(1, len, 37, 3);
  tensor<float, 2> full({len, 37}), last({1, 37});
  m.forward(simd_b{}, ids.view(), full.view());
  auto cache = m.make_cache(1, 16);
  m.forward_cached(simd_b{}, subview(tensor_view<const std::int32_t, 2>(ids.view()), {0, 0}, {1, prefill}), {}, cache,
                   last.view());
  CHECK(rel_error(last.data(), &full(prefill - 1, 0), 37) < 1e-5);
  for (index_t t = prefill; t < len; ++t) {
    m.forward_cached(simd_b{}, subview(tensor_view<const std::int32_t, 2>(ids.view()), {0, t}, {1, 1}), {}, cache,
                     last.view());
    INFO("column " << t);
    CHECK(rel_error(last.data(), &full(t, 0), 37) < 1e-5);
  }
  CHECK(cache.length == len);
  CHECK_THROWS_AS(m.forward_cached(simd_b{}, subview(tensor_view<const std::int32_t, 2>(ids.view()), {0, 0}, {1, 6}),
                                   {}, cache, last.view()),
                  slim::error);
}

TEST_CASE("decoder_lm::hidden_states: the final-norm states the LM head reads; padding does not reach real rows",
          "[lm][embed]") {
  nn::decoder_config c = tiny_config(false, true);
  c.vocab_size = 29;
  nn::decoder_lm<simd_b, nn::lora<nn::q_proj>> m(c, {.rank = 2});
  randomize(m, 5, 0.3);
  const index_t len = 9, h = c.hidden_size;
  const auto ids = make_ids(2, len, 29, 7);
  tensor<float, 2> logits({2 * len, 29}), states({2 * len, h});
  m.forward(simd_b{}, ids.view(), logits.view());
  m.hidden_states(simd_b{}, ids.view(), states.view());
  // logits = states · headᵀ, computed here in double
  auto& head = m.head();
  for (index_t r = 0; r < 2 * len; ++r) {
    std::vector<float> want(29);
    for (index_t v = 0; v < 29; ++v) {
      double z = 0;
      for (index_t j = 0; j < h; ++j) z += static_cast<double>(states(r, j)) * head.matrix()(v, j);
      want[static_cast<std::size_t>(v)] = static_cast<float>(z);
    }
    INFO("row " << r);
    CHECK(rel_error(want.data(), &logits(r, 0), 29) < 1e-5);
  }
  // row 0 alone, cut to 5 tokens, gives the same states at its 5 positions (causal: later tokens never reach them)
  tensor<std::int32_t, 2> cut({1, 5});
  for (index_t t = 0; t < 5; ++t) cut(0, t) = ids(0, t);
  tensor<float, 2> s5({5, h});
  m.hidden_states(simd_b{}, cut.view(), s5.view());
  for (index_t t = 0; t < 5; ++t) CHECK(rel_error(&s5(t, 0), &states(t, 0), h) < 1e-5);
  tensor<std::int32_t, 2> bad({1, 2});
  bad(0, 0) = 3;
  bad(0, 1) = 29;
  CHECK_THROWS_AS(m.hidden_states(simd_b{}, bad.view(), tensor<float, 2>({2, h}).view()), slim::error);
}

TEST_CASE("KV cache: a sequence's logits do not depend on the batch it is padded into", "[lm][cache]") {
  nn::decoder_config c = tiny_config(true, false);
  c.hidden_size = 32;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.intermediate_size = 24;
  c.vocab_size = 29;
  nn::decoder_lm<simd_b> m(c);
  randomize(m, 5, 0.3);
  thread_pool pool(2);
  const std::vector<index_t> lens = {9, 4, 7};
  std::vector<tensor<std::int32_t, 2>> seqs;
  for (std::size_t i = 0; i < lens.size(); ++i) seqs.push_back(make_ids(1, lens[i], 29, 10 + i));
  const index_t width = 9, steps = 3;
  // alone, batch of 1, no padding, 1 thread
  std::vector<std::vector<float>> alone;
  for (std::size_t i = 0; i < lens.size(); ++i) {
    auto cache = m.make_cache(1, 16);
    tensor<float, 2> last({1, 29});
    m.forward_cached(simd_b{}, seqs[i].view(), {}, cache, last.view());
    alone.emplace_back(last.begin(), last.end());
    for (index_t k = 0; k < steps; ++k) {
      const std::int32_t next[1] = {static_cast<std::int32_t>(k + 1)};
      m.forward_cached(simd_b{}, tensor_view<const std::int32_t, 2>(next, {1, 1}), {}, cache, last.view());
      alone.back().insert(alone.back().end(), last.begin(), last.end());
    }
  }
  // together, left-padded, 2 threads
  tensor<std::int32_t, 2> batch({3, width});
  std::vector<std::int32_t> begin(3);
  for (index_t i = 0; i < 3; ++i) {
    begin[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(width - lens[static_cast<std::size_t>(i)]);
    for (index_t t = 0; t < lens[static_cast<std::size_t>(i)]; ++t)
      batch(i, begin[static_cast<std::size_t>(i)] + t) = seqs[static_cast<std::size_t>(i)](0, t);
  }
  simd_b be{};
  be.pool = &pool;
  auto cache = m.make_cache(3, 16);
  tensor<float, 2> last({3, 29});
  std::vector<std::vector<float>> together(3);
  m.forward_cached(be, batch.view(), begin, cache, last.view());
  for (index_t i = 0; i < 3; ++i) together[static_cast<std::size_t>(i)].assign(&last(i, 0), &last(i, 0) + 29);
  for (index_t k = 0; k < steps; ++k) {
    const std::int32_t next[3] = {static_cast<std::int32_t>(k + 1), static_cast<std::int32_t>(k + 1),
                                  static_cast<std::int32_t>(k + 1)};
    m.forward_cached(be, tensor_view<const std::int32_t, 2>(next, {3, 1}), {}, cache, last.view());
    for (index_t i = 0; i < 3; ++i)
      together[static_cast<std::size_t>(i)].insert(together[static_cast<std::size_t>(i)].end(), &last(i, 0),
                                                   &last(i, 0) + 29);
  }
  for (std::size_t i = 0; i < 3; ++i) {
    INFO("sequence " << i);
    const double rel = rel_error(together[i].data(), alone[i].data(), static_cast<index_t>(alone[i].size()));
    CHECK(rel == 0.0);
    CHECK(together[i] == alone[i]);  // bitwise: padding, batch size and thread count change nothing
  }
}

// ---------------------------------------------------------------------------------------------------------------
// losses and schedule

TEST_CASE("token NLL: only masked-in next tokens count (hand-computed case)", "[lm][loss]") {
  // ids [9, 2, 0, 1], mask [0, 1, 1, 0]: targets 2 (row 0), 0 (row 1), ignored (rows 2, 3)
  const std::int32_t ids_data[4] = {9, 2, 0, 1};
  const std::uint8_t mask_data[4] = {0, 1, 1, 0};
  std::vector<std::int32_t> targets(4);
  train::next_token_targets(tensor_view<const std::int32_t, 2>(ids_data, {1, 4}),
                            tensor_view<const std::uint8_t, 2>(mask_data, {1, 4}), targets);
  CHECK(targets == std::vector<std::int32_t>{2, 0, train::ignore_target, train::ignore_target});
  // row 0 logits (0,0,0): loss ln 3; row 1 (ln 2, 0, 0), target 0: ln 4 − ln 2 = ln 2; rows 2, 3 wild but ignored
  tensor<double, 2> logits({4, 3}), d({4, 3});
  logits(1, 0) = std::log(2.0);
  logits(2, 0) = 100;
  logits(2, 1) = -100;
  logits(3, 2) = 50;
  train::token_nll<sb, double> nll;
  CHECK(nll.forward(sb{}, logits.view(), vector_view<const std::int32_t>(targets.data(), {4})) ==
        Approx(std::log(6.0) / 2).epsilon(1e-14));
  CHECK(nll.counted() == 2);
  nll.backward(sb{}, d.view());
  // ∂/∂z = (softmax − onehot)/2: row 0 (1/6, 1/6, −1/3); row 1 softmax (1/2, 1/4, 1/4) → (−1/4, 1/8, 1/8)
  CHECK(d(0, 0) == Approx(1.0 / 6));
  CHECK(d(0, 2) == Approx(-1.0 / 3));
  CHECK(d(1, 0) == Approx(-0.25));
  CHECK(d(1, 1) == Approx(0.125));
  for (index_t j = 0; j < 3; ++j) CHECK(d(2, j) == 0.0);
  for (index_t j = 0; j < 3; ++j) CHECK(d(3, j) == 0.0);
}

TEST_CASE("KL distillation: value and gradient (full and top-k) against closed forms and central differences",
          "[lm][loss]") {
  const index_t n = 4, v = 7;
  tensor<double, 2> s({n, v}), t({n, v}), d({n, v});
  fill_uniform(s, 1, -2, 2);
  fill_uniform(t, 2, -2, 2);
  const std::vector<std::uint8_t> mask = {1, 0, 1, 1};
  const double tau = GENERATE(1.0, 2.5);
  train::kl_distillation<sb, double> kd(tau);
  // identical logits: KL = 0
  CHECK(kd.forward(sb{}, s.view(), s.view()) == Approx(0.0).margin(1e-14));
  // a hand case: V = 2, teacher (0, 0), student (ln 3, 0) at τ = 1: KL((½,½) ‖ (¾,¼)) = ½ln(2/3) + ½ln 2
  {
    train::kl_distillation<sb, double> k1(1.0);
    const double st[2] = {std::log(3.0), 0.0}, te[2] = {0.0, 0.0};
    CHECK(k1.forward(sb{}, matrix_view<const double>(st, {1, 2}), matrix_view<const double>(te, {1, 2})) ==
          Approx(0.5 * std::log(2.0 / 3.0) + 0.5 * std::log(2.0)).epsilon(1e-13));
  }
  const auto full = [&] { return kd.forward(sb{}, s.view(), t.view(), mask); };
  full();
  std::fill(d.begin(), d.end(), 0.0);
  kd.backward(sb{}, d.view());
  check_gradient("kl full", d.data(), numeric_gradient(s.data(), s.size(), full), 1e-8, 1e-6);
  for (index_t j = 0; j < v; ++j) CHECK(d(1, j) == 0.0);  // masked row

  // top-3 of the teacher
  const index_t k = 3;
  tensor<double, 2> values({n, k});
  tensor<std::int32_t, 2> idx({n, k});
  for (index_t r = 0; r < n; ++r) {
    std::vector<index_t> order(static_cast<std::size_t>(v));
    for (index_t j = 0; j < v; ++j) order[static_cast<std::size_t>(j)] = j;
    std::sort(order.begin(), order.end(), [&](index_t a, index_t b) { return t(r, a) > t(r, b); });
    for (index_t j = 0; j < k; ++j) {
      idx(r, j) = static_cast<std::int32_t>(order[static_cast<std::size_t>(j)]);
      values(r, j) = t(r, order[static_cast<std::size_t>(j)]);
    }
  }
  const auto topk = [&] { return kd.forward_topk(sb{}, s.view(), values.view(), idx.view(), mask); };
  const double l = topk();
  // closed form: Σ over counted rows of Σ_top p_T (ln p_T − ln p_S), times τ²/3
  double expect = 0;
  for (index_t r : {0, 2, 3}) {
    double zt = 0, zs = 0;
    for (index_t j = 0; j < k; ++j) zt += std::exp(values(r, j) / tau);
    for (index_t j = 0; j < v; ++j) zs += std::exp(s(r, j) / tau);
    for (index_t j = 0; j < k; ++j) {
      const double pt = std::exp(values(r, j) / tau) / zt, ps = std::exp(s(r, idx(r, j)) / tau) / zs;
      expect += pt * std::log(pt / ps);
    }
  }
  CHECK(l == Approx(tau * tau * expect / 3).epsilon(1e-12));
  std::fill(d.begin(), d.end(), 0.0);
  kd.backward(sb{}, d.view());
  check_gradient("kl top-k", d.data(), numeric_gradient(s.data(), s.size(), topk), 1e-8, 1e-6);
}

TEST_CASE("warmup + cosine schedule", "[lm][schedule]") {
  const train::warmup_cosine w{.warmup_steps = 10, .total_steps = 110, .min_ratio = 0.1};
  CHECK(w(0) == 0.0);
  CHECK(w(5) == Approx(0.5));
  CHECK(w(10) == Approx(1.0));
  CHECK(w(60) == Approx(0.55));  // half-way: 0.1 + 0.9·½
  CHECK(w(110) == Approx(0.1));
  CHECK(w(500) == Approx(0.1));
  CHECK_THROWS_AS((train::warmup_cosine{.warmup_steps = 5, .total_steps = 3}(0)), slim::error);
}

}  // namespace slim::testing::lm_tests
