// slim program — string building by appending (g++ 12 at -O3 raises a false -Wrestrict on
// `"literal" + std::string`, GCC bug 105651, so the program never writes that form).
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

namespace slim::cli {

/// Concatenates strings, string views, C strings and integers.
template <class... P>
std::string str(const P&... parts) {
  std::string s;
  auto add = [&s](const auto& p) {
    using T = std::decay_t<decltype(p)>;
    if constexpr (std::is_integral_v<T>)
      s += std::to_string(p);
    else
      s += std::string_view(p);
  };
  (add(parts), ...);
  return s;
}

}  // namespace slim::cli
