// The hand-written split patterns: worked examples of each regex rule, piece-for-piece parity with HF's
// Split pre-tokenizer (Oniguruma) on 600 random strings, and the invariants on arbitrary bytes.
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "slim/core/philox.hpp"
#include "slim/text/pre_tokenize.hpp"
#include "text_test_support.hpp"

using slim::text::split_pattern;
namespace tt = slim::testing::text;

namespace {
std::vector<std::string> pieces(split_pattern p, std::string_view text) {
  std::vector<std::string> out;
  slim::text::split_text(p, text, [&](std::string_view piece) { out.emplace_back(piece); });
  return out;
}
using v = std::vector<std::string>;
}  // namespace

TEST_CASE("gpt2 pattern: contractions, optional leading space, whitespace look-ahead", "[text][split]") {
  const auto g = split_pattern::gpt2;
  CHECK(pieces(g, "Hello world's  end\n\n x") == v{"Hello", " world", "'s", " ", " end", "\n\n", " x"});
  CHECK(pieces(g, "I'm 123abc!! ok") == v{"I", "'m", " 123", "abc", "!!", " ok"});
  CHECK(pieces(g, "THEY'RE") == v{"THEY", "'", "RE"});  // case-sensitive contractions
  CHECK(pieces(g, "we're 'll've") == v{"we", "'re", " '", "ll", "'ve"});
  CHECK(pieces(g, "trailing  ") == v{"trailing", "  "});  // \s+(?!\S) takes the run at the end
  CHECK(pieces(g, "a\tb") == v{"a", "\t", "b"});          // only U+0020 joins the next piece
  CHECK(pieces(g,
               "a\xC2\xA0"
               "b") == v{"a", "\xC2\xA0", "b"});  // NBSP is whitespace, not a space
  CHECK(pieces(g, "  ") == v{"  "});
  CHECK(pieces(g, " ") == v{" "});
  CHECK(pieces(g, "") == v{});
  CHECK(pieces(g, "x  \t y") == v{"x", "  \t", " y"});
  CHECK(pieces(g, "\xE4\xB8\xAD\xE6\x96\x87 text") == v{"\xE4\xB8\xAD\xE6\x96\x87", " text"});
  CHECK(pieces(g, "e\xCC\x81") == v{"e", "\xCC\x81"});  // a combining mark is not \p{L}
}

TEST_CASE("llama3 and qwen2 patterns: case-folded contractions, digit groups, newline runs", "[text][split]") {
  const auto l = split_pattern::llama3, q = split_pattern::qwen2;
  CHECK(pieces(l, "Hello world's  end\n\n x") == v{"Hello", " world", "'s", " ", " end", "\n\n", " x"});
  CHECK(pieces(l, "THEY'RE We'Ve") == v{"THEY", "'RE", " We", "'Ve"});
  CHECK(pieces(l, "it'\xC5\xBFt 'St") == v{"it", "'\xC5\xBF", "t", " '", "St"});  // U+017F folds to s
  CHECK(pieces(split_pattern::gpt2, "it'\xC5\xBFt") == v{"it", "'", "\xC5\xBFt"});
  CHECK(pieces(l, "12345 678") == v{"123", "45", " ", "678"});
  CHECK(pieces(q, "12345 678") == v{"1", "2", "3", "4", "5", " ", "6", "7", "8"});
  CHECK(pieces(l, "foo.\n\nbar") == v{"foo", ".\n\n", "bar"});  // punctuation takes following newlines
  CHECK(pieces(l, "\tword $x") == v{"\tword", " $", "x"});
  CHECK(pieces(l, "'hello") == v{"'hello"});              // one non-letter may lead a word
  CHECK(pieces(l, "a\n  b") == v{"a", "\n", " ", " b"});  // \s*[\r\n]+ stops at the last newline
  CHECK(pieces(l, "a \r\n\r\n  b") == v{"a", " \r\n\r\n", " ", " b"});
  CHECK(pieces(l, "x\ny") == v{"x", "\n", "y"});
  CHECK(pieces(l, "   ") == v{"   "});
  CHECK(pieces(l, "  1") == v{" ", " ", "1"});
}

TEST_CASE("split patterns match HF's Split pre-tokenizer on random strings", "[text][split][parity]") {
  const auto rows = tt::read_jsonl(tt::fixture("split_cases.jsonl"));
  REQUIRE(rows.size() >= 600);
  int mismatches = 0;
  for (const auto& row : rows) {
    const auto text = row.at("text").get<std::string>();
    for (const auto& [name, p] : {std::pair{"gpt2", split_pattern::gpt2}, std::pair{"llama3", split_pattern::llama3},
                                  std::pair{"qwen2", split_pattern::qwen2}}) {
      const auto want = row.at(name).get<std::vector<std::string>>();
      const auto got = pieces(p, text);
      if (got != want && ++mismatches <= 5) {
        std::string g, w;
        for (const auto& s : got) g.append("|").append(tt::escaped(s));
        for (const auto& s : want) w.append("|").append(tt::escaped(s));
        FAIL_CHECK(name << " on \"" << tt::escaped(text) << "\":\n  got  " << g << "\n  want " << w);
      }
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("pieces are non-empty and concatenate to the input, for arbitrary bytes", "[text][split]") {
  slim::philox_stream rng(7);
  // Bytes biased towards the interesting ones: ASCII classes, lead and continuation bytes.
  const std::string alphabet =
      std::string("aZ0 '\t\n\r.!sS") + "\xC3\xA9\xC5\xBF\xE4\xB8\xAD\xF0\x9F\x98\x80\x80\xBF\xFF\xC2\xA0";
  for (int trial = 0; trial < 3000; ++trial) {
    std::string text;
    const auto len = rng.below(40);
    for (std::uint32_t i = 0; i < len; ++i) text += alphabet[rng.below(static_cast<std::uint32_t>(alphabet.size()))];
    for (const auto p : {split_pattern::gpt2, split_pattern::llama3, split_pattern::qwen2}) {
      std::string joined;
      bool empty_piece = false;
      slim::text::split_text(p, text, [&](std::string_view piece) {
        empty_piece = empty_piece || piece.empty();
        joined += piece;
      });
      INFO("\"" << tt::escaped(text) << "\"");
      REQUIRE_FALSE(empty_piece);
      REQUIRE(joined == text);
    }
  }
}

TEST_CASE("an ill-formed UTF-8 unit is one character of class other", "[text][split]") {
  CHECK(pieces(split_pattern::gpt2,
               "ab\xFF"
               "cd") == v{"ab", "\xFF", "cd"});
  CHECK(pieces(split_pattern::gpt2, " \xFF\xFE") == v{" \xFF\xFE"});  // a punctuation-like run with its space
  CHECK(pieces(split_pattern::llama3,
               "\xE4\xB8"
               "ab") == v{"\xE4\xB8"
                          "ab"});  // may lead a word like '$'
  CHECK(pieces(split_pattern::llama3, "x\xF0\x9F") == v{"x", "\xF0\x9F"});
}
