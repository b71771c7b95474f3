// PEFT adapter folders (io/peft.hpp): importing adapters PEFT wrote (tests/data/lm, tools/lm_fixtures/make_fixtures.py)
// reproduces PEFT's logits; export → import is bit-identical; every adapter slim cannot reproduce exactly is refused
// with a message naming the file and the field or tensor. A hidden case ("[.peft_crosscheck]") writes slim's
// export plus slim's logits for make_fixtures.py --check-slim-adapter (docs/peft.md).
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "slim/backend/scalar.hpp"
#include "slim/io/atomic_file.hpp"
#include "slim/io/hf_checkpoint.hpp"
#include "slim/io/json.hpp"
#include "slim/io/llama_config.hpp"
#include "slim/io/peft.hpp"
#include "slim/io/safetensors.hpp"
#include "slim/nn/decoder_lm.hpp"
#include "slim/nn/lora.hpp"

#ifndef SLIM_LM_FIXTURE_DIR
#error "SLIM_LM_FIXTURE_DIR must name tests/data/lm"
#endif

namespace {

using namespace slim;
using be_t = backend::scalar;
using qv_model = nn::decoder_lm<be_t, nn::lora<nn::q_proj, nn::v_proj>>;
using all_model =
    nn::decoder_lm<be_t,
                   nn::lora<nn::q_proj, nn::k_proj, nn::v_proj, nn::o_proj, nn::gate_proj, nn::up_proj, nn::down_proj>>;

std::string fixture(const std::string& rel) {
  const char* env = std::getenv("SLIM_LM_FIXTURE_DIR");
  return std::string(env && *env ? env : SLIM_LM_FIXTURE_DIR) + "/" + rel;
}
const std::string base_dir() { return fixture("untied_gqa3"); }
const std::string qv_dir() { return fixture("untied_gqa3_lora_qv"); }
const std::string all_dir() { return fixture("untied_gqa3_rslora_all"); }

/// A fresh folder under $TMPDIR (or /tmp), removed with everything in it at scope exit.
struct temp_dir {
  std::string path;
  temp_dir() {
    const char* t = std::getenv("TMPDIR");
    std::string tmpl = std::string(t && *t ? t : "/tmp") + "/slim_peft_XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string sub(const std::string& name) const {
    const std::string p = path + "/" + name;
    std::filesystem::create_directories(p);
    return p;
  }
};

double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    num += d * d;
    den += static_cast<double>(b[i]) * static_cast<double>(b[i]);
  }
  return std::sqrt(num / den);
}

template <class Model>
Model make_model(const std::string& adapter_dir, std::uint64_t seed = 0) {
  const nn::decoder_config cfg = io::read_llama_config(base_dir() + "/config.json");
  auto lc = io::to_lora_config<nn::lora_config>(io::read_peft_config(adapter_dir));
  lc.seed = seed;
  Model m(cfg, lc);
  m.load(io::hf_checkpoint(base_dir()));
  return m;
}

/// slim's logits at the rows the reference lists, against the reference's (relative error over the whole tensor).
template <class Model>
double logits_error(Model& m, const std::string& adapter_dir) {
  const io::safetensors_file ref(adapter_dir + "/reference.safetensors");
  const auto ids = ref.to_vector<std::int32_t>("ids");
  const index_t b = ref.info("ids").shape[0], s = ref.info("ids").shape[1], v = m.config().vocab_size;
  tensor<float, 2> logits({b * s, v});
  m.forward(be_t{}, tensor_view<const std::int32_t, 2>(ids.data(), {b, s}), logits.view());
  const auto rows = ref.to_vector<std::int32_t>("logit_rows");
  const auto want = ref.to_vector<float>("logits");
  std::vector<float> got;
  for (std::size_t r = 0; r < rows.size() / 2; ++r)
    for (index_t k = 0; k < v; ++k) got.push_back(logits(rows[2 * r] * s + rows[2 * r + 1], k));
  REQUIRE(got.size() == want.size());
  return rel_error(got, want);
}

