// slim — JSON and JSON Lines on top of nlohmann-json, with errors that name the file and the place.
//
//   * `read_json(path)`: one document; a parse error names the line and column (1-based; columns count
//     bytes) computed from nlohmann's byte offset.
//   * `read_jsonl(path, on_record)`: one document per line, streamed; blank lines are skipped; a malformed
//     line throws naming its line number. A last line without '\n' is what a crash mid-write leaves, so
//     what happens to it is a stated policy, `truncated_tail` (below).
//   * `jsonl_appender`: appends one record per call durably — O_APPEND, the whole line in one write(2),
//     fsync — so a crash loses at most the record in flight and never damages earlier ones.
//   * `get<T>(j, "a/b", where)`: typed field access that throws naming the file and the field path.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"
#include "slim/io/atomic_file.hpp"

namespace slim::io {

using json = nlohmann::json;

/// A 1-based line and column; columns count bytes, not characters.
struct text_position {
  std::size_t line = 1;
  std::size_t column = 1;
};

/// Line and column of the byte at 0-based `offset` in `text` (an offset past the end is the position just
/// after the last byte).
inline text_position position_of(std::string_view text, std::size_t offset) noexcept {
  if (offset > text.size()) offset = text.size();
  text_position p;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset; ++i)
    if (text[i] == '\n') {
      ++p.line;
      line_start = i + 1;
    }
  p.column = offset - line_start + 1;
  return p;
}

namespace detail {

/// nlohmann's message without its "[json.exception.parse_error.101] parse error at line 1, column 2: "
/// prefix (its line and column are replaced by ours).
inline std::string json_message(const nlohmann::json::exception& e) {
  std::string m = e.what();
  if (!m.empty() && m.front() == '[') {
    const std::size_t close = m.find("] ");
    if (close != std::string::npos) m.erase(0, close + 2);
  }
  if (m.rfind("parse error", 0) == 0) {
    const std::size_t colon = m.find(": ");
    if (colon != std::string::npos) m.erase(0, colon + 2);
  }
  return m;
}

/// Parses `text`; a syntax error throws slim::error(where, "line L, column C", message). `line` is 0 for a
/// whole document (L counts its lines) or the line number of a one-line JSON Lines record (L is `line`).
inline json parse_located(std::string_view text, const std::string& where, std::size_t line) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    // e.byte is the 1-based index of the last byte the lexer read: the byte it failed on.
    const text_position p = position_of(text, e.byte == 0 ? 0 : e.byte - 1);
    throw error(where, "line " + std::to_string(line ? line : p.line) + ", column " + std::to_string(p.column),
                json_message(e));
  } catch (const json::exception& e) {  // e.g. out_of_range.406 "number overflow": no position reported
    throw error(where, line ? "line " + std::to_string(line) : std::string(), json_message(e));
  }
}

}  // namespace detail

/// Parses a JSON document held in memory; `where` names its source in errors (a file, a URL, an API).
inline json parse_json(std::string_view text, const std::string& where) {
  return detail::parse_located(text, where, 0);
}

/// Reads and parses the JSON file at `path`. Errors name the path, and for syntax errors the line and column.
inline json read_json(const std::string& path) { return parse_json(read_file(path), path); }

/// Writes `value` to `path` atomically (see write_file_atomic), pretty-printed with `indent` spaces
/// (-1: one line) and a final newline.
inline void write_json(const std::string& path, const json& value, int indent = 2) {
  std::string text;
  try {
    text = value.dump(indent);
  } catch (const json::exception& e) {  // invalid UTF-8 in a string
    throw error(path, "", "cannot serialise: " + detail::json_message(e));
  }
  text += '\n';
  write_file_atomic(path, text);
}

// ---------------------------------------------------------------------------------------------------------
// JSON Lines

/// What to do with a last line that has no terminating '\n' (a writer stopped mid-record).
///   * `error`  — throw slim::error naming the file and the line (the default: nothing is dropped silently);
///   * `skip`   — drop it and report it in `jsonl_summary::skipped_tail` (recovery after a crash: the record
///                was never acknowledged by `jsonl_appender::append`);
///   * `accept` — parse it like any other line (files written by tools that omit the final newline).
/// A last line that is blank (whitespace only) is skipped under every policy.
enum class truncated_tail { error, skip, accept };

/// Options of read_jsonl.
struct jsonl_options {
  truncated_tail tail = truncated_tail::error;
};

/// What read_jsonl saw.
struct jsonl_summary {
  std::size_t lines = 0;        ///< lines in the file, the unterminated last one included
  std::size_t records = 0;      ///< records passed to the callback
  std::size_t blank_lines = 0;  ///< whitespace-only lines skipped
  bool skipped_tail = false;    ///< an unterminated last line was dropped (truncated_tail::skip)
  std::size_t tail_bytes = 0;   ///< length of that line in bytes
};

