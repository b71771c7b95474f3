// slim — one entry point for every dataset format: `load_dataset(path, format)`, and `parse_format` for the
// command line's `--format sasrec|movielens|recbole|llmrank`.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "slim/core/error.hpp"
#include "slim/rec/dataset.hpp"
#include "slim/rec/detail/options.hpp"
#include "slim/rec/detail/validate.hpp"
#include "slim/rec/io_llmrank.hpp"
#include "slim/rec/io_movielens.hpp"
#include "slim/rec/io_recbole.hpp"
#include "slim/rec/io_sasrec.hpp"
#include "slim/rec/split.hpp"

namespace slim::rec {

/// The dataset formats slim reads (docs/datasets.md describes each).
enum class data_format {
  sasrec,     ///< SASRec's `user item` text (+ optional item-map TSV)
  movielens,  ///< MovieLens ratings.dat (+ movies.dat)
  recbole,    ///< RecBole atomic files `.inter` (+ `.item`)
  llmrank,    ///< LLMRank Amazon files `.item`, `.test.inter`, `.valid.inter`
};

/// The format's name as `parse_format` reads it.
inline std::string_view format_name(data_format f) noexcept {
  switch (f) {
    case data_format::sasrec:
      return "sasrec";
    case data_format::movielens:
      return "movielens";
    case data_format::recbole:
      return "recbole";
    case data_format::llmrank:
      return "llmrank";
  }
  return "unknown";
}

/// "sasrec", "movielens", "recbole" or "llmrank" (exact, lower case); anything else is an error listing them.
inline data_format parse_format(std::string_view name) {
  for (const data_format f : {data_format::sasrec, data_format::movielens, data_format::recbole, data_format::llmrank})
    if (name == format_name(f)) return f;
  throw error(
      "slim::rec::parse_format", "format",
      detail::cat("unknown dataset format ", detail::quote(name), " (expected sasrec, movielens, recbole or llmrank)"));
}

/// A loaded data set, with the split its files define when they define one (LLMRank).
struct loaded_data {
  dataset data;
  std::optional<sequence_split> split;

  /// The files' own split when there is one, else `leave_one_out(data)`.
  sequence_split make_split() const { return split ? *split : leave_one_out(data); }
};

/// Loads the data set at `path` in `format` (each `load_<format>` says what `path` may name), and checks the
/// dataset invariants before returning.
inline loaded_data load_dataset(const std::string& path, data_format format, const load_options& opt = {}) {
  loaded_data out;
  switch (format) {
    case data_format::sasrec:
      out.data = load_sasrec(path, opt);
      break;
    case data_format::movielens:
      out.data = load_movielens(path, opt);
      break;
    case data_format::recbole:
      out.data = load_recbole(path, opt);
      break;
    case data_format::llmrank: {
      auto l = load_llmrank(path, opt);
      out.data = std::move(l.data);
      out.split = std::move(l.split);
      break;
    }
  }
  validate(out.data);
  if (out.split) validate(*out.split);
  return out;
}

}  // namespace slim::rec
