// The rationale parser on hand-written answers in the shapes LLMs write (numbered "Step N:", markdown, label
// headers, numbered and inline steps, LIKE/REASON/MOVIE blocks, echoed questions with "Answer:"), the title
// normalisation and catalogue matching it relies on, and robustness: arbitrary bytes never throw.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "prompt_test_support.hpp"
#include "slim/prompt/rationale.hpp"

using namespace slim::prompt;
namespace tp = slim::testing::prompt;

namespace {

/// A small movie catalogue in MovieLens spelling.
const title_catalogue& movies() {
  static const title_catalogue c = [] {
    title_catalogue k;
    const std::vector<std::pair<item_id, const char*>> items = {
        {1, "Heat (1995)"},
        {2, "Casino (1995)"},
        {3, "Sound of Music, The (1965)"},
        {4, "Misérables, Les (1995)"},
        {5, "Seven (Se7en) (1995)"},
        {6, "L.A. Confidential (1997)"},
        {7, "Bug's Life, A (1998)"},
        {8, "Fly, The (1958)"},
        {9, "Fly, The (1986)"},
        {10, "Speed 2: Cruise Control (1997)"},
        {11, "Shawshank Redemption, The (1994)"},
        {12, "Rock, The (1996)"},
        {13, "Wallace & Gromit: The Best of Aardman Animation (1996)"},
        {14, "Star Wars: Episode IV - A New Hope (1977)"},
        {15, "Sunshine (1999)"},
        {16, "Speed (1994)"},
        {17, "Fargo (1996)"},
        {18, "Good, The Bad and The Ugly, The (1966)"},
        {19, "Run Lola Run (Lola rennt) (1998)"},
        {20, "Toy Story (1995)"},
        {21, "War, The (1994)"},
    };
    for (const auto& [id, t] : items) k.add(id, t);
    return k;
  }();
  return c;
}

std::vector<item_id> ids_in_step(const parsed_rationale& r, int step) {
  std::vector<item_id> ids;
  for (const auto& m : r.mentions)
    if (m.step == step && m.matched()) ids.push_back(m.match.id);
  return ids;
}

/// Every mention's range spells its text, and steps' text ranges spell their text.
void check_offsets(std::string_view input, const parsed_rationale& r) {
  for (const auto& m : r.mentions) {
    REQUIRE(m.begin <= m.end);
    REQUIRE(m.end <= input.size());
    CHECK(input.substr(m.begin, m.end - m.begin) == m.text);
  }
  for (const auto& s : r.steps) {
    REQUIRE(s.text_begin <= s.text_end);
    REQUIRE(s.text_end <= input.size());
    CHECK(input.substr(s.text_begin, s.text_end - s.text_begin) == s.text);
  }
}

parsed_rationale parse(std::string_view text) {
  auto r = parse_rationale(text, &movies());
  check_offsets(text, r);
  return r;
}

}  // namespace

// ---- normalisation and lookup -------------------------------------------------------------------------

TEST_CASE("titles: normalisation of MovieLens and LLM spellings", "[prompt][parser]") {
  using words = std::vector<std::string>;
  CHECK(normalize_title("Sound of Music, The (1965)").words == words{"sound", "of", "music"});
  CHECK(normalize_title("Sound of Music, The (1965)").year == 1965);
  CHECK(normalize_title("The Sound of Music").words == words{"sound", "of", "music"});
  CHECK(normalize_title("Misérables, Les (1995)").words == words{"les", "miserables"});
  CHECK(normalize_title("Les Miserables").words == words{"les", "miserables"});
  CHECK(normalize_title("Misï¿½rables, Les").words == words{"les", "misrables"});  // mojibake dropped
  const auto seven = normalize_title("Seven (Se7en) (1995)");
  CHECK(seven.words == words{"seven"});
  CHECK(seven.year == 1995);
  REQUIRE(seven.akas.size() == 1);
  CHECK(seven.akas[0] == words{"se7en"});
  CHECK(normalize_title("L.A. Confidential").words == words{"la", "confidential"});
  CHECK(normalize_title("A Bug's Life").words == words{"bugs", "life"});
  CHECK(normalize_title("Bug’s Life, A").words == words{"bugs", "life"});  // typographic apostrophe
  CHECK(normalize_title("Wallace & Gromit").words == words{"wallace", "and", "gromit"});
  CHECK(normalize_title("Die Hard").words == words{"die", "hard"});  // a foreign article only moves from the end
  CHECK(normalize_title("Return of Martin Guerre, The (Retour de Martin Guerre").words ==
        words{"return", "of", "martin", "guerre"});  // a title cut inside its parentheses
  CHECK(normalize_title("The Return of Martin Guerre, The").words == words{"return", "of", "martin", "guerre"});
  CHECK(normalize_title("Cafe\xCC\x81 Society").words == words{"cafe", "society"});  // combining accent
  CHECK(normalize_title("Łódź Dvořák Straße Ærø").words == words{"lodz", "dvorak", "strasse", "aero"});
  CHECK(normalize_title("  ").words.empty());
  CHECK(normalize_title("(1995)").words.size() == 1);  // a title that is only parentheses stays a title
}

