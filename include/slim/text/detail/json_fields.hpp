// slim — reading tokenizer files: whole-file reads and typed JSON field access that throw `slim::error`
// naming the file and the field. (Parsing goes through nlohmann-json; slim/io/json.hpp may take this over.)
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "slim/core/error.hpp"

namespace slim::text::detail {

using json = nlohmann::json;

/// Concatenates the printed forms of `parts` (for error messages; avoids `"literal" + std::string&&`, which
/// trips GCC 12's -Wrestrict false positive at -O3).
template <class... Parts>
std::string cat(const Parts&... parts) {
  return slim::detail::concat(parts...);
}

/// Whole file as bytes; throws slim::error(path, "", reason) when it cannot be read.
inline std::string read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw error(path, "", "is a folder, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw error(path, "", std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw error(path, "", "read failed");
  return std::move(ss).str();
}

/// True when `path` names a readable regular file.
inline bool file_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

/// Parses JSON text; a syntax error becomes slim::error(file, "byte N", ...).
inline json parse_json(std::string_view text, const std::string& file) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    throw error(file, cat("byte ", e.byte), cat("invalid JSON: ", e.what()));
  } catch (const json::exception& e) {  // e.g. out_of_range.406: a number too large for a double ("4e234567")
    throw error(file, "", cat("invalid JSON: ", e.what()));
  }
}

/// A short, printable rendering of a JSON value's type for messages.
inline std::string json_type(const json& v) { return v.type_name(); }

/// Field access that names `file` and the dotted `field` path in every error.
class json_reader {
 public:
  explicit json_reader(std::string file) : file_(std::move(file)) {}

  const std::string& file() const noexcept { return file_; }

  [[noreturn]] void fail(const std::string& field, const std::string& message) const {
    throw error(file_, "field " + field, message);
  }

  /// obj[key], which must exist.
  const json& at(const json& obj, const char* key, const std::string& field) const {
    if (!obj.is_object()) fail(field, cat("expected an object, found ", json_type(obj)));
    const auto it = obj.find(key);
    if (it == obj.end()) fail(join(field, key), "missing");
    return *it;
  }
  /// obj[key] or null when absent (obj must be an object).
  const json* find(const json& obj, const char* key, const std::string& field) const {
    if (!obj.is_object()) fail(field, cat("expected an object, found ", json_type(obj)));
    const auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
  }
  /// A boolean member; `fallback` when absent or null.
  bool get_bool(const json& obj, const char* key, bool fallback, const std::string& field) const {
    const json* v = find(obj, key, field);
    if (!v || v->is_null()) return fallback;
    if (!v->is_boolean()) fail(join(field, key), cat("expected a boolean, found ", json_type(*v)));
    return v->get<bool>();
  }
  /// A string member, or nothing when absent or null.
  std::optional<std::string> get_optional_string(const json& obj, const char* key, const std::string& field) const {
    const json* v = find(obj, key, field);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_string()) fail(join(field, key), cat("expected a string, found ", json_type(*v)));
    return v->get<std::string>();
  }
  /// A string member that must exist.
  std::string get_string(const json& obj, const char* key, const std::string& field) const {
    const json& v = at(obj, key, field);
    if (!v.is_string()) fail(join(field, key), cat("expected a string, found ", json_type(v)));
    return v.get<std::string>();
  }
  /// `v` as a string.
  std::string as_string(const json& v, const std::string& field) const {
    if (!v.is_string()) fail(field, cat("expected a string, found ", json_type(v)));
    return v.get<std::string>();
  }
  /// `v` as an integer in [0, limit).
  std::int64_t as_index(const json& v, std::int64_t limit, const std::string& field) const {
    if (!v.is_number_integer()) fail(field, cat("expected a non-negative integer, found ", json_type(v)));
    if (v.is_number_unsigned()) {
      const auto u = v.get<std::uint64_t>();
      if (u >= static_cast<std::uint64_t>(limit)) fail(field, cat("value ", u, " is out of range"));
      return static_cast<std::int64_t>(u);
    }
    const auto i = v.get<std::int64_t>();
    if (i < 0 || i >= limit) fail(field, cat("value ", i, " is out of range"));
    return i;
  }

  static std::string join(const std::string& field, const char* key) {
    return field.empty() ? std::string(key) : field + "." + key;
  }
  static std::string index(const std::string& field, std::size_t i) { return cat(field, "[", i, "]"); }

 private:
  std::string file_;
};

/// Quotes a token for an error message, escaping control bytes and cutting it at 40 bytes.
inline std::string quote_token(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < 40; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F || c == '"' || c == '\\') {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 40) out += "...";
  return out + "\"";
}

}  // namespace slim::text::detail
