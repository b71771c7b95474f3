// The dataset loaders on the real files in the shared data folder ($SLIM_DATA_DIR, default ../shared/data
// beside the checkout): counts against the statistics their SOURCE.md files state, titles, chronology checked
// against an independently stored copy, and the load time of ML-1M. Exits 77 (skipped) without the folder.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "slim/rec/kcore.hpp"
#include "slim/rec/load.hpp"
#include "slim/rec/split.hpp"

using namespace slim::rec;
using slim::index_t;

namespace {

/// The shared data folder, or exit 77 when it (or one of the three data sets) is missing.
const std::string& data_dir() {
  static const std::string dir = [] {
    std::string d;
    if (const char* env = std::getenv("SLIM_DATA_DIR"); env && *env)
      d = env;
#ifdef SLIM_REC_DEFAULT_DATA_DIR
    else
      d = SLIM_REC_DEFAULT_DATA_DIR;
#endif
    std::error_code ec;
    for (const char* rel : {"ml-1m/ml-1m_sasrec_format.txt", "ml-100k/ml-100k.inter", "amazon-games/Games-6k.item"})
      if (d.empty() || !std::filesystem::is_regular_file(d + "/" + rel, ec)) {
        std::fprintf(stderr, "no shared data folder with %s (set SLIM_DATA_DIR): skipping (exit 77)\n", rel);
        std::_Exit(77);
      }
    return d;
  }();
  return dir;
}
// Decide before any test runs.
const bool data_present = !data_dir().empty();

/// Tab-separated fields of every line after the first (a header) of a small text file, read plainly.
std::vector<std::vector<std::string>> read_tsv_rows(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  INFO("reading " << path);
  REQUIRE(in);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> row;
    std::stringstream ss(line);
    std::string f;
    while (std::getline(ss, f, '\t')) row.push_back(f);
    rows.push_back(row);
  }
  return rows;
}

const dataset& ml1m() {
  static const dataset d = load_dataset(data_dir() + "/ml-1m", data_format::sasrec).data;
  return d;
}

}  // namespace

TEST_CASE("ML-1M (SASRec format): 6,040 users, 3,416 items, 999,611 actions, ids kept", "[rec][data][real]") {
  const dataset& d = ml1m();
  CHECK(d.name == "ml-1m");
  CHECK(d.num_users() == 6040);
  CHECK(d.num_items == 3416);
  CHECK(d.num_interactions() == 999611);
  CHECK(d.report.lines == 999611);
  CHECK(d.report.skipped_lines == 0);
  CHECK(d.report.text_repaired == 0);
  // ids are 1..3416 in the file, so they are kept: item k is the file's item k, user u the file's user u
  for (index_t i = 1; i <= d.num_items; ++i) REQUIRE(d.item_keys[static_cast<std::size_t>(i)] == std::to_string(i));
  for (index_t u = 0; u < d.num_users(); ++u)
    REQUIRE(d.user_keys[static_cast<std::size_t>(u)] == std::to_string(u + 1));
  // the first lines of the file: user 1 watched items 1, 2, 3 first
  REQUIRE(d.sequences[0].size() >= 3);
  CHECK(d.sequences[0][0] == 1);
  CHECK(d.sequences[0][1] == 2);
  CHECK(d.sequences[0][2] == 3);
  validate(d);
}

TEST_CASE("ML-1M: every item has the title and genres of the item map", "[rec][data][real]") {
  const dataset& d = ml1m();
  const auto rows = read_tsv_rows(data_dir() + "/ml-1m/ml-1m_sasrec_item_map.tsv");
  REQUIRE(rows.size() == 3416);
  for (const auto& r : rows) {
    REQUIRE(r.size() == 4);
    const auto id = static_cast<std::size_t>(std::stol(r[0]));
    REQUIRE(id >= 1);
    REQUIRE(id <= 3416);
    INFO("item " << id);
    CHECK(d.items[id].title == r[2]);
    CHECK(d.items[id].text.rfind(r[2] + ". Genres: ", 0) == 0);
  }
  CHECK(d.items[1].text == "Girl, Interrupted (1999). Genres: Drama");
  CHECK(d.items[2].text == "Titanic (1997). Genres: Drama, Romance");
}