/// Every LoRA factor of a model, by name.
template <class Model>
std::map<std::string, std::vector<float>> factors(Model& m) {
  std::map<std::string, std::vector<float>> out;
  m.visit_adapters([&](nn::parameter<float>& p) { out[p.name].assign(p.value.data(), p.value.data() + p.size()); });
  return out;
}

/// Runs `f`, which must throw slim::error; returns its what().
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const error& e) {
    return e.what();
  }
  FAIL("no slim::error was thrown");
  return {};
}

// ----- building bad adapter folders -----

/// An editable copy of a fixture adapter: its config as JSON and its tensors as (shape, float values).
struct adapter_copy {
  io::json config;
  std::map<std::string, std::pair<std::vector<index_t>, std::vector<float>>> tensors;

  explicit adapter_copy(const std::string& dir) : config(io::read_json(dir + "/adapter_config.json")) {
    const io::safetensors_file f(dir + "/adapter_model.safetensors");
    for (const std::string& n : f.names()) tensors[n] = {f.info(n).shape, f.to_vector<float>(n)};
  }
  void transpose(const std::string& name) {
    auto& [shape, v] = tensors.at(name);
    std::vector<float> t(v.size());
    for (index_t i = 0; i < shape[0]; ++i)
      for (index_t j = 0; j < shape[1]; ++j) t[j * shape[0] + i] = v[i * shape[1] + j];
    v = t;
    std::swap(shape[0], shape[1]);
  }
  /// Writes the folder; returns its path.
  std::string write(const std::string& dir) const {
    std::vector<io::tensor_entry> entries;
    for (const auto& [n, t] : tensors) entries.push_back(io::f32_entry(n, t.first, t.second));
    io::write_safetensors(dir + "/adapter_model.safetensors", entries, {{"format", "pt"}});
    io::write_json(dir + "/adapter_config.json", config);
    return dir;
  }
};

const std::string qa0 = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
const std::string qb0 = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
const std::string va1 = "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight";

}  // namespace

TEST_CASE("peft: the fixture adapters' configs read as PEFT wrote them", "[lm][peft]") {
  const io::peft_adapter_config qv = io::read_peft_config(qv_dir());
  CHECK(qv.r == 4);
  CHECK(qv.lora_alpha == 8);
  CHECK_FALSE(qv.use_rslora);
  CHECK(qv.scale() == 2.0);
  CHECK_FALSE(qv.target_is_regex);
  auto targets = qv.target_modules;  // PEFT writes a set: any order
  std::sort(targets.begin(), targets.end());
  CHECK(targets == std::vector<std::string>{"q_proj", "v_proj"});
  CHECK(qv.base_model_name_or_path == "../untied_gqa3");
  const io::peft_adapter_config all = io::read_peft_config(all_dir());
  CHECK(all.r == 8);
  CHECK(all.use_rslora);
  CHECK(std::abs(all.scale() - 4 / std::sqrt(8.0)) < 1e-15);
  CHECK(all.target_modules.size() == 7);
}

TEST_CASE("peft: importing PEFT's q,v LoRA adapter reproduces PEFT's logits", "[lm][peft]") {
  auto m = make_model<qv_model>(qv_dir());
  io::import_peft_adapter(m, qv_dir());
  // The factors are the stored ones, bit for bit.
  const io::safetensors_file f(qv_dir() + "/adapter_model.safetensors");
  index_t n = 0;
  m.visit_adapters([&](nn::parameter<float>& p) {
    const auto want = f.to_vector<float>("base_model.model." + p.name);
    REQUIRE(static_cast<index_t>(want.size()) == p.size());
    CHECK(std::memcmp(want.data(), p.value.data(), want.size() * sizeof(float)) == 0);
    ++n;
  });
  CHECK(n == 8);
  const double e = logits_error(m, qv_dir());
  INFO("relative logit error " << e);
  CHECK(e < 1e-4);
  WARN("[figure] peft import q,v LoRA: logits rel " << e);
}

