// slim — the one exception type. Every parser and every shape check throws `slim::error`, naming
// the file (or the function) and the place: a line, a field, a byte offset.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace slim {

/// Error with context: `where` is a file path or an API name, `place` a line, field, tensor or offset.
/// `what()` reads "where: place: message" (empty parts are left out).
class error : public std::runtime_error {
 public:
  explicit error(std::string message) : std::runtime_error(message), message_(std::move(message)) {}
  error(std::string where, std::string place, std::string message)
      : std::runtime_error(compose(where, place, message)),
        where_(std::move(where)),
        place_(std::move(place)),
        message_(std::move(message)) {}

  /// The file or API the error is about ("" when none was given).
  const std::string& where() const noexcept { return where_; }
  /// The place inside it: "line 12", "field merges", "tensor model.embed_tokens.weight", "offset 4096".
  const std::string& place() const noexcept { return place_; }
  /// The message without context.
  const std::string& message() const noexcept { return message_; }

 private:
  static std::string compose(const std::string& where, const std::string& place, const std::string& message) {
    std::string s;
    if (!where.empty()) s += where + ": ";
    if (!place.empty()) s += place + ": ";
    return s + message;
  }
  std::string where_, place_, message_;
};

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

/// Throws `slim::error(where, "", message)` unless `condition` holds. For argument and shape checks.
template <class... Args>
inline void require(bool condition, const char* where, const Args&... message) {
  if (!condition) [[unlikely]]
    throw error(where, "", detail::concat(message...));
}

}  // namespace slim