TEST_CASE("ML-1M: each sequence is the stored chronological history restricted to the kept movies",
          "[rec][data][real]") {
  // ml-1m_user_sequences.txt holds every user's full history in original MovieLens ids (one line per user,
  // chronological); the SASRec file drops movies with < 5 ratings. Mapping our ids back through the item map
  // must give exactly the stored history with the dropped movies left out.
  const dataset& d = ml1m();
  std::unordered_map<std::string, std::string> movie_of;  // sasrec id -> movielens id
  for (const auto& r : read_tsv_rows(data_dir() + "/ml-1m/ml-1m_sasrec_item_map.tsv")) movie_of[r[0]] = r[1];
  std::unordered_map<std::string, int> kept;
  for (const auto& [s, m] : movie_of) kept[m] = 1;
  std::ifstream in(data_dir() + "/ml-1m/ml-1m_user_sequences.txt");
  REQUIRE(in);
  std::string line;
  index_t users = 0;
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string user, movie;
    ss >> user;
    std::vector<std::string> expected;
    while (ss >> movie)
      if (kept.count(movie)) expected.push_back(movie);
    const auto u = static_cast<std::size_t>(std::stol(user) - 1);
    REQUIRE(u < d.sequences.size());
    std::vector<std::string> got;
    for (const item_id i : d.sequences[u]) got.push_back(movie_of.at(d.item_keys[static_cast<std::size_t>(i)]));
    INFO("user " << user);
    REQUIRE(got == expected);
    ++users;
  }
  CHECK(users == 6040);
}

TEST_CASE("ML-1M: loads in well under a second", "[rec][data][real]") {
  const auto t0 = std::chrono::steady_clock::now();
  const dataset d = load_sasrec(data_dir() + "/ml-1m/ml-1m_sasrec_format.txt");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "ML-1M SASRec file (9 MB, 999,611 lines) + item map loaded in %.3f s\n", seconds);
  CHECK(d.num_interactions() == 999611);
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__)
  CHECK(seconds < 1.0);  // measured ~0.1 s on a loaded 2-core machine
#endif
}

TEST_CASE("ML-1M: leave-one-out and popularity on the real sequences", "[rec][data][real]") {
  const dataset& d = ml1m();
  const sequence_split s = leave_one_out(d);
  REQUIRE(s.num_users() == 6040);
  std::int64_t train = 0;
  for (std::size_t u = 0; u < s.train.size(); ++u) {
    const auto& seq = d.sequences[u];
    REQUIRE(seq.size() >= 3);  // the shortest ML-1M sequence has 18 items
    REQUIRE(s.test[u] == seq.back());
    REQUIRE(s.valid[u] == seq[seq.size() - 2]);
    train += static_cast<std::int64_t>(s.train[u].size());
  }
  CHECK(train == 999611 - 2 * 6040);
  const auto pop = item_popularity(s);
  std::int64_t total = 0;
  for (const auto c : pop) total += c;
  CHECK(total == train);
  CHECK(pop[0] == 0);
  // the SASRec file kept movies with >= 5 ratings and every user has >= 18: already a 5-core
  dataset copy = d;
  const kcore_result r = kcore_filter(copy, {.min_user_interactions = 5, .min_item_interactions = 5});
  CHECK(r.rounds == 0);
  CHECK(copy.num_interactions() == 999611);
}

TEST_CASE("ML-1M movies.dat: Latin-1 titles converted to UTF-8 match movies.tsv", "[rec][data][real]") {
  // movies.tsv is movies.dat decoded as Latin-1 by Python (build_ml1m.py): an independent conversion.
  load_report report;
  const auto movies = read_movielens_movies(data_dir() + "/ml-1m/movies.dat", report);
  CHECK(movies.size() == 3883);
  CHECK(report.text_repaired == 50);  // lines with bytes >= 0x80 in movies.dat (none is valid UTF-8)
  std::map<std::int64_t, std::string> expected;
  for (const auto& r : read_tsv_rows(data_dir() + "/ml-1m/movies.tsv")) expected[std::stol(r[0])] = r[1];
  REQUIRE(expected.size() == 3883);
  for (const auto& m : movies) {
    INFO("movie " << m.id);
    CHECK(m.text.title == expected.at(m.id));
  }
  CHECK(movies[72].text.title == "Mis\xC3\xA9rables, Les (1995)");
}