TEST_CASE("catalogue: exact, year, alias and fuzzy matches with scores", "[prompt][parser]") {
  const auto& c = movies();
  auto m = c.find("The Sound of Music");
  CHECK(m.id == 3);
  CHECK(m.kind == match_kind::exact);
  CHECK(m.score == 1.0);
  CHECK(c.find("Les Misérables (1995)").id == 4);
  CHECK(c.find("A Bug's Life (1998)").id == 7);
  CHECK(c.find("se7en").id == 5);  // the alternative title
  CHECK(c.find("se7en").kind == match_kind::alias);
  // remakes: the year decides; without it the lower id, flagged ambiguous
  CHECK(c.find("The Fly (1986)").id == 9);
  CHECK_FALSE(c.find("The Fly (1986)").ambiguous);
  CHECK(c.find("The Fly").id == 8);
  CHECK(c.find("The Fly").ambiguous);
  m = c.find("The Fly (2001)");  // a year neither has
  CHECK(m.id == 8);
  CHECK(m.score == Approx(0.9));
  // the part before the colon, when it names one item
  m = c.find("Speed 2");
  CHECK(m.id == 10);
  CHECK(m.kind == match_kind::alias);
  CHECK(c.find("Star Wars: Episode IV").id == 14);  // before " - "
  CHECK(c.find("A New Hope").id == 14);             // after " - "
  // typos: fuzzy above the threshold, nothing below it
  m = c.find("The Shawshank Redemtion");
  CHECK(m.id == 11);
  CHECK(m.kind == match_kind::fuzzy);
  CHECK(m.score > 0.9);
  CHECK(m.score < 1.0);
  CHECK(c.find("The Shawshank Redemtion", 0.99).kind == match_kind::none);
  CHECK(c.find("Pulp Fiction").kind == match_kind::none);
  CHECK(c.find("").kind == match_kind::none);
  CHECK(title_catalogue().find("Heat").kind == match_kind::none);
}

TEST_CASE("catalogue: titles in prose, and ordinary words that are not titles", "[prompt][parser]") {
  const auto& c = movies();
  auto found = [&](std::string_view text) {
    std::vector<item_id> ids;
    for (const auto& m : c.scan(text)) ids.push_back(m.match.id);
    return ids;
  };
  using ids = std::vector<item_id>;
  CHECK(found("I loved The Rock and Heat, and L.A. Confidential too.") == ids{12, 1, 6});
  CHECK(found("They enjoyed The Sound of Music (1965) and Les Misérables.") == ids{3, 4});
  CHECK(found("Films like Fly, The (1986) and Toy Story") == ids{9, 20});  // trailing article and year
  CHECK(found("the speed of light; heat waves; a war story") == ids{});    // not capitalised
  CHECK(found("Speed matters. Heat is nice.") == ids{});                   // one word at a sentence start
  CHECK(found("Speed (1994) opens the list.") == ids{16});                 // ... unless a year follows
  CHECK(found("the Vietnam War in Platoon and World War II") == ids{});    // part of a longer name
  CHECK(found("Eternal Sunshine of the Spotless Mind") == ids{});
  CHECK(found("movies like Sunshine and Fargo") == ids{15, 17});
  CHECK(found("The Good, The Bad and The Ugly is a western") == ids{18});
  const auto ms = c.scan("watch Fly, The (1958) now");
  REQUIRE(ms.size() == 1);
  CHECK(ms[0].begin == 6);
  CHECK(ms[0].end == 21);  // "Fly, The (1958)"
}

