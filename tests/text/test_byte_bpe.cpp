// Byte-level BPE on the committed fixtures: ids identical to HF `tokenizers` on the parity corpus for the
// LLaMA-3- and Qwen2-pattern tokenizers and for the added-token rules; round trips; vocabulary lookups;
// special-token options; streaming decode.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "slim/core/philox.hpp"
#include "slim/text/byte_bpe.hpp"
#include "text_test_support.hpp"

using slim::text::byte_bpe;
using slim::text::token_id;
namespace tt = slim::testing::text;
namespace u = slim::text::unicode;

namespace {

const byte_bpe& llama3() {
  static const byte_bpe t = byte_bpe::from_file(tt::fixture("llama3_bpe.json"));
  return t;
}
const byte_bpe& qwen2() {
  static const byte_bpe t = byte_bpe::from_file(tt::fixture("qwen2_bpe.json"));
  return t;
}
const byte_bpe& added() {
  static const byte_bpe t = byte_bpe::from_file(tt::fixture("added_bpe.json"));
  return t;
}

/// Compares encode() with the reference ids under `key` for every corpus row; returns the mismatch count.
int parity(const byte_bpe& tok, const std::string& key, bool add_special) {
  const auto& rows = tt::reference_rows();
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

}  // namespace

TEST_CASE("LLaMA-3-pattern BPE: ids identical to HF tokenizers on the corpus", "[text][bpe][parity]") {
  REQUIRE(tt::corpus().size() >= 500);
  CHECK(parity(llama3(), "llama3", false) == 0);
  CHECK(parity(llama3(), "llama3_special", true) == 0);  // BOS from the TemplateProcessing
}

TEST_CASE("Qwen2-pattern BPE: ids identical to HF tokenizers on the corpus", "[text][bpe][parity]") {
  CHECK(parity(qwen2(), "qwen2", false) == 0);
}

TEST_CASE("added tokens follow HF's rules: passes, leftmost-longest, single_word, lstrip, rstrip",
          "[text][bpe][parity][added]") {
  CHECK(parity(added(), "added", false) == 0);
  CHECK(parity(added(), "added_special", true) == 0);  // RobertaProcessing: <s> ... </s>
  int bad = 0;
  for (const auto& row : tt::read_jsonl(tt::fixture("added_cases.jsonl"))) {
    const auto text = row.at("text").get<std::string>();
    const auto got = added().encode(text);
    const auto got_special = added().encode(text, {.add_special = true});
    const bool ok = got == tt::ids_of(row.at("added")) && got_special == tt::ids_of(row.at("added_special")) &&
                    added().decode(got) == row.at("added_decoded").get<std::string>() &&
                    added().decode(got, {.skip_special = true}) == row.at("added_decoded_skip").get<std::string>();
    if (!ok && ++bad <= 5)
      FAIL_CHECK("\"" << tt::escaped(text) << "\"\n  got  " << tt::show(got) << "\n  want " << row.at("added").dump()
                      << "\n  decoded \"" << tt::escaped(added().decode(got)) << "\"");
  }
  CHECK(bad == 0);
}

TEST_CASE("ignore_merges, unk_token, fuse_unk and byte_fallback follow HF", "[text][bpe][parity]") {
  // The same JSON edits make_reference_ids.py edge_variants() applies before asking HF.
  auto load = [](const std::string& file, const std::string& variant) {
    auto j = tt::json::parse(tt::read_bytes(tt::fixture(file)));
    auto& model = j["model"];
    if (variant == "no_ignore_merges") {
      model["ignore_merges"] = false;
    } else if (variant == "no_fuse_unk") {
      model["fuse_unk"] = false;
    } else if (variant == "byte_fallback") {
      model["byte_fallback"] = true;
      model["unk_token"] = nullptr;
      int next = 0;
      for (const auto& [token, id] : model["vocab"].items()) next = std::max(next, id.get<int>() + 1);
      static constexpr char hex[] = "0123456789ABCDEF";
      for (int b = 0; b < 256; ++b) model["vocab"][std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">"] = next + b;
    }
    return byte_bpe::from_hf_json(j.dump(), file + " (" + variant + ")");
  };
  std::map<std::string, byte_bpe> loaded;
  std::map<std::string, int> rows_per_variant;
  int bad = 0;
  for (const auto& row : tt::read_jsonl(tt::fixture("edge_reference.jsonl"))) {
    const auto file = row.at("fixture").get<std::string>(), variant = row.at("variant").get<std::string>();
    const std::string key = file + "/" + variant;
    if (!loaded.count(key)) loaded.emplace(key, load(file, variant));
    const auto& tok = loaded.at(key);
    ++rows_per_variant[key];
    const auto text = row.at("text").get<std::string>();
    const auto got = tok.encode(text);
    if (got != tt::ids_of(row.at("ids")) && ++bad <= 5)
      FAIL_CHECK(key << " \"" << tt::escaped(text) << "\"\n  got  " << tt::show(got) << "\n  want "
                     << row.at("ids").dump());
  }
  CHECK(bad == 0);
  CHECK(rows_per_variant.size() == 5);
  // The variants really differ: the edits are not no-ops.
  CHECK(loaded.at("edge_bpe.json/as_is").encode("abc") != loaded.at("edge_bpe.json/no_ignore_merges").encode("abc"));
  const std::string cjk = "\xE4\xB8\xAD\xE6\x96\x87";
  CHECK(loaded.at("unk_bpe.json/as_is").encode(cjk).size() == 1);  // fused: one <unk>
  CHECK(loaded.at("unk_bpe.json/no_fuse_unk").encode(cjk).size() == 6);
  CHECK(loaded.at("unk_bpe.json/byte_fallback").encode(cjk).size() == 12);  // 2 fallback bytes per spelled byte
}

TEST_CASE("decode matches HF's decode, with and without special tokens", "[text][bpe][parity]") {
  const auto& rows = tt::reference_rows();
  const auto& texts = tt::corpus();
  int bad = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto ids = tt::ids_of(rows[i].at("added"));
    // HF decodes lossily (U+FFFD); slim returns bytes, so compare after the same replacement.
    const bool ok = u::to_valid_utf8(added().decode(ids)) == rows[i].at("added_decoded").get<std::string>() &&
                    u::to_valid_utf8(added().decode(ids, {.skip_special = true})) ==
                        rows[i].at("added_decoded_skip").get<std::string>();
    if (!ok && ++bad <= 5) FAIL_CHECK("#" << i << " \"" << tt::escaped(texts[i]) << "\"");
  }
  CHECK(bad == 0);
}