TEST_CASE("ml-100k (RecBole): 943 users, 1,682 items, 100,000 interactions, by timestamp", "[rec][data][real]") {
  const dataset d = load_dataset(data_dir() + "/ml-100k", data_format::recbole).data;
  CHECK(d.name == "ml-100k");
  CHECK(d.num_users() == 943);
  CHECK(d.num_items == 1682);
  CHECK(d.num_interactions() == 100000);
  CHECK(d.report.lines == 100000);
  for (index_t i = 1; i <= d.num_items; ++i) REQUIRE(d.item_keys[static_cast<std::size_t>(i)] == std::to_string(i));
  CHECK(d.items[1].title == "Toy Story");
  CHECK(d.items[1].text == "Toy Story (1995). Genres: Animation, Children's, Comedy");
  for (index_t i = 1; i <= d.num_items; ++i) REQUIRE_FALSE(d.items[static_cast<std::size_t>(i)].title.empty());

  // Chronology: per user, timestamps never decrease, and equal timestamps keep the order of the file.
  std::unordered_map<std::string, std::size_t> user_of;
  for (std::size_t u = 0; u < d.user_keys.size(); ++u) user_of[d.user_keys[u]] = u;
  struct event {
    long long time;
    std::size_t file_line;
  };
  std::vector<std::unordered_map<std::string, event>> when(d.user_keys.size());
  std::size_t line_no = 0, ties = 0;
  for (const auto& r : read_tsv_rows(data_dir() + "/ml-100k/ml-100k.inter")) {
    ++line_no;
    REQUIRE(r.size() == 4);
    when[user_of.at(r[0])][r[1]] = {std::stoll(r[3]), line_no};  // ml-100k has no repeated (user, item)
  }
  for (std::size_t u = 0; u < d.sequences.size(); ++u) {
    const auto& s = d.sequences[u];
    for (std::size_t t = 1; t < s.size(); ++t) {
      const event a = when[u].at(d.item_keys[static_cast<std::size_t>(s[t - 1])]);
      const event b = when[u].at(d.item_keys[static_cast<std::size_t>(s[t])]);
      INFO("user " << d.user_keys[u] << " position " << t);
      REQUIRE(a.time <= b.time);
      if (a.time == b.time) {
        ++ties;
        REQUIRE(a.file_line < b.file_line);
      }
    }
  }
  CHECK(ties > 0);  // the tie rule is exercised on real data
}

TEST_CASE("Amazon Games (LLMRank): 50,546 users, 16,859 items, 440,264 interactions", "[rec][data][real]") {
  const loaded_data l = load_dataset(data_dir() + "/amazon-games", data_format::llmrank);
  const dataset& d = l.data;
  CHECK(d.name == "Games-6k");
  CHECK(d.num_users() == 50546);
  CHECK(d.num_items == 16859);
  CHECK(d.num_interactions() == 440264);
  CHECK(d.items[1].title == "Fire Emblem: The Sacred Stones");
  CHECK(d.items[2].title == "GBA 6-Pak Care Case - Game Boy Advance");
  index_t titled = 0;
  for (index_t i = 1; i <= d.num_items; ++i) titled += !d.items[static_cast<std::size_t>(i)].title.empty();
  CHECK(titled == 16859);
  // first line of Games-6k.test.inter: user 0, history 0..13, target 14 -> our ids 1..15
  REQUIRE(d.sequences[0].size() == 15);
  for (std::size_t t = 0; t < 15; ++t) CHECK(d.sequences[0][t] == static_cast<item_id>(t + 1));

  REQUIRE(l.split);
  const sequence_split& s = *l.split;
  CHECK(s.train[0].size() == 13);
  CHECK(s.valid[0] == 14);
  CHECK(s.test[0] == 15);
  std::size_t shortest = 1000, longest = 0;
  for (std::size_t u = 0; u < s.train.size(); ++u) {
    const auto& seq = d.sequences[u];
    shortest = std::min(shortest, seq.size());
    longest = std::max(longest, seq.size());
    REQUIRE(s.train[u].size() + 2 == seq.size());
    REQUIRE(s.test[u] == seq.back());
  }
  CHECK(shortest == 5);  // 5-core
  CHECK(longest == 50);  // histories capped at 50
}