namespace detail {
inline bool is_blank(std::string_view s) noexcept {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r') return false;
  return true;
}
}  // namespace detail

/// Streams the JSON Lines file at `path`, calling `on_record(json&&, std::size_t line)` for each non-blank
/// line (line numbers are 1-based). A trailing '\r' is ignored (CRLF files). A malformed line throws
/// slim::error naming the path, the line and the column; an unterminated last line follows `options.tail`.
/// Memory use is one line plus a 64 KiB buffer. Exceptions from `on_record` propagate unchanged.
template <class F>
jsonl_summary read_jsonl(const std::string& path, F&& on_record, jsonl_options options = {}) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw detail::system_error(path, "cannot open for reading", errno);
  struct closer {
    int fd;
    ~closer() { detail::close_fd(fd); }
  } close_on_exit{fd};

  jsonl_summary summary;
  auto handle = [&](std::string_view line, bool terminated) {
    ++summary.lines;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (detail::is_blank(line)) {
      ++summary.blank_lines;
      return;
    }
    if (!terminated) {
      if (options.tail == truncated_tail::skip) {
        summary.skipped_tail = true;
        summary.tail_bytes = line.size();
        return;
      }
      if (options.tail == truncated_tail::error)
        throw error(path, "line " + std::to_string(summary.lines),
                    "last line has no terminating newline (" + std::to_string(line.size()) +
                        " bytes): the file may have been cut off mid-write (truncated_tail::skip drops such a "
                        "line, truncated_tail::accept parses it)");
    }
    json record = detail::parse_located(line, path, summary.lines);
    ++summary.records;
    std::invoke(on_record, std::move(record), summary.lines);
  };

  std::string pending;  // the current line's bytes read so far
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw detail::system_error(path, "read failed after line " + std::to_string(summary.lines), errno);
    }
    if (n == 0) break;
    std::string_view chunk(buf, static_cast<std::size_t>(n));
    for (std::size_t nl; (nl = chunk.find('\n')) != std::string_view::npos; chunk.remove_prefix(nl + 1)) {
      if (pending.empty()) {
        handle(chunk.substr(0, nl), true);
      } else {
        pending.append(chunk.data(), nl);
        handle(pending, true);
        pending.clear();
      }
    }
    pending.append(chunk.data(), chunk.size());
  }
  if (!pending.empty()) handle(pending, false);
  return summary;
}

