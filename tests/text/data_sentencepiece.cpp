// SentencePiece BPE against the `sentencepiece` library on the real LLaMA / Llama-2 tokenizer.model
// ($SLIM_DATA_DIR/tokenizers/llama, read at test time, never copied): ids identical on the whole parity
// corpus (tests/data/text/spm_llama2_ids.jsonl, tools/text_fixtures/make_spm_reference.py), decode equal to
// sentencepiece's decode, and round trips wherever sentencepiece round-trips. Part of slim_tests_text_data,
// which exits 77 without the data folder.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "slim/text/sentencepiece.hpp"
#include "text_test_support.hpp"

using slim::text::sentencepiece_bpe;
using slim::text::token_id;
namespace tt = slim::testing::text;

namespace {

const sentencepiece_bpe& llama2() {
  static const sentencepiece_bpe t = [] {
    const auto data = tt::data_dir();
    REQUIRE(data);  // slim_tests_text_data exits 77 before any test when the folder is missing
    const std::string path = *data + "/tokenizers/llama/tokenizer.model";
    INFO("loading " << path);
    REQUIRE(std::filesystem::is_regular_file(path));
    return sentencepiece_bpe::from_file(path);
  }();
  return t;
}

struct spm_reference {
  tt::json header;
  std::vector<tt::json> rows;
};

const spm_reference& reference() {
  static const spm_reference ref = [] {
    spm_reference r;
    for (auto& row : tt::read_jsonl(tt::fixture("spm_llama2_ids.jsonl"))) {
      if (row.contains("header"))
        r.header = row.at("header");
      else
        r.rows.push_back(std::move(row));
    }
    return r;
  }();
  return ref;
}

}  // namespace

TEST_CASE("sentencepiece LLaMA-2: model facts match the sentencepiece library", "[text][spm][data]") {
  const auto& t = llama2();
  const auto& h = reference().header;
  CHECK(t.vocab_size() == h.at("vocab_size").get<std::size_t>());
  REQUIRE(t.bos_id());
  REQUIRE(t.eos_id());
  CHECK(*t.bos_id() == h.at("bos").get<token_id>());
  CHECK(*t.eos_id() == h.at("eos").get<token_id>());
  CHECK(t.unk_id() == h.at("unk").get<token_id>());
  CHECK(t.byte_fallback());
  CHECK(t.add_dummy_prefix());
  CHECK_FALSE(t.remove_extra_whitespaces());
  CHECK(t.id_to_token(1) == "<s>");
  CHECK(t.id_to_token(13) == "<0x0A>");
  CHECK(t.decode_piece(13) == "\n");
  CHECK(t.token_to_id("\xE2\x96\x81"
                      "Hello") == token_id{15043});
  CHECK(t.is_special(1));
  CHECK_FALSE(t.is_special(15043));
}

TEST_CASE("sentencepiece LLaMA-2: ids identical to sentencepiece on the whole corpus", "[text][spm][data]") {
  const auto& t = llama2();
  const auto& corpus = tt::corpus();
  const auto& rows = reference().rows;
  REQUIRE(rows.size() == corpus.size());
  std::size_t same = 0, decoded_same = 0, trips = 0, ref_trips = 0;
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    const std::string& text = corpus[i];
    const auto expected = tt::ids_of(rows[i].at("ids"));
    const auto got = t.encode(text);
    INFO("corpus[" << i << "] " << tt::escaped(text));
    CHECK(tt::show(got) == tt::show(expected));
    same += got == expected;
    const std::string decoded = t.decode(expected);
    const std::string want = rows[i].contains("decoded") ? rows[i].at("decoded").get<std::string>() : text;
    CHECK(tt::escaped(decoded) == tt::escaped(want));
    decoded_same += decoded == want;
    if (rows[i].at("roundtrip").get<bool>()) {
      ++ref_trips;
      CHECK(tt::escaped(t.decode(got)) == tt::escaped(text));
      trips += t.decode(got) == text;
    }
  }
  WARN("sentencepiece LLaMA-2 parity: " << same << "/" << corpus.size() << " ids identical, " << decoded_same
                                        << " decodes identical, " << trips << "/" << ref_trips << " round trips");
  CHECK(same == corpus.size());
}

