// Parity of nn::decoder_lm (scalar and simd<avx512bw>) with transformers' LlamaForCausalLM and PEFT LoRA, on the
// fixtures tools/lm_fixtures/make_fixtures.py wrote into tests/data/lm (see docs/lm_parity.md): logits, loss, LoRA
// gradients, greedy continuations and 5-step AdamW loss traces, each against float64 references.
// Compiled with AVX-512 flags (as slim_tests_ops_avx512); exits 77 on a CPU without AVX-512.
#include "support/arch_guard.hpp"
static const bool slim_cpu_ok = slim::testing::require_cpu("avx512f", "avx512bw", "avx512dq", "avx512vl");

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "slim/backend/scalar.hpp"
#include "slim/backend/simd.hpp"
#include "slim/io/hf_checkpoint.hpp"
#include "slim/io/llama_config.hpp"
#include "slim/io/peft.hpp"
#include "slim/io/safetensors.hpp"
#include "slim/nn/decoder_lm.hpp"
#include "slim/nn/generate.hpp"
#include "slim/nn/lora.hpp"
#include "slim/train/adam.hpp"

#ifndef SLIM_LM_FIXTURE_DIR
#error "SLIM_LM_FIXTURE_DIR must name tests/data/lm"
#endif

namespace {

using namespace slim;
using simd512 = backend::simd<xsimd::avx512bw>;

// The tolerances on ||a - b|| / ||b|| over the whole tensor.
constexpr double logits_tol = 1e-4;
constexpr double grad_tol = 1e-3;
constexpr double loss_tol = 1e-4;

/// tests/data/lm, or $SLIM_LM_FIXTURE_DIR when set (fixtures regenerated elsewhere).
std::string fixture(const std::string& rel) {
  const char* env = std::getenv("SLIM_LM_FIXTURE_DIR");
  return std::string(env && *env ? env : SLIM_LM_FIXTURE_DIR) + "/" + rel;
}

double rel_error(const float* a, const float* b, std::size_t n) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    num += d * d;
    den += static_cast<double>(b[i]) * static_cast<double>(b[i]);
  }
  return std::sqrt(num) / std::sqrt(den);
}

/// One case's reference dump.
struct reference {
  io::safetensors_file file;
  explicit reference(const std::string& path) : file(path) {}
  index_t dim(std::string_view name, std::size_t i) const { return file.info(name).shape.at(i); }
  std::vector<std::int32_t> ints(std::string_view name) const { return file.to_vector<std::int32_t>(name); }
  std::vector<float> floats(std::string_view name) const { return file.to_vector<float>(name); }
  float scalar(std::string_view name) const { return floats(name).at(0); }
};

/// Reads every base parameter from the checkpoint by its HF name, and checks that the checkpoint holds nothing
/// slim would ignore (e.g. a bias slim's block does not have).
template <class Model>
void load_base(Model& m, const std::string& dir) {
  const io::hf_checkpoint ckpt(dir);
  std::set<std::string> used;
  if constexpr (requires { m.load(ckpt); }) {
    m.load(ckpt);
    m.visit_base_parameters([&](nn::parameter<float>& p) { used.insert(p.name); });
  } else {
    m.visit_base_parameters([&](nn::parameter<float>& p) {
      if (p.rank == 2)
        ckpt.read(p.name, p.matrix());
      else
        ckpt.read(p.name, p.vector());
      used.insert(p.name);
    });
  }
  for (const std::string& name : ckpt.names()) {
    INFO(dir << ": checkpoint tensor " << name);
    CHECK(used.count(name) == 1);
  }
}

