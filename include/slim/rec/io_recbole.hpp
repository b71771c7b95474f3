// slim — loader for RecBole atomic files: `<name>.inter` (interactions) and `<name>.item` (item features),
// tab-separated with a typed header `name:type` (token, token_seq, float, float_seq). `.user` is not read.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/rec/dataset.hpp"
#include "slim/rec/detail/builder.hpp"
#include "slim/rec/detail/options.hpp"
#include "slim/rec/detail/reader.hpp"
#include "slim/rec/detail/text.hpp"

namespace slim::rec {

/// One column of an atomic file's header, `name:type`.
struct recbole_column {
  std::string name;
  std::string type;  ///< token, token_seq, float or float_seq
};

namespace detail {

/// Parses a header line into columns; throws naming the line and column for a column without `:type`, an
/// unknown type, or a name given twice.
inline std::vector<recbole_column> parse_recbole_header(const line_reader& in, const text_line& line) {
  std::vector<std::string_view> fields;
  split_exact(line.text, '\t', fields);
  std::vector<recbole_column> columns;
  for (std::size_t c = 0; c < fields.size(); ++c) {
    const std::size_t colon = fields[c].rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      in.fail_field(line, c + 1, "header", cat(quote(fields[c]), " is not `name:type`"));
    recbole_column col{std::string(fields[c].substr(0, colon)), std::string(fields[c].substr(colon + 1))};
    if (col.type != "token" && col.type != "token_seq" && col.type != "float" && col.type != "float_seq")
      in.fail_field(line, c + 1, "header",
                    cat("unknown type ", quote(col.type), " (expected token, token_seq, float or float_seq)"));
    for (const auto& other : columns)
      if (other.name == col.name)
        in.fail_field(line, c + 1, "header", cat("column ", quote(col.name), " appears twice"));
    columns.push_back(std::move(col));
  }
  return columns;
}

/// Index of the column `name`, or npos. When `type` is given and the column exists with another type, throws.
inline std::size_t recbole_find(const std::vector<recbole_column>& columns, std::string_view name,
                                const line_reader& in, const text_line& header, std::string_view type = {}) {
  for (std::size_t c = 0; c < columns.size(); ++c) {
    if (columns[c].name != name) continue;
    if (!type.empty() && columns[c].type != type)
      in.fail_field(header, c + 1, "header",
                    cat("column ", quote(name), " must have type ", type, ", not ", columns[c].type));
    return c;
  }
  return std::string_view::npos;
}

/// Index of the required column `name:type`; throws naming the header line when it is missing.
inline std::size_t recbole_require(const std::vector<recbole_column>& columns, std::string_view name,
                                   std::string_view type, const line_reader& in, const text_line& header) {
  const std::size_t c = recbole_find(columns, name, in, header, type);
  if (c == std::string_view::npos) in.fail(header, cat("header lacks the required column ", name, ":", type));
  return c;
}

/// Reads the header line of an atomic file (the first non-blank line); throws on an empty file.
inline std::vector<recbole_column> read_recbole_header(line_reader& in, text_line& header) {
  while (in.next(header))
    if (!is_blank(header.text)) return parse_recbole_header(in, header);
  throw error(in.path(), "", "empty file (expected a `name:type` header line)");
}

/// A token field: non-empty and valid UTF-8 (it becomes a key that is printed and written to JSON).
inline std::string_view token_field(const line_reader& in, const text_line& line, std::string_view value,
                                    std::size_t field, std::string_view name) {
  if (value.empty()) in.fail_field(line, field, name, "empty token");
  const std::size_t bad = first_invalid_utf8(value);
  if (bad != std::string_view::npos) in.fail_field(line, field, name, cat("token is not valid UTF-8 at byte ", bad));
  return value;
}

}  // namespace detail

/// Where a RecBole data set's files are: `<name>.inter`, and `<name>.item` ("" when not used).
struct recbole_files {
  std::string inter;
  std::string item;
};

/// Resolves `path` — a folder `D` holding `D.inter`, or the `.inter` file itself — and the item file:
/// `opt.item_text_path` when set; else, when `opt.item_text`, `<name>.item` beside the `.inter` if it exists.
inline recbole_files find_recbole_files(const std::string& path, const load_options& opt = {}) {
  recbole_files f;
  f.inter = detail::is_folder(path) ? detail::folder_prefix(path) + detail::base_name(path) + ".inter" : path;
  if (!detail::is_file(f.inter)) throw error(f.inter, "", "no such file (RecBole needs <name>.inter)");
  if (!opt.item_text_path.empty()) {
    f.item = opt.item_text_path;
  } else if (opt.item_text && detail::ends_with(f.inter, ".inter")) {
    const std::string candidate = f.inter.substr(0, f.inter.size() - 6) + ".item";
    if (detail::is_file(candidate)) f.item = candidate;
  }
  return f;
}

/// Loads RecBole atomic files. `.inter` needs `user_id:token` and `item_id:token`; with `timestamp:float` each
/// user's events are ordered by it (equal times keep file order), without it the file order is the
/// chronology; `rating:float` serves `opt.min_rating`. Columns may come in any order; other columns are
/// ignored. Users are numbered by first appearance; item tokens are kept as ids when they are the integers
/// 1..N, else renumbered by first appearance. `.item` (optional) needs `item_id:token` and a title column
/// (`title` or `*_title`); `release_year`/`year`, `class`/`genre`/`genres`, `categories`/`category` and
/// `brand` enter the description. Policies: docs/datasets.md.
inline dataset load_recbole(const std::string& path, const load_options& opt = {}) {
  const recbole_files files = find_recbole_files(path, opt);
  detail::line_reader in(files.inter);
  detail::text_line header;
  const auto columns = detail::read_recbole_header(in, header);
  const std::size_t user_col = detail::recbole_require(columns, "user_id", "token", in, header);
  const std::size_t item_col = detail::recbole_require(columns, "item_id", "token", in, header);
  const std::size_t time_col = detail::recbole_find(columns, "timestamp", in, header, "float");
  const std::size_t rating_col = detail::recbole_find(columns, "rating", in, header, "float");
  constexpr std::size_t none = std::string_view::npos;
  if (opt.min_rating && rating_col == none)
    in.fail(header, "min_rating is set but the header has no rating:float column");

  detail::interaction_builder<std::string_view> builder(time_col != none);
  builder.reserve(in.bytes().size() / 20);
  load_report report;
  std::vector<std::string_view> fields;
  detail::text_line line;
  while (in.next(line)) {
    if (detail::is_blank(line.text)) {
      ++report.skipped_lines;
      continue;
    }
    ++report.lines;
    detail::split_exact(line.text, '\t', fields);
    if (fields.size() != columns.size())
      in.fail(line, detail::cat("expected ", columns.size(), " tab-separated fields, found ", fields.size()));
    const auto user = detail::token_field(in, line, fields[user_col], user_col + 1, "user_id");
    const auto item = detail::token_field(in, line, fields[item_col], item_col + 1, "item_id");
    const double time =
        time_col == none ? 0.0 : detail::real_field(in, line, fields[time_col], time_col + 1, "timestamp", true);
    const double rating =
        rating_col == none ? 0.0 : detail::real_field(in, line, fields[rating_col], rating_col + 1, "rating", false);
    const std::int32_t u = builder.user(user);
    if (opt.min_rating && rating < *opt.min_rating) {
      ++report.skipped_lines;
      continue;
    }
    builder.add(u, item, time, line.number);
  }
  if (builder.num_events() == 0)
    throw error(files.inter, "", report.lines ? "no interaction passes min_rating" : "no interactions");

  std::string name = detail::base_name(files.inter);
  if (detail::ends_with(name, ".inter")) name.resize(name.size() - 6);
  dataset d = builder.build(std::move(name), report, opt.drop_duplicates);
  if (files.item.empty()) return d;

  detail::line_reader items(files.item);
  detail::text_line item_header;
  const auto item_columns = detail::read_recbole_header(items, item_header);
  const std::size_t id_col = detail::recbole_require(item_columns, "item_id", "token", items, item_header);
  std::size_t title_col = none, year_col = none, genre_col = none, category_col = none, brand_col = none;
  for (std::size_t c = 0; c < item_columns.size(); ++c) {
    const std::string& n = item_columns[c].name;
    if (title_col == none && (n == "title" || detail::ends_with(n, "_title"))) title_col = c;
    if (year_col == none && (n == "release_year" || n == "year")) year_col = c;
    if (genre_col == none && (n == "class" || n == "genre" || n == "genres")) genre_col = c;
    if (category_col == none && (n == "categories" || n == "category")) category_col = c;
    if (brand_col == none && n == "brand") brand_col = c;
  }
  if (title_col == none) items.fail(item_header, "header has no title column (`title` or `*_title`)");
  detail::item_text_sink sink(d);
  while (items.next(line)) {
    if (detail::is_blank(line.text)) continue;
    detail::split_exact(line.text, '\t', fields);
    if (fields.size() != item_columns.size())
      items.fail(line, detail::cat("expected ", item_columns.size(), " tab-separated fields, found ", fields.size()));
    const auto key = detail::token_field(items, line, fields[id_col], id_col + 1, "item_id");
    const auto text_of = [&](std::size_t c) {
      return c == none
                 ? std::string()
                 : detail::utf8_field(items, line, fields[c], c + 1, item_columns[c].name, opt.invalid_text, d.report);
    };
    item_text t;
    t.title = text_of(title_col);
    const std::string year = text_of(year_col);
    const std::string shown = year.empty() ? t.title : detail::cat(t.title, " (", year, ")");
    t.text = detail::describe_item(shown, {{"Genres", detail::join_list(text_of(genre_col), " |")},
                                           {"Categories", text_of(category_col)},
                                           {"Brand", text_of(brand_col)}});
    sink.set(files.item, line.number, key, builder.find_item(key), std::move(t));
  }
  sink.require_complete(files.inter, files.item, [&](item_id id) { return builder.first_line(id); });
  return d;
}

}  // namespace slim::rec
