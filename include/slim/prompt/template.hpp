// slim — prompt templates: text with named placeholders such as {history}, parsed once, rendered many times.
//
// Grammar (one pass over bytes; no escapes, so every template round-trips):
//   * `{name}` with name = [A-Za-z_][A-Za-z0-9_]* is a placeholder.
//   * `{` followed by a name character that does not end in `}` right after the name ("{history",
//     "{history items}") is an *unclosed placeholder*: an error. So is `{` + spaces + a name ("{ history }"),
//     which is almost always a typo.
//   * Every other `{` and every `}` is literal text (JSON examples such as {"title": ...} need no escaping).
//   * To write a literal `{` directly before a name character, use the built-in placeholders {lbrace} and
//     {rbrace}; they render as "{" and "}" unless the values say otherwise.
// Errors are `slim::error(template name, "line L, column C", message)`; lines and columns are 1-based and
// columns count bytes. Round trip: `t.render(t.identity_values()) == t.source()` for every parsed template.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"

namespace slim::prompt {

/// Placeholder values for `prompt_template::render`: name -> text (transparent lookup by string_view).
using template_values = std::map<std::string, std::string, std::less<>>;

/// An editable prompt template: the source text and its literal / placeholder segments.
class prompt_template {
 public:
  /// One piece of the template: literal text, or a placeholder (then `text` is its name).
  struct segment {
    bool placeholder = false;
    std::string text;
    std::size_t offset = 0;  ///< byte offset of the segment in the source (of the `{` for a placeholder)
  };

  prompt_template() = default;

  /// Parses `text`; `name` labels it in errors. Any syntactically valid placeholder name is accepted.
  static prompt_template parse(std::string_view text, std::string name = "template") {
    prompt_template t;
    t.source_.assign(text);
    t.name_ = std::move(name);
    t.split();
    return t;
  }

  /// Parses `text` and checks that every placeholder is in `allowed` (or is {lbrace} / {rbrace}).
  static prompt_template parse(std::string_view text, std::string name, std::span<const std::string_view> allowed) {
    prompt_template t = parse(text, std::move(name));
    t.check_names(allowed);
    return t;
  }

  /// Throws `slim::error` naming the template, line and column of the first placeholder not in `allowed`.
  void check_names(std::span<const std::string_view> allowed) const {
    for (const segment& s : segments_) {
      if (!s.placeholder || is_builtin(s.text)) continue;
      if (std::find(allowed.begin(), allowed.end(), std::string_view(s.text)) != allowed.end()) continue;
      std::string known;
      for (const std::string_view a : allowed) known.append(known.empty() ? "" : ", ").append("{").append(a) += '}';
      throw error(name_, place(s.offset), "unknown placeholder {" + s.text + "} (known: " + known + ")");
    }
  }

  /// The text with every placeholder replaced by its value; a placeholder without a value throws
  /// `slim::error` naming the template and the place. {lbrace} / {rbrace} default to "{" / "}".
  std::string render(const template_values& values) const {
    std::string out;
    out.reserve(source_.size() + 64);
    for (const segment& s : segments_) {
      if (!s.placeholder) {
        out += s.text;
        continue;
      }
      if (const auto it = values.find(s.text); it != values.end()) {
        out += it->second;
      } else if (s.text == "lbrace") {
        out += '{';
      } else if (s.text == "rbrace") {
        out += '}';
      } else {
        throw error(name_, place(s.offset), "no value for placeholder {" + s.text + "}");
      }
    }
    return out;
  }

  /// Values that render each placeholder as itself ("{name}"): `render(identity_values()) == source()`.
  template_values identity_values() const {
    template_values v;
    for (const segment& s : segments_)
      if (s.placeholder) v.emplace(s.text, "{" + s.text + "}");
    return v;
  }

  /// The distinct placeholder names in order of first use.
  std::vector<std::string> placeholders() const {
    std::vector<std::string> names;
    for (const segment& s : segments_)
      if (s.placeholder && std::find(names.begin(), names.end(), s.text) == names.end()) names.push_back(s.text);
    return names;
  }

  /// Whether the template uses placeholder `name`.
  bool uses(std::string_view name) const {
    return std::any_of(segments_.begin(), segments_.end(),
                       [&](const segment& s) { return s.placeholder && s.text == name; });
  }

  const std::string& source() const noexcept { return source_; }
  const std::string& name() const noexcept { return name_; }
  const std::vector<segment>& segments() const noexcept { return segments_; }
  bool empty() const noexcept { return source_.empty(); }

  /// "line L, column C" of byte `offset` in the source (1-based, columns in bytes).
  std::string place(std::size_t offset) const {
    std::size_t line = 1, line_start = 0;
    for (std::size_t i = 0; i < offset && i < source_.size(); ++i)
      if (source_[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    return "line " + std::to_string(line) + ", column " + std::to_string(offset - line_start + 1);
  }

 private:
  static bool name_start(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
  static bool name_char(char c) noexcept { return name_start(c) || (c >= '0' && c <= '9'); }
  static bool is_builtin(std::string_view n) noexcept { return n == "lbrace" || n == "rbrace"; }

  void split() {
    const std::string_view s(source_);
    std::size_t literal_begin = 0, i = 0;
    auto flush = [&](std::size_t end) {
      if (end > literal_begin)
        segments_.push_back({false, std::string(s.substr(literal_begin, end - literal_begin)), literal_begin});
    };
    while (i < s.size()) {
      if (s[i] != '{') {
        ++i;
        continue;
      }
      std::size_t j = i + 1;
      if (j < s.size() && (s[j] == ' ' || s[j] == '\t')) {  // "{ name }": a typo for a placeholder
        std::size_t k = j;
        while (k < s.size() && (s[k] == ' ' || s[k] == '\t')) ++k;
        std::size_t e = k;
        while (e < s.size() && name_char(s[e])) ++e;
        std::size_t after = e;
        while (after < s.size() && (s[after] == ' ' || s[after] == '\t')) ++after;
        if (k < s.size() && name_start(s[k]) && after < s.size() && s[after] == '}')
          throw error(name_, place(i),
                      "spaces inside placeholder: write {" + std::string(s.substr(k, e - k)) + "} without spaces");
        ++i;
        continue;
      }
      if (j >= s.size() || !name_start(s[j])) {  // literal brace
        ++i;
        continue;
      }
      while (j < s.size() && name_char(s[j])) ++j;
      const std::string_view name = s.substr(i + 1, j - i - 1);
      if (j >= s.size() || s[j] != '}') {
        const std::string shown = "{" + std::string(name);
        throw error(name_, place(i),
                    j >= s.size() ? "unclosed placeholder " + shown + " at the end of the template"
                                  : "unclosed placeholder " + shown + ": expected '}' after the name");
      }
      flush(i);
      segments_.push_back({true, std::string(name), i});
      i = j + 1;
      literal_begin = i;
    }
    flush(s.size());
  }

  std::string source_;
  std::string name_ = "template";
  std::vector<segment> segments_;
};

}  // namespace slim::prompt
