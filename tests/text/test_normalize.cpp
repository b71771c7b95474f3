// Unicode normalisation, lower-casing and accent stripping (slim/text/normalize.hpp): every line of the UCD's
// NormalizationTest.txt (a conformance file the table generator does not read), lower-casing of every code
// point against HF tokenizers (Rust's char::to_lowercase, recorded in tests/data/text/wordpiece_unicode.json),
// hand-checked facts, the invalid-UTF-8 policy and linear cost on long runs of combining marks.
//
// NormalizationTest.txt is read from $SLIM_UNICODE_DIR, else /usr/share/unicode (Debian's unicode-data
// package, which ships it compressed as NormalizationTest.txt.bz2; it is decompressed with `bzip2 -dc`).
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "slim/text/normalize.hpp"
#include "text_test_support.hpp"

namespace u = slim::text::unicode;
namespace tt = slim::testing::text;

namespace {

std::u32string parse_cps(const std::string& field) {
  std::u32string out;
  std::istringstream in(field);
  std::string hex;
  while (in >> hex) out.push_back(static_cast<char32_t>(std::stoul(hex, nullptr, 16)));
  return out;
}

std::string hex_of(const std::u32string& s) {
  std::string out;
  char buf[16];
  for (const char32_t c : s) {
    std::snprintf(buf, sizeof buf, "%s%04X", out.empty() ? "" : " ", static_cast<unsigned>(c));
    out += buf;
  }
  return out;
}

std::u32string nf(std::u32string s, u::normalization_form form) {
  u::normalize_in_place(s, form);
  return s;
}

/// The text of NormalizationTest.txt, or nothing with a reason.
std::string normalization_test_text(std::string& reason) {
  std::string dir = "/usr/share/unicode";
  if (const char* env = std::getenv("SLIM_UNICODE_DIR"); env && *env) dir = env;
  const std::string plain = dir + "/NormalizationTest.txt", packed = plain + ".bz2";
  std::error_code ec;
  if (std::filesystem::is_regular_file(plain, ec)) return tt::read_bytes(plain);
  if (!std::filesystem::is_regular_file(packed, ec)) {
    reason = "neither " + plain + " nor " + packed + " exists: install Debian's unicode-data (or set SLIM_UNICODE_DIR)";
    return {};
  }
  const std::string command = "bzip2 -dc '" + packed + "'";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) {
    reason = "cannot run " + command;
    return {};
  }
  std::string text;
  char buf[65536];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) text.append(buf, n);
  if (pclose(pipe) != 0) {
    reason = command + " failed (is bzip2 installed?)";
    return {};
  }
  return text;
}

/// "CP R1 R2 ..." entries of wordpiece_unicode.json as (CP, result).
std::vector<std::pair<char32_t, std::u32string>> mapping_entries(const tt::json& list) {
  std::vector<std::pair<char32_t, std::u32string>> out;
  for (const auto& e : list) {
    const std::u32string cps = parse_cps(e.get<std::string>());
    REQUIRE(!cps.empty());
    out.emplace_back(cps[0], cps.substr(1));
  }
  return out;
}

}  // namespace

