// slim — the options every dataset loader takes (`load_options`), shared by io_*.hpp and load.hpp.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <optional>
#include <string>

namespace slim::rec {

/// What a loader does with item text (titles, genres) that is not valid UTF-8 in a format that promises UTF-8
/// (RecBole, LLMRank, the item-map TSV). MovieLens `movies.dat` is Latin-1 by definition and is always converted.
enum class text_policy {
  repair,  ///< replace each ill-formed unit by U+FFFD and count the title in load_report::text_repaired
  error,   ///< throw slim::error naming the file, line, field and byte offset
};

/// Options of `load_dataset` and of every `load_<format>` function (docs/datasets.md states each policy).
struct load_options {
  /// Drop interactions whose rating is below this value (formats with ratings only: MovieLens, RecBole with a
  /// `rating` column; asking for it on a format without ratings is an error). Counted in skipped_lines.
  std::optional<double> min_rating{};
  /// Keep only the first event of each (user, item) pair in chronological order; the rest are counted in
  /// load_report::duplicate_events. Off by default: repeated consumption is kept as it is in the file.
  /// (Not applied to LLMRank files, whose sequences are given as they are.)
  bool drop_duplicates = false;
  /// Invalid UTF-8 in item text of a UTF-8 format.
  text_policy invalid_text = text_policy::repair;
  /// Look for the item-text file beside the interactions (names per format in docs/datasets.md).
  bool item_text = true;
  /// An explicit item-text file; overrides the search (an error when it cannot be read).
  std::string item_text_path{};
};

}  // namespace slim::rec
