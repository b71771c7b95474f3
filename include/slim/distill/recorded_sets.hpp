// slim — adapters for the two recorded teacher sets in ../shared/data/rationales/ (docs/teachers.md):
//   * nir_ml100k: GPT-3 (text-davinci-003) three-step reasoning for 170 MovieLens-100K users, with the title
//     sequences of all 943 users (NIR, Wang & Lim 2023);
//   * agent4rec_ml1m: gpt-3.5-turbo LIKE / REASON / MOVIE taste profiles for 1,000 MovieLens-1M users
//     (Agent4Rec, Zhang et al. 2024), joined to the chronological ML-1M sequences of all 6,040 users.
// Each gives the dataset the rationales are about and one recorded_rationale per labelled user; every
// malformed or inconsistent input is a slim::error naming the file and the line.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"
#include "slim/distill/recorded_teacher.hpp"
#include "slim/io/atomic_file.hpp"
#include "slim/io/json.hpp"
#include "slim/rec/dataset.hpp"
#include "slim/rec/detail/validate.hpp"
#include "slim/rec/io_sasrec.hpp"

namespace slim::distill {

/// A recorded set: the interactions and item texts, and the teacher's rationales by user row.
struct recorded_set {
  rec::dataset data;
  std::vector<recorded_rationale> rationales;  ///< one per labelled user, by dataset user row
  std::string source;                          ///< the file the rationales came from
  std::string teacher_model;                   ///< as the source names it ("text-davinci-003", "gpt-3.5-turbo")