TEST_CASE("decode(encode(s)) == s on the corpus and on arbitrary bytes", "[text][bpe][roundtrip]") {
  for (const byte_bpe* tok : {&llama3(), &qwen2()}) {
    for (const auto& text : tt::corpus()) {
      INFO("\"" << tt::escaped(text) << "\"");
      REQUIRE(tok->decode(tok->encode(text)) == text);
    }
    // Ill-formed UTF-8 follows the byte-fallback policy: every byte is encoded, nothing is lost.
    slim::philox_stream rng(11);
    for (int trial = 0; trial < 500; ++trial) {
      std::string bytes(rng.below(64), '\0');
      for (auto& b : bytes) b = static_cast<char>(rng.below(256));
      INFO("\"" << tt::escaped(bytes) << "\"");
      REQUIRE(tok->decode(tok->encode(bytes)) == bytes);
    }
  }
}

TEST_CASE("the loaded model has the file's vocabulary, merges, stages and special ids", "[text][bpe]") {
  const auto& t = llama3();
  CHECK(t.vocab_size() == 1000);
  CHECK(t.merge_count() == 739);
  CHECK(t.split_stages() == std::vector{slim::text::split_pattern::llama3});
  CHECK_FALSE(t.byte_level_split());
  CHECK(t.bos_id() == t.token_to_id("<|begin_of_text|>"));
  CHECK(t.eos_id() == t.token_to_id("<|end_of_text|>"));
  CHECK(t.special_prefix() == std::vector<token_id>{*t.bos_id()});
  CHECK(t.special_suffix().empty());
  CHECK(t.is_special(*t.token_to_id("<|eot_id|>")));
  CHECK_FALSE(t.is_special(*t.token_to_id("a")));
  CHECK(qwen2().split_stages() == std::vector{slim::text::split_pattern::qwen2});
  CHECK_FALSE(qwen2().bos_id().has_value());
  CHECK(qwen2().eos_id() == qwen2().token_to_id("<|endoftext|>"));
  CHECK(added().split_stages().empty());
  CHECK(added().byte_level_split());
  CHECK(added().added_tokens().size() == 11);
  CHECK(added().token_to_id("ing") == 327);  // an added token that is also a model token keeps its id

  // token_to_id and id_to_token are inverse over the whole vocabulary, in the vocabulary's spelling.
  for (token_id id = 0; id < static_cast<token_id>(t.vocab_size()); ++id) {
    REQUIRE(t.contains(id));
    REQUIRE(t.token_to_id(t.id_to_token(id)) == id);
  }
  CHECK(t.id_to_token(*t.token_to_id("\xC4\xA0")) == "\xC4\xA0");  // "Ġ" spells a space
  CHECK(t.decode_piece(*t.token_to_id("\xC4\xA0")) == " ");
  CHECK_FALSE(t.token_to_id("no such token").has_value());
}

