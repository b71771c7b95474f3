// slim — loader for SASRec's `user item` text format (one interaction per line, grouped by user, oldest
// first, as in SASRec's data/ml-1m.txt), with an optional item-text TSV beside it.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/rec/dataset.hpp"
#include "slim/rec/detail/builder.hpp"
#include "slim/rec/detail/options.hpp"
#include "slim/rec/detail/reader.hpp"
#include "slim/rec/detail/text.hpp"

namespace slim::rec {

namespace detail {

/// Reads an item-text TSV into `d`: tab-separated; column 1 is the item's id as the interaction file writes
/// it; a `title` column; an optional `genres` column ('|'-separated, as in MovieLens). When the first field
/// of the first line is not an integer, that line is a header naming the columns; without one the columns
/// are id, title[, genres]. `find` maps an id to the dataset's item id (0: not in the dataset, ignored).
template <class Find>
void read_item_text_tsv(const std::string& path, dataset& d, Find&& find, const load_options& opt,
                        const std::string& interactions, const std::vector<std::int64_t>& first_lines) {
  line_reader in(path);
  item_text_sink sink(d);
  std::vector<std::string_view> fields;
  text_line line;
  std::size_t title_col = 1, genres_col = std::string_view::npos, columns = 0;
  bool first = true;
  while (in.next(line)) {
    if (is_blank(line.text)) continue;
    split_exact(line.text, '\t', fields);
    if (first) {
      first = false;
      std::int64_t probe = 0;
      if (parse_count(fields[0], probe) != number_status::ok) {  // a header
        title_col = std::string_view::npos;
        for (std::size_t c = 1; c < fields.size(); ++c) {
          if (fields[c] == "title") title_col = c;
          if (fields[c] == "genres") genres_col = c;
        }
        if (title_col == std::string_view::npos) in.fail(line, "header has no `title` column");
        columns = fields.size();
        continue;
      }
      columns = fields.size();
      if (columns < 2) in.fail(line, cat("expected at least 2 tab-separated fields (id, title), found ", columns));
      if (columns >= 3) genres_col = 2;
    }
    if (fields.size() != columns)
      in.fail(line, cat("expected ", columns, " tab-separated fields, found ", fields.size()));
    const std::int64_t key = integer_field(in, line, fields[0], 1, "item", 1);
    item_text t;
    t.title = utf8_field(in, line, fields[title_col], title_col + 1, "title", opt.invalid_text, d.report);
    std::string genres;
    if (genres_col != std::string_view::npos)
      genres = join_list(utf8_field(in, line, fields[genres_col], genres_col + 1, "genres", opt.invalid_text, d.report),
                         "|");
    t.text = describe_item(t.title, {{"Genres", std::move(genres)}});
    sink.set(path, line.number, std::to_string(key), find(key), std::move(t));
  }
  sink.require_complete(interactions, path, [&](item_id id) { return first_lines[static_cast<std::size_t>(id)]; });
}

}  // namespace detail

/// Where a SASRec data set's files are: the interaction file, and the item-text TSV found beside it ("" when none).
struct sasrec_files {
  std::string interactions;
  std::string item_text;
};

/// Resolves `path` — the interaction file, or a folder `D` holding `D_sasrec_format.txt` or `D.txt` — and
/// the item-text file: `opt.item_text_path` when set; else, when `opt.item_text`, the file beside it named
/// with `_format.txt` replaced by `_item_map.tsv` (ml-1m_sasrec_format.txt -> ml-1m_sasrec_item_map.tsv), or
/// `<stem>_item_map.tsv` (ml-1m.txt -> ml-1m_item_map.tsv), if it exists.
inline sasrec_files find_sasrec_files(const std::string& path, const load_options& opt = {}) {
  sasrec_files f;
  if (detail::is_folder(path)) {
    const std::string dir = detail::folder_prefix(path), name = detail::base_name(path);
    for (const std::string& candidate : {dir + name + "_sasrec_format.txt", dir + name + ".txt"})
      if (detail::is_file(candidate)) {
        f.interactions = candidate;
        break;
      }
    if (f.interactions.empty())
      throw error(
          path, "",
          detail::cat("no SASRec file in this folder (looked for ", name, "_sasrec_format.txt and ", name, ".txt)"));
  } else {
    f.interactions = path;
  }
  if (!opt.item_text_path.empty()) {
    f.item_text = opt.item_text_path;
  } else if (opt.item_text) {
    const std::string& p = f.interactions;
    std::string candidate;
    if (detail::ends_with(p, "_format.txt"))
      candidate = p.substr(0, p.size() - 11) + "_item_map.tsv";
    else if (detail::ends_with(p, ".txt"))
      candidate = p.substr(0, p.size() - 4) + "_item_map.tsv";
    if (!candidate.empty() && detail::is_file(candidate)) f.item_text = candidate;
  }
  return f;
}

/// Loads SASRec's `user item` format. Each non-blank line holds two positive integers separated by blanks;
/// a user's lines in file order are its chronology (the lines of different users may interleave). Users are
/// numbered in order of first appearance; item ids are kept as they are when they run densely over 1..N (so
/// SASRec's item 17 stays 17), otherwise renumbered by first appearance. Blank lines are skipped and
/// counted; every malformed line is an error naming the file, line and field. The item-text TSV (see
/// `find_sasrec_files`) must cover every item. Policies: docs/datasets.md.
inline dataset load_sasrec(const std::string& path, const load_options& opt = {}) {
  if (opt.min_rating) throw error("slim::rec::load_sasrec", "min_rating", "the SASRec format has no ratings");
  const sasrec_files files = find_sasrec_files(path, opt);
  detail::line_reader in(files.interactions);
  detail::interaction_builder<std::int64_t> builder(false);
  builder.reserve(in.bytes().size() / 8);
  load_report report;
  std::vector<std::string_view> fields;
  detail::text_line line;
  while (in.next(line)) {
    if (detail::is_blank(line.text)) {
      ++report.skipped_lines;
      continue;
    }
    ++report.lines;
    detail::split_blanks(line.text, fields);
    if (fields.size() != 2) in.fail(line, detail::cat("expected 2 fields `user item`, found ", fields.size()));
    const std::int64_t user = detail::integer_field(in, line, fields[0], 1, "user", 1);
    const std::int64_t item = detail::integer_field(in, line, fields[1], 2, "item", 1);
    builder.add(builder.user(user), item, 0.0, line.number);
  }
  if (builder.num_events() == 0) throw error(files.interactions, "", "no interactions");

  std::string name = detail::base_name(files.interactions);
  for (const std::string_view suffix : {".txt", "_format", "_sasrec"})
    if (detail::ends_with(name, suffix)) name.resize(name.size() - suffix.size());
  dataset d = builder.build(name, report, opt.drop_duplicates);

  if (!files.item_text.empty()) {
    std::vector<std::int64_t> first_lines(static_cast<std::size_t>(d.num_items) + 1, 0);
    for (index_t id = 1; id <= d.num_items; ++id)
      first_lines[static_cast<std::size_t>(id)] = builder.first_line(static_cast<item_id>(id));
    detail::read_item_text_tsv(
        files.item_text, d, [&](std::int64_t key) { return builder.find_item(key); }, opt, files.interactions,
        first_lines);
  }
  return d;
}

}  // namespace slim::rec