// ---- steps ------------------------------------------------------------------------------------------

TEST_CASE("parser: 'Step N:' answers in SLIM's shape", "[prompt][parser]") {
  const std::string a =
      "Sure! Let me think step by step.\n"
      "Step 1: The user enjoys tense crime dramas and heist films.\n"
      "Step 2: Recommended genres: crime, thriller, neo-noir.\n"
      "Step 3:\n"
      "1. Heat (1995) - a tense heist drama\n"
      "2. Casino - more Scorsese crime\n"
      "3. L.A. Confidential\n"
      "4. Pulp Fiction\n";
  const auto r = parse(a);
  CHECK(r.status == parse_status::complete);
  CHECK(r.format == rationale_format::steps);
  REQUIRE(r.steps.size() == 3);
  CHECK(r.preamble == "Sure! Let me think step by step.");
  CHECK(r.step(1)->text == "The user enjoys tense crime dramas and heist films.");
  CHECK(r.step(2)->text == "Recommended genres: crime, thriller, neo-noir.");
  CHECK(r.step(3)->text.rfind("1. Heat (1995)", 0) == 0);
  CHECK(ids_in_step(r, 3) == std::vector<item_id>{1, 2, 6});
  // "Pulp Fiction" is not in the catalogue: an unmatched mention, reported
  std::size_t unmatched = 0;
  for (const auto& m : r.mentions) unmatched += (m.step == 3 && !m.matched() && m.text == "Pulp Fiction") ? 1 : 0;
  CHECK(unmatched == 1);
  for (const auto& m : r.mentions)
    if (m.step == 3) CHECK(m.source == mention_source::list_item);
}

TEST_CASE("parser: markdown step headers", "[prompt][parser]") {
  const std::string a =
      "**Step 1 \xE2\x80\x93 Summary of preferences**\n"
      "The user likes family musicals such as The Sound of Music.\n\n"
      "### Step 2: Genres\n"
      "- Musical\n- Family\n\n"
      "**Step 3:** Recommendations\n"
      "* **Toy Story** (1995): a warm family film\n"
      "* Les Misérables\n";
  const auto r = parse(a);
  CHECK(r.status == parse_status::complete);
  REQUIRE(r.steps.size() == 3);
  CHECK(r.step(1)->label == "Summary of preferences");
  CHECK(r.step(1)->text == "The user likes family musicals such as The Sound of Music.");
  CHECK(r.step(2)->label == "Genres");
  CHECK(ids_in_step(r, 1) == std::vector<item_id>{3});  // prose mention
  CHECK(ids_in_step(r, 2).empty());                     // "Musical", "Family" are not titles here
  CHECK(ids_in_step(r, 3) == std::vector<item_id>{20, 4});
}

TEST_CASE("parser: step header variants", "[prompt][parser]") {
  const auto r = parse("[Step 1] likes crime\nStep two: noir\nSTEP 3 - Fargo (1996)\nStep 4 is not a header");
  CHECK(r.status == parse_status::complete);
  REQUIRE(r.steps.size() == 3);
  CHECK(r.step(1)->text == "likes crime");
  CHECK(r.step(2)->text == "noir");
  CHECK(r.step(3)->text == "Fargo (1996)\nStep 4 is not a header");
  CHECK(ids_in_step(r, 3) == std::vector<item_id>{17});
  CHECK(parse("Stem cells: a topic\nStop 2: no").status == parse_status::unstructured);
}

