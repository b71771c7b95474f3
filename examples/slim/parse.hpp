// slim program — reading a subcommand's command line: the usage when it is asked for, options one at a time
// (`--name value` or `--name=value`), and their values (whole-string integers and reals within a range). A bad
// command line throws a usage_error naming the option.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "commands.hpp"
#include "str.hpp"

namespace slim::cli {

/// The usage of a command with subcommands (`slim lm`, `slim rec`), if `a` (the arguments after the command)
/// asks for it: on stderr with exit status 2 when `a` is empty; on stdout with 0 for `help`, `--help` or `-h` in
/// place of the subcommand, or `--help` or `-h` right after one. Returns that exit status, or nothing when a[0]
/// names a subcommand to run; throws usage_error for an unknown one.
inline std::optional<int> usage_if_asked(args a, const char* usage, std::string_view command,
                                         std::initializer_list<std::string_view> subcommands) {
  if (a.empty() || a[0] == "--help" || a[0] == "-h" || a[0] == "help") {
    std::fprintf(a.empty() ? stderr : stdout, "%s", usage);
    return a.empty() ? 2 : 0;
  }
  std::string known;
  bool found = false;
  for (const std::string_view s : subcommands) {
    known += str(known.empty() ? "" : ", ", s);
    found = found || s == a[0];
  }
  if (!found) throw usage_error(str("unknown ", command, " subcommand '", a[0], "' (known: ", known, ")"));
  if (a.size() > 1 && (a[1] == "--help" || a[1] == "-h")) {
    std::fprintf(stdout, "%s", usage);
    return 0;
  }
  return std::nullopt;
}

/// The options of a command line, one at a time: `--name value` or `--name=value`. An argument that does not
/// start with "--" is a usage error.
class option_reader {
 public:
  explicit option_reader(args a) : a_(a) {}

  /// Moves to the next option; false after the last.
  bool next() {
    if (i_ == a_.size()) return false;
    name_ = a_[i_++];
    value_ = {};
    has_value_ = false;
    if (const auto eq = name_.find('='); name_.starts_with("--") && eq != std::string_view::npos) {
      value_ = name_.substr(eq + 1);
      name_ = name_.substr(0, eq);
      has_value_ = true;
    }
    if (!name_.starts_with("--")) throw usage_error(str("unexpected argument '", name_, "'"));
    return true;
  }
  std::string_view name() const noexcept { return name_; }
  /// The option's value: the text after '=', else the next argument.
  std::string_view value() {
    if (!has_value_) {
      if (i_ == a_.size()) throw usage_error(str(name_, " needs a value"));
      value_ = a_[i_++];
      has_value_ = true;
    }
    return value_;
  }
  /// For an option that takes no value: refuses `--name=value`.
  void no_value() const {
    if (has_value_) throw usage_error(str(name_, " takes no value"));
  }

 private:
  args a_;
  std::size_t i_ = 0;
  std::string_view name_, value_;
  bool has_value_ = false;
};

/// `s` as an integer in [lo, hi].
inline long long parse_int(std::string_view name, std::string_view s, long long lo, long long hi) {
  long long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v < lo || v > hi)
    throw usage_error(
        str(name, " wants an integer from ", std::to_string(lo), " to ", std::to_string(hi), ", not '", s, "'"));
  return v;
}

/// `s` as a real number in [lo, hi] (NaN refused).
inline double parse_real(std::string_view name, std::string_view s, double lo, double hi) {
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || !(v >= lo && v <= hi))
    throw usage_error(
        str(name, " wants a number in [", std::to_string(lo), ", ", std::to_string(hi), "], not '", s, "'"));
  return v;
}

}  // namespace slim::cli
