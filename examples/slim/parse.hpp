// slim program — option values: whole-string integers and reals within a range, or a usage_error naming the
// option.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <charconv>
#include <string>
#include <string_view>
#include <system_error>

#include "commands.hpp"
#include "str.hpp"

namespace slim::cli {

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