TEST_CASE("peft: importing PEFT's rsLoRA adapter on all seven projections reproduces PEFT's logits", "[lm][peft]") {
  auto m = make_model<all_model>(all_dir());
  io::import_peft_adapter(m, all_dir());
  const double e = logits_error(m, all_dir());
  INFO("relative logit error " << e);
  CHECK(e < 1e-4);
  WARN("[figure] peft import rsLoRA all: logits rel " << e);
  // Without the adapter (B = 0) the logits differ from PEFT's: the check above can fail.
  m.visit_adapters([](nn::parameter<float>& p) {
    if (p.name.ends_with("lora_B.weight")) std::fill(p.value.data(), p.value.data() + p.size(), 0.0f);
  });
  CHECK(logits_error(m, all_dir()) > 1e-2);
}

TEST_CASE("peft: export then import is bit-identical and PEFT's config fields are written", "[lm][peft]") {
  temp_dir tmp;
  auto m = make_model<all_model>(all_dir());
  io::import_peft_adapter(m, all_dir());
  const std::string out = tmp.path + "/exported";  // created by export
  io::export_peft_adapter(m, out, "../untied_gqa3");

  const io::json c = io::read_json(out + "/adapter_config.json");
  CHECK(c.at("peft_type") == "LORA");
  CHECK(c.at("task_type") == "CAUSAL_LM");
  CHECK(c.at("r") == 8);
  CHECK(c.at("lora_alpha") == 4);
  CHECK(c.at("lora_alpha").is_number_integer());
  CHECK(c.at("use_rslora") == true);
  CHECK(c.at("bias") == "none");
  CHECK(c.at("fan_in_fan_out") == false);
  CHECK(c.at("use_dora") == false);
  CHECK(c.at("base_model_name_or_path") == "../untied_gqa3");
  CHECK(c.at("target_modules") ==
        io::json({"down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"}));

  // Same tensor names, shapes and bytes as PEFT's own file.
  const io::safetensors_file mine(out + "/adapter_model.safetensors"), peft(all_dir() + "/adapter_model.safetensors");
  CHECK(mine.names() == peft.names());
  CHECK(mine.metadata() == peft.metadata());
  for (const std::string& n : peft.names()) {
    INFO(n);
    CHECK(mine.info(n).shape == peft.info(n).shape);
    CHECK(mine.info(n).type == io::dtype::f32);
    const auto a = mine.bytes(n), b = peft.bytes(n);
    REQUIRE(a.size() == b.size());
    CHECK(std::memcmp(a.data(), b.data(), a.size()) == 0);
  }

  // A model with another A initialisation takes the exported factors back exactly.
  auto m2 = make_model<all_model>(out, 12345);
  CHECK(factors(m2) != factors(m));
  io::import_peft_adapter(m2, out);
  CHECK(factors(m2) == factors(m));
}

TEST_CASE("peft: target_modules as a regular expression string follows re.fullmatch", "[lm][peft]") {
  temp_dir tmp;
  const auto with_targets = [&](const std::string& name, const io::json& targets) {
    adapter_copy a(qv_dir());
    a.config["target_modules"] = targets;
    return a.write(tmp.sub(name));
  };
  const auto want = [] {
    auto m = make_model<qv_model>(qv_dir());
    io::import_peft_adapter(m, qv_dir());
    return factors(m);
  }();
  for (const char* rx : {R"(.*\.(q_proj|v_proj))", R"(^model\.layers\.\d+\.self_attn\.(?:q|v)_proj$)",
                         R"(model.layers.[0-9]+.self_attn.[qv]_proj)", R"(.*(q|v)_pro?j)"}) {
    INFO(rx);
    const std::string d = with_targets("rx", rx);
    auto m = make_model<qv_model>(d);
    io::import_peft_adapter(m, d);
    CHECK(factors(m) == want);
  }
  // A plain name as a string must match the whole path (PEFT's rule), so it selects nothing.
  {
    const std::string d = with_targets("plain", "q_proj");
    auto m = make_model<qv_model>(d);
    const std::string msg = error_of([&] { io::import_peft_adapter(m, d); });
    CHECK_THAT(msg, Catch::Contains(d + "/adapter_config.json") && Catch::Contains("field target_modules") &&
                        Catch::Contains("matches no module"));
  }
  // Only layer 0: the model adapts q and v in every layer, so layer 1 is adapted but not targeted.
  {
    const std::string d = with_targets("layer0", R"(model\.layers\.0\.self_attn\.(q|v)_proj)");
    auto m = make_model<qv_model>(d);
    const std::string msg = error_of([&] { io::import_peft_adapter(m, d); });
    CHECK_THAT(msg, Catch::Contains("does not select model.layers.1.self_attn."));
  }
  // Outside the subset slim evaluates.
  for (const char* rx : {R"(.*\.q_proj{1})", R"(.*(?=q)q_proj)", R"(\bq_proj)", R"((a)\1)"}) {
    INFO(rx);
    const std::string d = with_targets("unsupported", rx);
    const std::string msg = error_of([&] { (void)io::read_peft_config(d); });
    CHECK_THAT(msg, Catch::Contains("field target_modules") && Catch::Contains("does not implement"));
  }
}

