// slim — loader for the MovieLens `.dat` files: ratings.dat (`UserID::MovieID::Rating::Timestamp`) and
// movies.dat (`MovieID::Title::Genres`, Latin-1 in the GroupLens releases, converted to UTF-8 here).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
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

/// One line of movies.dat.
struct movielens_movie {
  std::int64_t id = 0;    ///< MovieID
  item_text text;         ///< title as written ("Toy Story (1995)"), text "Toy Story (1995). Genres: Animation, ..."
  std::int64_t line = 0;  ///< where it was read
};

/// Reads movies.dat: `MovieID::Title::Genres` per line, genres '|'-separated. A line that is not valid UTF-8
/// is taken as Latin-1 (what GroupLens ships) and converted, counted in `report.text_repaired`; a line already
/// in UTF-8 (every ASCII line is) is kept as it is. Blank lines are skipped; a wrong field count or a bad id is an
/// error naming the line.
inline std::vector<movielens_movie> read_movielens_movies(const std::string& path, load_report& report) {
  detail::line_reader in(path);
  std::vector<movielens_movie> movies;
  std::vector<std::string_view> fields;
  detail::text_line line;
  while (in.next(line)) {
    if (detail::is_blank(line.text)) continue;
    detail::split_exact(line.text, "::", fields);
    if (fields.size() != 3)
      in.fail(line, detail::cat("expected 3 fields `MovieID::Title::Genres`, found ", fields.size()));
    movielens_movie m;
    m.id = detail::integer_field(in, line, fields[0], 1, "MovieID", 1);
    m.line = line.number;
    // A line is in one encoding: UTF-8 when all of it is well-formed UTF-8, Latin-1 otherwise.
    const bool latin1 = detail::first_invalid_utf8(line.text) != std::string_view::npos;
    report.text_repaired += latin1;
    m.text.title = latin1 ? detail::latin1_to_utf8(fields[1]) : std::string(fields[1]);
    const std::string genres = latin1 ? detail::latin1_to_utf8(fields[2]) : std::string(fields[2]);
    m.text.text = detail::describe_item(m.text.title, {{"Genres", detail::join_list(genres, "|")}});
    movies.push_back(std::move(m));
  }
  return movies;
}

/// Where a MovieLens data set's files are: ratings.dat, and movies.dat ("" when not used).
struct movielens_files {
  std::string ratings;
  std::string movies;
};

/// Resolves `path` — a folder holding ratings.dat, or the ratings file itself — and the movies file:
/// `opt.item_text_path` when set; else, when `opt.item_text`, movies.dat beside the ratings if it exists.
inline movielens_files find_movielens_files(const std::string& path, const load_options& opt = {}) {
  movielens_files f;
  f.ratings = detail::is_folder(path) ? detail::folder_prefix(path) + "ratings.dat" : path;
  if (!detail::is_file(f.ratings)) throw error(f.ratings, "", "no such file (MovieLens needs ratings.dat)");
  if (!opt.item_text_path.empty()) {
    f.movies = opt.item_text_path;
  } else if (opt.item_text) {
    const std::string candidate = detail::folder_of(f.ratings) + "movies.dat";
    if (detail::is_file(candidate)) f.movies = candidate;
  }
  return f;
}

/// Loads MovieLens ratings (and titles). Each user's ratings are ordered by timestamp; ratings with equal
/// timestamps keep their order in the file (never the movie id). `opt.min_rating` drops ratings below it
/// (counted in skipped_lines); a user left with none is dropped (users_dropped). Users are numbered in order of
/// first appearance; movie ids are kept when they run densely over 1..N, else renumbered by first appearance
/// (the original id stays in `item_keys`). Every malformed line is an error naming the file, line and field;
/// blank lines are skipped and counted. With movies.dat, every rated movie must have a line there.
inline dataset load_movielens(const std::string& path, const load_options& opt = {}) {
  const movielens_files files = find_movielens_files(path, opt);
  detail::line_reader in(files.ratings);
  detail::interaction_builder<std::int64_t> builder(true);
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
    detail::split_exact(line.text, "::", fields);
    if (fields.size() != 4)
      in.fail(line, detail::cat("expected 4 fields `UserID::MovieID::Rating::Timestamp`, found ", fields.size()));
    const std::int64_t user = detail::integer_field(in, line, fields[0], 1, "UserID", 1);
    const std::int64_t movie = detail::integer_field(in, line, fields[1], 2, "MovieID", 1);
    const double rating = detail::real_field(in, line, fields[2], 3, "Rating", true);
    const std::int64_t time = detail::integer_field(in, line, fields[3], 4, "Timestamp", 0);
    const std::int32_t u = builder.user(user);
    if (opt.min_rating && rating < *opt.min_rating) {
      ++report.skipped_lines;
      continue;
    }
    builder.add(u, movie, static_cast<double>(time), line.number);
  }
  if (builder.num_events() == 0)
    throw error(files.ratings, "", report.lines ? "no rating passes min_rating" : "no interactions");

  const std::string folder = detail::folder_of(files.ratings);
  dataset d =
      builder.build(folder.empty() ? std::string("movielens") : detail::base_name(folder), report, opt.drop_duplicates);
  if (!files.movies.empty()) {
    const auto movies = read_movielens_movies(files.movies, d.report);
    detail::item_text_sink sink(d);
    for (const auto& m : movies) sink.set(files.movies, m.line, std::to_string(m.id), builder.find_item(m.id), m.text);
    sink.require_complete(files.ratings, files.movies, [&](item_id id) { return builder.first_line(id); });
  }
  return d;
}

}  // namespace slim::rec
