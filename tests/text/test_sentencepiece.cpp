// SentencePiece BPE without the shared data: tiny models written by tools/text_fixtures/make_spm_reference.py
// with ids from the `sentencepiece` library (ties, no byte fallback, remove_extra_whitespaces, no dummy
// prefix, UNUSED and USER_DEFINED pieces), and ModelProtos built here to check loading, special tokens,
// decoding, and that malformed or truncated files throw slim::error naming the file and the field/offset.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "slim/text/sentencepiece.hpp"
#include "text_test_support.hpp"

using slim::text::sentencepiece_bpe;
using slim::text::token_id;
namespace tt = slim::testing::text;

namespace {

// ---- a protobuf writer for hand-built models -----------------------------------------------------------

std::string varint(std::uint64_t v) {
  std::string out;
  do {
    const auto b = static_cast<unsigned char>(v & 0x7F);
    v >>= 7;
    out += static_cast<char>(b | (v ? 0x80 : 0));
  } while (v);
  return out;
}
std::string len_field(std::uint32_t num, const std::string& payload) {
  return varint(num << 3 | 2) + varint(payload.size()) + payload;
}
std::string int_field(std::uint32_t num, std::uint64_t v) { return varint(num << 3) + varint(v); }
std::string float_field(std::uint32_t num, float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, 4);
  std::string out = varint(num << 3 | 5);
  for (int i = 0; i < 4; ++i) out += static_cast<char>((bits >> (8 * i)) & 0xFF);
  return out;
}

struct piece {
  std::string text;
  float score;
  int type;  // 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte
};

std::string piece_message(const piece& p) {
  return len_field(1, p.text) + float_field(2, p.score) +
         (p.type != 1 ? int_field(3, static_cast<std::uint64_t>(p.type)) : "");
}

struct model_spec {
  std::vector<piece> pieces;
  bool byte_fallback = false;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = false;
  std::uint64_t model_type = 2;
};

const char* const lower_block = "\xE2\x96\x81";  // U+2581

model_spec small_spec(bool bytes) {
  model_spec m;
  m.pieces = {{"<unk>", 0, 2}, {"<s>", 0, 3}, {"</s>", 0, 3}};
  if (bytes) {
    m.byte_fallback = true;
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      m.pieces.push_back({name, 0, 6});
    }
  }
  const std::string s = lower_block;
  for (const auto& [t, sc] : std::vector<std::pair<std::string, float>>{
           {s, -10}, {"h", -11}, {"i", -12}, {"t", -13}, {"hi", -1}, {s + "hi", -2}, {s + "t", -3}, {"it", -0.5f}})
    m.pieces.push_back({t, sc, 1});
  return m;
}

std::string serialise(const model_spec& m) {
  std::string out;
  for (const auto& p : m.pieces) out += len_field(1, piece_message(p));
  out += len_field(2, int_field(3, m.model_type) + int_field(4, m.pieces.size()) + int_field(35, m.byte_fallback));
  out += len_field(3, len_field(1, "identity") + int_field(3, m.add_dummy_prefix) +
                          int_field(4, m.remove_extra_whitespaces) + int_field(5, 1));
  return out;
}

sentencepiece_bpe load(const std::string& bytes) { return sentencepiece_bpe::from_model_proto(bytes, "test.model"); }

/// The message of the slim::error that loading `bytes` throws ("" when it loads).
std::string load_error(const std::string& bytes) {
  try {
    load(bytes);
  } catch (const slim::error& e) {
    return e.what();
  }
  return "";
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t k = 0; k + 1 < hex.size(); k += 2)
    out += static_cast<char>(std::stoi(hex.substr(k, 2), nullptr, 16));
  return out;
}

}  // namespace

static_assert(slim::text::Tokenizer<sentencepiece_bpe>);