/// The fixtures' loss: labels = ids with −100 on padding, HF shift (position t predicts ids[t+1] when that token
/// is real), mean NLL over the counted positions — in double — and its gradient with respect to the logits.
double masked_nll(matrix_view<const float> logits, const std::vector<std::int32_t>& ids,
                  const std::vector<std::int32_t>& mask, index_t b, index_t s, tensor<float, 2>* dlogits) {
  const index_t v = logits.extent(1);
  double total = 0;
  index_t count = 0;
  for (index_t i = 0; i < b; ++i)
    for (index_t t = 0; t + 1 < s; ++t)
      if (mask[static_cast<std::size_t>(i * s + t + 1)]) ++count;
  if (dlogits) *dlogits = tensor<float, 2>({b * s, v});
  for (index_t i = 0; i < b; ++i)
    for (index_t t = 0; t + 1 < s; ++t) {
      if (!mask[static_cast<std::size_t>(i * s + t + 1)]) continue;
      const index_t row = i * s + t;
      const std::int32_t label = ids[static_cast<std::size_t>(i * s + t + 1)];
      double mx = -INFINITY;
      for (index_t k = 0; k < v; ++k) mx = std::max(mx, static_cast<double>(logits(row, k)));
      double z = 0;
      for (index_t k = 0; k < v; ++k) z += std::exp(static_cast<double>(logits(row, k)) - mx);
      total += mx + std::log(z) - static_cast<double>(logits(row, label));
      if (dlogits) {
        for (index_t k = 0; k < v; ++k) {
          const double p = std::exp(static_cast<double>(logits(row, k)) - mx) / z;
          (*dlogits)(row, k) = static_cast<float>((p - (k == label ? 1.0 : 0.0)) / static_cast<double>(count));
        }
      }
    }
  return total / static_cast<double>(count);
}

/// The batch of a reference dump and the model's loss on it.
struct batch {
  std::vector<std::int32_t> ids, mask;
  index_t b = 0, s = 0;
  explicit batch(const reference& ref)
      : ids(ref.ints("ids")), mask(ref.ints("attention_mask")), b(ref.dim("ids", 0)), s(ref.dim("ids", 1)) {}
  tensor_view<const std::int32_t, 2> view() const { return {ids.data(), {b, s}}; }

  template <class Backend, class Model>
  double loss(const Backend& be, Model& m, tensor<float, 2>& logits, bool with_grad) {
    logits = tensor<float, 2>({b * s, m.config().vocab_size});
    m.forward(be, view(), logits.view());
    tensor<float, 2> d;
    const double l = masked_nll(logits.view(), ids, mask, b, s, with_grad ? &d : nullptr);
    if (with_grad) m.backward(be, d.view());
    return l;
  }
};

template <class Backend, class Model>
void check_logits_and_loss(const Backend& be, Model& m, const reference& ref, bool with_grad) {
  batch bt(ref);
  tensor<float, 2> logits;
  const double loss = bt.loss(be, m, logits, with_grad);
  const auto rows = ref.ints("logit_rows");
  const auto want = ref.floats("logits");
  const index_t v = m.config().vocab_size, n = ref.dim("logit_rows", 0);
  REQUIRE(ref.dim("logits", 1) == v);
  std::vector<float> got(static_cast<std::size_t>(n * v));
  for (index_t r = 0; r < n; ++r) {
    const index_t row = rows[static_cast<std::size_t>(2 * r)] * bt.s + rows[static_cast<std::size_t>(2 * r + 1)];
    for (index_t k = 0; k < v; ++k) got[static_cast<std::size_t>(r * v + k)] = logits(row, k);
  }
  const double e = rel_error(got.data(), want.data(), got.size());
  const double want_loss = ref.scalar("loss");
  const double le = std::abs(loss - want_loss) / std::abs(want_loss);
  INFO(ref.file.path() << ": " << n << " logit rows, relative error " << e << "; loss " << loss << " vs " << want_loss
                       << " (relative " << le << ")");
  CHECK(e < logits_tol);
  CHECK(le < loss_tol);
  WARN("[figure] " << ref.file.path() << " logits rel " << e << ", loss rel " << le);
}

/// Greedy continuation of each prompt, batched (left-padded, KV cache) and one by one.
template <class Backend, class Model>
void check_greedy(const Backend& be, Model& m, const reference& ref) {
  std::vector<std::vector<std::int32_t>> prompts, want;
  for (int i = 0; ref.file.contains("gen." + std::to_string(i) + ".prompt"); ++i) {
    prompts.push_back(ref.ints("gen." + std::to_string(i) + ".prompt"));
    want.push_back(ref.ints("gen." + std::to_string(i) + ".output"));
  }
  REQUIRE(prompts.size() >= 2);
  nn::generation_config cfg;
  cfg.max_new_tokens = static_cast<index_t>(want[0].size());
  const auto batched = nn::generate(m, be, std::span<const std::vector<std::int32_t>>(prompts), cfg);
  REQUIRE(batched.size() == prompts.size());
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    INFO(ref.file.path() << ": greedy prompt " << i << " (length " << prompts[i].size() << "), batched");
    CHECK(batched[i].tokens == want[i]);
    if (prompts[i].size() > 64) continue;  // the long prompt's prefill is the slow part on scalar: batched only
    const auto one = nn::generate(m, be, std::span<const std::vector<std::int32_t>>(&prompts[i], 1), cfg);
    INFO("alone");
    CHECK(one.at(0).tokens == want[i]);
  }
}