TEST_CASE("NFD and NFC pass every line of the UCD's NormalizationTest.txt", "[text][normalize]") {
  std::string reason;
  const std::string text = normalization_test_text(reason);
  INFO(reason);
  REQUIRE(!text.empty());
  std::istringstream in(text);
  std::string line;
  int part = -1;
  std::size_t lines = 0, failures = 0;
  std::vector<bool> listed(0x110000, false);  // code points Part 1 names; all others must be invariant
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '@') {
      part = std::stoi(line.substr(5));
      continue;
    }
    std::vector<std::u32string> c;
    std::size_t pos = 0;
    for (int k = 0; k < 5; ++k) {
      const std::size_t semi = line.find(';', pos);
      REQUIRE(semi != std::string::npos);
      c.push_back(parse_cps(line.substr(pos, semi - pos)));
      pos = semi + 1;
    }
    ++lines;
    if (part == 1 && c[0].size() == 1) listed[c[0][0]] = true;
    // The invariants the file's header states, for the canonical forms: c2 == NFC(c1) == NFC(c2) ==
    // NFC(c3), c4 == NFC(c4) == NFC(c5); c3 == NFD(c1) == NFD(c2) == NFD(c3), c5 == NFD(c4) == NFD(c5).
    const auto nfc = u::normalization_form::nfc, nfd = u::normalization_form::nfd;
    const bool ok = nf(c[0], nfc) == c[1] && nf(c[1], nfc) == c[1] && nf(c[2], nfc) == c[1] && nf(c[3], nfc) == c[3] &&
                    nf(c[4], nfc) == c[3] && nf(c[0], nfd) == c[2] && nf(c[1], nfd) == c[2] && nf(c[2], nfd) == c[2] &&
                    nf(c[3], nfd) == c[4] && nf(c[4], nfd) == c[4];
    if (!ok && ++failures <= 10) {
      INFO(line << "\n  NFC(c1) = " << hex_of(nf(c[0], nfc)) << "\n  NFD(c1) = " << hex_of(nf(c[0], nfd)));
      CHECK(ok);
    }
  }
  CHECK(failures == 0);
  CHECK(lines > 19000);  // 19,000+ test lines in Unicode 15.0
  // Part 1's closing rule: every code point it does not list is its own NFC and NFD.
  std::size_t changed = 0;
  for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if ((cp >= 0xD800 && cp <= 0xDFFF) || listed[cp]) continue;
    const std::u32string one(1, cp);
    changed += nf(one, u::normalization_form::nfc) != one || nf(one, u::normalization_form::nfd) != one;
  }
  CHECK(changed == 0);
}

TEST_CASE("normalisation facts: Hangul, exclusions, singletons, reordering", "[text][normalize]") {
  CHECK(u::to_nfd("\xEA\xB0\x80") == "\xE1\x84\x80\xE1\x85\xA1");              // 가 → ᄀ ᅡ
  CHECK(u::to_nfd("\xED\x9E\xA3") == "\xE1\x84\x92\xE1\x85\xB5\xE1\x87\x82");  // 힣 → ᄒ ᅵ ᇂ
  CHECK(u::to_nfc("\xE1\x84\x92\xE1\x85\xB5\xE1\x87\x82") == "\xED\x9E\xA3");  // and back
  CHECK(u::to_nfc("\xEA\xB0\x80\xE1\x86\xA8") == "\xEA\xB0\x81");              // LV + T → LVT
  CHECK(u::to_nfc("e\xCC\x81") == "\xC3\xA9");                                 // e + ◌́ → é
  CHECK(u::to_nfc("\xE2\x84\xAB") == "\xC3\x85");                              // Å (U+212B) → Å: a singleton
  CHECK(u::to_nfc("\xE0\xA4\x95\xE0\xA4\xBC") == "\xE0\xA4\x95\xE0\xA4\xBC");  // क़ stays decomposed (excluded)
  CHECK(u::to_nfc("\xE0\xA5\x98") == "\xE0\xA4\x95\xE0\xA4\xBC");              // U+0958 → U+0915 U+093C
  CHECK(u::to_nfd("a\xCC\x81\xCC\x96") == "a\xCC\x96\xCC\x81");                // ccc 230 after 220: reordered
  CHECK(u::to_nfc("a\xCC\x96\xCC\x81") == "\xC3\xA1\xCC\x96");                 // á + ◌̖
  CHECK(u::to_nfc("\u0301a") == "\u0301a");                                    // a leading mark composes with nothing
  CHECK(u::combining_class(0x0301) == 230);
  CHECK(u::combining_class(0x0316) == 220);
  CHECK(u::combining_class(0x093C) == 7);
  CHECK(u::combining_class(U'a') == 0);
  CHECK(u::compose_pair(U'e', 0x0301) == 0x00E9);
  CHECK(u::compose_pair(0x0915, 0x093C) == 0);  // Full_Composition_Exclusion
  CHECK(u::compose_pair(U'a', U'b') == 0);
  CHECK(u::has_canonical_decomposition(0xAC00));
  CHECK(!u::has_canonical_decomposition(U'a'));
  // ASCII and already-normalised text come back unchanged.
  CHECK(u::to_nfc("plain ASCII text") == "plain ASCII text");
  CHECK(u::to_nfd("") == "");
}

TEST_CASE("ill-formed UTF-8 becomes U+FFFD in every function", "[text][normalize]") {
  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(u::to_nfd("a\377b") == "a" + fffd + "b");
  CHECK(u::to_nfc("e\xCC") == "e" + fffd);  // a truncated mark
  CHECK(u::to_lower("A\200B") == "a" + fffd + "b");
  CHECK(u::strip_accents("\xC3\xA9\xED\xA0\x80") == "e" + fffd + fffd + fffd);  // é, a surrogate: 3 units
  CHECK(u::is_valid_utf8(u::to_nfc("\xF0\x9F\x98")));
}

