// Tests of the recorded teacher and of the adapters for the two recorded sets, on small hand-written copies of
// their formats in a temporary folder (the real files are read by data_recorded.cpp): answers by user,
// errors naming the file and the place for every malformed or inconsistent input, the NIR rendering, the
// Agent4Rec join and trimming.
// SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "slim/distill/recorded_sets.hpp"
#include "slim/distill/recorded_teacher.hpp"
#include "slim/io/atomic_file.hpp"

namespace {

using namespace slim;
namespace fs = std::filesystem;

std::string fresh_dir(const std::string& name) {
  const auto d = fs::temp_directory_path() / ("slim_test_recorded_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

void put(const std::string& dir, const std::string& name, const std::string& text) {
  io::write_file_atomic((fs::path(dir) / name).string(), text);
}

/// Runs `f`, which must throw slim::error whose message holds every one of `parts`.
template <class F>
void expect_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    FAIL("no slim::error");
  } catch (const slim::error& e) {
    const std::string m = e.what();
    for (const auto& p : parts) {
      INFO(m);
      CHECK(m.find(p) != std::string::npos);
    }
  }
}

std::vector<distill::teacher_request> ask(std::initializer_list<index_t> users) {
  std::vector<distill::teacher_request> q;
  for (const index_t u : users) q.push_back({u, "", "ignored"});
  return q;
}

// ---- a small NIR-format folder: 3 items, 3 users, 2 rationales
void write_nir(const std::string& d) {
  put(d, "items.tsv", "item_id\ttitle\n1\tHeat\n2\tThe Crow\n3\tSpeed\n");
  put(d, "sequences.jsonl",
      R"j({"user_index": 0, "history": ["Heat", "The Crow"], "history_ids": [1, 2], "target": "Speed", "target_id": 3})j"
      "\n"
      R"j({"user_index": 1, "history": ["Speed", "Heat"], "history_ids": [3, 1], "target": "The Crow", "target_id": 2})j"
      "\n"
      R"j({"user_index": 2, "history": ["The Crow", "Speed"], "history_ids": [2, 3], "target": "Heat", "target_id": 1})j"
      "\n");
  put(d, "rationales.jsonl",
      R"j({"user_index": 0, "teacher_model": "text-davinci-003", "step1_preferences": "I like action.", )j"
      R"j("step2_featured_movies": ["Heat", "The Crow"], "step3_recommendations": [{"watched": "Heat", "candidate": )j"
      R"j("Speed", "candidate_in_set": true}, {"watched": null, "candidate": "Ronin", "candidate_in_set": false}]})j"
      "\n"
      R"j({"user_index": 2, "teacher_model": "text-davinci-003", "step1_preferences": "Thrillers.", )j"
      R"j("step2_featured_movies": ["Speed"], "step3_recommendations": []})j"
      "\n");
}

// ---- a small ML-1M + Agent4Rec pair: MovieLens users 5 and 9, movies 10, 20, 30
void write_ml1m(const std::string& d) {
  put(d, "ml-1m_sasrec_format.txt", "5 1\n5 2\n5 3\n9 3\n9 1\n9 2\n");
  put(d, "ml-1m_sasrec_item_map.tsv",
      "sasrec_item_id\tmovielens_movie_id\ttitle\tgenres\n1\t10\tHeat (1995)\tAction|Crime\n"
      "2\t20\tCrow, The (1994)\tAction\n3\t30\tSpeed (1994)\tAction|Thriller\n");
}
void write_agent4rec(const std::string& d) {
  put(d, "id_maps.json", R"j({"user_id_map": {"5": 0, "9": 1}, "movie_id_map": {"10": 0, "20": 1, "30": 2}})j");
  put(d, "movie_detail.csv",
      "movie_id,title,genres,rating,summary\n0,Heat (1995),Action,4.0,\"A heist, and \"\"a\"\" chase.\"\n"
      "1,\"Crow, The (1994)\",Action,3.5,A man returns.\n2,Speed (1994),Action,3.6,\n");
  put(d, "teacher_like.jsonl",
      R"j({"user_id": 1, "ml1m_user_id": 9, "teacher_model": "gpt-3.5-turbo", "variant": "like", )j"
      R"j("text": "LIKE: action\nREASON: pace\nMOVIE: Speed (1994); Heat (1995); Crow, The (1994)\n\nLIKE: crime\nREASON: )j"
      R"j(plots\nMOVIE: Heat (1995)"})j"
      "\n");
}

}  // namespace