TEST_CASE("peft: the hand-written regular expressions agree with Python's re.fullmatch", "[lm][peft]") {
  // Expected values worked out by Python's re.fullmatch semantics.
  struct rx_case {
    const char* pattern;
    const char* text;
    bool match;
  };
  const rx_case cases[] = {
      {"abc", "abc", true},
      {"abc", "abcd", false},
      {"a.c", "abc", true},
      {"a.c", "ac", false},
      {"a*", "", true},
      {"a+", "", false},
      {"(ab|a)c", "ac", true},
      {"(ab|a)bc", "abc", true},
      {"(a|ab)(c|bcd)", "abcd", true},
      {"[a-c]+x", "abcx", true},
      {"[^a-c]x", "ax", false},
      {"[^a-c]x", "dx", true},
      {R"(\d+)", "123", true},
      {R"(\d+)", "12a", false},
      {R"(a\.b)", "a.b", true},
      {R"(a\.b)", "axb", false},
      {"(a*)*b", "aaab", true},
      {"(a*)*b", "aaaa", false},
      {"colou?r", "color", true},
      {"colou?r", "colour", true},
      {"x(y|)z", "xz", true},
      {"^a$", "a", true},
      {R"(.*\$)", "a$", true},
      {"[.]x", ".x", true},
      {"[.]x", "ax", false},
      {".*?q", "aqq", true},
      {R"([\w.]+)", "a.b_c", true},
  };
  for (const rx_case& c : cases) {
    INFO(c.pattern << " on \"" << c.text << "\"");
    const auto rx = io::detail::peft::rx_parser(c.pattern, "test").parse();
    CHECK(io::detail::peft::rx_full_match(rx, c.text) == c.match);
  }
}

TEST_CASE("peft: adapter_config.json features slim does not implement are refused, naming the file and field",
          "[lm][peft]") {
  temp_dir tmp;
  struct refusal {
    const char* field;
    io::json value;
    const char* says;
  };
  const refusal cases[] = {
      {"use_dora", true, "DoRA"},
      {"fan_in_fan_out", true, "fan_in_fan_out"},
      {"bias", "lora_only", "does not implement"},
      {"lora_bias", true, "bias"},
      {"modules_to_save", io::json::array({"lm_head"}), "modules_to_save"},
      {"rank_pattern", io::json::object({{"q_proj", 2}}), "rank_pattern"},
      {"alpha_pattern", io::json::object({{"q_proj", 2}}), "alpha_pattern"},
      {"layers_to_transform", io::json::array({0}), "layers_to_transform"},
      {"init_lora_weights", "loftq", "rewrites the base weights"},
      {"init_lora_weights", "pissa_niter_4", "rewrites the base weights"},
      {"peft_type", "IA3", "LoRA adapters only"},
      {"task_type", "SEQ_CLS", "causal LM"},
      {"r", 0, "positive integer"},
      {"r", "4", "positive integer"},
      {"lora_alpha", nullptr, "finite number"},
      {"target_modules", nullptr, "missing"},
      {"target_modules", io::json::array(), "empty list"},
      {"target_modules", 7, "list of module names"},
  };
  int k = 0;
  for (const refusal& c : cases) {
    adapter_copy a(qv_dir());
    a.config[c.field] = c.value;
    const std::string d = a.write(tmp.sub("bad" + std::to_string(k++)));
    INFO(c.field << " = " << c.value.dump());
    const std::string msg = error_of([&] { (void)io::read_peft_config(d); });
    CHECK_THAT(msg, Catch::Contains(d + "/adapter_config.json: field " + c.field + ": ") && Catch::Contains(c.says));
    // import refuses the same way (before touching the model).
    auto m = make_model<qv_model>(qv_dir());
    const auto before = factors(m);
    CHECK(error_of([&] { io::import_peft_adapter(m, d); }) == msg);
    CHECK(factors(m) == before);
  }
  // A malformed file names the file and the line.
  {
    const std::string d = tmp.sub("malformed");
    io::write_file_atomic(d + "/adapter_config.json", "{\"r\": 4,\n \"lora_alpha\": }\n");
    CHECK_THAT(error_of([&] { (void)io::read_peft_config(d); }), Catch::Contains(d + "/adapter_config.json"));
  }
}