TEST_CASE("lower-casing every code point matches HF tokenizers (Rust char::to_lowercase)", "[text][normalize]") {
  const auto unicode = tt::json::parse(tt::read_bytes(tt::fixture("wordpiece_unicode.json")));
  std::vector<std::u32string> expected(0x110000);
  for (const auto& [cp, result] : mapping_entries(unicode.at("lower"))) expected[cp] = result;
  std::size_t mismatches = 0, newer = 0;
  for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    const std::u32string want = expected[cp].empty() ? std::u32string(1, cp) : expected[cp];
    std::u32string got;
    u::append_lowercase(cp, got);
    if (got == want) continue;
    // HF's Rust is newer than Unicode 15: code points it lower-cases that Unicode 15 leaves unassigned.
    if (u::category(cp) == u::general_category::Cn) {
      ++newer;
      continue;
    }
    if (++mismatches <= 10) {
      INFO("U+" << hex_of(std::u32string(1, cp)) << ": slim " << hex_of(got) << ", HF " << hex_of(want));
      CHECK(got == want);
    }
  }
  CHECK(mismatches == 0);
  CHECK(newer <= 64);  // Unicode 16's new case pairs (55 with tokenizers 0.23.3)
  // UTF-8 form, and what Python's str.lower would do differently.
  CHECK(u::to_lower("HELLO World") == "hello world");
  CHECK(u::to_lower("\xC4\xB0") == "i\xCC\x87");                                 // İ → i̇ (SpecialCasing)
  CHECK(u::to_lower("\xCE\xA3\xCE\x91\xCE\xA3") == "\xCF\x83\xCE\xB1\xCF\x83");  // ΣΑΣ → σασ: no final sigma
  CHECK(u::to_lower("\xE1\xBA\x9E") == "\xC3\x9F");                              // ẞ → ß
  CHECK(u::to_lower("\xE2\x84\xA6") == "\xCF\x89");                              // Ω (ohm) → ω
  CHECK(u::simple_lowercase(0x10400) == 0x10428);                                // Deseret
  CHECK(u::simple_lowercase(0x0101) == 0x0101);                                  // ā is already lower case
}

TEST_CASE("strip_accents is NFD without nonspacing marks", "[text][normalize]") {
  CHECK(u::strip_accents("Caf\xC3\xA9 na\xC3\xAFve") == "Cafe naive");
  CHECK(u::strip_accents("e\xCC\x81\xCC\x81") == "e");
  CHECK(u::strip_accents("\xC3\x85ngstr\xC3\xB6m") == "Angstrom");
  CHECK(u::strip_accents("\xEA\xB0\x80") == "\xE1\x84\x80\xE1\x85\xA1");  // Hangul jamo are letters (Lo)
  CHECK(u::strip_accents("\xE0\xA4\x95\xE0\xA4\xBC") == "\xE0\xA4\x95");  // U+093C NUKTA is Mn
  CHECK(u::strip_accents("\xE0\xA4\x83") == "\xE0\xA4\x83");              // U+0903 VISARGA is Mc: kept
}

TEST_CASE("normalising long runs of combining marks takes linear time", "[text][normalize][scale]") {
  // 256K marks of alternating classes after one base: the reordering sorts one run of 256K characters.
  std::string text = "a";
  for (int i = 0; i < (1 << 17); ++i) text += "\xCC\x81\xCC\x96";  // ccc 230, 220
  const auto t0 = std::chrono::steady_clock::now();
  const std::string nfd = u::to_nfd(text);
  const std::string nfc = u::to_nfc(text);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(seconds << " s");
  CHECK(seconds < 15.0);                   // well under a second at -O2; generous for sanitizers and a loaded machine
  CHECK(nfd.substr(0, 3) == "a\xCC\x96");  // all 220s first
  CHECK(nfd.substr(nfd.size() - 2) == "\xCC\x81");
  CHECK(nfc.substr(0, 4) == "\xC3\xA1\xCC\x96");  // á (the first 230 composes), then the 220s
  CHECK(nfc.size() + 1 == nfd.size());            // a + ◌́ (3 bytes) became á (2 bytes); nothing else composes
}
