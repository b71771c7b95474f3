// Helpers for the prompt tests: fixture and data paths, tokenizers, a tiny CSV reader, deterministic titles.
#pragma once

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/text/byte_bpe.hpp"
#include "slim/text/sentencepiece.hpp"

#ifndef SLIM_PROMPT_FIXTURE_DIR
#error "SLIM_PROMPT_FIXTURE_DIR must name tests/data/text (tests/prompt/CMakeLists.txt sets it)"
#endif

namespace slim::testing::prompt {

/// tests/data/text/<name>
inline std::string fixture(const std::string& name) { return std::string(SLIM_PROMPT_FIXTURE_DIR) + "/" + name; }

/// The committed byte-level BPE fixtures (HF tokenizers trained them; see tools/text_fixtures).
inline const slim::text::byte_bpe& qwen2() {  // ChatML specials <|endoftext|>=0 <|im_start|>=1 <|im_end|>=2
  static const auto t = slim::text::byte_bpe::from_file(fixture("qwen2_bpe.json"));
  return t;
}
inline const slim::text::byte_bpe& llama3() {  // <|begin_of_text|>=0 .. <|eot_id|>=4
  static const auto t = slim::text::byte_bpe::from_file(fixture("llama3_bpe.json"));
  return t;
}
/// A tiny SentencePiece model with byte fallback: <unk>=0 <s>=1 </s>=2, bytes, a few pieces.
inline const slim::text::sentencepiece_bpe& spm_tiny() {
  static const auto t = slim::text::sentencepiece_bpe::from_file(fixture("spm_tiny_fallback.model"));
  return t;
}

/// The shared data folder: $SLIM_DATA_DIR, else the default CMake passes; nothing when it does not exist.
inline std::optional<std::string> data_dir() {
  std::string dir;
  if (const char* env = std::getenv("SLIM_DATA_DIR"); env && *env) dir = env;
#ifdef SLIM_PROMPT_DEFAULT_DATA_DIR
  else
    dir = SLIM_PROMPT_DEFAULT_DATA_DIR;
#endif
  std::error_code ec;
  if (dir.empty() || !std::filesystem::is_directory(dir, ec)) return std::nullopt;
  return dir;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  INFO("reading " << path);
  REQUIRE(in);
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

/// RFC 4180 CSV (quoted fields, "" escapes, newlines inside quotes), header row included.
inline std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  const std::string s = read_bytes(path);
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    any = true;
    if (quoted) {
      if (c == '"') {
        if (i + 1 < s.size() && s[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      row.push_back(std::move(field));
      field.clear();
      rows.push_back(std::move(row));
      row.clear();
      any = false;
    } else if (c != '\r') {
      field += c;
    }
  }
  if (any) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

/// A small deterministic generator (SplitMix64) for synthetic histories and titles.
struct splitmix {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
};

/// Movie- and product-style titles of varied scripts and lengths; title i (1-based) starts with a marker
/// "T<i>:" so tests can find it in a prompt. Index 0 is the padding slot.
inline std::vector<std::string> synthetic_titles(std::size_t n, std::uint64_t seed) {
  static const char* const words[] = {"Night",  "Return", "Star", "Lost",   "Heat",     "Café",       "Über",
                                      "Dragon", "東京",   "物語", "🎬",      "Garden",   "of",         "the",
                                      "Kings",  "Mirror", "Zoë",  "Ωmega",  "Ranger",   "Deluxe",     "Edition",
                                      "(2019)", "-",      "Pro",  "Bundle", "Wireless", "Controller", "ñandú"};
  splitmix rng{seed};
  std::vector<std::string> titles(n + 1);
  for (std::size_t i = 1; i <= n; ++i) {
    std::string t = "T" + std::to_string(i) + ":";
    const std::size_t len = 1 + rng.below(i % 7 == 0 ? 40 : 6);  // every 7th title is long
    for (std::size_t k = 0; k < len; ++k) t += std::string(" ") + words[rng.below(std::size(words))];
    titles[i] = t;
  }
  return titles;
}

}  // namespace slim::testing::prompt
