// load_tokenizer and any_tokenizer: each kind of path reaches the right model and gives the ids its own
// loader gives (HF's ids for the committed GPT-2 files), folders are searched in the documented order,
// files with other names are sniffed, and every failure is a slim::error naming the path.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "slim/text/load.hpp"
#include "text_test_support.hpp"

using slim::text::any_tokenizer;
using slim::text::byte_bpe;
using slim::text::load_tokenizer;
using slim::text::sentencepiece_bpe;
using slim::text::token_id;
using slim::text::wordpiece;
namespace tt = slim::testing::text;

namespace {

/// A fresh folder under the system temporary directory, removed at scope exit.
struct temp_folder {
  std::filesystem::path path;
  explicit temp_folder(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("slim_load_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~temp_folder() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path / name, std::ios::binary) << bytes;
    return (path / name).string();
  }
  std::string copy(const std::string& fixture, const std::string& name) const {
    return write(name, tt::read_bytes(tt::fixture(fixture)));
  }
};

/// Encodes the corpus with both and counts the strings they disagree on (encode, and decode of the ids).
template <class T>
int disagreements(const any_tokenizer& any, const T& direct, bool add_special = false) {
  int bad = 0;
  for (const auto& s : tt::corpus()) {
    const auto want = direct.encode(s, {.add_special = add_special});
    const auto got = any.encode(s, {.add_special = add_special});
    if ((got != want || any.decode(got) != direct.decode(want)) && ++bad <= 3)
      FAIL_CHECK("\"" << tt::escaped(s) << "\"\n  got  " << tt::show(got) << "\n  want " << tt::show(want));
  }
  return bad;
}

std::string error_of(const std::string& path) {
  try {
    load_tokenizer(path);
  } catch (const slim::error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

static_assert(slim::text::Tokenizer<any_tokenizer>);

TEST_CASE("load_tokenizer: a byte-level tokenizer.json is a byte_bpe", "[text][load]") {
  const any_tokenizer t = load_tokenizer(tt::fixture("llama3_bpe.json"));
  CHECK(t.model() == "byte_bpe");
  REQUIRE(t.get_if<byte_bpe>() != nullptr);
  CHECK(t.get_if<wordpiece>() == nullptr);
  const byte_bpe direct = byte_bpe::from_file(tt::fixture("llama3_bpe.json"));
  CHECK(disagreements(t, direct, true) == 0);
  CHECK(t.vocab_size() == direct.vocab_size());
  CHECK(t.bos_id() == direct.bos_id());
  CHECK(t.eos_id() == direct.eos_id());
  CHECK(t.token_to_id("<|begin_of_text|>") == direct.token_to_id("<|begin_of_text|>"));
  CHECK(t.id_to_token(300) == direct.id_to_token(300));
  CHECK(t.is_special(*direct.bos_id()));
  CHECK(t.decode_piece(300) == direct.decode_piece(300));
}

TEST_CASE("load_tokenizer: GPT-2 files (folder, encoder.json or vocab.bpe) give HF's ids", "[text][load]") {
  const auto rows = tt::read_jsonl(tt::fixture("trainer_ids.jsonl"));
  const auto& texts = tt::corpus();
  REQUIRE(rows.size() == texts.size());
  for (const std::string& path :
       {tt::fixture("trainer_gpt2"), tt::fixture("trainer_gpt2/encoder.json"), tt::fixture("trainer_gpt2/vocab.bpe")}) {
    INFO(path);
    const any_tokenizer t = load_tokenizer(path);
    CHECK(t.model() == "byte_bpe");
    int bad = 0;
    for (std::size_t i = 0; i < texts.size(); ++i) bad += t.encode(texts[i]) != tt::ids_of(rows[i].at("gpt2"));
    CHECK(bad == 0);
  }
}

TEST_CASE("load_tokenizer: tokenizer.model is SentencePiece, vocab.txt and WordPiece tokenizer.json are WordPiece",
          "[text][load]") {
  const any_tokenizer spm = load_tokenizer(tt::fixture("spm_tiny_fallback.model"));
  CHECK(spm.model() == "sentencepiece_bpe");
  CHECK(disagreements(spm, sentencepiece_bpe::from_file(tt::fixture("spm_tiny_fallback.model")), true) == 0);

  const any_tokenizer vocab = load_tokenizer(tt::fixture("wordpiece_vocab.txt"));
  CHECK(vocab.model() == "wordpiece");
  CHECK(disagreements(vocab, wordpiece::from_file(tt::fixture("wordpiece_vocab.txt")), true) == 0);

  const any_tokenizer json = load_tokenizer(tt::fixture("wordpiece_small.json"));
  CHECK(json.model() == "wordpiece");
  CHECK(disagreements(json, wordpiece::from_file(tt::fixture("wordpiece_small.json")), true) == 0);
}

TEST_CASE("load_tokenizer: a folder is searched in order tokenizer.json, tokenizer.model, GPT-2 files, vocab.txt",
          "[text][load]") {
  const temp_folder dir("order");
  const std::string d = dir.path.string();
  dir.copy("wordpiece_vocab.txt", "vocab.txt");
  CHECK(load_tokenizer(d).model() == "wordpiece");
  dir.copy("trainer_gpt2/encoder.json", "encoder.json");
  dir.copy("trainer_gpt2/vocab.bpe", "vocab.bpe");
  CHECK(load_tokenizer(d).model() == "byte_bpe");
  dir.copy("spm_tiny_fallback.model", "tokenizer.model");
  CHECK(load_tokenizer(d).model() == "sentencepiece_bpe");
  dir.copy("qwen2_bpe.json", "tokenizer.json");
  const any_tokenizer t = load_tokenizer(d);
  CHECK(t.model() == "byte_bpe");
  CHECK(disagreements(t, byte_bpe::from_file(tt::fixture("qwen2_bpe.json"))) == 0);
  // A SentencePiece-style BPE tokenizer.json (no ByteLevel decoder) defers to the tokenizer.model beside it.
  auto j = tt::json::parse(tt::read_bytes(tt::fixture("qwen2_bpe.json")));
  j["decoder"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}};
  dir.write("tokenizer.json", j.dump());
  CHECK(load_tokenizer(d).model() == "sentencepiece_bpe");
  CHECK(load_tokenizer(dir / "tokenizer.json").model() == "sentencepiece_bpe");
}

TEST_CASE("load_tokenizer: a file with another name is sniffed", "[text][load]") {
  const temp_folder dir("sniff");
  CHECK(load_tokenizer(dir.copy("llama3_bpe.json", "tok.bin")).model() == "byte_bpe");
  CHECK(load_tokenizer(dir.copy("wordpiece_small.json", "bert")).model() == "wordpiece");
  CHECK(load_tokenizer(dir.copy("spm_tiny_fallback.model", "llama.tok")).model() == "sentencepiece_bpe");
  CHECK(load_tokenizer(dir.copy("wordpiece_vocab.txt", "vocab")).model() == "wordpiece");
}

TEST_CASE("any_tokenizer: works wherever a Tokenizer does (stream_decoder)", "[text][load]") {
  const any_tokenizer t = load_tokenizer(tt::fixture("trainer_gpt2_hf.json"));
  slim::text::stream_decoder<any_tokenizer> dec(t);
  for (const auto& s : tt::corpus()) {
    std::string out;
    for (const token_id id : t.encode(s)) out += dec.push(id);
    out += dec.finish();
    CHECK(out == s);
  }
}

TEST_CASE("load_tokenizer: failures are slim::error naming the path and the field", "[text][load][errors]") {
  const temp_folder dir("errors");
  const std::string missing = dir / "missing.json";
  CHECK_THAT(error_of(missing), Catch::Contains(missing) && Catch::Contains("no such file"));
  const temp_folder empty("empty");
  CHECK_THAT(error_of(empty.path.string()), Catch::Contains(empty.path.string()) && Catch::Contains("folder holds no"));
  const std::string lone = dir.copy("trainer_gpt2/encoder.json", "encoder.json");
  CHECK_THAT(error_of(lone), Catch::Contains(lone) && Catch::Contains("vocab.bpe"));
  const std::string unigram = dir.write("unigram.json", R"({"model": {"type": "Unigram", "vocab": []}})");
  CHECK_THAT(error_of(unigram),
             Catch::Contains(unigram) && Catch::Contains("model.type") && Catch::Contains("Unigram"));
  const std::string bare = dir.write("vocab_only.json", R"({"a": 0, "b": 1})");
  CHECK_THAT(error_of(bare), Catch::Contains(bare) && Catch::Contains("model"));
  const std::string broken = dir.write("broken.json", R"({"model": {"type": "BPE", )");
  CHECK_THAT(error_of(broken), Catch::Contains(broken) && Catch::Contains("line 1, column"));
  const std::string overflow = dir.write("overflow.json", R"({"model": {"type": "BPE", "vocab": {"a": 4e234567}}})");
  CHECK_THAT(error_of(overflow), Catch::Contains(overflow) && Catch::Contains("overflow"));  // nlohmann's out_of_range
  const std::string nothing = dir.write("nothing", "");
  CHECK_THAT(error_of(nothing), Catch::Contains(nothing) && Catch::Contains("empty"));
  // Errors of the model loaders come through unchanged (file and field).
  auto j = tt::json::parse(tt::read_bytes(tt::fixture("llama3_bpe.json")));
  j["model"]["merges"][3] = 17;
  const std::string bad_merge = dir.write("bad_merge.json", j.dump());
  CHECK_THAT(error_of(bad_merge), Catch::Contains(bad_merge) && Catch::Contains("model.merges[3]"));
  const std::string truncated =
      dir.write("cut.model", tt::read_bytes(tt::fixture("spm_tiny_fallback.model")).substr(0, 100));
  CHECK_THAT(error_of(truncated), Catch::Contains(truncated));
  CHECK_THROWS_AS(load_tokenizer(dir.write("x.txt", "[PAD]\n\n[UNK]\n")), slim::error);
}