/// Five AdamW steps on the reference batch: the loss before each step and after the last.
template <class Backend, class Model>
void check_adamw(const Backend& be, Model& m, const reference& ref, const std::string& prefix) {
  backend::adam_config cfg;
  cfg.lr = 1e-2f;
  cfg.beta1 = 0.9f;
  cfg.beta2 = 0.999f;
  cfg.eps = 1e-8f;
  cfg.weight_decay = 0.01f;
  train::adam<Backend> opt(cfg, train::adam_variant::adamw);
  opt.attach(m);
  batch bt(ref);
  tensor<float, 2> logits;
  const auto want = ref.floats(prefix + ".losses");
  for (std::size_t k = 0; k < want.size(); ++k) {
    nn::zero_grad(m);
    const double l = bt.loss(be, m, logits, true);
    INFO(ref.file.path() << ": " << prefix << " step " << k << " loss " << l << " vs " << want[k]);
    CHECK(std::abs(l - want[k]) / std::abs(static_cast<double>(want[k])) < loss_tol);
    opt.step(be);
  }
  const double final_loss = bt.loss(be, m, logits, false);
  const double want_final = ref.scalar(prefix + ".final_loss");
  const double e = std::abs(final_loss - want_final) / std::abs(want_final);
  INFO(ref.file.path() << ": " << prefix << " loss after " << want.size() << " steps " << final_loss << " vs "
                       << want_final);
  CHECK(e < loss_tol);
  WARN("[figure] " << ref.file.path() << " " << prefix << " final loss rel " << e);
}

/// The factors of a PEFT folder read by key, whatever the model's scale (for the rsLoRA control, which
/// import_peft_adapter rightly refuses).
template <class Model>
void import_factors_only(Model& m, const std::string& dir) {
  const io::safetensors_file f(dir + "/adapter_model.safetensors");
  m.visit_adapters([&](nn::parameter<float>& p) { f.read("base_model.model." + p.name, p.matrix()); });
}

/// With $SLIM_LM_EXPORT_DIR set, writes the adapter after the AdamW steps with io::export_peft_adapter into
/// $SLIM_LM_EXPORT_DIR/<case>, beside slim_logits.safetensors (ids, attention_mask, logits (B,S,V) of the reference
/// batch), for `make_fixtures.py --check-slim-adapter` to load into PEFT.
template <class Model>
void export_trained(Model& m, const reference& ref, const std::string& name, const std::string& base) {
  const char* env = std::getenv("SLIM_LM_EXPORT_DIR");
  if (!env || !*env) return;
  const std::string out = std::string(env) + "/" + name;
  std::filesystem::create_directories(out);
  io::export_peft_adapter(m, out, std::filesystem::absolute(base).string());
  batch bt(ref);
  tensor<float, 2> logits({bt.b * bt.s, m.config().vocab_size});
  m.forward(backend::scalar{}, bt.view(), logits.view());
  const auto bytes = [](const std::vector<std::int32_t>& v) { return std::as_bytes(std::span<const std::int32_t>(v)); };
  const std::vector<io::tensor_entry> entries = {
      {"ids", io::dtype::i32, {bt.b, bt.s}, bytes(bt.ids)},
      {"attention_mask", io::dtype::i32, {bt.b, bt.s}, bytes(bt.mask)},
      io::f32_entry("logits", {bt.b, bt.s, m.config().vocab_size},
                    std::span<const float>(logits.data(), static_cast<std::size_t>(logits.size())))};
  io::write_safetensors(out + "/slim_logits.safetensors", entries);
  WARN("exported the trained adapter and its logits to " << out);
}