TEST_CASE("peft: mis-shaped, missing, extra or unreadable tensors are refused, naming the file and tensor",
          "[lm][peft]") {
  temp_dir tmp;
  auto m = make_model<qv_model>(qv_dir());
  io::import_peft_adapter(m, qv_dir());
  const auto good = factors(m);
  const auto refused = [&](const std::string& d) {
    const std::string msg = error_of([&] { io::import_peft_adapter(m, d); });
    CHECK(factors(m) == good);  // nothing written on failure
    return msg;
  };
  const auto file = [](const std::string& d) { return d + "/adapter_model.safetensors"; };

  SECTION("a transposed A") {
    adapter_copy a(qv_dir());
    a.transpose(qa0);
    const std::string d = a.write(tmp.sub("transposed_a"));
    CHECK_THAT(refused(d), Catch::Contains(file(d) + ": tensor " + qa0 + ": ") && Catch::Contains("(48, 4)") &&
                               Catch::Contains("(4, 48)") && Catch::Contains("transposed"));
  }
  SECTION("a transposed B (v_proj: (16, 4) stored as (4, 16))") {
    adapter_copy a(qv_dir());
    const std::string vb0 = "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight";
    a.transpose(vb0);
    const std::string d = a.write(tmp.sub("transposed_b"));
    CHECK_THAT(refused(d), Catch::Contains(file(d) + ": tensor " + vb0 + ": ") && Catch::Contains("(4, 16)") &&
                               Catch::Contains("(16, 4)") && Catch::Contains("transposed"));
  }
  SECTION("factors of another rank than r says") {
    adapter_copy a(qv_dir());
    auto& [shape, v] = a.tensors.at(qa0);
    shape[0] = 2;
    v.resize(static_cast<std::size_t>(2 * 48));
    const std::string d = a.write(tmp.sub("rank"));
    CHECK_THAT(refused(d), Catch::Contains(file(d) + ": tensor " + qa0 + ": ") && Catch::Contains("(2, 48)") &&
                               Catch::Contains("(4, 48)"));
  }
  SECTION("r differs from the model's rank") {
    adapter_copy a(qv_dir());
    a.config["r"] = 8;
    const std::string d = a.write(tmp.sub("r8"));
    CHECK_THAT(refused(d), Catch::Contains(d + "/adapter_config.json: field r: ") && Catch::Contains("rank 4"));
  }
  SECTION("lora_alpha or use_rslora differ from the model's") {
    adapter_copy a(qv_dir());
    a.config["lora_alpha"] = 16;
    std::string d = a.write(tmp.sub("alpha"));
    CHECK_THAT(refused(d), Catch::Contains("field lora_alpha: "));
    a.config["lora_alpha"] = 8;
    a.config["use_rslora"] = true;
    d = a.write(tmp.sub("rslora"));
    CHECK_THAT(refused(d), Catch::Contains("field use_rslora: "));
  }
  SECTION("a target that matches nothing") {
    adapter_copy a(qv_dir());
    a.config["target_modules"] = {"q_proj", "v_proj", "x_proj"};
    std::string d = a.write(tmp.sub("unknown"));
    (void)d;  // x_proj alone selects nothing; with q and v it adds nothing: PEFT accepts that too
    io::import_peft_adapter(m, d);
    a.config["target_modules"] = {"x_proj"};
    d = a.write(tmp.sub("unknown_only"));
    CHECK_THAT(refused(d), Catch::Contains(d + "/adapter_config.json: field target_modules: ") &&
                               Catch::Contains("x_proj") && Catch::Contains("matches no module"));
  }
  SECTION("a projection the model's Adapter policy does not adapt") {
    adapter_copy a(qv_dir());
    a.config["target_modules"] = {"q_proj", "v_proj", "k_proj"};
    const std::string d = a.write(tmp.sub("k"));
    CHECK_THAT(refused(d), Catch::Contains("field target_modules") && Catch::Contains("does not adapt k_proj") &&
                               Catch::Contains("lora<..., k_proj>"));
  }
  SECTION("a module that is not a projection") {
    adapter_copy a(qv_dir());
    a.config["target_modules"] = {"q_proj", "v_proj", "lm_head"};
    std::string d = a.write(tmp.sub("head"));
    CHECK_THAT(refused(d), Catch::Contains("selects lm_head, which slim cannot adapt"));
    a.config["target_modules"] = {"q_proj", "v_proj", "mlp"};
    d = a.write(tmp.sub("mlp"));
    CHECK_THAT(refused(d), Catch::Contains("selects model.layers.0.mlp, which slim cannot adapt"));
  }
  SECTION("a projection the model adapts that the adapter does not target") {
    auto m1 = make_model<nn::decoder_lm<be_t, nn::lora<nn::q_proj, nn::k_proj, nn::v_proj>>>(qv_dir());
    CHECK_THAT(error_of([&] { io::import_peft_adapter(m1, qv_dir()); }),
               Catch::Contains("does not select model.layers.0.self_attn.k_proj"));
    nn::decoder_lm<be_t> full(io::read_llama_config(base_dir() + "/config.json"));
    CHECK_THAT(error_of([&] { io::import_peft_adapter(full, qv_dir()); }), Catch::Contains("no LoRA adapter"));
  }
  SECTION("a missing tensor") {
    adapter_copy a(qv_dir());
    a.tensors.erase(va1);
    const std::string d = a.write(tmp.sub("missing"));
    CHECK_THAT(refused(d), Catch::Contains(file(d) + ": tensor " + va1 + ": missing"));
  }
  SECTION("an extra tensor (DoRA's magnitude vector, or a factor of an untargeted module)") {
    adapter_copy a(qv_dir());
    const std::string mag = "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector";
    a.tensors[mag] = {{48}, std::vector<float>(48, 1.0f)};
    std::string d = a.write(tmp.sub("dora"));
    CHECK_THAT(refused(d), Catch::Contains(file(d) + ": tensor " + mag + ": ") && Catch::Contains("DoRA"));
    adapter_copy b(qv_dir());
    const std::string ka = "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight";
    b.tensors[ka] = {{4, 48}, std::vector<float>(4 * 48, 0.0f)};
    d = b.write(tmp.sub("extra"));
    CHECK_THAT(refused(d), Catch::Contains(file(d) + ": tensor " + ka + ": "));
  }
  SECTION("an integer factor") {
    adapter_copy a(qv_dir());
    a.write(tmp.sub("ints"));
    const std::string d = tmp.path + "/ints";
    std::vector<io::tensor_entry> entries;
    std::vector<std::vector<std::int32_t>> keep;
    for (const auto& [n, t] : a.tensors) {
      if (n == qb0) {
        keep.emplace_back(t.second.size(), 1);
        entries.push_back(io::entry_of<std::int32_t, 2>(
            n, tensor_view<const std::int32_t, 2>(keep.back().data(), {t.first[0], t.first[1]})));
      } else {
        entries.push_back(io::f32_entry(n, t.first, t.second));
      }
    }
    io::write_safetensors(d + "/adapter_model.safetensors", entries);
    CHECK_THAT(refused(d), Catch::Contains(file(d) + ": tensor " + qb0 + ": stored as I32"));
  }
  SECTION("a truncated safetensors file") {
    const std::string d = tmp.sub("truncated");
    adapter_copy(qv_dir()).write(d);
    const std::string bytes = io::read_file(file(d));
    io::write_file_atomic(file(d), std::string_view(bytes).substr(0, bytes.size() - 100));
    CHECK_THAT(refused(d), Catch::Contains(file(d)));
  }
  SECTION("no adapter_model.safetensors") {
    const std::string d = tmp.sub("nofile");
    io::write_json(d + "/adapter_config.json", adapter_copy(qv_dir()).config);
    CHECK_THAT(refused(d), Catch::Contains(file(d)));
  }
}