TEST_CASE("parser: label headers and numbered steps", "[prompt][parser]") {
  {
    const std::string a =
        "User preferences:\nThe user likes gritty crime.\n\nRecommended genres: crime, noir\n\n"
        "Recommendations:\n- Heat\n- Casino\n";
    const auto r = parse(a);
    CHECK(r.status == parse_status::complete);
    REQUIRE(r.steps.size() == 3);
    CHECK(r.step(1)->label == "User preferences");
    CHECK(r.step(2)->text == "crime, noir");
    CHECK(ids_in_step(r, 3) == std::vector<item_id>{1, 2});
  }
  {  // numbered headings with a nested list
    const std::string a =
        "1. Preferences: likes crime.\n2. Genres: crime, drama\n3. Movies:\n   1. Fargo\n   2. Se7en\n";
    const auto r = parse(a);
    CHECK(r.status == parse_status::complete);
    REQUIRE(r.steps.size() == 3);
    CHECK(r.step(1)->text == "likes crime.");
    CHECK(r.step(3)->label == "Movies");
    CHECK(ids_in_step(r, 3) == std::vector<item_id>{17, 5});
  }
  {  // numbered sentences: exactly three top-level items that are not bare titles
    const std::string a =
        "1. The user enjoys crime films.\n2. Recommended genres include thriller.\n"
        "3. I recommend Heat and Casino.\n";
    const auto r = parse(a);
    CHECK(r.status == parse_status::complete);
    CHECK(r.steps.size() == 3);
    CHECK(ids_in_step(r, 3) == std::vector<item_id>{1, 2});
  }
  {  // a list of three titles is a list, not three steps
    const auto r = parse("1. Heat\n2. Casino\n3. Fargo\n");
    CHECK(r.status == parse_status::unstructured);
    CHECK(ids_in_step(r, 0) == std::vector<item_id>{1, 2, 17});
  }
  {  // inline markers
    const auto r = parse("(1) The user likes crime. (2) Genres: noir. (3) Watch Heat next.");
    CHECK(r.status == parse_status::complete);
    REQUIRE(r.steps.size() == 3);
    CHECK(r.step(2)->text == "Genres: noir.");
    CHECK(ids_in_step(r, 3) == std::vector<item_id>{1});
  }
}

TEST_CASE("parser: gaps, echoed questions, no structure", "[prompt][parser]") {
  {
    const auto r = parse("Step 1: likes crime.\nStep 3: Heat (1995)\nStep 2: too late, a smaller number is text");
    CHECK(r.status == parse_status::partial);
    CHECK(r.step(2) == nullptr);
    REQUIRE(r.step(3) != nullptr);
    CHECK_THAT(r.step(3)->text, Catch::Contains("Step 2: too late"));
  }
  {  // the NIR chain: question, then "Answer:"; "Steq" is GPT-3's typo kept in the recorded prompt
    const std::string a =
        "Candidate Set (candidate movies): Heat, Casino.\n"
        "Steq 1: What features are most important to me? \nAnswer: I like crime..\n"
        "Step 2: Selecting the most featured movies (Format: [no. a watched movie.]). \nAnswer: 1. Heat\n2. Casino.\n"
        "Step 3: Can you recommend 2 movies? \nAnswer: \n1. Heat - Fargo\n2. Casino - Sunshine";
    const auto r = parse(a);
    CHECK(r.status == parse_status::complete);
    REQUIRE(r.steps.size() == 3);
    CHECK(r.step(1)->question == "What features are most important to me?");
    CHECK(r.step(1)->text == "I like crime..");
    CHECK(r.step(2)->text == "1. Heat\n2. Casino.");
    CHECK(ids_in_step(r, 2) == std::vector<item_id>{1, 2});
    CHECK(ids_in_step(r, 3) == std::vector<item_id>{1, 17, 2, 15});
  }
  {
    const auto r = parse("I think they would like Fargo because they like crime.");
    CHECK(r.status == parse_status::unstructured);
    CHECK(r.format == rationale_format::none);
    CHECK(ids_in_step(r, 0) == std::vector<item_id>{17});
  }
  CHECK(parse("").status == parse_status::empty);
  CHECK(parse(" \n\t\r\n ").status == parse_status::empty);
}

// ---- blocks -----------------------------------------------------------------------------------------

