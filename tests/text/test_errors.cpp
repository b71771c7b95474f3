// Malformed and truncated tokenizer files: every one is a slim::error that names the file and the field
// (or line / byte), never a crash.
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "slim/text/byte_bpe.hpp"
#include "text_test_support.hpp"

using slim::text::byte_bpe;
namespace tt = slim::testing::text;
using json = nlohmann::json;

namespace {

const json& good() {
  static const json j = json::parse(tt::read_bytes(tt::fixture("llama3_bpe.json")));
  return j;
}

/// The error that loading `j` (as "bad.json") throws; fails the test when it loads.
slim::error error_of(const json& j) {
  try {
    (void)byte_bpe::from_hf_json(j.dump(), "bad.json");
  } catch (const slim::error& e) {
    return e;
  }
  FAIL("loaded without an error");
  return slim::error("unreachable");
}

/// Loads a copy of the good fixture changed by `edit` and checks the error's file and place.
void expect_error(const std::function<void(json&)>& edit, const std::string& place, const std::string& words = "") {
  json j = good();
  edit(j);
  const slim::error e = error_of(j);
  INFO(e.what());
  CHECK(e.where() == "bad.json");
  CHECK(e.place() == place);
  if (!words.empty()) CHECK_THAT(e.message(), Catch::Contains(words));
}

}  // namespace

TEST_CASE("the good fixture loads (the edits below each break one thing)", "[text][bpe][errors]") {
  CHECK_NOTHROW(byte_bpe::from_hf_json(good().dump(), "good.json"));
}