TEST_CASE("peft: exporting a model without adapters is refused", "[lm][peft]") {
  temp_dir tmp;
  nn::decoder_lm<be_t> full(io::read_llama_config(base_dir() + "/config.json"));
  CHECK_THAT(error_of([&] { io::export_peft_adapter(full, tmp.path + "/none"); }), Catch::Contains("no LoRA adapter"));
}

// Hidden: writes, into $SLIM_PEFT_EXPORT_DIR/{qv,all}, slim's export of each fixture adapter with every factor
// perturbed deterministically (so the check does not just replay PEFT's own numbers), and slim_logits.safetensors
// (ids, attention_mask, logits (B,S,V)) for make_fixtures.py --check-slim-adapter.
TEST_CASE("peft: export for the PEFT cross-check", "[.peft_crosscheck]") {
  const char* out = std::getenv("SLIM_PEFT_EXPORT_DIR");
  if (out == nullptr || !*out) FAIL("set SLIM_PEFT_EXPORT_DIR");
  const auto run = [&](auto m, const std::string& adapter, const std::string& name) {
    io::import_peft_adapter(m, adapter);
    std::uint32_t k = 0;
    m.visit_adapters([&](nn::parameter<float>& p) {
      for (index_t i = 0; i < p.size(); ++i)
        p.value.data()[i] += 0.05f * static_cast<float>(std::sin(0.7 * static_cast<double>(++k)));
    });
    const std::string dir = std::string(out) + "/" + name;
    io::export_peft_adapter(m, dir, std::filesystem::absolute(base_dir()).string());
    const index_t b = 3, s = 20, v = m.config().vocab_size;
    std::vector<std::int32_t> ids(static_cast<std::size_t>(b * s)), mask(ids.size());
    const index_t lengths[] = {20, 13, 5};
    for (index_t i = 0; i < b; ++i)
      for (index_t t = 0; t < s; ++t) {
        const bool real = t < lengths[i];
        ids[static_cast<std::size_t>(i * s + t)] =
            real ? static_cast<std::int32_t>(1 + (7 * i + 11 * t * t + 3) % (v - 1)) : 0;
        mask[static_cast<std::size_t>(i * s + t)] = real ? 1 : 0;
      }
    tensor<float, 2> logits({b * s, v});
    m.forward(be_t{}, tensor_view<const std::int32_t, 2>(ids.data(), {b, s}), logits.view());
    const io::tensor_entry entries[] = {
        io::entry_of<std::int32_t, 2>("ids", tensor_view<const std::int32_t, 2>(ids.data(), {b, s})),
        io::entry_of<std::int32_t, 2>("attention_mask", tensor_view<const std::int32_t, 2>(mask.data(), {b, s})),
        io::f32_entry("logits", {b, s, v}, std::span<const float>(logits.data(), static_cast<std::size_t>(b * s * v)))};
    io::write_safetensors(dir + "/slim_logits.safetensors", entries);
  };
  run(make_model<qv_model>(qv_dir()), qv_dir(), "qv");
  run(make_model<all_model>(all_dir()), all_dir(), "all");
}
