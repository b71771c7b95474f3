// slim — loader for the LLMRank preparation of the Amazon review data (RUCAIBox/LLMRank): `X.item`
// (`item_id:token title:token_seq`, ids 0..N-1), `X.test.inter` and `X.valid.inter` (`user_id:token
// item_id_list:token_seq item_id:token`: a history and its next item). The full sequence of a user is the
// test history followed by the test target; the validation file is checked against it.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/rec/dataset.hpp"
#include "slim/rec/detail/options.hpp"
#include "slim/rec/detail/reader.hpp"
#include "slim/rec/detail/text.hpp"
#include "slim/rec/io_recbole.hpp"
#include "slim/rec/split.hpp"

namespace slim::rec {

/// The three files of an LLMRank data set `X`, and `X` itself (the data set's name).
struct llmrank_files {
  std::string name;
  std::string item, test, valid;
};

/// Resolves `path`: a folder holding exactly one `X.test.inter`, the prefix `.../X`, or any of the three files.
inline llmrank_files find_llmrank_files(const std::string& path) {
  std::string prefix;
  if (detail::is_folder(path)) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
      const std::string file = entry.path().filename().string();
      if (!detail::ends_with(file, ".test.inter")) continue;
      if (!prefix.empty())
        throw error(path, "", "more than one *.test.inter in this folder: name the data set's files instead");
      prefix = detail::folder_prefix(path) + file.substr(0, file.size() - 11);
    }
    if (ec) throw error(path, "", detail::cat("cannot list the folder: ", ec.message()));
    if (prefix.empty()) throw error(path, "", "no *.test.inter in this folder");
  } else {
    prefix = path;
    for (const std::string_view suffix : {".test.inter", ".valid.inter", ".item"})
      if (detail::ends_with(prefix, suffix)) {
        prefix.resize(prefix.size() - suffix.size());
        break;
      }
  }
  llmrank_files f{detail::base_name(prefix), prefix + ".item", prefix + ".test.inter", prefix + ".valid.inter"};
  for (const std::string* p : {&f.item, &f.test, &f.valid})
    if (!detail::is_file(*p)) throw error(*p, "", "no such file (LLMRank needs X.item, X.test.inter, X.valid.inter)");
  return f;
}

/// A loaded LLMRank data set and its split, ready for training and evaluation.
struct llmrank_data {
  dataset data;
  sequence_split split;
};

