// Tests that need the shared data folder ($SLIM_DATA_DIR, default ../shared/data beside the checkout):
// GPT-2 (OpenAI's encoder.json + vocab.bpe) id for id against HF tokenizers and tiktoken on the parity
// corpus, and the real titles and rationales: round trips for every tokenizer, and — when
// $SLIM_TEXT_REAL_REFERENCE names the file tools/text_fixtures/make_reference_ids.py --real-data wrote —
// ids identical to HF's. The program exits 77 (skipped) when the data folder is missing.
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "slim/text/byte_bpe.hpp"
#include "text_test_support.hpp"

using slim::text::byte_bpe;
using slim::text::token_id;
namespace tt = slim::testing::text;

namespace {

std::string gpt2_dir() {
  static const std::string dir = [] {
    const auto data = tt::data_dir();
    std::string d = data ? *data + "/tokenizers/gpt2" : "";
    std::error_code ec;
    if (d.empty() || !std::filesystem::is_regular_file(d + "/encoder.json", ec) ||
        !std::filesystem::is_regular_file(d + "/vocab.bpe", ec)) {
      std::fprintf(stderr, "no shared data folder with tokenizers/gpt2 (set SLIM_DATA_DIR): skipping (exit 77)\n");
      std::_Exit(77);
    }
    return d;
  }();
  return dir;
}
// Decide before any test runs.
const bool data_present = !gpt2_dir().empty();

const byte_bpe& gpt2() {
  static const byte_bpe t = byte_bpe::from_file(gpt2_dir());
  return t;
}

/// Lines of a text file (CR stripped, blank lines skipped).
void add_lines(const std::string& path, std::vector<std::string>& out) {
  std::istringstream in(tt::read_bytes(path));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
}

/// The real texts, in the order tools/text_fixtures/make_reference_ids.py real_texts() reads them.
const std::vector<std::string>& real_texts() {
  static const std::vector<std::string> texts = [] {
    const std::string d = *tt::data_dir();
    std::vector<std::string> t;
    for (const char* rel : {"amazon-games/Games-6k.item", "ml-1m/ml-1m_sasrec_item_map.tsv", "ml-100k/ml-100k.item",
                            "rationales/agent4rec_ml1m/movie_detail.csv"})
      add_lines(d + "/" + rel, t);
    const std::pair<const char*, std::vector<const char*>> jsonl[] = {
        {"rationales/nir_ml100k/rationales.jsonl", {"step1_raw", "step2_raw", "step3_raw"}},
        {"rationales/agent4rec_ml1m/teacher_like.jsonl", {"text"}}};
    for (const auto& [rel, keys] : jsonl) {
      for (const auto& row : tt::read_jsonl(d + "/" + rel))
        for (const char* k : keys)
          if (row.contains(k) && row[k].is_string() && !row[k].get<std::string>().empty())
            t.push_back(row[k].get<std::string>());
    }
    return t;
  }();
  return texts;
}

/// Every text normally; every 4th under AddressSanitizer, where the full 4 MB would take most of a minute.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t real_stride = 4;
#else
constexpr std::size_t real_stride = 1;
#endif

}  // namespace

TEST_CASE("GPT-2: ids identical to HF tokenizers and tiktoken on the corpus", "[text][bpe][parity][data]") {
  REQUIRE(data_present);
  const auto& t = gpt2();
  CHECK(t.vocab_size() == 50257);
  CHECK(t.merge_count() == 50000);
  CHECK(t.bos_id() == 50256);
  CHECK(t.eos_id() == 50256);
  const auto& rows = tt::reference_rows();
  const auto& texts = tt::corpus();
  int bad = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto want = tt::ids_of(rows[i].at("gpt2"));
    const auto got = t.encode(texts[i]);
    if (got != want && ++bad <= 5)
      FAIL_CHECK("#" << i << " \"" << tt::escaped(texts[i]) << "\"\n  got  " << tt::show(got) << "\n  want "
                     << tt::show(want));
    if (t.decode(got) != texts[i] && ++bad <= 5) FAIL_CHECK("round trip #" << i);
  }
  CHECK(bad == 0);
}

TEST_CASE("real titles and rationales round-trip, and match HF when a reference file is given",
          "[text][bpe][parity][data]") {
  const auto& texts = real_texts();
  REQUIRE(texts.size() > 20000);
  const auto llama3 = byte_bpe::from_file(tt::fixture("llama3_bpe.json"));
  const auto qwen2 = byte_bpe::from_file(tt::fixture("qwen2_bpe.json"));
  std::vector<std::vector<token_id>> ids[3];
  std::size_t bytes = 0, failures = 0, used = 0;
  for (std::size_t i = 0; i < texts.size(); i += real_stride, ++used) {
    const auto& text = texts[i];
    bytes += text.size();
    const byte_bpe* toks[3] = {&gpt2(), &llama3, &qwen2};
    for (int k = 0; k < 3; ++k) {
      ids[k].push_back(toks[k]->encode(text));
      if (toks[k]->decode(ids[k].back()) != text && ++failures <= 5) FAIL_CHECK("round trip: " << tt::escaped(text));
    }
  }
  CHECK(failures == 0);
  std::printf("real data: %zu of %zu texts, %zu bytes, %zu GPT-2 tokens\n", used, texts.size(), bytes, [&] {
    std::size_t n = 0;
    for (const auto& v : ids[0]) n += v.size();
    return n;
  }());

  const char* ref = std::getenv("SLIM_TEXT_REAL_REFERENCE");
  if (!ref || !*ref) {
    WARN("SLIM_TEXT_REAL_REFERENCE not set: real-data ids not compared (make_reference_ids.py --real-data)");
    return;
  }
  std::vector<std::string> lines;  // parsed only where compared
  add_lines(ref, lines);
  REQUIRE(lines.size() == texts.size());
  std::size_t mismatch[3] = {0, 0, 0};
  const char* keys[3] = {"gpt2", "llama3", "qwen2"};
  for (std::size_t i = 0, j = 0; i < lines.size(); i += real_stride, ++j) {
    const auto row = tt::json::parse(lines[i]);
    for (int k = 0; k < 3; ++k)
      if (tt::ids_of(row.at(keys[k])) != ids[k][j] && ++mismatch[k] <= 3)
        FAIL_CHECK(keys[k] << " differs on \"" << tt::escaped(texts[i]) << "\"");
  }
  std::printf("real data vs HF: gpt2 %zu, llama3 %zu, qwen2 %zu mismatches of %zu\n", mismatch[0], mismatch[1],
              mismatch[2], used);
  CHECK(mismatch[0] + mismatch[1] + mismatch[2] == 0);
}
