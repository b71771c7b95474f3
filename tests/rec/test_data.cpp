// Dataset loaders, k-core, leave-one-out and popularity on small files written to a temporary folder: each
// format, Latin-1 repair, timestamp ties kept in file order, and every bad-input case with its exact file,
// line and field.
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "slim/rec/kcore.hpp"
#include "slim/rec/load.hpp"
#include "slim/rec/split.hpp"

using namespace slim::rec;
using slim::index_t;

namespace {

/// A fresh folder under the system's temporary folder, removed with everything in it at scope exit.
struct temp_folder {
  std::string path;
  temp_folder() {
    static std::atomic<int> counter{0};
    path = (std::filesystem::temp_directory_path() /
            ("slim_rec_data_" + std::to_string(::getpid()) + "_" + std::to_string(counter++)))
               .string();
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~temp_folder() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  /// Writes `bytes` to `name` inside the folder and returns its path.
  std::string write(const std::string& name, const std::string& bytes) const {
    const std::string p = path + "/" + name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
};

/// Runs `f`, which must throw slim::error whose where() is `where`, place() is `place`, and whose message
/// contains `fragment`; what() must start with "where: place: ".
template <class F>
void require_error(F&& f, const std::string& where, const std::string& place, const std::string& fragment) {
  try {
    f();
  } catch (const slim::error& e) {
    INFO("what(): " << e.what());
    CHECK(e.where() == where);
    CHECK(e.place() == place);
    CHECK(e.message().find(fragment) != std::string::npos);
    const std::string prefix = place.empty() ? where + ": " : where + ": " + place + ": ";
    CHECK(std::string(e.what()).rfind(prefix, 0) == 0);
    return;
  }
  FAIL("no slim::error thrown (expected " << where << ": " << place << ": ..." << fragment << ")");
}

using seq = std::vector<item_id>;

}  // namespace

// ---- SASRec ---------------------------------------------------------------------------------------------

TEST_CASE("sasrec: dense ids are kept, file order is the chronology, blank lines are counted", "[rec][data]") {
  temp_folder dir;
  const auto p = dir.write("toy.txt", "1 3\n1 1\n\n2 2\r\n1 2\n2 3\n  \n3 1\n");
  const dataset d = load_sasrec(p);
  CHECK(d.name == "toy");
  CHECK(d.num_items == 3);
  REQUIRE(d.num_users() == 3);
  CHECK(d.sequences[0] == seq{3, 1, 2});  // user 1's lines in file order, even though 2 2 came between
  CHECK(d.sequences[1] == seq{2, 3});
  CHECK(d.sequences[2] == seq{1});
  CHECK(d.user_keys == std::vector<std::string>{"1", "2", "3"});
  CHECK(d.item_keys == std::vector<std::string>{"", "1", "2", "3"});
  CHECK(d.report.lines == 6);
  CHECK(d.report.skipped_lines == 2);
  CHECK(d.num_interactions() == 6);
  CHECK(d.items.size() == 4);
  CHECK(d.items[1].title.empty());  // no item-text file beside it
}

TEST_CASE("sasrec: sparse ids are renumbered by first appearance, original ids kept as keys", "[rec][data]") {
  temp_folder dir;
  const auto p = dir.write("sparse.txt", "5 10\n5 40\n7 10\n7 20\n");
  const dataset d = load_sasrec(p);
  CHECK(d.num_items == 3);
  CHECK(d.sequences == std::vector<seq>{{1, 2}, {1, 3}});
  CHECK(d.item_keys == std::vector<std::string>{"", "10", "40", "20"});
  CHECK(d.user_keys == std::vector<std::string>{"5", "7"});
}

TEST_CASE("sasrec: the item map beside the file gives titles and genres", "[rec][data]") {
  temp_folder dir;
  const auto p = dir.write("ml_sasrec_format.txt", "1 1\n1 2\n2 2\n");
  dir.write("ml_sasrec_item_map.tsv",
            "sasrec_item_id\tmovielens_movie_id\ttitle\tgenres\n"
            "2\t1721\tTitanic (1997)\tDrama|Romance\n"
            "1\t1\tToy Story (1995)\tAnimation|Children's|Comedy\n"
            "3\t99\tNot Rated (2000)\tDrama\n");  // an item no one rated: ignored
  const dataset d = load_sasrec(p);
  CHECK(d.name == "ml");
  CHECK(d.items[1].title == "Toy Story (1995)");
  CHECK(d.items[1].text == "Toy Story (1995). Genres: Animation, Children's, Comedy");
  CHECK(d.items[2].text == "Titanic (1997). Genres: Drama, Romance");
}

TEST_CASE("sasrec: a folder D is read from D/D_sasrec_format.txt", "[rec][data]") {
  temp_folder root;
  std::filesystem::create_directories(root.path + "/ds");
  root.write("ds/ds_sasrec_format.txt", "1 1\n1 2\n");
  root.write("ds/ds_sasrec_item_map.tsv", "1\tA\n2\tB\n");  // no header: id, title
  const dataset d = load_dataset(root.path + "/ds", data_format::sasrec).data;
  CHECK(d.name == "ds");
  CHECK(d.items[2].title == "B");
  CHECK(d.items[2].text == "B");
  require_error([&] { load_sasrec(root.path); }, root.path, "", "no SASRec file in this folder");
}

TEST_CASE("sasrec: item-map errors name the file and line", "[rec][data]") {
  temp_folder dir;
  const auto p = dir.write("x.txt", "1 1\n1 2\n2 3\n");
  SECTION("an item without an entry names the interaction line where it first appears") {
    const auto m = dir.write("x_item_map.tsv", "id\ttitle\n1\tA\n2\tB\n");
    require_error([&] { load_sasrec(p); }, p, "line 3", "item `3` has no entry in " + m);
  }
  SECTION("an item listed twice") {
    const auto m = dir.write("x_item_map.tsv", "id\ttitle\n1\tA\n2\tB\n3\tC\n2\tD\n");
    require_error([&] { load_sasrec(p); }, m, "line 5", "item `2` is listed again (first at line 3)");
  }
  SECTION("a header without a title column") {
    const auto m = dir.write("x_item_map.tsv", "id\tname\n1\tA\n");
    require_error([&] { load_sasrec(p); }, m, "line 1", "header has no `title` column");
  }
  SECTION("a wrong field count") {
    const auto m = dir.write("x_item_map.tsv", "id\ttitle\n1\tA\n2\tB\textra\n");
    require_error([&] { load_sasrec(p); }, m, "line 3", "expected 2 tab-separated fields, found 3");
  }
  SECTION("invalid UTF-8: repaired and counted by default, an error on request") {
    dir.write("x_item_map.tsv", "1\tA\n2\tB\xff\n3\tC\n");
    const dataset d = load_sasrec(p);
    CHECK(d.items[2].title == "B\xEF\xBF\xBD");  // U+FFFD
    CHECK(d.report.text_repaired == 1);
    const auto m = dir.path + "/x_item_map.tsv";
    require_error([&] { load_sasrec(p, {.invalid_text = text_policy::error}); }, m, "line 2, field 2 (title)",
                  "not valid UTF-8 at byte 1");
  }
  SECTION("item text can be switched off or named explicitly") {
    dir.write("x_item_map.tsv", "1\tA\n");
    CHECK(load_sasrec(p, {.item_text = false}).items[1].title.empty());
    const auto other = dir.write("other.tsv", "1\tA\n2\tB\n3\tC\n");
    CHECK(load_sasrec(p, {.item_text_path = other}).items[3].title == "C");
  }
}

TEST_CASE("sasrec: malformed lines are errors naming the file, line and field", "[rec][data][bad]") {
  temp_folder dir;
  const auto check = [&](const std::string& body, const std::string& place, const std::string& fragment) {
    const auto p = dir.write("bad.txt", body);
    require_error([&] { load_sasrec(p); }, p, place, fragment);
  };
  check("1 1\n1 2 3\n", "line 2", "expected 2 fields `user item`, found 3");
  check("1 1\n\n1\n", "line 3", "expected 2 fields `user item`, found 1");
  check("1 1\n1 abc\n", "line 2, field 2 (item)", "`abc` is not an integer");
  check("1 1\nx1 2\n", "line 2, field 1 (user)", "`x1` is not an integer");
  check("1 1\n1 2.5\n", "line 2, field 2 (item)", "`2.5` is not an integer");
  check("-1 2\n", "line 1, field 1 (user)", "negative value `-1`");
  check("1 99999999999999999999\n", "line 1, field 2 (item)", "`99999999999999999999` overflows a 64-bit integer");
  check("1 1\n0 5\n", "line 2, field 1 (user)", "0 is out of range [1, ");
  check("1 1\n1 0\n", "line 2, field 2 (item)", "0 is out of range [1, ");
  check("1 1\n1 +2\n", "line 2, field 2 (item)", "`+2` is not an integer");
  check("1 1\n1 \xC3\xA9\n", "line 2, field 2 (item)", "`\\xC3\\xA9` is not an integer");
  // a truncated file: the last line stops inside a record
  check("1 1\n1 2\n60", "line 3", "(this last line has no line break: is the file truncated?)");
  const auto empty = dir.write("empty.txt", "");
  require_error([&] { load_sasrec(empty); }, empty, "", "no interactions");
  const auto blank = dir.write("blank.txt", "\n \n\n");
  require_error([&] { load_sasrec(blank); }, blank, "", "no interactions");
  const auto missing = dir.path + "/missing.txt";
  require_error([&] { load_sasrec(missing); }, missing, "", "cannot open for reading");
  require_error([&] { load_sasrec(dir.write("r.txt", "1 1\n"), {.min_rating = 3}); }, "slim::rec::load_sasrec",
                "min_rating", "no ratings");
}

TEST_CASE("sasrec: a last line without a line break is read when it is complete; a BOM is dropped", "[rec][data]") {
  temp_folder dir;
  const dataset d = load_sasrec(dir.write("t.txt",
                                          "\xEF\xBB\xBF"
                                          "1 1\n1 2"));
  CHECK(d.sequences == std::vector<seq>{{1, 2}});
}

// ---- MovieLens ------------------------------------------------------------------------------------------

TEST_CASE("movielens: ordered by timestamp, ties keep the file order (never the movie id)", "[rec][data]") {
  temp_folder dir;
  // user 1: movie 30 and movie 10 share timestamp 500 and movie 30 comes first in the file, so it stays first
  // although its id is larger; movie 20 is older. User 2's lines come in reverse chronological order.
  dir.write("ratings.dat",
            "1::30::4::500\n"
            "1::10::5::500\n"
            "1::20::3::100\n"
            "2::20::2::900\n"
            "2::30::5::800\n"
            "2::10::1::700\n");
  const dataset d = load_movielens(dir.path);
  // movie ids 30, 10, 20 are not 1..3: renumbered by first appearance -> 30:1, 10:2, 20:3
  CHECK(d.item_keys == std::vector<std::string>{"", "30", "10", "20"});
  REQUIRE(d.num_users() == 2);
  CHECK(d.sequences[0] == seq{3, 1, 2});  // 20 (t=100), then 30 and 10 (t=500, file order)
  CHECK(d.sequences[1] == seq{2, 1, 3});  // 10 (700), 30 (800), 20 (900)
  CHECK(d.name == std::filesystem::path(dir.path).filename().string());
}

TEST_CASE("movielens: min_rating drops ratings and users left empty; duplicates on request", "[rec][data]") {
  temp_folder dir;
  dir.write("ratings.dat",
            "1::1::5::10\n"
            "1::2::2::20\n"
            "2::2::1::10\n"  // user 2 has only low ratings
            "3::1::4::10\n"
            "3::1::3::30\n"  // a repeat of (3, 1)
            "3::3::4.5::20\n");
  const dataset all = load_movielens(dir.path);
  CHECK(all.num_users() == 3);
  CHECK(all.sequences[2] == seq{1, 3, 1});
  CHECK(all.report.duplicate_events == 0);

  const dataset high = load_movielens(dir.path, {.min_rating = 4});
  CHECK(high.num_users() == 2);
  CHECK(high.user_keys == std::vector<std::string>{"1", "3"});
  CHECK(high.sequences == std::vector<seq>{{1}, {1, 2}});  // items 1 and 3 renumbered: 1 -> 1, 3 -> 2
  CHECK(high.item_keys == std::vector<std::string>{"", "1", "3"});
  CHECK(high.report.lines == 6);
  CHECK(high.report.skipped_lines == 3);
  CHECK(high.report.users_dropped == 1);

  const dataset once = load_movielens(dir.path, {.drop_duplicates = true});
  CHECK(once.sequences[2] == seq{1, 3});  // the later repeat goes
  CHECK(once.report.duplicate_events == 1);

  require_error([&] { load_movielens(dir.path, {.min_rating = 6}); }, dir.path + "/ratings.dat", "",
                "no rating passes min_rating");
}

TEST_CASE("movielens: Latin-1 titles become UTF-8 and are counted; UTF-8 lines are kept", "[rec][data]") {
  temp_folder dir;
  dir.write("ratings.dat", "1::1::5::10\n1::2::4::20\n1::3::4::30\n");
  dir.write("movies.dat",
            "1::Toy Story (1995)::Animation|Children's|Comedy\n"
            "2::Mis\xe9rables, Les (1995)::Drama|Musical\n"  // Latin-1 e-acute
            "3::Caf\xc3\xa9 Society (1995)::Drama\n"         // already UTF-8
            "4::Unrated (2000)::Drama\n");
  const dataset d = load_movielens(dir.path + "/ratings.dat");
  CHECK(d.items[1].title == "Toy Story (1995)");
  CHECK(d.items[1].text == "Toy Story (1995). Genres: Animation, Children's, Comedy");
  CHECK(d.items[2].title == "Mis\xC3\xA9rables, Les (1995)");
  CHECK(d.items[2].text == "Mis\xC3\xA9rables, Les (1995). Genres: Drama, Musical");
  CHECK(d.items[3].title == "Caf\xC3\xA9 Society (1995)");
  CHECK(d.report.text_repaired == 1);

  load_report r;
  const auto movies = read_movielens_movies(dir.path + "/movies.dat", r);
  REQUIRE(movies.size() == 4);
  CHECK(movies[3].id == 4);
  CHECK(movies[3].line == 4);
  CHECK(r.text_repaired == 1);
}

TEST_CASE("movielens: bad lines name the file, line and field", "[rec][data][bad]") {
  temp_folder dir;
  const auto check = [&](const std::string& body, const std::string& place, const std::string& fragment) {
    const auto p = dir.write("ratings.dat", body);
    require_error([&] { load_movielens(dir.path); }, p, place, fragment);
  };
  check("1::1::5::10\n1::2::5\n", "line 2", "expected 4 fields `UserID::MovieID::Rating::Timestamp`, found 3");
  check("1::1::5::10\n1:2::5::3\n", "line 2", "found 3");
  check("1::1::5::10\n1::2::x::3\n", "line 2, field 3 (Rating)", "`x` is not a number");
  check("1::1::5::10\n1::2::nan::3\n", "line 2, field 3 (Rating)", "`nan` is not a finite number");
  check("1::1::5::10\n1::2::-1::3\n", "line 2, field 3 (Rating)", "negative value `-1`");
  check("1::1::5::10\n1::2::4::-3\n", "line 2, field 4 (Timestamp)", "negative value `-3`");
  check("1::1::5::10\n1::::4::3\n", "line 2, field 2 (MovieID)", "empty, expected an integer");
  check("1::1::5::10\n1::2::4", "line 2", "found 3 (this last line has no line break: is the file truncated?)");
  const auto movies = dir.write("movies.dat", "1::A (1999)::Drama\n2::B (1999)\n");
  dir.write("ratings.dat", "1::1::5::10\n");
  require_error([&] { load_movielens(dir.path); }, movies, "line 2",
                "expected 3 fields `MovieID::Title::Genres`, found 2");
  dir.write("movies.dat", "1::A (1999)::Drama\n");
  dir.write("ratings.dat", "1::1::5::10\n2::7::5::10\n");
  require_error([&] { load_movielens(dir.path); }, dir.path + "/ratings.dat", "line 2",
                "item `7` has no entry in " + movies);
  require_error([&] { load_movielens(dir.path + "/nothing"); }, dir.path + "/nothing", "", "no such file");
}

// ---- RecBole --------------------------------------------------------------------------------------------

TEST_CASE("recbole: columns in any order, timestamp ties in file order, titles from .item", "[rec][data]") {
  temp_folder root;
  std::filesystem::create_directories(root.path + "/mini");
  root.write("mini/mini.inter",
             "timestamp:float\titem_id:token\trating:float\tuser_id:token\n"
             "300\t2\t4\tu1\n"
             "100\t3\t5\tu1\n"
             "300\t1\t3\tu1\n"  // ties with item 2 at 300: stays after it
             "50\t1\t2\tu2\n");
  root.write("mini/mini.item",
             "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
             "1\tToy Story\t1995\tAnimation Children's Comedy\n"
             "2\tGoldenEye\t1995\tAction Adventure Thriller\n"
             "3\tunknown\t\t\n");
  root.write("mini/mini.user", "user_id:token\tage:token\nu1\t20\n");  // not read
  const dataset d = load_dataset(root.path + "/mini", data_format::recbole).data;
  CHECK(d.name == "mini");
  CHECK(d.num_items == 3);
  CHECK(d.item_keys == std::vector<std::string>{"", "1", "2", "3"});  // tokens 1..3: kept
  CHECK(d.user_keys == std::vector<std::string>{"u1", "u2"});
  CHECK(d.sequences == std::vector<seq>{{3, 2, 1}, {1}});
  CHECK(d.items[1].title == "Toy Story");
  CHECK(d.items[1].text == "Toy Story (1995). Genres: Animation, Children's, Comedy");
  CHECK(d.items[3].text == "unknown");

  const dataset high = load_recbole(root.path + "/mini/mini.inter", {.min_rating = 4});
  // u1 keeps item 2 (t=300) and item 3 (t=100); renumbered by first appearance in the file (2 -> 1, 3 -> 2)
  // and ordered by time: 3 then 2.
  CHECK(high.sequences == std::vector<seq>{{2, 1}});
  CHECK(high.item_keys == std::vector<std::string>{"", "2", "3"});
  CHECK(high.report.users_dropped == 1);
  CHECK(high.report.skipped_lines == 2);
}

TEST_CASE("recbole: without a timestamp the file order is the chronology; string tokens are renumbered",
          "[rec][data]") {
  temp_folder dir;
  const auto p = dir.write("s.inter", "user_id:token\titem_id:token\na\tB0001\nb\tB0002\na\tB0003\na\tB0002\n");
  const dataset d = load_recbole(p);
  CHECK(d.item_keys == std::vector<std::string>{"", "B0001", "B0002", "B0003"});
  CHECK(d.sequences == std::vector<seq>{{1, 3, 2}, {2}});
  const auto item = dir.write("s.item",
                              "item_id:token\ttitle:token_seq\tbrand:token\tcategories:token_seq\n"
                              "B0002\tPad\tAcme\tVideo Games\nB0001\tConsole\t\t\nB0003\tCable\tAcme\t\n");
  const dataset t = load_recbole(p);
  CHECK(t.items[2].text == "Pad. Categories: Video Games. Brand: Acme");
  CHECK(t.items[1].text == "Console");
  require_error([&] { load_recbole(p, {.min_rating = 1}); }, p, "line 1",
                "min_rating is set but the header has no rating:float column");
  (void)item;
}

TEST_CASE("recbole: bad headers and lines name the file, line and field", "[rec][data][bad]") {
  temp_folder dir;
  const auto check = [&](const std::string& body, const std::string& place, const std::string& fragment) {
    const auto p = dir.write("b.inter", body);
    require_error([&] { load_recbole(p); }, p, place, fragment);
  };
  check("user_id:token\trating:float\n1\t2\n", "line 1", "header lacks the required column item_id:token");
  check("item_id:token\n1\n", "line 1", "header lacks the required column user_id:token");
  check("user_id:token\titem_id\n1\t2\n", "line 1, field 2 (header)", "`item_id` is not `name:type`");
  check("user_id:token\titem_id:int\n1\t2\n", "line 1, field 2 (header)", "unknown type `int`");
  check("user_id:token\titem_id:token\tuser_id:token\n", "line 1, field 3 (header)", "column `user_id` appears twice");
  check("user_id:float\titem_id:token\n1\t2\n", "line 1, field 1 (header)", "must have type token, not float");
  check("user_id:token\titem_id:token\n1\t2\n1\t2\t3\n", "line 3", "expected 2 tab-separated fields, found 3");
  check("user_id:token\titem_id:token\n1\t2\n1 2\n", "line 3", "expected 2 tab-separated fields, found 1");
  check("user_id:token\titem_id:token\n1\t2\n\t2\n", "line 3, field 1 (user_id)", "empty token");
  check("user_id:token\titem_id:token\n1\t\xff\n", "line 2, field 2 (item_id)", "token is not valid UTF-8 at byte 0");
  check("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t1e400\n", "line 2, field 3 (timestamp)",
        "is outside the range of a double");
  check("user_id:token\titem_id:token\ttimestamp:float\n1\t2\tsoon\n", "line 2, field 3 (timestamp)", "not a number");
  check("user_id:token\titem_id:token\n", "", "no interactions");
  const auto empty = dir.write("e.inter", "\n\n");
  require_error([&] { load_recbole(empty); }, empty, "", "empty file");

  const auto p = dir.write("c.inter", "user_id:token\titem_id:token\n1\t2\n1\t3\n");
  SECTION(".item without a title column") {
    const auto i = dir.write("c.item", "item_id:token\tprice:float\n2\t3.5\n");
    require_error([&] { load_recbole(p); }, i, "line 1", "header has no title column");
  }
  SECTION(".item missing an item of the interactions") {
    const auto i = dir.write("c.item", "item_id:token\ttitle:token_seq\n2\tA\n");
    require_error([&] { load_recbole(p); }, p, "line 3", "item `3` has no entry in " + i);
  }
  SECTION(".item listing an item twice") {
    const auto i = dir.write("c.item", "item_id:token\ttitle:token_seq\n2\tA\n3\tB\n2\tC\n");
    require_error([&] { load_recbole(p); }, i, "line 4", "item `2` is listed again (first at line 2)");
  }
  SECTION(".item with invalid UTF-8 in a title") {
    const auto i = dir.write("c.item", "item_id:token\ttitle:token_seq\n2\tA\xc3\n3\tB\n");
    CHECK(load_recbole(p).report.text_repaired == 1);
    require_error([&] { load_recbole(p, {.invalid_text = text_policy::error}); }, i, "line 2, field 2 (title)",
                  "not valid UTF-8 at byte 1");
  }
}

// ---- LLMRank --------------------------------------------------------------------------------------------

namespace {

/// A small LLMRank data set "G" in `dir`: 6 items (ids 0..5, listed out of order), users 10 and 11 (n = 5, 3),
/// and user 12 with a single interaction (empty history, hence no validation line).
void write_llmrank(const temp_folder& dir, const std::string& valid) {
  dir.write("G.item", "item_id:token\ttitle:token_seq\n0\tZero\n2\tTwo\n1\tOne\n3\tThree\n5\tFive\n4\tFour\n");
  dir.write("G.test.inter",
            "user_id:token\titem_id_list:token_seq\titem_id:token\n10\t4 0 2 1\t5\n11\t3 1\t0\n12\t\t2\n");
  dir.write("G.valid.inter", valid);
}
const std::string good_valid = "user_id:token\titem_id_list:token_seq\titem_id:token\n11\t3\t1\n10\t4 0 2\t1\n";

}  // namespace

TEST_CASE("llmrank: sequence = test history + target, ids + 1, split = prefixes", "[rec][data]") {
  temp_folder dir;
  write_llmrank(dir, good_valid);
  for (const std::string& path : {dir.path, dir.path + "/G", dir.path + "/G.valid.inter", dir.path + "/G.item"}) {
    const loaded_data l = load_dataset(path, data_format::llmrank);
    const dataset& d = l.data;
    CHECK(d.name == "G");
    CHECK(d.num_items == 6);
    CHECK(d.item_keys == std::vector<std::string>{"", "0", "1", "2", "3", "4", "5"});
    CHECK(d.items[3].title == "Two");
    CHECK(d.items[3].text == "Two");
    CHECK(d.user_keys == std::vector<std::string>{"10", "11", "12"});
    CHECK(d.sequences == std::vector<seq>{{5, 1, 3, 2, 6}, {4, 2, 1}, {3}});
    CHECK(d.report.lines == 5);
    REQUIRE(l.split);
    const sequence_split& s = *l.split;
    CHECK(s.num_items == 6);
    CHECK(s.train == std::vector<seq>{{5, 1, 3}, {4}, {3}});
    CHECK(s.valid == seq{2, 2, 0});  // the files' validation targets (original 1, 1), user 12 has none
    CHECK(s.test == seq{6, 1, 0});   // user 12 (one interaction) is not evaluated, as leave_one_out does
  }
}

TEST_CASE("llmrank: inconsistent files are errors naming the file and line", "[rec][data][bad]") {
  temp_folder dir;
  const std::string head = "user_id:token\titem_id_list:token_seq\titem_id:token\n";
  const std::string valid = dir.path + "/G.valid.inter", test = dir.path + "/G.test.inter", item = dir.path + "/G.item";
  const auto load = [&] { load_llmrank(dir.path); };
  SECTION("a validation history that is not the test history without its last item") {
    write_llmrank(dir, head + "11\t3\t1\n10\t4 2 0\t1\n");
    require_error(load, valid, "line 3",
                  "is not the test history (" + test + " line 2, 4 items) without its last item");
  }
  SECTION("a validation target that is not the last test-history item") {
    write_llmrank(dir, head + "11\t3\t1\n10\t4 0 2\t3\n");
    require_error(load, valid, "line 3", "target 3 of user `10` is not the last item of the test history (1, ");
  }
  SECTION("a validation user the test file lacks") {
    write_llmrank(dir, good_valid + "99\t1\t2\n");
    require_error(load, valid, "line 4", "user `99` is not in " + test);
  }
  SECTION("a user without a validation line (a truncated valid file)") {
    write_llmrank(dir, head + "11\t3\t1\n");
    require_error(load, valid, "", "no line for user `10` (" + test + " line 2)");
  }
  SECTION("a validation line for a user with an empty test history") {
    write_llmrank(dir, good_valid + "12\t\t2\n");
    require_error(load, valid, "line 4", "user `12` has an empty test history");
  }
  SECTION("a user listed twice") {
    write_llmrank(dir, good_valid + "10\t4 0 2\t1\n");
    require_error(load, valid, "line 4", "user `10` is listed again (first at line 3)");
  }
  SECTION("an item id outside the catalogue") {
    write_llmrank(dir, head + "11\t3\t1\n10\t4 0 6\t1\n");
    require_error(load, valid, "line 3, field 2 (item_id_list)", "6 is out of range [0, 5]");
  }
  SECTION("a non-integer target") {
    write_llmrank(dir, head + "11\t3\tx\n");
    require_error(load, valid, "line 2, field 3 (item_id)", "`x` is not an integer");
  }
  SECTION("catalogue ids that are not 0..N-1") {
    write_llmrank(dir, good_valid);
    dir.write("G.item", "item_id:token\ttitle:token_seq\n0\tZero\n7\tSeven\n");
    require_error(load, item, "line 3, field 1 (item_id)", "item id 7 is out of range: the file lists 2 items");
    dir.write("G.item", "item_id:token\ttitle:token_seq\n0\tZero\n0\tAgain\n");
    require_error(load, item, "line 3", "item id 0 is listed again (first at line 2)");
  }
  SECTION("a test file with a header missing a column") {
    write_llmrank(dir, good_valid);
    dir.write("G.test.inter", "user_id:token\titem_id:token\n10\t1\n");
    require_error(load, test, "line 1", "header lacks the required column item_id_list:token_seq");
  }
  SECTION("a missing file") {
    write_llmrank(dir, good_valid);
    std::filesystem::remove(valid);
    require_error(load, valid, "", "no such file");
  }
  SECTION("no ratings to filter") {
    write_llmrank(dir, good_valid);
    require_error([&] { load_llmrank(dir.path, {.min_rating = 1}); }, "slim::rec::load_llmrank", "min_rating",
                  "no ratings");
  }
}

// ---- k-core, leave-one-out, popularity ------------------------------------------------------------------

namespace {

dataset hand_dataset(std::vector<seq> sequences, index_t num_items) {
  dataset d;
  d.name = "hand";
  d.num_items = num_items;
  d.sequences = std::move(sequences);
  for (std::size_t u = 0; u < d.sequences.size(); ++u) d.user_keys.push_back("u" + std::to_string(u));
  d.item_keys.push_back("");
  d.items.emplace_back();
  for (index_t i = 1; i <= num_items; ++i) {
    d.item_keys.push_back("i" + std::to_string(i));
    d.items.push_back({"t" + std::to_string(i), "x" + std::to_string(i)});
  }
  return d;
}

}  // namespace

TEST_CASE("kcore: a hand-worked 2-core needs two removal passes", "[rec][data]") {
  // A: 1 2 3, B: 1 2, C: 3 4, D: 1.
  // Pass 1: D has 1 < 2 -> out; then item 4 has 1 (C) -> out.
  // Pass 2: C has only item 3 left -> out; then item 3 has 1 (A) -> out.
  // Pass 3: A = 1 2, B = 1 2; items 1 and 2 have 2 each: stable. The 2-core is {A, B} x {1, 2}.
  dataset d = hand_dataset({{1, 2, 3}, {1, 2}, {3, 4}, {1}}, 4);
  const kcore_result r = kcore_filter(d, {.min_user_interactions = 2, .min_item_interactions = 2});
  CHECK(r.rounds == 2);
  CHECK(r.users_dropped == 2);
  CHECK(r.items_dropped == 2);
  CHECK(r.interactions_dropped == 4);
  CHECK(d.num_items == 2);
  CHECK(d.sequences == std::vector<seq>{{1, 2}, {1, 2}});
  CHECK(d.user_keys == std::vector<std::string>{"u0", "u1"});
  CHECK(d.item_keys == std::vector<std::string>{"", "i1", "i2"});
  CHECK(d.report.users_dropped == 2);
  CHECK(d.report.items_dropped == 2);
  validate(d);
}

TEST_CASE("kcore: surviving items are renumbered in id order with their keys and text", "[rec][data]") {
  dataset d = hand_dataset({{2, 1, 3}, {3, 1}}, 4);  // item 2 occurs once, item 4 never
  const kcore_result r = kcore_filter(d, {.min_user_interactions = 1, .min_item_interactions = 2});
  CHECK(r.items_dropped == 2);
  CHECK(r.users_dropped == 0);
  CHECK(d.sequences == std::vector<seq>{{1, 2}, {2, 1}});
  CHECK(d.item_keys == std::vector<std::string>{"", "i1", "i3"});
  CHECK(d.items[2].title == "t3");
  CHECK(d.items[2].text == "x3");

  dataset same = hand_dataset({{1, 2}, {2, 1}}, 2);
  const kcore_result none = kcore_filter(same, {.min_user_interactions = 2, .min_item_interactions = 2});
  CHECK(none.rounds == 0);
  CHECK(same.sequences == std::vector<seq>{{1, 2}, {2, 1}});

  dataset gone = hand_dataset({{1}, {2}}, 2);
  kcore_filter(gone, {});
  CHECK(gone.num_users() == 0);
  CHECK(gone.num_items == 0);
  validate(gone);
}

TEST_CASE("leave_one_out: last item test, second-to-last valid, short users train only", "[rec][data]") {
  const dataset d = hand_dataset({{1, 2, 3, 4, 5}, {3, 1, 2}, {4, 2}, {5}}, 5);
  const sequence_split s = leave_one_out(d);
  CHECK(s.num_items == 5);
  CHECK(s.train == std::vector<seq>{{1, 2, 3}, {3}, {4, 2}, {5}});
  CHECK(s.valid == seq{4, 1, 0, 0});
  CHECK(s.test == seq{5, 2, 0, 0});
  validate(s);

  CHECK(history(s, 0, split_stage::valid) == seq{1, 2, 3});
  CHECK(history(s, 0, split_stage::test) == seq{1, 2, 3, 4});
  CHECK(history(s, 2, split_stage::test) == seq{4, 2});  // no valid item to append
  CHECK(history_lengths(s, split_stage::valid) == std::vector<slim::index_t>{3, 1, 2, 1});
  CHECK(history_lengths(s, split_stage::test) == std::vector<slim::index_t>{4, 2, 2, 1});

  // popularity from the training part only: item 4 and 5 are targets of user 0 and count only where they
  // are in some train sequence (user 2's 4, user 3's 5).
  CHECK(item_popularity(s) == std::vector<std::int64_t>{0, 1, 2, 2, 1, 1});
}

TEST_CASE("validate: broken invariants are errors", "[rec][data][bad]") {
  dataset d = hand_dataset({{1, 2}}, 2);
  validate(d);
  d.sequences[0][1] = 3;
  require_error([&] { validate(d); }, "slim::rec::validate", "user 0 position 1", "item id 3 is outside [1, 2]");
  d.sequences[0][1] = 0;
  require_error([&] { validate(d); }, "slim::rec::validate", "user 0 position 1", "item id 0 is outside");
  d = hand_dataset({{1}}, 1);
  d.items.pop_back();
  require_error([&] { validate(d); }, "slim::rec::validate", "items", "expected num_items + 1 = 2");
}

TEST_CASE("parse_format reads the four names and rejects others", "[rec][data]") {
  CHECK(parse_format("sasrec") == data_format::sasrec);
  CHECK(parse_format("movielens") == data_format::movielens);
  CHECK(parse_format("recbole") == data_format::recbole);
  CHECK(parse_format("llmrank") == data_format::llmrank);
  for (const auto f : {data_format::sasrec, data_format::movielens, data_format::recbole, data_format::llmrank})
    CHECK(parse_format(format_name(f)) == f);
  require_error([] { parse_format("SASRec"); }, "slim::rec::parse_format", "format",
                "unknown dataset format `SASRec` (expected sasrec, movielens, recbole or llmrank)");
}

TEST_CASE("load_dataset: the split is the files' own for llmrank, leave-one-out otherwise", "[rec][data]") {
  temp_folder dir;
  const auto p = dir.write("t.txt", "1 1\n1 2\n1 3\n2 1\n");
  const loaded_data l = load_dataset(p, data_format::sasrec);
  CHECK_FALSE(l.split);
  const sequence_split s = l.make_split();
  CHECK(s.train == std::vector<seq>{{1}, {1}});
  CHECK(s.valid == seq{2, 0});
  CHECK(s.test == seq{3, 0});
}