template <class Backend, class Adapter>
void check_lora_case(const std::string& name) {
  const Backend be;
  const std::string dir = fixture(name);
  const io::peft_adapter_config pcfg = io::read_peft_config(dir);
  REQUIRE(pcfg.base_model_name_or_path.starts_with("../"));
  const std::string base = fixture(pcfg.base_model_name_or_path.substr(3));
  const nn::decoder_config cfg = io::read_llama_config(base + "/config.json");
  const auto lcfg = io::to_lora_config<nn::lora_config>(pcfg);
  const reference ref(dir + "/reference.safetensors");

  nn::decoder_lm<Backend, Adapter> m(cfg, lcfg);
  load_base(m, base);
  io::import_peft_adapter(m, dir);
  nn::zero_grad(m);
  check_logits_and_loss(be, m, ref, true);
  index_t factors = 0;
  double worst = 0;
  m.visit_adapters([&](nn::parameter<float>& p) {
    const std::string key = "grad.base_model.model." + p.name;
    const auto want = ref.floats(key);
    REQUIRE(p.has_grad());
    REQUIRE(static_cast<index_t>(want.size()) == p.size());
    const double e = rel_error(p.grad.data(), want.data(), want.size());
    INFO(dir << ": gradient of " << p.name << " relative error " << e);
    CHECK(e < grad_tol);
    worst = std::max(worst, e);
    ++factors;
  });
  WARN("[figure] " << dir << " worst LoRA gradient rel " << worst << " over " << factors << " factors");
  index_t stored = 0;
  for (const std::string& k : ref.file.names()) stored += k.starts_with("grad.") ? 1 : 0;
  CHECK(factors == stored);
  check_adamw(be, m, ref, "adamw");
  if constexpr (std::is_same_v<Backend, backend::scalar>) export_trained(m, ref, name, base);

  if (lcfg.use_rslora) {  // control: the same factors scaled by alpha/r instead of alpha/sqrt(r) must not pass
    nn::lora_config plain = lcfg;
    plain.use_rslora = false;
    nn::decoder_lm<Backend, Adapter> wrong(cfg, plain);
    load_base(wrong, base);
    import_factors_only(wrong, dir);
    batch bt(ref);
    tensor<float, 2> a, b;
    bt.loss(be, wrong, a, false);
    nn::decoder_lm<Backend, Adapter> fresh(cfg, lcfg);
    load_base(fresh, base);
    io::import_peft_adapter(fresh, dir);
    bt.loss(be, fresh, b, false);
    CHECK(rel_error(a.data(), b.data(), static_cast<std::size_t>(a.size())) > 100 * logits_tol);
  }
}

template <class Backend>
void check_base_case(const std::string& name, bool full_ft) {
  const Backend be;
  const std::string dir = fixture(name);
  const nn::decoder_config cfg = io::read_llama_config(dir + "/config.json");
  const reference ref(dir + "/reference.safetensors");
  nn::decoder_lm<Backend> m(cfg);
  load_base(m, dir);
  check_logits_and_loss(be, m, ref, false);
  check_greedy(be, m, ref);
  if (full_ft) check_adamw(be, m, ref, "full_ft");
}

}  // namespace

TEMPLATE_TEST_CASE("parity: untied GQA (6 on 2 heads) logits, loss, greedy", "[lm][parity]", backend::scalar, simd512) {
  check_base_case<TestType>("untied_gqa3", false);
}

TEMPLATE_TEST_CASE("parity: tied head with attention bias, logits, greedy, full fine-tuning AdamW", "[lm][parity]",
                   backend::scalar, simd512) {
  check_base_case<TestType>("tied_bias", true);
}

TEMPLATE_TEST_CASE("parity: Qwen2 (q/k/v bias, tied head) logits, greedy, full fine-tuning AdamW", "[lm][parity]",
                   backend::scalar, simd512) {
  check_base_case<TestType>("qwen2_tied", true);
}

TEMPLATE_TEST_CASE("parity: Llama-3 rope_scaling past 2048 positions", "[lm][parity]", backend::scalar, simd512) {
  check_base_case<TestType>("llama3_rope", false);
}

TEMPLATE_TEST_CASE("parity: PEFT LoRA r=4 on q,v — logits, gradients, AdamW", "[lm][parity][lora]", backend::scalar,
                   simd512) {
  check_lora_case<TestType, nn::lora<nn::q_proj, nn::v_proj>>("untied_gqa3_lora_qv");
}

TEMPLATE_TEST_CASE("parity: PEFT rsLoRA on every projection — logits, gradients, AdamW", "[lm][parity][lora]",
                   backend::scalar, simd512) {
  check_lora_case<TestType,
                  nn::lora<nn::q_proj, nn::k_proj, nn::v_proj, nn::o_proj, nn::gate_proj, nn::up_proj, nn::down_proj>>(
      "untied_gqa3_rslora_all");
}