TEST_CASE("parser: LIKE / REASON / MOVIE blocks (agent4rec's shape)", "[prompt][parser]") {
  const std::string a =
      "Here is my taste:\n\n"
      "LIKE: I enjoy crime films.\nREASON: They are tense.\nMOVIE: Heat (1995); Casino (1995); Pulp Fiction (1994)\n\n"
      "LIKE: I like musicals.\nREASON: The songs\nstay with me.\nMOVIE: Sound of Music, The (1965), Misérables, Les "
      "(1995)\n\n"
      "LIKE: Family films.\nREASON: Warm.\n\n"
      "HIGH RATINGS: crime and musicals\n\n"
      "Please note this is a guess.";
  const auto r = parse(a);
  CHECK(r.format == rationale_format::blocks);
  CHECK(r.status == parse_status::partial);  // the last block has no MOVIE
  REQUIRE(r.blocks.size() == 3);
  CHECK(r.blocks[0].find("LIKE")->value == "I enjoy crime films.");
  CHECK(r.blocks[1].find("REASON")->value == "The songs\nstay with me.");
  CHECK(r.blocks[2].find("MOVIE") == nullptr);
  REQUIRE(r.fields.size() == 1);
  CHECK(r.fields[0].key == "HIGH RATINGS");
  CHECK(r.preamble == "Here is my taste:");
  CHECK(r.trailer == "Please note this is a guess.");
  std::vector<item_id> b0, b1;
  std::size_t unmatched = 0;
  for (const auto& m : r.mentions) {
    CHECK(m.source == mention_source::field_list);
    if (!m.matched())
      ++unmatched;
    else
      (m.block == 0 ? b0 : b1).push_back(m.match.id);
  }
  CHECK(b0 == std::vector<item_id>{1, 2});
  CHECK(b1 == std::vector<item_id>{3, 4});  // commas inside titles and between them
  CHECK(unmatched == 1);                    // Pulp Fiction
  // a complete set of blocks
  const auto ok = parse("TASTE: crime\nREASON: I rated Heat highly.\n\nTASTE: musicals\nREASON: The Sound of Music.");
  CHECK(ok.status == parse_status::complete);
  CHECK(ok.blocks.size() == 2);
  CHECK(ok.mentions.size() == 2);  // prose in REASON values
}

// ---- robustness ---------------------------------------------------------------------------------------

TEST_CASE("parser: arbitrary bytes never throw and offsets stay in range", "[prompt][parser]") {
  tp::splitmix rng{99};
  static const char* const pieces[] = {
      "Step ", "1",    "2",        "3",       ":",  "\n",  "\n\n", "LIKE: ", "MOVIE: ", ";",      " - ",
      "[",     "]",    "(",        ")",       "**", "#",   "Heat", "The ",   ", The",   "(1995)", "\xC3",
      "\xA9",  "\xFF", "\xE2\x80", "Answer:", " ",  "1. ", "(1) ", "\r\n",   "é",       "🎬"};
  for (int trial = 0; trial < 3000; ++trial) {
    std::string s;
    const std::size_t n = rng.below(60);
    for (std::size_t k = 0; k < n; ++k) {
      if (rng.below(4) == 0)
        s += static_cast<char>(rng.below(256));
      else
        s += pieces[rng.below(std::size(pieces))];
    }
    INFO("trial " << trial);
    parsed_rationale r;
    REQUIRE_NOTHROW(r = parse_rationale(s, &movies()));
    check_offsets(s, r);
  }
  // long inputs: one huge line, many lines
  const std::string big(200000, 'a');
  CHECK(parse_rationale(big, &movies()).status == parse_status::unstructured);
  std::string lines;
  for (int i = 0; i < 5000; ++i) lines += std::string("Step ") + std::to_string(i % 97) + ": Heat\n";
  CHECK_NOTHROW(parse_rationale(lines, &movies()));
  // inputs that a quadratic rule would choke on: a 300 KB list item, 40,000 fields
  std::string list_item = "1. ";
  for (int i = 0; i < 50000; ++i) list_item += "Heat, ";
  const auto li = parse_rationale(list_item, &movies());
  CHECK(li.mentions.size() == 49999);  // read as prose: every "Heat" but the first, which starts the item
  std::string fields;
  for (int i = 0; i < 20000; ++i) fields += "LIKE: crime\nMOVIE: Heat (1995); Casino (1995)\n";
  const auto fr = parse_rationale(fields, &movies());
  CHECK(fr.blocks.size() == 20000);
  CHECK(fr.mentions.size() == 40000);
}

TEST_CASE("parser: without a catalogue, structure is found and title-like items are reported", "[prompt][parser]") {
  const auto r = parse_rationale("Step 1: likes crime\nStep 2: noir\nStep 3:\n1. Heat\n2. a sentence about it");
  CHECK(r.status == parse_status::complete);
  REQUIRE(r.mentions.size() == 1);
  CHECK(r.mentions[0].text == "Heat");
  CHECK_FALSE(r.mentions[0].matched());
  const rationale_parser p(&movies(), {.expected_steps = 2});
  CHECK(p("Step 1: a\nStep 2: Heat (1995)").status == parse_status::complete);
}