TEST_CASE("malformed tokenizer.json fields name the field", "[text][bpe][errors]") {
  expect_error([](json& j) { j.erase("model"); }, "field model", "missing");
  expect_error([](json& j) { j["model"]["type"] = "WordPiece"; }, "field model.type", "expected BPE");
  expect_error([](json& j) { j["model"]["vocab"] = json::array(); }, "field model.vocab", "object");
  expect_error([](json& j) { j["model"]["vocab"] = json::object(); }, "field model.vocab", "empty");
  expect_error([](json& j) { j["model"]["vocab"]["zzz"] = -4; }, "field model.vocab[\"zzz\"]", "out of range");
  expect_error([](json& j) { j["model"]["vocab"]["zzz"] = "7"; }, "field model.vocab[\"zzz\"]", "integer");
  expect_error([](json& j) { j["model"]["vocab"]["zzz"] = 1.5; }, "field model.vocab[\"zzz\"]", "integer");
  expect_error([](json& j) { j["model"]["vocab"]["zzz"] = 1ll << 40; }, "field model.vocab[\"zzz\"]", "out of range");
  expect_error([](json& j) { j["model"]["vocab"]["zzz"] = 5; }, "field model.vocab[\"zzz\"]", "given to both");
  expect_error([](json& j) { j["model"]["merges"] = "a b"; }, "field model.merges", "array");
  expect_error([](json& j) { j["model"]["merges"][3] = "nospace"; }, "field model.merges[3]", "left right");
  expect_error(
      [](json& j) {
        j["model"]["merges"][3] = json::array({"a", "b", "c"});
      },
      "field model.merges[3]", "pair");
  expect_error([](json& j) { j["model"]["merges"][3] = json::array({"a", 7}); }, "field model.merges[3][1]", "string");
  expect_error([](json& j) { j["model"]["merges"][3] = 12; }, "field model.merges[3]");
  expect_error(
      [](json& j) {
        j["model"]["merges"][3] = json::array({"a", "\xE2\x82\xAC"});
      },
      "field model.merges[3]", "not in the vocabulary");
  expect_error(
      [](json& j) {
        j["model"]["merges"][3] = json::array({"Q", "Z"});
      },
      "field model.merges[3]", "merged token \"QZ\"");
  expect_error([](json& j) { j["model"]["dropout"] = 0.1; }, "field model.dropout", "not supported");
  expect_error([](json& j) { j["model"]["unk_token"] = "<unk>"; }, "field model.unk_token", "not in model.vocab");
  expect_error([](json& j) { j["model"]["continuing_subword_prefix"] = "##"; },
               "field model.continuing_subword_prefix");
  expect_error([](json& j) { j["model"]["fuse_unk"] = "yes"; }, "field model.fuse_unk", "boolean");
  expect_error([](json& j) { j["added_tokens"][0].erase("id"); }, "field added_tokens[0].id", "missing");
  expect_error([](json& j) { j["added_tokens"][1]["content"] = ""; }, "field added_tokens[1].content", "empty");
  expect_error([](json& j) { j["added_tokens"][1]["id"] = 300; }, "field added_tokens[1].id", "model.vocab gives");
  expect_error(
      [](json& j) {
        j["added_tokens"].push_back({{"id", 300}, {"content", "<|new|>"}});
      },
      "field added_tokens[5]", "given to both");
  expect_error([](json& j) { j["added_tokens"][1]["content"] = "a"; }, "field added_tokens[1].id", "model.vocab");
  expect_error([](json& j) { j["added_tokens"][2]["special"] = 1; }, "field added_tokens[2].special", "boolean");
  expect_error([](json& j) { j["added_tokens"] = json::object(); }, "field added_tokens", "array");
  expect_error([](json& j) { j["normalizer"] = {{"type", "NFC"}}; }, "field normalizer.type", "NFC");
  expect_error([](json& j) { j["pre_tokenizer"] = nullptr; }, "field pre_tokenizer", "ByteLevel");
  expect_error([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\s+"; },
               "field pre_tokenizer.pretokenizers[0].pattern.Regex", "unsupported split pattern");
  expect_error(
      [](json& j) {
        j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"String", " "}};
      },
      "field pre_tokenizer.pretokenizers[0].pattern", "Regex");
  expect_error([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"; },
               "field pre_tokenizer.pretokenizers[0].behavior", "Isolated");
  expect_error(
      [](json& j) {
        j["pre_tokenizer"]["pretokenizers"][0] = {{"type", "Whitespace"}};
      },
      "field pre_tokenizer.pretokenizers[0].type", "not supported");
  expect_error([](json& j) { j["pre_tokenizer"]["pretokenizers"].erase(1); }, "field pre_tokenizer", "ByteLevel stage");
  expect_error([](json& j) { j["decoder"] = {{"type", "WordPiece"}}; }, "field decoder", "ByteLevel decoder");
  expect_error([](json& j) { j["post_processor"]["processors"][1]["special_tokens"] = json::object(); },
               "field post_processor.processors[1].special_tokens.<|begin_of_text|>", "missing");
  expect_error(
      [](json& j) { j["post_processor"]["processors"][1]["special_tokens"]["<|begin_of_text|>"]["ids"][0] = 5000; },
      "field post_processor.processors[1].special_tokens.<|begin_of_text|>.ids[0]", "not in the vocabulary");
  expect_error([](json& j) { j["post_processor"]["processors"][1]["single"] = json::array(); },
               "field post_processor.processors[1].single", "never places");
  expect_error(
      [](json& j) {
        j["post_processor"] = {{"type", "BertLikeThing"}};
      },
      "field post_processor.type", "not supported");
  expect_error([](json& j) { j = json::array(); }, "field (top level)", "object");
}

TEST_CASE("truncated tokenizer.json files fail cleanly at every cut", "[text][bpe][errors]") {
  const std::string text = tt::read_bytes(tt::fixture("llama3_bpe.json"));
  int errors = 0;
  for (std::size_t cut = 0; cut < text.size() - 2; cut += text.size() / 97 + 1) {
    try {
      (void)byte_bpe::from_hf_json(std::string_view(text).substr(0, cut), "cut.json");
    } catch (const slim::error& e) {
      ++errors;
      CHECK(e.where() == "cut.json");
      CHECK(e.place().rfind("byte ", 0) == 0);
    }
  }
  CHECK(errors >= 97);
}