TEST_CASE("recorded_teacher: answers by user, refuses users it has no record of", "[distill][recorded]") {
  distill::recorded_teacher t("mem", {{2, "two", 5, 7}, {0, "zero"}}, 4);
  CHECK(t.size() == 2);
  CHECK(t.has(0));
  CHECK(t.has(2));
  CHECK_FALSE(t.has(1));
  CHECK_FALSE(t.has(-1));
  CHECK_FALSE(t.has(4));
  const auto q = ask({2, 0, 2});
  const auto a = t.teach(q);
  REQUIRE(a.size() == 3);
  CHECK(a[0].text == "two");
  CHECK(a[0].prompt_tokens == 5);
  CHECK(a[0].completion_tokens == 7);
  CHECK(a[1].text == "zero");
  CHECK(a[1].prompt_tokens == 0);
  CHECK(a[2].text == "two");
  CHECK(a[0].cached);
  const auto q1 = ask({0, 1});
  expect_error([&] { t.teach(q1); }, {"mem", "user 1"});

  // a different text, user or count changes the fingerprint (the pipeline's teach key)
  const std::string f = t.fingerprint();
  CHECK(distill::recorded_teacher("mem", {{2, "two", 5, 7}, {0, "zero"}}, 4).fingerprint() == f);
  CHECK(distill::recorded_teacher("mem", {{2, "two", 5, 7}, {0, "zer0"}}, 4).fingerprint() != f);
  CHECK(distill::recorded_teacher("mem", {{2, "two", 5, 7}, {1, "zero"}}, 4).fingerprint() != f);
  CHECK(distill::recorded_teacher("mem", {{2, "two", 5, 8}, {0, "zero"}}, 4).fingerprint() != f);

  expect_error([] { distill::recorded_teacher("src", {{1, "a"}, {1, "b"}}, 3); }, {"src", "second", "user 1"});
  expect_error([] { distill::recorded_teacher("src", {{3, "a"}}, 3); }, {"src", "user 3", "outside"});
  expect_error([] { distill::recorded_teacher("src", {{0, ""}}, 3); }, {"src", "empty"});
}

TEST_CASE("recorded_teacher::from_jsonl: every malformed line is an error naming the file and line",
          "[distill][recorded]") {
  const std::string d = fresh_dir("jsonl");
  const std::string p = (fs::path(d) / "r.jsonl").string();
  put(d, "r.jsonl", "{\"user\": 1, \"text\": \"hi\", \"completion_tokens\": 3}\n{\"user\": 0, \"text\": \"yo\"}\n");
  const auto t = distill::recorded_teacher::from_jsonl(p, 2);
  CHECK(t.text(1) == "hi");
  CHECK(t.records()[0].completion_tokens == 3);
  CHECK(t.source() == p);

  put(d, "r.jsonl", "{\"user\": 1, \"text\": \"hi\"}\n{\"user\": 0}\n");
  expect_error([&] { distill::recorded_teacher::from_jsonl(p, 2); }, {"r.jsonl", "line 2", "text"});
  put(d, "r.jsonl", "{\"user\": \"one\", \"text\": \"hi\"}\n");
  expect_error([&] { distill::recorded_teacher::from_jsonl(p, 2); }, {"r.jsonl", "line 1", "user"});
  put(d, "r.jsonl", "{\"user\": 1, \"text\": \"hi\"}\n{\"user\": 0, \"te");  // cut off mid-write
  expect_error([&] { distill::recorded_teacher::from_jsonl(p, 2); }, {"r.jsonl", "line 2"});
  put(d, "r.jsonl", "{\"user\": 7, \"text\": \"hi\"}\n");
  expect_error([&] { distill::recorded_teacher::from_jsonl(p, 2); }, {"r.jsonl", "user 7"});
  put(d, "r.jsonl", "{\"user\": 1, \"text\": \"hi\"}\n\n{\"user\": 1, \"text\": \"again\"}\n");
  expect_error([&] { distill::recorded_teacher::from_jsonl(p, 2); }, {"r.jsonl", "line 3", "second", "line 1"});
  put(d, "r.jsonl", "{\"user\": 1, \"text\": \"\"}\n");
  expect_error([&] { distill::recorded_teacher::from_jsonl(p, 2); }, {"r.jsonl", "line 1", "empty"});
  put(d, "r.jsonl", "{\"user\": 1, \"text\": \"hi\", \"prompt_tokens\": -4}\n");
  expect_error([&] { distill::recorded_teacher::from_jsonl(p, 2); }, {"r.jsonl", "line 1", "negative"});
  fs::remove_all(d);
}