/// Appends JSON records to a JSON Lines file, one line per record, durably.
///
/// Each `append` serialises the record to one line, writes it with a single write(2) on a descriptor opened
/// with O_APPEND, and fsyncs before returning: once `append` returns the record survives a crash, and a crash
/// during `append` can leave at most that one record's partial line at the end of the file — which
/// `read_jsonl` reports through `truncated_tail`. Earlier lines are never touched.
///
/// Opening takes an exclusive advisory lock (flock) on the file, so a second appender on the same file — in
/// this or another process — fails with slim::error instead of interleaving; the lock dies with the process.
/// If the file ends in a partial line (an earlier crash), the constructor applies `tail`: `error` refuses to
/// append, `skip` truncates the partial line away (see `repaired_bytes()`), `accept` terminates it with '\n'.
class jsonl_appender {
 public:
  explicit jsonl_appender(std::string path, truncated_tail tail = truncated_tail::error) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd_ < 0) throw detail::system_error(path_, "cannot open for appending", errno);
    try {
      if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int e = errno;
        if (e == EWOULDBLOCK) throw error(path_, "", "another jsonl_appender holds this file open");
        throw detail::system_error(path_, "cannot lock", e);
      }
      detail::sync_directory(detail::parent_directory(path_), path_);  // the file's name is durable too
      repair_tail(tail);
    } catch (...) {
      detail::close_fd(fd_);
      throw;
    }
  }
  jsonl_appender(const jsonl_appender&) = delete;
  jsonl_appender& operator=(const jsonl_appender&) = delete;
  jsonl_appender(jsonl_appender&& o) noexcept
      : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)), repaired_(o.repaired_) {}
  jsonl_appender& operator=(jsonl_appender&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) detail::close_fd(fd_);
      path_ = std::move(o.path_);
      fd_ = std::exchange(o.fd_, -1);
      repaired_ = o.repaired_;
    }
    return *this;
  }
  ~jsonl_appender() {
    if (fd_ >= 0) detail::close_fd(fd_);
  }

  /// Appends `record` as one line and fsyncs. Throws slim::error naming the file if the record cannot be
  /// serialised (invalid UTF-8) or the write or fsync fails; a failed write is rolled back (truncated)
  /// so the file still ends in a complete line.
  void append(const json& record) {
    if (fd_ < 0) throw error(path_, "", "append on a moved-from jsonl_appender");
    std::string line;
    try {
      line = record.dump();  // one line: dump() escapes '\n' inside strings
    } catch (const json::exception& e) {
      throw error(path_, "", "cannot serialise record: " + detail::json_message(e));
    }
    line += '\n';
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw detail::system_error(path_, "fstat failed", errno);
    if (const int e = detail::write_all(fd_, line)) {
      const int rolled_back = ::ftruncate(fd_, st.st_size);  // best effort: drop the partial line we wrote
      (void)rolled_back;
      throw detail::system_error(path_, "append failed", e);
    }
    if (::fsync(fd_) != 0) throw detail::system_error(path_, "fsync failed", errno);
  }

  const std::string& path() const noexcept { return path_; }
  /// Bytes of a partial last line removed when the file was opened (truncated_tail::skip), else 0.
  std::size_t repaired_bytes() const noexcept { return repaired_; }

 private:
  void repair_tail(truncated_tail tail) {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw detail::system_error(path_, "fstat failed", errno);
    const off_t size = st.st_size;
    if (size == 0) return;
    // Find the last '\n', reading backwards in blocks.
    off_t end = size, last_newline = -1;
    char buf[4096];
    while (end > 0 && last_newline < 0) {
      const off_t begin = end > static_cast<off_t>(sizeof buf) ? end - static_cast<off_t>(sizeof buf) : 0;
      const ssize_t n = ::pread(fd_, buf, static_cast<std::size_t>(end - begin), begin);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw detail::system_error(path_, "read failed", errno);
      }
      if (n != end - begin) throw error(path_, "", "file shrank while being opened");
      for (ssize_t i = n; i-- > 0;)
        if (buf[i] == '\n') {
          last_newline = begin + i;
          break;
        }
      end = begin;
    }
    const off_t complete = last_newline + 1;  // bytes up to and including the last '\n'
    if (complete == size) return;
    const std::size_t partial = static_cast<std::size_t>(size - complete);
    switch (tail) {
      case truncated_tail::error:
        throw error(path_, "offset " + std::to_string(complete),
                    "file ends in a partial line of " + std::to_string(partial) +
                        " bytes (an interrupted write?): open with truncated_tail::skip to drop it or "
                        "truncated_tail::accept to keep it");
      case truncated_tail::skip:
        if (::ftruncate(fd_, complete) != 0) throw detail::system_error(path_, "cannot truncate partial line", errno);
        repaired_ = partial;
        break;
      case truncated_tail::accept:
        if (const int e = detail::write_all(fd_, "\n")) throw detail::system_error(path_, "cannot end last line", e);
        break;
    }
    if (::fsync(fd_) != 0) throw detail::system_error(path_, "fsync failed", errno);
  }

  std::string path_;
  int fd_ = -1;
  std::size_t repaired_ = 0;
};

// ---------------------------------------------------------------------------------------------------------
// Typed field access

/// Where a JSON value came from, for error messages: a file (or API name) and, for JSON Lines, the line.
/// Converts implicitly from a string, so `get<int>(j, "n", path)` reads naturally.
struct json_where {
  std::string_view file;
  std::size_t line = 0;                                                               ///< 0: not a JSON Lines record
  json_where(const char* f) noexcept : file(f) {}                                     // NOLINT(implicit)
  json_where(std::string_view f, std::size_t l = 0) noexcept : file(f), line(l) {}    // NOLINT(implicit)
  json_where(const std::string& f, std::size_t l = 0) noexcept : file(f), line(l) {}  // NOLINT(implicit)
};

namespace detail {

inline error field_error(const json_where& w, std::string_view path, const std::string& message) {
  std::string place = w.line ? "line " + std::to_string(w.line) + ", " : std::string();
  place += "field ";
  place += path;
  return error(std::string(w.file), std::move(place), message);
}

/// Follows `path` ("a/b/0": '/'-separated object keys and array indices; "~1" is '/' and "~0" is '~' inside
/// a key, as in RFC 6901). Returns nullptr when a member is absent; throws when a step meets a value that is
/// neither an object nor an array, or an array index is malformed or out of range.
inline const json* lookup(const json& root, std::string_view path, const json_where& w) {
  const json* cur = &root;
  std::string walked;  // the part of the path followed so far, for messages
  std::size_t pos = 0;
  for (;;) {
    const std::size_t slash = path.find('/', pos);
    const std::string_view raw =
        path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    std::string key;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~' && i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
        key += raw[i + 1] == '0' ? '~' : '/';
        ++i;
      } else {
        key += raw[i];
      }
    }
    const std::string here = walked.empty() ? "the top level" : "\"" + walked + "\"";
    if (cur->is_object()) {
      const auto it = cur->find(key);
      if (it == cur->end()) return nullptr;
      cur = &*it;
    } else if (cur->is_array()) {
      std::size_t index = 0;
      bool ok = !raw.empty() && raw.size() <= 18 && (raw == "0" || raw[0] != '0');
      for (char c : raw) ok = ok && c >= '0' && c <= '9';
      if (ok) index = std::stoull(std::string(raw));
      if (!ok) throw field_error(w, path, "\"" + std::string(raw) + "\" is not an index into the array at " + here);
      if (index >= cur->size())
        throw field_error(w, path,
                          "index " + std::string(raw) + " is past the end of the array at " + here + " (size " +
                              std::to_string(cur->size()) + ")");
      cur = &(*cur)[index];
    } else {
      throw field_error(w, path, "expected an object at " + here + ", found " + cur->type_name());
    }
    walked += walked.empty() ? std::string(raw) : "/" + std::string(raw);
    if (slash == std::string_view::npos) return cur;
    pos = slash + 1;
  }
}

