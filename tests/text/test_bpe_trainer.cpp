// The byte-level BPE trainer: the same vocabulary and merges as HF `tokenizers`' BpeTrainer on the parity
// corpus (fixtures from tools/text_fixtures/check_trained_bpe.py), HF's ids from the trained model, a
// hand-computed run that pins the tie-break, the stopping rules, special tokens, determinism, round trips,
// saving and loading, and the errors.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "slim/core/philox.hpp"
#include "slim/text/bpe_trainer.hpp"
#include "text_test_support.hpp"

using slim::text::bpe_trainer;
using slim::text::bpe_trainer_options;
using slim::text::byte_bpe;
using slim::text::split_pattern;
using slim::text::token_id;
using slim::text::trained_bpe;
namespace tt = slim::testing::text;

namespace {

/// The settings check_trained_bpe.py gives HF for trainer_gpt2_hf.json and trainer_llama3_hf.json.
bpe_trainer_options gpt2_options() { return {.vocab_size = 1000, .pattern = split_pattern::gpt2}; }
bpe_trainer_options llama3_options() {
  return {.vocab_size = 1200,
          .min_frequency = 2,
          .special_tokens = {"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"},
          .pattern = split_pattern::llama3,
          .ignore_merges = true,
          .bos_token = "<|begin_of_text|>"};
}

trained_bpe train_on_corpus(const bpe_trainer_options& o) {
  bpe_trainer t(o);
  for (const auto& s : tt::corpus()) t.feed(s);
  return t.train();
}

/// A model's merges spelled as "left right" strings, in rank order.
std::vector<std::string> spelled_merges(const trained_bpe& m) {
  std::vector<std::string> out;
  for (const auto& [a, b] : m.merges)
    out.push_back(m.tokens[static_cast<std::size_t>(a)] + " " + m.tokens[static_cast<std::size_t>(b)]);
  return out;
}

/// HF's file: vocabulary (spelling -> id) and merges ("left right").
struct hf_model {
  std::vector<std::pair<std::string, token_id>> vocab;
  std::vector<std::string> merges;
};
hf_model read_hf(const std::string& name) {
  const auto j = tt::json::parse(tt::read_bytes(tt::fixture(name)));
  hf_model m;
  for (const auto& [k, v] : j.at("model").at("vocab").items()) m.vocab.emplace_back(k, v.get<token_id>());
  std::sort(m.vocab.begin(), m.vocab.end(), [](const auto& x, const auto& y) { return x.second < y.second; });
  for (const auto& mg : j.at("model").at("merges"))
    m.merges.push_back(mg.is_string() ? mg.get<std::string>()
                                      : mg.at(0).get<std::string>() + " " + mg.at(1).get<std::string>());
  return m;
}

/// Compares a trained model with HF's, reporting the first differences.
void check_same_as_hf(const trained_bpe& mine, const std::string& hf_file) {
  const hf_model hf = read_hf(hf_file);
  REQUIRE(mine.tokens.size() == hf.vocab.size());
  int bad = 0;
  for (std::size_t i = 0; i < hf.vocab.size(); ++i) {
    if (hf.vocab[i].second != static_cast<token_id>(i) || mine.tokens[i] != hf.vocab[i].first) {
      if (++bad <= 5)
        FAIL_CHECK("token " << i << ": slim \"" << tt::escaped(mine.tokens[i]) << "\", HF \""
                            << tt::escaped(hf.vocab[i].first) << "\" (id " << hf.vocab[i].second << ")");
    }
  }
  const auto merges = spelled_merges(mine);
  REQUIRE(merges.size() == hf.merges.size());
  for (std::size_t i = 0; i < merges.size(); ++i)
    if (merges[i] != hf.merges[i] && ++bad <= 10)
      FAIL_CHECK("merge rank " << i << ": slim \"" << tt::escaped(merges[i]) << "\", HF \"" << tt::escaped(hf.merges[i])
                               << "\"");
  CHECK(bad == 0);
}

/// Encodes the corpus and compares with the HF ids under `key` of trainer_ids.jsonl.
int id_mismatches(const byte_bpe& tok, const std::string& key, bool add_special) {
  const auto rows = tt::read_jsonl(tt::fixture("trainer_ids.jsonl"));
  const auto& texts = tt::corpus();
  REQUIRE(rows.size() == texts.size());
  int bad = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto want = tt::ids_of(rows[i].at(key));
    const auto got = tok.encode(texts[i], {.add_special = add_special});
    if (got != want && ++bad <= 5)
      FAIL_CHECK(key << " #" << i << " \"" << tt::escaped(texts[i]) << "\"\n  got  " << tt::show(got) << "\n  want "
                     << tt::show(want));
  }
  return bad;
}