TEST_CASE("GPT-2 encoder.json and vocab.bpe errors name the file and the line", "[text][bpe][errors]") {
  const std::string encoder = R"({"a": 0, "b": 1, "ab": 2, "c": 3, "abc": 4, "<|endoftext|>": 5})";
  CHECK_NOTHROW(byte_bpe::from_gpt2_text(encoder, "encoder.json", "#version: 0.2\na b\nab c\n", "vocab.bpe"));
  auto bpe_error = [&](const std::string& merges) {
    try {
      (void)byte_bpe::from_gpt2_text(encoder, "encoder.json", merges, "vocab.bpe");
    } catch (const slim::error& e) {
      return e;
    }
    FAIL("loaded without an error");
    return slim::error("unreachable");
  };
  CHECK(bpe_error("#version: 0.2\na b\nab  c\n").place() == "line 3");
  CHECK(bpe_error("#version: 0.2\na b\nabc\n").place() == "line 3");
  CHECK(bpe_error("a b c\n").place() == "line 1");
  CHECK_THAT(bpe_error("#version: 0.2\nb c\n").message(), Catch::Contains("\"bc\" is not in the vocabulary"));
  CHECK(bpe_error("#version: 0.2\nx b\n").where() == "vocab.bpe");
  try {
    (void)byte_bpe::from_gpt2_text(R"({"a": 0, "b": )", "encoder.json", "", "vocab.bpe");
    FAIL("loaded");
  } catch (const slim::error& e) {
    CHECK(e.where() == "encoder.json");
    CHECK(e.place().rfind("byte ", 0) == 0);
  }
  try {
    (void)byte_bpe::from_gpt2_text(R"({"a": 0, "b": true})", "encoder.json", "", "vocab.bpe");
    FAIL("loaded");
  } catch (const slim::error& e) {
    CHECK(e.where() == "encoder.json");
    CHECK(e.place() == "field vocab[\"b\"]");
  }
}

TEST_CASE("missing files and folders name the path", "[text][bpe][errors]") {
  const auto dir = std::filesystem::temp_directory_path() / "slim_text_errors_test";
  std::filesystem::create_directories(dir);
  try {
    (void)byte_bpe::from_file((dir / "absent.json").string());
    FAIL("loaded");
  } catch (const slim::error& e) {
    CHECK(e.where() == (dir / "absent.json").string());
    CHECK_THAT(e.message(), Catch::Contains("cannot open"));
  }
  try {
    (void)byte_bpe::from_file(dir.string());
    FAIL("loaded");
  } catch (const slim::error& e) {
    CHECK(e.where() == dir.string());
    CHECK_THAT(e.message(), Catch::Contains("neither tokenizer.json"));
  }
  // A tokenizer_config.json beside the file names BOS/EOS; a bad one is an error naming it.
  std::filesystem::copy_file(tt::fixture("qwen2_bpe.json"), dir / "tokenizer.json",
                             std::filesystem::copy_options::overwrite_existing);
  {
    std::ofstream(dir / "tokenizer_config.json")
        << R"({"bos_token": {"content": "<|im_start|>"}, "eos_token": "<|im_end|>"})";
  }
  const auto t = byte_bpe::from_file(dir.string());
  CHECK(t.bos_id() == t.token_to_id("<|im_start|>"));
  CHECK(t.eos_id() == t.token_to_id("<|im_end|>"));
  { std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": "<|nope|>"})"; }
  try {
    (void)byte_bpe::from_file(dir.string());
    FAIL("loaded");
  } catch (const slim::error& e) {
    CHECK(e.where() == (dir / "tokenizer_config.json").string());
    CHECK(e.place() == "field eos_token");
  }
  std::filesystem::remove_all(dir);
}