TEST_CASE("trim_blocks and read_csv", "[distill][recorded]") {
  const std::string text = "LIKE: a\nREASON: b\nMOVIE: x; y; z\n\nLIKE: c\nREASON: d\nMOVIE: w\n\nLIKE: e\nMOVIE: v; u";
  CHECK(distill::detail::trim_blocks(text, 0, 0) == text);
  CHECK(distill::detail::trim_blocks(text, 2, 0) ==
        "LIKE: a\nREASON: b\nMOVIE: x; y; z\n\nLIKE: c\nREASON: d\nMOVIE: w");
  CHECK(distill::detail::trim_blocks(text, 1, 2) == "LIKE: a\nREASON: b\nMOVIE: x; y");
  CHECK(distill::detail::trim_blocks(text, 0, 1) ==
        "LIKE: a\nREASON: b\nMOVIE: x\n\nLIKE: c\nREASON: d\nMOVIE: w\n\nLIKE: e\nMOVIE: v");

  const std::string d = fresh_dir("csv");
  put(d, "a.csv", "id,text\n1,\"a, \"\"quoted\"\"\nline\"\n2,plain\r\n3,\n");
  std::vector<std::vector<std::string>> rows;
  std::vector<std::size_t> lines;
  distill::detail::read_csv((fs::path(d) / "a.csv").string(), [&](const std::vector<std::string>& f, std::size_t l) {
    rows.push_back(f);
    lines.push_back(l);
  });
  REQUIRE(rows.size() == 4);
  CHECK(rows[1] == std::vector<std::string>{"1", "a, \"quoted\"\nline"});
  CHECK(rows[2] == std::vector<std::string>{"2", "plain"});
  CHECK(rows[3] == std::vector<std::string>{"3", ""});
  CHECK(lines == std::vector<std::size_t>{1, 2, 4, 5});
  put(d, "a.csv", "id,text\n1,\"never closed\n");
  expect_error([&] { distill::detail::read_csv((fs::path(d) / "a.csv").string(), [](auto&&, std::size_t) {}); },
               {"a.csv", "line 2", "never closed"});
  fs::remove_all(d);
}

TEST_CASE("load_nir_ml100k: sequences, titles and the three steps rendered", "[distill][recorded]") {
  const std::string d = fresh_dir("nir");
  write_nir(d);
  const distill::recorded_set s = distill::load_nir_ml100k(d);
  REQUIRE(s.data.num_users() == 3);
  CHECK(s.data.num_items == 3);
  CHECK(s.data.sequences[1] == std::vector<rec::item_id>{3, 1, 2});  // history, then the target
  CHECK(s.data.items[2].title == "The Crow");
  CHECK(s.teacher_model == "text-davinci-003");
  REQUIRE(s.rationales.size() == 2);
  CHECK(s.rationales[0].user == 0);
  CHECK(s.rationales[0].text ==
        "Step 1: I like action.\nStep 2:\n1. Heat\n2. The Crow\nStep 3:\n1. Heat - Speed\n2. Ronin");
  CHECK(s.rationales[1].user == 2);
  CHECK(s.rationales[1].text == "Step 1: Thrillers.\nStep 2:\n1. Speed\nStep 3:");
  const distill::recorded_teacher t = s.teacher();
  CHECK(t.has(2));
  CHECK_FALSE(t.has(1));

  // hostile variants, each named by file and line
  put(d, "sequences.jsonl",
      R"j({"user_index": 0, "history": ["Heat", "Speed"], "history_ids": [1, 2], "target": "Speed", "target_id": 3})j"
      "\n");
  expect_error([&] { distill::load_nir_ml100k(d); }, {"sequences.jsonl", "line 1", "item 2", "Speed", "The Crow"});
  put(d, "sequences.jsonl",
      R"j({"user_index": 0, "history": ["Heat"], "history_ids": [1], "target": "Speed", "target_id": 9})j"
      "\n");
  expect_error([&] { distill::load_nir_ml100k(d); }, {"sequences.jsonl", "line 1", "item id 9"});
  put(d, "sequences.jsonl",
      R"j({"user_index": 1, "history": ["Heat"], "history_ids": [1], "target": "Speed", "target_id": 3})j"
      "\n");
  expect_error([&] { distill::load_nir_ml100k(d); }, {"sequences.jsonl", "line 1", "out of order"});
  write_nir(d);
  put(d, "rationales.jsonl",
      R"j({"user_index": 5, "step1_preferences": "x", "step2_featured_movies": []})j"
      "\n");
  expect_error([&] { distill::load_nir_ml100k(d); }, {"rationales.jsonl", "line 1", "user_index 5"});
  put(d, "rationales.jsonl",
      R"j({"user_index": 0, "step1_preferences": "x", "step2_featured_movies": [], "step3_recommendations": 4})j"
      "\n");
  expect_error([&] { distill::load_nir_ml100k(d); }, {"rationales.jsonl", "line 1", "step3_recommendations"});
  write_nir(d);
  put(d, "rationales.jsonl",
      R"j({"user_index": 2, "step1_preferences": "x", "step2_featured_movies": [], "step3_recommendations": []})j"
      "\n"
      R"j({"user_index": 2, "step1_preferences": "y", "step2_featured_movies": [], "step3_recommendations": []})j"
      "\n");
  expect_error([&] { distill::load_nir_ml100k(d); }, {"rationales.jsonl", "line 2", "second", "user 2"});
  put(d, "items.tsv", "item_id\ttitle\n1\tHeat\n3\tSpeed\n");
  expect_error([&] { distill::load_nir_ml100k(d); }, {"items.tsv", "line 3", "out of order"});
  fs::remove_all(d);
}