TEST_CASE("sentencepiece tiny models: ids and decodes identical to the sentencepiece library", "[text][spm]") {
  const auto rows = tt::read_jsonl(tt::fixture("spm_tiny_ids.jsonl"));
  REQUIRE(rows.size() >= 130);
  std::map<std::string, sentencepiece_bpe> models;
  std::size_t same = 0, decodes = 0;
  for (const auto& row : rows) {
    const std::string name = row.at("model").get<std::string>();
    if (!models.count(name))
      models.emplace(name, sentencepiece_bpe::from_file(tt::fixture("spm_tiny_" + name + ".model")));
    const auto& t = models.at(name);
    if (row.contains("decode_ids")) {  // decoding alone: sentencepiece drops control pieces, as skip_special does
      const auto ids = tt::ids_of(row.at("decode_ids"));
      bool control = false, unknown = false;
      for (const token_id id : ids)
        (t.type(id) == sentencepiece_bpe::piece_type::control ? control : unknown) |= t.is_special(id);
      REQUIRE_FALSE((control && unknown));
      INFO("model " << name << ", decode " << tt::show(ids));
      CHECK(tt::escaped(t.decode(ids, {.skip_special = control})) ==
            tt::escaped(from_hex(row.at("decoded_hex").get<std::string>())));
      ++decodes;
      continue;
    }
    const std::string text = from_hex(row.at("hex").get<std::string>());
    INFO("model " << name << ", text " << tt::escaped(text));
    const auto expected = tt::ids_of(row.at("ids"));
    const auto got = t.encode(text);
    CHECK(tt::show(got) == tt::show(expected));
    same += got == expected;
    CHECK(tt::escaped(t.decode(expected)) == tt::escaped(from_hex(row.at("decoded_hex").get<std::string>())));
  }
  CHECK(models.size() == 3);
  CHECK(models.at("fallback").merges_words_separately());  // both encode paths are covered
  CHECK_FALSE(models.at("unused").merges_words_separately());
  CHECK(decodes >= 30);
  CHECK(same + decodes == rows.size());
}

TEST_CASE("sentencepiece: hand-built model — merges by score, dummy prefix, byte fallback, decode", "[text][spm]") {
  const auto t = load(serialise(small_spec(true)));
  REQUIRE(t.vocab_size() == 3 + 256 + 8);
  const token_id base = 259;  // first normal piece: ▁ h i t hi ▁hi ▁t it
  const token_id sp = base, h = base + 1, hi = base + 4, sp_hi = base + 5, sp_t = base + 6, it = base + 7;
  CHECK(t.unk_id() == 0);
  CHECK(t.bos_id() == token_id{1});
  CHECK(t.eos_id() == token_id{2});
  CHECK(t.byte_fallback());
  // "hit" → ▁hit: "it" (-0.5) beats "hi" (-1), then ▁+h has no piece: [▁, h, it]
  CHECK(t.encode("hit") == std::vector<token_id>{sp, h, it});
  // "hi hi" → ▁hi ▁hi
  CHECK(t.encode("hi hi") == std::vector<token_id>{sp_hi, sp_hi});
  CHECK(t.encode("hi t") == std::vector<token_id>{sp_hi, sp_t});
  // a character outside the vocabulary: its UTF-8 bytes
  CHECK(t.encode("\xC3\xA9") == std::vector<token_id>{sp, 3 + 0xC3, 3 + 0xA9});
  // ill-formed UTF-8: each bad byte is U+FFFD (EF BF BD)
  CHECK(t.encode("h\xFF") == std::vector<token_id>{sp, h, 3 + 0xEF, 3 + 0xBF, 3 + 0xBD});
  CHECK(t.encode("").empty());
  CHECK(t.encode("", {.add_special = true}) == std::vector<token_id>{1});
  CHECK(t.encode("hi", {.add_special = true}) == std::vector<token_id>{1, sp_hi});
  auto t2 = t;
  t2.set_add_eos(true);
  t2.set_add_bos(false);
  CHECK(t2.encode("hi", {.add_special = true}) == std::vector<token_id>{sp_hi, 2});
  // "<s>" in the text is text
  CHECK(t.encode("<s>").size() == 4);
  // decode: the dummy-prefix space goes, control pieces stay unless skipped, byte pieces are bytes
  CHECK(t.decode(std::vector<token_id>{sp_hi, sp_hi}) == "hi hi");
  CHECK(t.decode(std::vector<token_id>{1, sp_hi, 2}) == "<s>hi</s>");
  CHECK(t.decode(std::vector<token_id>{1, sp_hi, 2}, {.skip_special = true}) == "hi");
  CHECK(t.decode(std::vector<token_id>{3 + 0x0A, sp_hi}) == "\n hi");
  CHECK(t.decode(std::vector<token_id>{0, sp_hi}) == " \xE2\x81\x87  hi");
  CHECK(t.decode(std::vector<token_id>{hi, sp_hi}) == "hi hi");
  CHECK(t.decode_piece(sp_hi) == " hi");
  CHECK(t.id_to_token(sp_hi) == std::string(lower_block) + "hi");
  CHECK(t.token_to_id("<0x41>") == token_id{3 + 0x41});
  CHECK(t.token_to_id(std::string(lower_block) + "t") == sp_t);
  CHECK_FALSE(t.token_to_id("nope"));
  CHECK(t.is_special(0));
  CHECK(t.is_special(1));
  CHECK_FALSE(t.is_special(hi));
  CHECK_FALSE(t.is_special(-1));
  CHECK_THROWS_AS(t.decode(std::vector<token_id>{static_cast<token_id>(t.vocab_size())}), slim::error);
  CHECK_THROWS_AS(t.decode_piece(-1), slim::error);
  CHECK_THROWS_AS(t.id_to_token(1 << 20), slim::error);
  // round trip of representable text
  for (const char* s : {"hit hi t", "  spaces  ", "tab\there", "caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\xA6\x99", "\n"})
    CHECK(t.decode(t.encode(s)) == s);
}