  /// The teacher answering from these records.
  recorded_teacher teacher() const { return recorded_teacher(source, rationales, data.num_users()); }
};

namespace detail {

inline std::string join_path(const std::string& dir, const char* name) {
  return (std::filesystem::path(dir) / name).string();
}

/// Lines of a text file without their '\n' (and a trailing '\r').
inline std::vector<std::string> read_lines(const std::string& path) {
  const std::string all = io::read_file(path);
  std::vector<std::string> lines;
  std::size_t b = 0;
  while (b < all.size()) {
    std::size_t e = all.find('\n', b);
    if (e == std::string::npos) e = all.size();
    std::string l = all.substr(b, e - b);
    if (!l.empty() && l.back() == '\r') l.pop_back();
    lines.push_back(std::move(l));
    b = e + 1;
  }
  return lines;
}

inline std::int64_t parse_id(std::string_view s, const std::string& path, std::size_t line, const char* what) {
  std::int64_t v = 0;
  require(!s.empty() && s.size() <= 12, path.c_str(), "line ", line, ": ", what, " '", s, "' is not an id");
  for (const char c : s) {
    require(c >= '0' && c <= '9', path.c_str(), "line ", line, ": ", what, " '", s, "' is not an id");
    v = v * 10 + (c - '0');
  }
  return v;
}

/// RFC 4180 CSV (quoted fields, doubled quotes, newlines inside quotes) with a header row; calls
/// `row(fields, line)` per record, where `line` is the record's first line.
template <class F>
void read_csv(const std::string& path, F&& row) {
  const std::string all = io::read_file(path);
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false, any = false;
  std::size_t line = 1, record_line = 1;
  auto end_record = [&] {
    fields.push_back(std::move(field));
    field.clear();
    if (!(fields.size() == 1 && fields[0].empty())) row(fields, record_line);
    fields.clear();
    any = false;
  };
  for (std::size_t i = 0; i < all.size(); ++i) {
    const char c = all[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < all.size() && all[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (!any) record_line = line;
    any = true;
    if (c == '"' && field.empty()) {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      if (!field.empty() && field.back() == '\r') field.pop_back();
      end_record();
      ++line;
    } else {
      field += c;
    }
  }
  require(!quoted, path.c_str(), "line ", record_line, ": a quoted field is never closed");
  if (any) end_record();
}

/// Keeps the first `max_blocks` blank-line-separated paragraphs of `text` (0: all) and, in every
/// "MOVIE:" line, the first `max_titles` ';'-separated titles (0: all).
inline std::string trim_blocks(const std::string& text, index_t max_blocks, index_t max_titles) {
  if (max_blocks <= 0 && max_titles <= 0) return text;
  std::string out;
  index_t paragraphs = 0;
  bool in_paragraph = false;
  std::size_t b = 0;
  while (b <= text.size()) {
    std::size_t e = text.find('\n', b);
    if (e == std::string::npos) e = text.size();
    std::string l = text.substr(b, e - b);
    b = e + 1;
    const bool blank = l.find_first_not_of(" \t\r") == std::string::npos;
    if (blank) {
      in_paragraph = false;
    } else {
      if (!in_paragraph) {
        if (max_blocks > 0 && paragraphs == max_blocks) break;
        ++paragraphs;
        in_paragraph = true;
        if (!out.empty()) out += "\n\n";
      } else {
        out += '\n';
      }
      if (max_titles > 0 && l.rfind("MOVIE:", 0) == 0) {
        std::string kept = "MOVIE:";
        std::size_t p = 6;
        for (index_t k = 0; k < max_titles && p < l.size(); ++k) {
          std::size_t q = l.find(';', p);
          if (q == std::string::npos) q = l.size();
          kept += (k ? ";" : "") + l.substr(p, q - p);
          p = q + 1;
        }
        l = std::move(kept);
      }
      out += l;
    }
    if (e == text.size()) break;
  }
  return out;
}

}  // namespace detail

// ---------------------------------------------------------------- NIR on ML-100K

/// How NIR's three steps become one rationale: "Step 1: <preferences>", "Step 2:" with the featured watched
/// titles as a numbered list, "Step 3:" with the recommendations as "watched - candidate" lines (the
/// candidate alone where the model named no watched title). The parsed fields of rationales.jsonl are used,
/// not the raw completions (those carry the model's numbering quirks).
inline std::string nir_rationale(const io::json& r, const io::json_where& w) {
  std::string t = "Step 1: " + io::get<std::string>(r, "step1_preferences", w) + "\nStep 2:";
  const auto featured = io::get<std::vector<std::string>>(r, "step2_featured_movies", w);
  for (std::size_t k = 0; k < featured.size(); ++k) t += "\n" + std::to_string(k + 1) + ". " + featured[k];
  t += "\nStep 3:";
  const io::json* recs = r.contains("step3_recommendations") ? &r["step3_recommendations"] : nullptr;
  require(recs && recs->is_array(), std::string(w.file).c_str(), "line ", w.line,
          ": step3_recommendations is not an array");
  std::size_t k = 0;
  for (const io::json& x : *recs) {
    require(x.is_object(), std::string(w.file).c_str(), "line ", w.line, ": a step-3 entry is not an object");
    const std::string cand = io::get<std::string>(x, "candidate", w);
    const bool watched = x.contains("watched") && x["watched"].is_string();
    t += "\n" + std::to_string(++k) + ". " + (watched ? x["watched"].get<std::string>() + " - " : std::string()) + cand;
  }
  return t;
}

/// Loads `dir` = rationales/nir_ml100k: items.tsv (dense ids 1..N, titles), sequences.jsonl (943 users:
/// history_ids then target_id, in the authors' order; each id's title must equal the title written beside
/// it) and rationales.jsonl (170 users, rendered by nir_rationale). Item text is the title (NIR has no more).
inline recorded_set load_nir_ml100k(const std::string& dir) {
  recorded_set s;
  rec::dataset& d = s.data;
  d.name = "nir_ml100k";
  {
    const std::string path = detail::join_path(dir, "items.tsv");
    const auto lines = detail::read_lines(path);
    d.items.assign(1, {});
    d.item_keys.assign(1, "");
    for (std::size_t k = 0; k < lines.size(); ++k) {
      const std::string& l = lines[k];
      if (k == 0 && l.rfind("item_id\t", 0) == 0) continue;
      if (l.empty()) continue;
      const std::size_t tab = l.find('\t');
      require(tab != std::string::npos && l.find('\t', tab + 1) == std::string::npos, path.c_str(), "line ", k + 1,
              ": expected item_id<TAB>title");
      const std::int64_t id = detail::parse_id(std::string_view(l).substr(0, tab), path, k + 1, "item id");
      require(id == static_cast<std::int64_t>(d.items.size()), path.c_str(), "line ", k + 1, ": item id ", id,
              " out of order (expected ", d.items.size(), ")");
      require(tab + 1 < l.size(), path.c_str(), "line ", k + 1, ": empty title");
      rec::item_text t;
      t.title = l.substr(tab + 1);
      t.text = t.title;
      d.items.push_back(std::move(t));
      d.item_keys.push_back(std::to_string(id));
    }
    d.num_items = static_cast<index_t>(d.items.size()) - 1;
    require(d.num_items > 0, path.c_str(), "no items");
  }
  {
    const std::string path = detail::join_path(dir, "sequences.jsonl");
    io::read_jsonl(path, [&](const io::json& r, std::size_t line) {
      const io::json_where w(path, line);
      const auto u = io::get<index_t>(r, "user_index", w);
      require(u == d.num_users(), path.c_str(), "line ", line, ": user_index ", u, " out of order (expected ",
              d.num_users(), ")");
      auto ids = io::get<std::vector<std::int64_t>>(r, "history_ids", w);
      const auto titles = io::get<std::vector<std::string>>(r, "history", w);
      ids.push_back(io::get<std::int64_t>(r, "target_id", w));
      std::vector<std::string> all_titles = titles;
      all_titles.push_back(io::get<std::string>(r, "target", w));
      require(all_titles.size() == ids.size(), path.c_str(), "line ", line, ": ", titles.size(), " titles for ",
              ids.size() - 1, " history ids");
      std::vector<rec::item_id> seq;
      for (std::size_t k = 0; k < ids.size(); ++k) {
        require(ids[k] >= 1 && ids[k] <= d.num_items, path.c_str(), "line ", line, ": item id ", ids[k],
                " is outside [1, ", d.num_items, "]");
        require(d.items[static_cast<std::size_t>(ids[k])].title == all_titles[k], path.c_str(), "line ", line,
                ": item ", ids[k], " is '", all_titles[k], "' here but '",
                d.items[static_cast<std::size_t>(ids[k])].title, "' in items.tsv");
        seq.push_back(static_cast<rec::item_id>(ids[k]));
      }
      d.sequences.push_back(std::move(seq));
      d.user_keys.push_back(std::to_string(u));
    });
    require(d.num_users() > 0, path.c_str(), "no users");
  }
  rec::validate(d);
  s.source = detail::join_path(dir, "rationales.jsonl");
  std::vector<std::size_t> line_of(static_cast<std::size_t>(d.num_users()), 0);
  io::read_jsonl(s.source, [&](const io::json& r, std::size_t line) {
    const io::json_where w(s.source, line);
    recorded_rationale x;
    x.user = io::get<index_t>(r, "user_index", w);
    require(x.user >= 0 && x.user < d.num_users(), s.source.c_str(), "line ", line, ": user_index ", x.user,
            " is outside [0, ", d.num_users(), ")");
    x.text = nir_rationale(r, w);
    recorded_teacher::check_record(s.source, line, x, d.num_users(), line_of);
    const std::string model = io::get_or<std::string>(r, "teacher_model", "", w);
    if (s.teacher_model.empty()) s.teacher_model = model;
    s.rationales.push_back(std::move(x));
  });
  return s;
}

// ---------------------------------------------------------------- Agent4Rec on ML-1M

/// Which Agent4Rec texts to use and how much of each.
struct agent4rec_options {
  std::string variant = "like";  ///< like | like_no_sys | taste_modify (teacher_<variant>.jsonl)
  index_t max_blocks = 0;        ///< keep the first N paragraphs (LIKE/REASON/MOVIE blocks) of a text; 0: all
  index_t max_titles = 0;        ///< keep the first N titles of each MOVIE: line; 0: all
  bool summaries = true;         ///< append movie_detail.csv's one-line summary to each item's text
};

/// Loads Agent4Rec's profiles (`dir` = rationales/agent4rec_ml1m) onto ML-1M (`ml1m_dir` = ml-1m, whose
/// ml-1m_sasrec_format.txt gives 6,040 chronological sequences over 3,416 items and ml-1m_sasrec_item_map.tsv
/// the MovieLens id, title and genres of each). Users are joined by their MovieLens id (ml1m_user_id, checked
/// against id_maps.json); item summaries by MovieLens id through id_maps.json's movie_id_map.
inline recorded_set load_agent4rec_ml1m(const std::string& dir, const std::string& ml1m_dir,
                                        const agent4rec_options& opt = {}) {
  recorded_set s;
  require(opt.variant == "like" || opt.variant == "like_no_sys" || opt.variant == "taste_modify",
          "slim::distill::load_agent4rec_ml1m", "unknown variant '", opt.variant,
          "' (like, like_no_sys, taste_modify)");
  s.data = rec::load_sasrec(detail::join_path(ml1m_dir, "ml-1m_sasrec_format.txt"));
  rec::dataset& d = s.data;
  d.name = "ml-1m+agent4rec";
  const io::json maps = io::read_json(detail::join_path(dir, "id_maps.json"));
  const std::string maps_path = detail::join_path(dir, "id_maps.json");
  auto id_map = [&](const char* key) {
    std::unordered_map<std::int64_t, std::int64_t> m;
    require(maps.contains(key) && maps[key].is_object(), maps_path.c_str(), "no object \"", key, "\"");
    for (auto it = maps[key].begin(); it != maps[key].end(); ++it) {
      require(it.value().is_number_integer(), maps_path.c_str(), key, "/", it.key(), " is not an integer");
      m[detail::parse_id(it.key(), maps_path, 0, key)] = it.value().get<std::int64_t>();
    }
    return m;
  };
  const auto user_map = id_map("user_id_map"), movie_map = id_map("movie_id_map");
  if (opt.summaries) {
    std::unordered_map<std::int64_t, std::string> summary;  // Agent4Rec movie id -> summary
    const std::string csv = detail::join_path(dir, "movie_detail.csv");
    std::size_t id_col = 0, summary_col = 0, columns = 0;
    bool header = true;
    detail::read_csv(csv, [&](const std::vector<std::string>& f, std::size_t line) {
      if (header) {
        header = false;
        columns = f.size();
        const auto at = [&](const char* name) {
          const auto it = std::find(f.begin(), f.end(), name);
          require(it != f.end(), csv.c_str(), "line 1: no column '", name, "'");
          return static_cast<std::size_t>(it - f.begin());
        };
        id_col = at("movie_id");
        summary_col = at("summary");
        return;
      }
      require(f.size() == columns, csv.c_str(), "line ", line, ": ", f.size(), " fields, expected ", columns);
      summary[detail::parse_id(f[id_col], csv, line, "movie_id")] = f[summary_col];
    });
    std::unordered_map<std::string, rec::item_id> item_of;
    for (index_t i = 1; i <= d.num_items; ++i)
      item_of[d.item_keys[static_cast<std::size_t>(i)]] = static_cast<rec::item_id>(i);
    const auto map_rows = detail::read_lines(detail::join_path(ml1m_dir, "ml-1m_sasrec_item_map.tsv"));
    const std::string map_path = detail::join_path(ml1m_dir, "ml-1m_sasrec_item_map.tsv");
    for (std::size_t k = 1; k < map_rows.size(); ++k) {  // row 0 is the header
      const std::string& l = map_rows[k];
      if (l.empty()) continue;
      const std::size_t t1 = l.find('\t'), t2 = t1 == std::string::npos ? t1 : l.find('\t', t1 + 1);
      require(t2 != std::string::npos, map_path.c_str(), "line ", k + 1, ": expected id<TAB>movie id<TAB>...");
      const std::string_view skey = std::string_view(l).substr(0, t1);
      detail::parse_id(skey, map_path, k + 1, "item id");
      const std::int64_t mid =
          detail::parse_id(std::string_view(l).substr(t1 + 1, t2 - t1 - 1), map_path, k + 1, "movie id");
      const auto it = item_of.find(std::string(skey));  // the file's item id -> the dataset's
      require(it != item_of.end(), map_path.c_str(), "line ", k + 1, ": item ", skey, " is not in the data");
      const rec::item_id sid = it->second;
      const auto a = movie_map.find(mid);
      if (a == movie_map.end()) continue;
      const auto sm = summary.find(a->second);
      if (sm == summary.end() || sm->second.empty()) continue;
      d.items[static_cast<std::size_t>(sid)].text += ". Summary: " + sm->second;
    }
  }
  std::vector<std::size_t> line_of(static_cast<std::size_t>(d.num_users()), 0);
  std::unordered_map<std::string, index_t> row_of;
  for (index_t u = 0; u < d.num_users(); ++u) row_of[d.user_keys[static_cast<std::size_t>(u)]] = u;
  s.source = (std::filesystem::path(dir) / ("teacher_" + opt.variant + ".jsonl")).string();
  io::read_jsonl(s.source, [&](const io::json& r, std::size_t line) {
    const io::json_where w(s.source, line);
    const auto ml = io::get<std::int64_t>(r, "ml1m_user_id", w);
    const auto remapped = io::get<std::int64_t>(r, "user_id", w);
    const auto m = user_map.find(ml);
    require(m != user_map.end() && m->second == remapped, s.source.c_str(), "line ", line, ": user ", remapped,
            " (MovieLens ", ml, ") disagrees with id_maps.json");
    const auto row = row_of.find(std::to_string(ml));
    require(row != row_of.end(), s.source.c_str(), "line ", line, ": MovieLens user ", ml, " is not in ML-1M");
    recorded_rationale x;
    x.user = row->second;
    x.text = detail::trim_blocks(io::get<std::string>(r, "text", w), opt.max_blocks, opt.max_titles);
    recorded_teacher::check_record(s.source, line, x, d.num_users(), line_of);
    if (s.teacher_model.empty()) s.teacher_model = io::get_or<std::string>(r, "teacher_model", "", w);
    s.rationales.push_back(std::move(x));
  });
  return s;
}

}  // namespace slim::distill