/// A fresh folder under the system temporary directory, removed at scope exit.
struct temp_folder {
  std::filesystem::path path;
  explicit temp_folder(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("slim_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~temp_folder() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::string random_bytes(slim::philox_stream& rng, std::size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng.next_u32() & 0xFF);
  return s;
}

}  // namespace

TEST_CASE("trainer: vocabulary and merges identical to HF's BpeTrainer (GPT-2 split)", "[text][trainer][parity]") {
  const trained_bpe m = train_on_corpus(gpt2_options());
  check_same_as_hf(m, "trainer_gpt2_hf.json");
  CHECK(m.tokens.size() == 1000);
}

TEST_CASE("trainer: vocabulary and merges identical to HF's BpeTrainer (LLaMA-3 split, specials, min_frequency)",
          "[text][trainer][parity]") {
  const trained_bpe m = train_on_corpus(llama3_options());
  check_same_as_hf(m, "trainer_llama3_hf.json");
}

TEST_CASE("trainer: the trained tokenizer gives HF's ids on the corpus", "[text][trainer][parity]") {
  CHECK(id_mismatches(train_on_corpus(gpt2_options()).tokenizer(), "gpt2", false) == 0);
  const byte_bpe llama3 = train_on_corpus(llama3_options()).tokenizer();
  CHECK(id_mismatches(llama3, "llama3_special", true) == 0);  // BOS from the TemplateProcessing
  CHECK(llama3.bos_id() == 0);
  CHECK(llama3.is_special(2));
}

TEST_CASE("trainer: hand-computed merges of \"aaabdaaabac\" pin the tie-break", "[text][trainer]") {
  // Pairs: aa 4, ab 2, then aa·a 2 ties with a·b 2 and the smaller id pair (a, b) wins; afterwards every
  // pair counts 1 and the order is by (left id, right id): a = 64 < d = 67 < aa = 256 < aaab = 258.
  bpe_trainer t({.vocab_size = 300});
  t.feed("aaabdaaabac");
  const trained_bpe m = t.train();
  const std::vector<std::string> want = {"a a", "a b", "aa ab", "a c", "d aaab", "aaab daaab", "aaabdaaab ac"};
  CHECK(spelled_merges(m) == want);
  CHECK(m.tokens.size() == 256 + want.size());
  CHECK(m.tokens[64] == "a");
  CHECK(m.tokens[256] == "aa");
  CHECK(m.tokens.back() == "aaabdaaabac");
  CHECK(m.tokenizer().encode("aaabdaaabac") == std::vector<token_id>{262});
  CHECK(m.tokenizer().encode("aaab") == std::vector<token_id>{258});
}

TEST_CASE("trainer: stops at vocab_size, at min_frequency, and when no pair is left", "[text][trainer]") {
  auto merges_with = [](bpe_trainer_options o) {
    bpe_trainer t(std::move(o));
    t.feed("aaabdaaabac");
    return t.train();
  };
  CHECK(merges_with({.vocab_size = 258}).merges.size() == 2);
  CHECK(merges_with({.vocab_size = 258}).tokens.size() == 258);
  CHECK(merges_with({.vocab_size = 300, .min_frequency = 2}).merges.size() == 3);  // counts 4, 2, 2, then 1
  CHECK(merges_with({.vocab_size = 300, .min_frequency = 5}).merges.empty());
  // Smaller than the alphabet: the alphabet stays whole and nothing is merged (HF does the same).
  const trained_bpe tiny = merges_with({.vocab_size = 10});
  CHECK(tiny.tokens.size() == 256);
  CHECK(tiny.merges.empty());
  // Nothing fed: just the alphabet.
  CHECK(bpe_trainer({.vocab_size = 500}).train().tokens.size() == 256);
}

TEST_CASE("trainer: special tokens come first, once each; the alphabet follows in code point order",
          "[text][trainer]") {
  bpe_trainer t({.vocab_size = 300, .special_tokens = {"<s>", "</s>", "<s>", "<pad>"}, .eos_token = "</s>"});
  t.feed("hello hello <s> hello");
  const trained_bpe m = t.train();
  REQUIRE(m.tokens.size() >= 3 + 256);
  CHECK(m.tokens[0] == "<s>");
  CHECK(m.tokens[1] == "</s>");
  CHECK(m.tokens[2] == "<pad>");
  CHECK(m.tokens[3] == "!");                    // byte 0x21
  CHECK(m.tokens[3 + 93] == "~");               // byte 0x7E
  CHECK(m.tokens[3 + 94] == "\xC2\xA1");        // byte 0xA1 spelled U+00A1
  CHECK(m.tokens[3 + 188] == "\xC4\x80");       // byte 0x00 spelled U+0100
  CHECK(m.tokens[3 + 188 + 32] == "\xC4\xA0");  // byte 0x20 spelled U+0120 'Ġ'
  const byte_bpe tok = m.tokenizer();
  CHECK(tok.is_special(0));
  CHECK(tok.is_special(1));
  CHECK(tok.eos_id() == 1);
  // Special tokens are recognised in text after training, and the EOS template applies with add_special.
  const auto ids = tok.encode("hello<pad>", {.add_special = true});
  REQUIRE(ids.size() >= 3);
  CHECK(ids[ids.size() - 2] == 2);
  CHECK(ids.back() == 1);
}

TEST_CASE("trainer: the result depends on the multiset of sequences, not on their order", "[text][trainer]") {
  std::vector<std::string> texts = tt::corpus();
  bpe_trainer a(gpt2_options()), b(gpt2_options());
  for (const auto& s : texts) a.feed(s);
  slim::philox_stream rng(7);
  for (std::size_t i = texts.size(); i > 1; --i) std::swap(texts[i - 1], texts[rng.next_u32() % i]);
  for (const auto& s : texts) b.feed(s);
  const auto ma = a.train(), mb = b.train();
  CHECK(ma.to_json() == mb.to_json());
  CHECK(a.train().to_json() == ma.to_json());  // train() leaves the counts as they were
}

TEST_CASE("trainer: feed_lines feeds each line with its newline", "[text][trainer]") {
  bpe_trainer a({.vocab_size = 400}), b({.vocab_size = 400});
  a.feed_lines("one two\n  three\n\nfour  \nfive");
  for (const char* s : {"one two\n", "  three\n", "\n", "four  \n", "five"}) b.feed(s);
  CHECK(a.word_count() == b.word_count());
  CHECK(a.train().to_json() == b.train().to_json());
}

TEST_CASE("trainer: any bytes round-trip through a full-alphabet model; a used-bytes model drops the others",
          "[text][trainer]") {
  slim::philox_stream rng(11);
  bpe_trainer t({.vocab_size = 600, .pattern = split_pattern::qwen2});
  for (int i = 0; i < 50; ++i) t.feed(random_bytes(rng, 200));  // ill-formed UTF-8 included
  for (const auto& s : tt::corpus()) t.feed(s);
  const byte_bpe tok = t.train().tokenizer();
  for (int i = 0; i < 200; ++i) {
    const std::string s = random_bytes(rng, static_cast<std::size_t>(rng.next_u32() % 64));
    const auto ids = tok.encode(s);
    INFO(tt::escaped(s));
    CHECK(tok.decode(ids) == s);
  }
  for (const auto& s : tt::corpus()) CHECK(tok.decode(tok.encode(s)) == s);

  bpe_trainer used({.vocab_size = 300, .full_alphabet = false});
  used.feed("abc abc cab");
  const trained_bpe m = used.train();
  REQUIRE(m.tokens.size() > 4);
  const std::vector<std::string> alphabet(m.tokens.begin(), m.tokens.begin() + 4);
  CHECK(alphabet == std::vector<std::string>{"a", "b", "c", "\xC4\xA0"});  // code point order; ' ' is U+0120
  CHECK(std::none_of(m.tokens.begin() + 4, m.tokens.end(), [](const std::string& s) { return s.size() < 2; }));
  const byte_bpe small = m.tokenizer();
  CHECK(small.decode(small.encode("abz")) == "ab");  // HF drops bytes the vocabulary cannot spell
}

TEST_CASE("trainer: saved tokenizer.json and GPT-2 files load back to the same tokenizer", "[text][trainer]") {
  const temp_folder dir("trainer_save");
  const trained_bpe m = train_on_corpus(gpt2_options());
  m.save(dir / "tokenizer.json");
  m.save_gpt2(dir / "gpt2");
  const byte_bpe from_json = byte_bpe::from_file(dir / "tokenizer.json");
  const byte_bpe from_gpt2 = byte_bpe::from_file(dir / "gpt2");
  const byte_bpe direct = m.tokenizer();
  CHECK(from_json.merge_count() == m.merges.size());
  CHECK(from_gpt2.merge_count() == m.merges.size());
  int bad = 0;
  for (const auto& s : tt::corpus()) {
    const auto want = direct.encode(s);
    bad += from_json.encode(s) != want;
    bad += from_gpt2.encode(s) != want;
  }
  CHECK(bad == 0);
  // The committed HF GPT-2 files of the same model agree with slim's.
  CHECK(tt::read_bytes(dir / "gpt2/vocab.bpe") == tt::read_bytes(tt::fixture("trainer_gpt2/vocab.bpe")));
  CHECK_THROWS_AS(train_on_corpus(llama3_options()).save_gpt2(dir / "nope"), slim::error);
}

TEST_CASE("trainer: bad options throw slim::error naming the option", "[text][trainer][errors]") {
  auto message = [](const bpe_trainer_options& o) -> std::string {
    try {
      bpe_trainer t(o);
    } catch (const slim::error& e) {
      return e.what();
    }
    return "(no error)";
  };
  CHECK_THAT(message({.special_tokens = {"<s>", ""}}),
             Catch::Contains("special_tokens[1]") && Catch::Contains("empty"));
  CHECK_THAT(message({.special_tokens = {"\xFF"}}), Catch::Contains("special_tokens[0]") && Catch::Contains("UTF-8"));
  CHECK_THAT(message({.special_tokens = {"<s>"}, .bos_token = "<bos>"}), Catch::Contains("bos_token"));
  CHECK_THAT(message({.vocab_size = bpe_trainer::max_vocab_size + 1}), Catch::Contains("vocab_size"));
  // Nothing fed, no byte alphabet, no specials: an empty vocabulary, which no loader accepts.
  CHECK_THROWS_AS(bpe_trainer({.full_alphabet = false}).train(), slim::error);
  CHECK(bpe_trainer({.special_tokens = {"<s>"}, .full_alphabet = false}).train().tokenizer().vocab_size() == 1);
  trained_bpe broken;
  broken.tokens = {"a"};
  broken.merges = {{0, 5}};
  CHECK_THROWS_AS(broken.to_json(), slim::error);
}