TEST_CASE("special tokens in text: recognised by default, plain text when split_special is off", "[text][bpe]") {
  const auto& t = qwen2();
  const std::string text = "<|im_start|>user\nhi<|im_end|>";
  const auto ids = t.encode(text);
  REQUIRE(ids.size() >= 3);
  CHECK(ids.front() == *t.token_to_id("<|im_start|>"));
  CHECK(ids.back() == *t.token_to_id("<|im_end|>"));
  const auto plain = t.encode(text, {.split_special = false});
  for (const token_id id : plain) CHECK_FALSE(t.is_special(id));
  CHECK(t.decode(plain) == text);
  CHECK(t.decode(ids) == text);
  CHECK(t.decode(ids, {.skip_special = true}) == "user\nhi");
  // add_special with nothing to add (Qwen2 has no BOS) changes nothing.
  CHECK(t.encode(text, {.add_special = true}) == ids);
}

TEST_CASE("decoding an id outside the vocabulary is an error", "[text][bpe]") {
  const std::vector<token_id> bad{5, 1000};
  CHECK_THROWS_AS(llama3().decode(bad), slim::error);
  CHECK_THROWS_AS(llama3().decode_piece(-1), slim::error);
  CHECK_THROWS_AS(llama3().id_to_token(1 << 20), slim::error);
  CHECK_FALSE(llama3().is_special(-3));
  try {
    (void)llama3().decode(bad);
  } catch (const slim::error& e) {
    CHECK(e.place() == "id 1000");
  }
}

TEST_CASE("streaming decode holds back incomplete UTF-8 and equals the lossless decode", "[text][bpe][stream]") {
  const auto& t = llama3();
  // Whole corpus: each string streamed token by token comes out whole and valid.
  for (const auto& text : tt::corpus()) {
    slim::text::stream_decoder<byte_bpe> s(t);
    std::string out;
    for (const token_id id : t.encode(text)) {
      const std::string piece = s.push(id);
      REQUIRE(u::is_valid_utf8(piece));
      out += piece;
    }
    out += s.finish();
    INFO("\"" << tt::escaped(text) << "\"");
    REQUIRE(out == u::to_valid_utf8(text));
  }
  // U+1F9A9 (not in the corpus the vocabulary was trained on) takes several tokens: nothing comes out
  // until the last.
  const auto ids = t.encode("\xF0\x9F\xA6\xA9");
  const std::string whole = t.decode(ids);
  REQUIRE(whole == "\xF0\x9F\xA6\xA9");
  REQUIRE(ids.size() >= 2);
  slim::text::stream_decoder<byte_bpe> s(t);
  std::string seen;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    seen += s.push(ids[i]);
    if (i + 1 < ids.size()) CHECK(seen.empty());
  }
  CHECK(seen == whole);
  CHECK(s.pending_bytes() == 0);
  // Random id sequences (often splitting characters): stream == to_valid_utf8(decode(ids)).
  slim::philox_stream rng(5);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<token_id> seq(rng.below(30));
    for (auto& id : seq) id = static_cast<token_id>(rng.below(static_cast<std::uint32_t>(t.vocab_size())));
    slim::text::stream_decoder<byte_bpe> sd(t, {.skip_special = trial % 2 == 1});
    std::string out;
    for (const token_id id : seq) out += sd.push(id);
    out += sd.finish();
    REQUIRE(out == u::to_valid_utf8(t.decode(seq, {.skip_special = trial % 2 == 1})));
  }
  // A cut-off character at the end of the stream comes out as U+FFFD.
  slim::text::stream_decoder<byte_bpe> cut(t);
  CHECK(cut.push(ids[0]).empty());
  CHECK(cut.pending_bytes() == t.decode_piece(ids[0]).size());
  CHECK(cut.finish() == "\xEF\xBF\xBD");
}
