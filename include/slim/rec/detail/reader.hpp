// slim — shared machinery of the dataset loaders: a line reader over a whole file held in memory, field
// splitting, strict number parsing, and errors that name the file, the line and the field.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/io/atomic_file.hpp"

namespace slim::rec::detail {

/// Printed forms of `parts` concatenated (avoids GCC 12's -Wrestrict false positive on `"lit" + string&&`).
template <class... Parts>
std::string cat(const Parts&... parts) {
  return slim::detail::concat(parts...);
}

/// `s` in backquotes for an error message: at most 40 bytes, bytes outside printable ASCII as \xNN, so the
/// message stays valid UTF-8 whatever the file holds.
inline std::string quote(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out = "`";
  const std::size_t shown = s.size() > 40 ? 40 : s.size();
  for (std::size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (shown < s.size()) out += "...";
  out += '`';
  return out;
}

/// One physical line of a text file.
struct text_line {
  std::string_view text;      ///< without the '\n' and without one trailing '\r'
  std::int64_t number = 0;    ///< 1-based, counting every physical line (header and blank lines too)
  bool unterminated = false;  ///< the last line of a file that does not end with '\n'
};

/// True for a line of only spaces and tabs (or nothing).
inline bool is_blank(std::string_view s) noexcept {
  for (const char c : s)
    if (c != ' ' && c != '\t') return false;
  return true;
}

/// Reads a whole file once and hands out its lines. A UTF-8 byte-order mark at the start is dropped.
/// Every error it raises reads "<path>: line N[, field K (name)]: message".
class line_reader {
 public:
  /// Reads the file at `path`; throws slim::error naming the path when it cannot (or when it is a folder).
  explicit line_reader(std::string path) : path_(std::move(path)) {
    std::error_code ec;
    if (std::filesystem::is_directory(path_, ec)) throw error(path_, "", "is a folder, expected a file");
    bytes_ = io::read_file(path_);
    skip_bom();
  }
  /// Reads lines from `bytes`, naming `path` in errors (for data already in memory).
  line_reader(std::string path, std::string bytes) : path_(std::move(path)), bytes_(std::move(bytes)) { skip_bom(); }

  /// Next line, or false at the end of the file. An empty file has no lines; a final '\n' does not start one.
  bool next(text_line& line) noexcept {
    if (pos_ >= bytes_.size()) return false;
    const char* begin = bytes_.data() + pos_;
    const std::size_t left = bytes_.size() - pos_;
    const void* nl = std::memchr(begin, '\n', left);
    std::size_t len = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - begin) : left;
    pos_ += nl ? len + 1 : len;
    line.unterminated = nl == nullptr;
    if (len > 0 && begin[len - 1] == '\r') --len;
    line.text = std::string_view(begin, len);
    line.number = ++number_;
    return true;
  }

  const std::string& path() const noexcept { return path_; }
  /// The bytes of the whole file (string_views handed out by `next` point into them).
  const std::string& bytes() const noexcept { return bytes_; }

  /// Throws slim::error(path, "line N", message); says so when the line is an unterminated last line,
  /// since a malformed last line without '\n' usually means a truncated file.
  [[noreturn]] void fail(const text_line& line, const std::string& message) const {
    throw error(path_, cat("line ", line.number), with_truncation_hint(line, message));
  }
  /// Throws slim::error(path, "line N, field K (name)", message); K is 1-based.
  [[noreturn]] void fail_field(const text_line& line, std::size_t field, std::string_view name,
                               const std::string& message) const {
    throw error(path_, cat("line ", line.number, ", field ", field, " (", name, ")"),
                with_truncation_hint(line, message));
  }

 private:
  void skip_bom() noexcept {
    if (bytes_.size() >= 3 && bytes_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;
  }
  static std::string with_truncation_hint(const text_line& line, const std::string& message) {
    return line.unterminated ? message + " (this last line has no line break: is the file truncated?)" : message;
  }

  std::string path_;
  std::string bytes_;
  std::size_t pos_ = 0;
  std::int64_t number_ = 0;
};

/// Splits `s` at every `sep` (empty fields kept: "a\t\tb" has three fields).
inline void split_exact(std::string_view s, char sep, std::vector<std::string_view>& out) {
  out.clear();
  std::size_t start = 0;
  for (;;) {
    const std::size_t at = s.find(sep, start);
    if (at == std::string_view::npos) {
      out.push_back(s.substr(start));
      return;
    }
    out.push_back(s.substr(start, at - start));
    start = at + 1;
  }
}

/// Splits `s` at every occurrence of the string `sep` (empty fields kept).
inline void split_exact(std::string_view s, std::string_view sep, std::vector<std::string_view>& out) {
  out.clear();
  std::size_t start = 0;
  for (;;) {
    const std::size_t at = s.find(sep, start);
    if (at == std::string_view::npos) {
      out.push_back(s.substr(start));
      return;
    }
    out.push_back(s.substr(start, at - start));
    start = at + sep.size();
  }
}

/// Splits `s` at runs of spaces and tabs; leading and trailing ones make no empty field.
inline void split_blanks(std::string_view s, std::vector<std::string_view>& out) {
  out.clear();
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
}

/// Outcome of parsing one numeric field.
enum class number_status { ok, empty, not_a_number, negative, overflow, not_finite };

/// Parses a non-negative decimal integer made only of the digits 0-9 (no sign, no blanks, no fraction).
/// A leading '-' followed by digits reports `negative`; a value above INT64_MAX reports `overflow`.
inline number_status parse_count(std::string_view s, std::int64_t& out) noexcept {
  if (s.empty()) return number_status::empty;
  const bool negative = s[0] == '-';
  if (negative) {
    s.remove_prefix(1);
    if (s.empty()) return number_status::not_a_number;
  }
  constexpr std::uint64_t max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  std::uint64_t v = 0;
  bool overflow = false;
  for (const char c : s) {
    const auto digit = static_cast<unsigned>(c - '0');
    if (digit > 9) return number_status::not_a_number;
    overflow = overflow || v > (max - digit) / 10;
    v = v * 10 + digit;
  }
  if (negative) return number_status::negative;
  if (overflow) return number_status::overflow;
  out = static_cast<std::int64_t>(v);
  return number_status::ok;
}

/// Parses a finite decimal number ("3", "4.5", "881250949", "1e9"). No leading '+', no blanks.
inline number_status parse_real(std::string_view s, double& out) noexcept {
  if (s.empty()) return number_status::empty;
  if (s[0] == '+') return number_status::not_a_number;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  if (r.ec == std::errc::result_out_of_range) return number_status::overflow;
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return number_status::not_a_number;
  if (!std::isfinite(out)) return number_status::not_finite;
  return number_status::ok;
}

/// Parses an integer field in [min_value, max_value] or throws naming the file, line and field.
inline std::int64_t integer_field(const line_reader& in, const text_line& line, std::string_view value,
                                  std::size_t field, std::string_view name, std::int64_t min_value,
                                  std::int64_t max_value = std::numeric_limits<std::int64_t>::max()) {
  std::int64_t v = 0;
  switch (parse_count(value, v)) {
    case number_status::ok:
      break;
    case number_status::empty:
      in.fail_field(line, field, name, "empty, expected an integer");
    case number_status::negative:
      in.fail_field(line, field, name, cat("negative value ", quote(value), ", expected an integer >= ", min_value));
    case number_status::overflow:
      in.fail_field(line, field, name, cat(quote(value), " overflows a 64-bit integer"));
    default:
      in.fail_field(line, field, name, cat(quote(value), " is not an integer"));
  }
  if (v < min_value || v > max_value)
    in.fail_field(line, field, name, cat(v, " is out of range [", min_value, ", ", max_value, "]"));
  return v;
}

/// Parses a finite real field (>= 0 when `non_negative`) or throws naming the file, line and field.
inline double real_field(const line_reader& in, const text_line& line, std::string_view value, std::size_t field,
                         std::string_view name, bool non_negative) {
  double v = 0;
  switch (parse_real(value, v)) {
    case number_status::ok:
      break;
    case number_status::empty:
      in.fail_field(line, field, name, "empty, expected a number");
    case number_status::overflow:
      in.fail_field(line, field, name, cat(quote(value), " is outside the range of a double"));
    case number_status::not_finite:
      in.fail_field(line, field, name, cat(quote(value), " is not a finite number"));
    default:
      in.fail_field(line, field, name, cat(quote(value), " is not a number"));
  }
  if (non_negative && v < 0) in.fail_field(line, field, name, cat("negative value ", quote(value)));
  return v;
}

/// True when `s` is a positive decimal integer in canonical form ("1", "17"; not "017", "+1", "1.0"), stored in `v`.
inline bool canonical_positive(std::string_view s, std::int64_t& v) noexcept {
  if (s.empty() || s[0] == '0') return false;
  return parse_count(s, v) == number_status::ok && v > 0;
}

/// True when `path` names an existing regular file (or a link to one).
inline bool is_file(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

/// True when `path` names an existing folder.
inline bool is_folder(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

/// Last path component without a trailing '/' ("data/ml-1m/" -> "ml-1m").
inline std::string base_name(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// `path` with a '/' appended unless it ends with one.
inline std::string folder_prefix(std::string path) {
  if (!path.empty() && path.back() != '/') path += '/';
  return path;
}

/// Folder part of a file path, with a trailing '/' ("" for a bare file name).
inline std::string folder_of(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
}

/// True when `s` ends with `suffix`.
inline bool ends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace slim::rec::detail