TEST_CASE("load_agent4rec_ml1m: users joined by MovieLens id, summaries by movie id, texts trimmed",
          "[distill][recorded]") {
  const std::string root = fresh_dir("a4r");
  const std::string ml = (fs::path(root) / "ml-1m").string(), a4 = (fs::path(root) / "a4r").string();
  fs::create_directories(ml);
  fs::create_directories(a4);
  write_ml1m(ml);
  write_agent4rec(a4);
  distill::recorded_set s = distill::load_agent4rec_ml1m(a4, ml);
  REQUIRE(s.data.num_users() == 2);
  CHECK(s.data.user_keys[1] == "9");
  CHECK(s.data.items[1].text == "Heat (1995). Genres: Action, Crime. Summary: A heist, and \"a\" chase.");
  CHECK(s.data.items[3].text == "Speed (1994). Genres: Action, Thriller");  // an empty summary adds nothing
  REQUIRE(s.rationales.size() == 1);
  CHECK(s.rationales[0].user == 1);  // MovieLens user 9 is the dataset's second user
  CHECK(s.rationales[0].text.ends_with("MOVIE: Heat (1995)"));
  CHECK(s.teacher_model == "gpt-3.5-turbo");

  distill::agent4rec_options o;
  o.max_blocks = 1;
  o.max_titles = 2;
  o.summaries = false;
  s = distill::load_agent4rec_ml1m(a4, ml, o);
  CHECK(s.rationales[0].text == "LIKE: action\nREASON: pace\nMOVIE: Speed (1994); Heat (1995)");
  CHECK(s.data.items[1].text == "Heat (1995). Genres: Action, Crime");

  o.variant = "nonsense";
  expect_error([&] { distill::load_agent4rec_ml1m(a4, ml, o); }, {"variant", "nonsense"});
  // a record whose ids disagree with id_maps.json, and one for a user ML-1M does not have
  put(a4, "teacher_like.jsonl",
      R"j({"user_id": 0, "ml1m_user_id": 9, "text": "LIKE: x"})j"
      "\n");
  expect_error([&] { distill::load_agent4rec_ml1m(a4, ml); }, {"teacher_like.jsonl", "line 1", "id_maps.json"});
  put(a4, "id_maps.json", R"j({"user_id_map": {"5": 0, "9": 1, "11": 2}, "movie_id_map": {}})j");
  put(a4, "teacher_like.jsonl",
      R"j({"user_id": 2, "ml1m_user_id": 11, "text": "LIKE: x"})j"
      "\n");
  expect_error([&] { distill::load_agent4rec_ml1m(a4, ml); }, {"teacher_like.jsonl", "line 1", "not in ML-1M"});
  put(a4, "movie_detail.csv", "movie_id,title\n0,Heat\n");
  expect_error([&] { distill::load_agent4rec_ml1m(a4, ml); }, {"movie_detail.csv", "summary"});
  put(a4, "movie_detail.csv", "movie_id,summary\nzero,x\n");
  expect_error([&] { distill::load_agent4rec_ml1m(a4, ml); }, {"movie_detail.csv", "line 2", "zero"});
  put(a4, "id_maps.json", R"j({"user_id_map": {"5": "zero"}, "movie_id_map": {}})j");
  expect_error([&] { distill::load_agent4rec_ml1m(a4, ml); }, {"id_maps.json", "user_id_map"});
  fs::remove_all(root);
}