TEST_CASE("sentencepiece: without byte fallback, characters outside the vocabulary are unknown", "[text][spm]") {
  auto m = small_spec(false);
  m.remove_extra_whitespaces = true;
  const auto t = load(serialise(m));
  CHECK_FALSE(t.byte_fallback());
  CHECK(t.remove_extra_whitespaces());
  const token_id sp_hi = 3 + 5;
  CHECK(t.encode("  hi   hi  ") == std::vector<token_id>{sp_hi, sp_hi});
  // ▁ x y: ▁ alone, then one unknown piece for the run "xy"
  CHECK(t.encode("hi xy") == std::vector<token_id>{sp_hi, 3, 0});
  CHECK(t.encode("xhy") == std::vector<token_id>{3, 0, 4, 0});
  CHECK(t.decode(t.encode("hi xy")) == "hi  \xE2\x81\x87 ");
  CHECK(t.decode(t.encode("hi xy"), {.skip_special = true}) == "hi ");
}

TEST_CASE("sentencepiece: malformed and truncated model files throw slim::error naming file and field", "[text][spm]") {
  const std::string good = serialise(small_spec(true));
  REQUIRE(load_error(good).empty());

  auto expect_error = [](const std::string& bytes, const std::string& part) {
    const std::string msg = load_error(bytes);
    INFO("error: " << msg);
    CHECK(msg.find("test.model") == 0);
    CHECK(msg.find(part) != std::string::npos);
  };
  // truncations inside a field
  expect_error(good.substr(0, good.size() - 1), "normalizer_spec");
  expect_error(good.substr(0, 3), "pieces");
  // a varint that never ends, and one that overflows
  expect_error(std::string("\x08") + std::string(12, '\xFF'), "varint");
  expect_error(std::string("\x08") + std::string(9, '\xFF') + "\x7F", "overflows");
  // wire types 3, 4, 6, 7 and a field number 0
  for (const char tag : {'\x0B', '\x0C', '\x0E', '\x0F'}) expect_error(std::string(1, tag) + good, "wire type");
  expect_error(std::string("\x00\x00", 2) + good, "field number 0");
  // a length past the end
  expect_error(std::string("\x0A\x7F") + "abc", "runs past the end");
  // a field with the wrong wire type
  expect_error(len_field(1, int_field(1, 5)) + good, "pieces[0].piece");
  expect_error(len_field(1, len_field(1, "x") + int_field(2, 5)) + good, "pieces[0].score");
  // semantic errors
  expect_error(len_field(1, float_field(2, 1)) + good, "pieces[0].piece: missing or empty");
  expect_error(len_field(1, len_field(1, "x") + int_field(3, 9)) + good, "type: invalid value 9");
  expect_error(good + len_field(1, piece_message({"hi", 0, 1})), "defined twice");
  expect_error(good + len_field(1, piece_message({"<unk2>", 0, 2})), "second unknown piece");
  expect_error(good + len_field(1, piece_message({"<0x1>", 0, 6})), "<0xNN>");
  expect_error(good + len_field(2, int_field(3, 1)), "model_type: 1 (UNIGRAM) is not supported");
  expect_error(good + len_field(2, int_field(24, 1)), "treat_whitespace_as_suffix");
  expect_error(good + len_field(3, len_field(2, "\x01\x02")), "precompiled_charsmap");
  {
    auto m = small_spec(true);
    m.pieces.erase(m.pieces.begin() + 3 + 0x41);
    expect_error(serialise(m), "<0x41> is missing");
    m.byte_fallback = false;
    expect_error(serialise(m), "byte_fallback is false");
  }
  {
    auto m = small_spec(false);
    m.pieces.erase(m.pieces.begin());
    expect_error(serialise(m), "no piece of type UNKNOWN");
  }
  expect_error(serialise(small_spec(false)).substr(0, 0) + len_field(2, int_field(3, 2)), "no pieces");
  {
    std::string no_trainer;
    for (const auto& p : small_spec(false).pieces) no_trainer += len_field(1, piece_message(p));
    expect_error(no_trainer, "trainer_spec");
  }
  // a missing file
  try {
    sentencepiece_bpe::from_file("/nonexistent/dir/tokenizer.model");
    FAIL("expected slim::error");
  } catch (const slim::error& e) {
    CHECK(std::string(e.what()).find("/nonexistent/dir/tokenizer.model") != std::string::npos);
  }

  // every prefix of a valid file: loads or throws slim::error, nothing else
  const std::string small = serialise(small_spec(false));
  std::size_t errors = 0;
  for (std::size_t n = 0; n < small.size(); ++n) {
    try {
      load(small.substr(0, n));
    } catch (const slim::error& e) {
      ++errors;
      CHECK(std::string(e.what()).find("test.model") == 0);
    }
  }
  CHECK(errors >= small.size() - 4);  // only cuts at the last field boundaries can leave a loadable model

  // random corruption: loads or throws slim::error; a loaded model encodes and decodes without trouble
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bytes = small;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xFF);
    try {
      const auto t = load(bytes);
      const auto ids = t.encode("hi thit \xE2\x96\x81 x\xFF");
      (void)t.decode(ids);
    } catch (const slim::error&) {
    }
  }
}