template <class T>
struct is_std_vector : std::false_type {};
template <class U, class A>
struct is_std_vector<std::vector<U, A>> : std::true_type {};

template <class T>
T convert_field(const json& v, const std::string& path, const json_where& w) {
  auto wrong = [&](const std::string& want) {
    return field_error(w, path, "expected " + want + ", found " + std::string(v.type_name()));
  };
  if constexpr (std::is_same_v<T, json>) {
    return v;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) throw wrong("a boolean");
    return v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) throw wrong("an integer");
    if (v.is_number_unsigned()) {
      const std::uint64_t x = v.get<std::uint64_t>();
      if (x > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
        throw field_error(w, path,
                          "value " + std::to_string(x) + " is out of range [" +
                              std::to_string(std::numeric_limits<T>::min()) + ", " +
                              std::to_string(std::numeric_limits<T>::max()) + "]");
      return static_cast<T>(x);
    }
    const std::int64_t x = v.get<std::int64_t>();
    const bool fits = std::is_signed_v<T> ? (x >= static_cast<std::int64_t>(std::numeric_limits<T>::min()) &&
                                             x <= static_cast<std::int64_t>(std::numeric_limits<T>::max()))
                                          : (x >= 0 && static_cast<std::uint64_t>(x) <=
                                                           static_cast<std::uint64_t>(std::numeric_limits<T>::max()));
    if (!fits)
      throw field_error(w, path,
                        "value " + std::to_string(x) + " is out of range [" +
                            std::to_string(std::numeric_limits<T>::min()) + ", " +
                            std::to_string(std::numeric_limits<T>::max()) + "]");
    return static_cast<T>(x);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) throw wrong("a number");
    const double x = v.get<double>();
    if (std::abs(x) > static_cast<double>(std::numeric_limits<T>::max()))
      throw field_error(w, path,
                        "value " + v.dump() + " is out of range for a " + std::to_string(sizeof(T) * 8) + "-bit float");
    return static_cast<T>(x);
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) throw wrong("a string");
    return v.get<std::string>();
  } else if constexpr (is_std_vector<T>::value) {
    if (!v.is_array()) throw wrong("an array");
    T out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i)
      out.push_back(convert_field<typename T::value_type>(v[i], path + "/" + std::to_string(i), w));
    return out;
  } else {
    static_assert(always_false<T>,
                  "slim::io::get<T>: T must be json, bool, an integer, a floating type, std::string or a "
                  "std::vector of these");
  }
}

}  // namespace detail

/// The value at `path` in `j` as a T (json, bool, integers, floating types, std::string, std::vector of
/// these). Integers must be JSON integers within T's range; floating types accept any JSON number within
/// range. Throws slim::error(where.file, "[line N, ]field <path>", ...) if the field is missing or has the
/// wrong type. `path` is '/'-separated ("rope_scaling/factor", "layers/3/name"; "~1" is '/' in a key).
template <class T>
T get(const json& j, std::string_view path, const json_where& where) {
  const json* v = detail::lookup(j, path, where);
  if (v == nullptr) throw detail::field_error(where, path, "missing");
  return detail::convert_field<T>(*v, std::string(path), where);
}

/// Like get, but a field that is absent or null yields `fallback` (HF configs write `"rope_scaling": null`).
/// A field of the wrong type still throws.
template <class T>
T get_or(const json& j, std::string_view path, T fallback, const json_where& where) {
  const json* v = detail::lookup(j, path, where);
  if (v == nullptr || v->is_null()) return fallback;
  return detail::convert_field<T>(*v, std::string(path), where);
}

/// True when `path` names a present, non-null value (a step through a non-container throws, as in get).
inline bool has(const json& j, std::string_view path, const json_where& where) {
  const json* v = detail::lookup(j, path, where);
  return v != nullptr && !v->is_null();
}

}  // namespace slim::io
