// Helpers for the text tests: where the committed fixtures and the shared data live, JSON Lines reading.
#pragma once

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "slim/text/tokenizer.hpp"

#ifndef SLIM_TEXT_FIXTURE_DIR
#error "SLIM_TEXT_FIXTURE_DIR must name tests/data/text (tests/text/CMakeLists.txt sets it)"
#endif

namespace slim::testing::text {

using json = nlohmann::json;
using slim::text::token_id;

/// tests/data/text/<name>
inline std::string fixture(const std::string& name) { return std::string(SLIM_TEXT_FIXTURE_DIR) + "/" + name; }

/// Whole file (the test fails when it cannot be read).
inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  INFO("reading " << path);
  REQUIRE(in);
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

/// Every non-blank line of a JSON Lines file.
inline std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> rows;
  std::istringstream in(read_bytes(path));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) rows.push_back(json::parse(line));
  return rows;
}

/// The parity corpus, in order.
inline const std::vector<std::string>& corpus() {
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> t;
    for (const auto& row : read_jsonl(fixture("corpus.jsonl"))) t.push_back(row.at("text").get<std::string>());
    return t;
  }();
  return texts;
}

/// The reference ids, one row per corpus string.
inline const std::vector<json>& reference_rows() {
  static const std::vector<json> rows = read_jsonl(fixture("reference_ids.jsonl"));
  return rows;
}

inline std::vector<token_id> ids_of(const json& j) { return j.get<std::vector<token_id>>(); }

/// Printable form of a string for failure messages (escapes control and non-ASCII bytes).
inline std::string escaped(const std::string& s) {
  std::string out;
  for (const unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

inline std::string show(const std::vector<token_id>& ids) {
  std::string s = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) s.append(i ? "," : "").append(std::to_string(ids[i]));
  return s + "]";
}

/// The shared data folder: $SLIM_DATA_DIR, else the default CMake passes (../shared/data beside the
/// checkout); nothing when it does not exist.
inline std::optional<std::string> data_dir() {
  std::string dir;
  if (const char* env = std::getenv("SLIM_DATA_DIR"); env && *env) dir = env;
#ifdef SLIM_TEXT_DEFAULT_DATA_DIR
  else
    dir = SLIM_TEXT_DEFAULT_DATA_DIR;
#endif
  std::error_code ec;
  if (dir.empty() || !std::filesystem::is_directory(dir, ec)) return std::nullopt;
  return dir;
}

}  // namespace slim::testing::text