TEST_CASE("sentencepiece: a 1 MB word and a 1 MB run of one character encode in linear time", "[text][spm]") {
  const auto t = load(serialise(small_spec(true)));
  const std::string run(1 << 20, 'h');
  std::string word;
  while (word.size() < (1u << 20)) word += "hithit\xC3\xA9t";
  for (const std::string* s : std::vector<const std::string*>{&run, &word}) {
    const auto start = std::chrono::steady_clock::now();
    const auto ids = t.encode(*s);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(t.decode(ids) == *s);
    CHECK(secs < 5.0);  // generous: O(n log n) takes well under a second; quadratic would take minutes
  }
}

TEST_CASE("sentencepiece: merging words separately gives the ids of merging the whole text", "[text][spm]") {
  const auto fast = load(serialise(small_spec(true)));
  auto m = small_spec(true);
  m.pieces.push_back({"zzzz", -50, 5});  // an UNUSED piece no text here forms: turns the word split off
  const auto whole = load(serialise(m));
  REQUIRE(fast.merges_words_separately());
  REQUIRE_FALSE(whole.merges_words_separately());
  m.pieces.pop_back();
  m.pieces.push_back({std::string("t") + lower_block, 4, 1});  // pieces across a word start
  m.pieces.push_back({std::string("t") + lower_block + "h", 5, 1});
  const auto across = load(serialise(m));
  CHECK_FALSE(across.merges_words_separately());
  const auto ids = across.encode("hit hit");
  CHECK(std::find(ids.begin(), ids.end(), static_cast<token_id>(across.vocab_size() - 1)) != ids.end());
  CHECK(across.decode(ids) == "hit hit");
  std::mt19937 rng(7);
  const char* alphabet[] = {"h", "i", "t", " ", " ", "x", "\xC3\xA9", "\xFF"};
  for (int trial = 0; trial < 500; ++trial) {
    std::string text;
    const auto n = rng() % 40;
    for (std::uint32_t k = 0; k < n; ++k) text += alphabet[rng() % 8];
    INFO(tt::escaped(text));
    CHECK(fast.encode(text) == whole.encode(text));
  }
}