TEST_CASE("sentencepiece LLaMA-2: special tokens and streaming", "[text][spm][data]") {
  const auto& t = llama2();
  const auto plain = t.encode("Hello world");
  CHECK(plain == std::vector<token_id>{15043, 3186});
  const auto with = t.encode("Hello world", {.add_special = true});
  REQUIRE(with.size() == 3);
  CHECK(with[0] == 1);
  CHECK(t.decode(with, {.skip_special = true}) == "Hello world");
  // "<s>" in the text is text, as in sentencepiece
  CHECK(t.encode("<s>") == std::vector<token_id>{529, 29879, 29958});
  // byte fallback: a character outside the vocabulary becomes its UTF-8 bytes
  const auto emoji = t.encode("\xF0\x9F\xA6\x99");  // U+1F999
  std::vector<token_id> bytes;
  for (const char* p : {"<0xF0>", "<0x9F>", "<0xA6>", "<0x99>"}) bytes.push_back(*t.token_to_id(p));
  REQUIRE(emoji.size() == 5);
  CHECK(std::vector<token_id>(emoji.begin() + 1, emoji.end()) == bytes);
  // stream decoding: pieces concatenate; only the dummy-prefix space differs from decode
  const std::string text = "Caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\xA6\x99!";
  slim::text::stream_decoder<sentencepiece_bpe> sd(t);
  std::string streamed;
  for (const token_id id : t.encode(text)) streamed += sd.push(id);
  streamed += sd.finish();
  CHECK(streamed == " " + text);
  CHECK(t.decode(t.encode(text)) == text);
}

TEST_CASE("sentencepiece LLaMA-2: ill-formed UTF-8, space runs and long runs as sentencepiece", "[text][spm][data]") {
  const auto& t = llama2();
  const auto rows = tt::read_jsonl(tt::fixture("spm_llama2_bytes.jsonl"));
  REQUIRE(rows.size() >= 20);
  for (const auto& row : rows) {
    const std::string hex = row.at("hex").get<std::string>();
    std::string bytes;
    for (std::size_t k = 0; k + 1 < hex.size(); k += 2)
      bytes += static_cast<char>(std::stoi(hex.substr(k, 2), nullptr, 16));
    INFO("bytes " << tt::escaped(bytes.substr(0, 80)) << " (" << bytes.size() << " bytes)");
    const auto got = t.encode(bytes);
    CHECK(tt::show(got) == tt::show(tt::ids_of(row.at("ids"))));
    // the decoded text is always valid UTF-8: each ill-formed byte came back as U+FFFD
    CHECK(slim::text::unicode::is_valid_utf8(t.decode(got)));
  }
}

namespace {

/// Titles (one per line, blank lines skipped) and rationales (string fields of JSON Lines), in the order of
/// tools/text_fixtures/make_spm_reference.py real_texts().
const std::vector<std::string>& spm_real_texts() {
  static const std::vector<std::string> texts = [] {
    const std::string d = *tt::data_dir();
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
    for (const auto& [rel, keys] : jsonl)
      for (const auto& row : tt::read_jsonl(d + "/" + rel))
        for (const char* k : keys)
          if (row.contains(k) && row[k].is_string() && !row[k].get<std::string>().empty())
            t.push_back(row[k].get<std::string>());
    return t;
  }();
  return texts;
}

#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t spm_real_stride = 16;  // every 16th text under AddressSanitizer (4 MB is slow there)
#else
constexpr std::size_t spm_real_stride = 1;
#endif

}  // namespace

TEST_CASE("sentencepiece LLaMA-2: real titles and rationales round-trip, and match sentencepiece when given",
          "[text][spm][data]") {
  const auto& t = llama2();
  const auto& texts = spm_real_texts();
  REQUIRE(texts.size() > 20000);
  std::vector<std::vector<token_id>> ids;
  std::size_t failures = 0;
  for (std::size_t i = 0; i < texts.size(); i += spm_real_stride) {
    ids.push_back(t.encode(texts[i]));
    if (t.decode(ids.back()) != texts[i] && ++failures <= 5) FAIL_CHECK("round trip: " << tt::escaped(texts[i]));
  }
  CHECK(failures == 0);
  const char* ref = std::getenv("SLIM_SPM_REAL_REFERENCE");
  if (!ref || !*ref) {
    WARN("SLIM_SPM_REAL_REFERENCE not set: real-data ids not compared (make_spm_reference.py --real-data)");
    return;
  }
  std::istringstream in(tt::read_bytes(ref));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  REQUIRE(lines.size() == texts.size());
  std::size_t mismatch = 0, compared = 0;
  for (std::size_t i = 0, j = 0; i < lines.size(); i += spm_real_stride, ++j, ++compared)
    if (tt::ids_of(tt::json::parse(lines[i]).at("ids")) != ids[j] && ++mismatch <= 5)
      FAIL_CHECK("ids differ on \"" << tt::escaped(texts[i]) << "\"\n  got " << tt::show(ids[j]));
  WARN("real data vs sentencepiece: " << mismatch << " mismatches of " << compared << " texts");
  CHECK(mismatch == 0);
}