namespace detail {

/// One line of an LLMRank `.inter` file: the user, its history and target (dataset ids, 1-based).
struct llmrank_row {
  std::string user;
  std::vector<item_id> history;
  item_id target = 0;
  std::int64_t line = 0;
};

/// Reads every row of `in` (after its header); ids must lie in [0, num_items) and become id + 1.
inline std::vector<llmrank_row> read_llmrank_inter(line_reader& in, index_t num_items, load_report& report) {
  text_line header;
  const auto columns = read_recbole_header(in, header);
  const std::size_t user_col = recbole_require(columns, "user_id", "token", in, header);
  const std::size_t list_col = recbole_require(columns, "item_id_list", "token_seq", in, header);
  const std::size_t item_col = recbole_require(columns, "item_id", "token", in, header);
  std::vector<llmrank_row> rows;
  std::vector<std::string_view> fields, list;
  text_line line;
  const auto id_of = [&](std::string_view v, std::size_t col, std::string_view name) {
    return static_cast<item_id>(integer_field(in, line, v, col + 1, name, 0, num_items - 1) + 1);
  };
  while (in.next(line)) {
    if (is_blank(line.text)) {
      ++report.skipped_lines;
      continue;
    }
    ++report.lines;
    split_exact(line.text, '\t', fields);
    if (fields.size() != columns.size())
      in.fail(line, cat("expected ", columns.size(), " tab-separated fields, found ", fields.size()));
    llmrank_row row;
    row.user = std::string(token_field(in, line, fields[user_col], user_col + 1, "user_id"));
    split_blanks(fields[list_col], list);
    row.history.reserve(list.size());
    for (const auto v : list) row.history.push_back(id_of(v, list_col, "item_id_list"));
    row.target = id_of(fields[item_col], item_col, "item_id");
    row.line = line.number;
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace detail

/// Loads an LLMRank data set. `X.item` defines the catalogue: its ids must be exactly 0..N-1 (any order), item
/// id k becomes k + 1 (its original id stays in `item_keys`), the title is the text. Users are numbered in the
/// order of `X.test.inter`; a user's sequence is the test history then the test target. Every line of
/// `X.valid.inter` must hold a known user whose history is the test history without its last item, and that
/// last item as the target; every user with a non-empty test history needs such a line. Any violation, a
/// user listed twice, or an id outside 0..N-1 is an error naming the file and line. The split is
/// `leave_one_out` of the sequences, which equals the files' own split (train = all prefixes of the
/// validation history). `min_rating` is an error (no ratings); `drop_duplicates` is not applied.
inline llmrank_data load_llmrank(const std::string& path, const load_options& opt = {}) {
  if (opt.min_rating) throw error("slim::rec::load_llmrank", "min_rating", "the LLMRank files have no ratings");
  const llmrank_files files = find_llmrank_files(path);
  llmrank_data out;
  dataset& d = out.data;
  d.name = files.name;

  {  // the catalogue
    detail::line_reader in(files.item);
    detail::text_line header, line;
    const auto columns = detail::read_recbole_header(in, header);
    const std::size_t id_col = detail::recbole_require(columns, "item_id", "token", in, header);
    const std::size_t title_col = detail::recbole_require(columns, "title", "token_seq", in, header);
    struct entry {
      std::int64_t id, line;
      std::string title;
    };
    std::vector<entry> entries;
    std::vector<std::string_view> fields;
    while (in.next(line)) {
      if (detail::is_blank(line.text)) continue;
      detail::split_exact(line.text, '\t', fields);
      if (fields.size() != columns.size())
        in.fail(line, detail::cat("expected ", columns.size(), " tab-separated fields, found ", fields.size()));
      const std::int64_t id = detail::integer_field(in, line, fields[id_col], id_col + 1, "item_id", 0,
                                                    std::numeric_limits<item_id>::max() - 1);
      entries.push_back(
          {id, line.number,
           detail::utf8_field(in, line, fields[title_col], title_col + 1, "title", opt.invalid_text, d.report)});
    }
    if (entries.empty()) throw error(files.item, "", "no items");
    const auto n = static_cast<std::int64_t>(entries.size());
    d.num_items = static_cast<index_t>(n);
    d.items.assign(static_cast<std::size_t>(n) + 1, item_text{});
    d.item_keys.assign(static_cast<std::size_t>(n) + 1, std::string());
    std::vector<std::int64_t> defined_at(static_cast<std::size_t>(n), 0);
    for (auto& e : entries) {
      if (e.id >= n)
        throw error(
            files.item, detail::cat("line ", e.line, ", field ", id_col + 1, " (item_id)"),
            detail::cat("item id ", e.id, " is out of range: the file lists ", n, " items, ids must be 0..", n - 1));
      auto& first = defined_at[static_cast<std::size_t>(e.id)];
      if (first)
        throw error(files.item, detail::cat("line ", e.line),
                    detail::cat("item id ", e.id, " is listed again (first at line ", first, ")"));
      first = e.line;
      const auto slot = static_cast<std::size_t>(e.id) + 1;
      d.item_keys[slot] = std::to_string(e.id);
      d.items[slot].text = e.title;
      d.items[slot].title = std::move(e.title);
    }
  }

  detail::line_reader test_in(files.test);
  const auto test = detail::read_llmrank_inter(test_in, d.num_items, d.report);
  if (test.empty()) throw error(files.test, "", "no users");
  std::unordered_map<std::string, std::size_t> user_index;
  user_index.reserve(test.size());
  d.sequences.reserve(test.size());
  d.user_keys.reserve(test.size());
  for (const auto& row : test) {
    const auto [it, inserted] = user_index.try_emplace(row.user, d.sequences.size());
    if (!inserted)
      throw error(files.test, detail::cat("line ", row.line),
                  detail::cat("user ", detail::quote(row.user), " is listed again (first at line ",
                              test[it->second].line, ")"));
    std::vector<item_id> seq;
    seq.reserve(row.history.size() + 1);
    seq.assign(row.history.begin(), row.history.end());
    seq.push_back(row.target);
    d.sequences.push_back(std::move(seq));
    d.user_keys.push_back(row.user);
  }

  detail::line_reader valid_in(files.valid);
  const auto valid = detail::read_llmrank_inter(valid_in, d.num_items, d.report);
  std::vector<std::int64_t> valid_line(test.size(), 0);
  for (const auto& row : valid) {
    const auto it = user_index.find(row.user);
    const std::string place = detail::cat("line ", row.line);
    if (it == user_index.end())
      throw error(files.valid, place, detail::cat("user ", detail::quote(row.user), " is not in ", files.test));
    const std::size_t u = it->second;
    if (valid_line[u])
      throw error(
          files.valid, place,
          detail::cat("user ", detail::quote(row.user), " is listed again (first at line ", valid_line[u], ")"));
    valid_line[u] = row.line;
    const auto& h = test[u].history;
    if (h.empty())
      throw error(files.valid, place,
                  detail::cat("user ", detail::quote(row.user), " has an empty test history (", files.test, " line ",
                              test[u].line, "), so no validation case"));
    const bool same_history =
        row.history.size() + 1 == h.size() && std::equal(row.history.begin(), row.history.end(), h.begin());
    if (!same_history)
      throw error(files.valid, place,
                  detail::cat("the history of user ", detail::quote(row.user), " (", row.history.size(),
                              " items) is not the test history (", files.test, " line ", test[u].line, ", ", h.size(),
                              " items) without its last item"));
    if (row.target != h.back())
      throw error(
          files.valid, place,
          detail::cat("target ", d.item_keys[static_cast<std::size_t>(row.target)], " of user ",
                      detail::quote(row.user), " is not the last item of the test history (",
                      d.item_keys[static_cast<std::size_t>(h.back())], ", ", files.test, " line ", test[u].line, ")"));
  }
  for (std::size_t u = 0; u < test.size(); ++u)
    if (!valid_line[u] && !test[u].history.empty())
      throw error(
          files.valid, "",
          detail::cat("no line for user ", detail::quote(test[u].user), " (", files.test, " line ", test[u].line, ")"));

  out.split = leave_one_out(d);
  return out;
}

}  // namespace slim::rec
