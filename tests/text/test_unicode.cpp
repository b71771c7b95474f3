// Unicode tables and UTF-8: category counts against the UCD's own totals, spot checks in every plane,
// strict decoding with maximal-subpart replacement, encoding, and the streaming hold-back rule.
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include "slim/text/byte_level.hpp"
#include "slim/text/unicode.hpp"

namespace u = slim::text::unicode;
using gc = u::general_category;

TEST_CASE("every general category has the code point count the UCD states for Unicode 15.0", "[text][unicode]") {
  // "# Total code points" of each category in extracted/DerivedGeneralCategory-15.0.0.txt — a file the
  // generator does not read, so this checks the tables against an independent statement of the same data.
  const std::array<std::pair<gc, std::int64_t>, 30> expected{{
      {gc::Cn, 825345}, {gc::Lu, 1831}, {gc::Ll, 2233}, {gc::Lt, 31},  {gc::Lm, 397},  {gc::Lo, 131612},
      {gc::Mn, 1985},   {gc::Mc, 452},  {gc::Me, 13},   {gc::Nd, 680}, {gc::Nl, 236},  {gc::No, 915},
      {gc::Pc, 10},     {gc::Pd, 26},   {gc::Ps, 79},   {gc::Pe, 77},  {gc::Pi, 12},   {gc::Pf, 10},
      {gc::Po, 628},    {gc::Sm, 948},  {gc::Sc, 63},   {gc::Sk, 125}, {gc::So, 6634}, {gc::Zs, 17},
      {gc::Zl, 1},      {gc::Zp, 1},    {gc::Cc, 65},   {gc::Cf, 170}, {gc::Cs, 2048}, {gc::Co, 137468},
  }};
  std::array<std::int64_t, 30> count{};
  std::int64_t white = 0, alpha = 0, letters = 0, numbers = 0;
  for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    ++count[static_cast<std::size_t>(u::category(cp))];
    white += u::is_white_space(cp);
    alpha += u::is_alphabetic(cp);
    letters += u::is_letter(cp);
    numbers += u::is_number(cp);
  }
  for (const auto& [cat, n] : expected) {
    INFO("category index " << static_cast<int>(cat));
    CHECK(count[static_cast<std::size_t>(cat)] == n);
  }
  CHECK(white == 25);      // PropList-15.0.0.txt, White_Space
  CHECK(alpha == 137765);  // DerivedCoreProperties-15.0.0.txt, Alphabetic
  CHECK(letters == 1831 + 2233 + 31 + 397 + 131612);
  CHECK(numbers == 680 + 236 + 915);
  CHECK(u::unicode_version == "15.0.0");
}

TEST_CASE("category spot checks across the planes", "[text][unicode]") {
  CHECK(u::category(U'A') == gc::Lu);
  CHECK(u::category(U'z') == gc::Ll);
  CHECK(u::category(0x01C5) == gc::Lt);  // ǅ
  CHECK(u::category(0x02B0) == gc::Lm);  // ʰ
  CHECK(u::category(0x4E2D) == gc::Lo);  // 中
  CHECK(u::category(0x0301) == gc::Mn);
  CHECK(u::category(0x0903) == gc::Mc);
  CHECK(u::category(0x20DD) == gc::Me);
  CHECK(u::category(U'7') == gc::Nd);
  CHECK(u::category(0x216B) == gc::Nl);  // Ⅻ
  CHECK(u::category(0x00BD) == gc::No);  // ½
  CHECK(u::category(U'_') == gc::Pc);
  CHECK(u::category(U'-') == gc::Pd);
  CHECK(u::category(U'(') == gc::Ps);
  CHECK(u::category(U')') == gc::Pe);
  CHECK(u::category(0x00AB) == gc::Pi);
  CHECK(u::category(0x00BB) == gc::Pf);
  CHECK(u::category(U'!') == gc::Po);
  CHECK(u::category(U'+') == gc::Sm);
  CHECK(u::category(U'$') == gc::Sc);
  CHECK(u::category(U'^') == gc::Sk);
  CHECK(u::category(0x00A9) == gc::So);
  CHECK(u::category(U' ') == gc::Zs);
  CHECK(u::category(0x2028) == gc::Zl);
  CHECK(u::category(0x2029) == gc::Zp);
  CHECK(u::category(0x0000) == gc::Cc);
  CHECK(u::category(0x200B) == gc::Cf);
  CHECK(u::category(0xD800) == gc::Cs);
  CHECK(u::category(0xDFFF) == gc::Cs);
  CHECK(u::category(0xE000) == gc::Co);
  CHECK(u::category(0x0378) == gc::Cn);
  CHECK(u::category(0x20000) == gc::Lo);  // first of CJK extension B
  CHECK(u::category(0x2A6DF) == gc::Lo);  // last of CJK extension B
  CHECK(u::category(0x2A6E0) == gc::Cn);
  CHECK(u::category(0x31350) == gc::Lo);  // CJK extension H, new in 15.0
  CHECK(u::category(0x1F600) == gc::So);  // 😀
  CHECK(u::category(0x1F3FB) == gc::Sk);  // skin tone modifier
  CHECK(u::category(0xE0001) == gc::Cf);  // language tag
  CHECK(u::category(0xE0100) == gc::Mn);  // variation selector 17
  CHECK(u::category(0x10FFFD) == gc::Co);
  CHECK(u::category(0x10FFFF) == gc::Cn);
  CHECK(u::category(0x110000) == gc::Cn);  // out of range
  CHECK(u::category(0xFFFFFFFF) == gc::Cn);
  CHECK(u::is_white_space(0x3000));
  CHECK(u::is_white_space(0x0085));
  CHECK(u::is_white_space(0x00A0));
  CHECK_FALSE(u::is_white_space(0x200B));  // zero width space is Cf, not White_Space
  CHECK_FALSE(u::is_white_space(0x180E));  // Mongolian vowel separator left White_Space in 6.3
  CHECK(u::is_alphabetic(0x0345));         // combining ypogegrammeni: Other_Alphabetic
  CHECK_FALSE(u::is_alphabetic(0x0301));
  CHECK(u::is_alphanumeric(0x00BD));
  CHECK(u::is_mark(0x0301));
  CHECK(u::is_punctuation(0x3001));
}

TEST_CASE("UTF-8 decoding is strict and replaces maximal subparts", "[text][unicode][utf8]") {
  auto units = [](const std::string& s) {
    std::string desc;
    for (std::size_t i = 0; i < s.size();) {
      const auto r = u::decode_utf8(s, i);
      desc += r.status == u::utf8_status::ok ? "ok" : r.status == u::utf8_status::invalid ? "bad" : "cut";
      desc += std::to_string(r.length) + " ";
      i += r.length;
    }
    return desc;
  };
  CHECK(units("a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80") == "ok1 ok2 ok3 ok4 ");
  CHECK(u::decode_utf8("\xF0\x9F\x98\x80", 0).code_point == 0x1F600);
  CHECK(u::decode_utf8("\xF4\x8F\xBF\xBF", 0).code_point == 0x10FFFF);
  CHECK(units("\x80") == "bad1 ");           // stray continuation
  CHECK(units("\xC0\xAF") == "bad1 bad1 ");  // overlong lead C0 never starts a sequence
  CHECK(units("\xC1\xBF") == "bad1 bad1 ");
  CHECK(units("\xE0\x80\xAF") == "bad1 bad1 bad1 ");           // overlong 3-byte: E0 needs A0..BF next
  CHECK(units("\xED\xA0\x80") == "bad1 bad1 bad1 ");           // surrogate U+D800
  CHECK(units("\xF4\x90\x80\x80") == "bad1 bad1 bad1 bad1 ");  // above U+10FFFF
  CHECK(units("\xF5\x80") == "bad1 bad1 ");
  CHECK(units("\xFF") == "bad1 ");
  CHECK(units("\xE4\xB8"
              "a") == "bad2 ok1 ");  // maximal subpart of a 3-byte sequence
  CHECK(units("\xF0\x9F\x98"
              "a") == "bad3 ok1 ");
  CHECK(units("\xF0\x9F\x98") == "cut3 ");  // the input ends inside the sequence
  CHECK(units("\xC3") == "cut1 ");
  // Python's bytes.decode("utf-8", "replace") gives the same replacements for this classic sequence.
  CHECK(u::to_valid_utf8("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64") ==
        "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
        "b\xEF\xBF\xBD"
        "c\xEF\xBF\xBD\xEF\xBF\xBD"
        "d");
  CHECK(u::is_valid_utf8("plain ascii and \xE4\xB8\xAD"));
  CHECK_FALSE(u::is_valid_utf8("\xED\xBF\xBF"));
  CHECK(u::to_valid_utf8("already valid \xF0\x9F\x98\x80") == "already valid \xF0\x9F\x98\x80");
}

TEST_CASE("UTF-8 encoding round-trips every scalar value and replaces the rest", "[text][unicode][utf8]") {
  for (char32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x800 ? 1 : 97)) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s;
    u::append_utf8(s, cp);
    const auto r = u::decode_utf8(s, 0);
    REQUIRE(r.status == u::utf8_status::ok);
    REQUIRE(r.code_point == cp);
    REQUIRE(r.length == s.size());
  }
  std::string s;
  u::append_utf8(s, 0xD800);
  u::append_utf8(s, 0x110000);
  CHECK(s == "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("incomplete_utf8_suffix holds back exactly a cut-off sequence", "[text][unicode][utf8]") {
  CHECK(u::incomplete_utf8_suffix("") == 0);
  CHECK(u::incomplete_utf8_suffix("abc") == 0);
  CHECK(u::incomplete_utf8_suffix("ab\xE4") == 1);
  CHECK(u::incomplete_utf8_suffix("ab\xE4\xB8") == 2);
  CHECK(u::incomplete_utf8_suffix("ab\xE4\xB8\xAD") == 0);
  CHECK(u::incomplete_utf8_suffix("\xF0\x9F\x98") == 3);
  CHECK(u::incomplete_utf8_suffix("\xF0\x9F") == 2);
  CHECK(u::incomplete_utf8_suffix("\xE0\x80") == 0);  // can never complete: E0 80 is ill-formed
  CHECK(u::incomplete_utf8_suffix("\xC0") == 0);      // never a lead
  CHECK(u::incomplete_utf8_suffix("\x80\x80\x80") == 0);
  CHECK(u::incomplete_utf8_suffix("\xF4\x90") == 0);   // would exceed U+10FFFF
  CHECK(u::incomplete_utf8_suffix("x\xED\x9F") == 2);  // ED 9F may still become U+D7FF
}

TEST_CASE("the byte-level alphabet is a bijection onto printable characters", "[text][byte_level]") {
  namespace bl = slim::text::byte_level;
  CHECK(bl::byte_to_char(' ') == 0x120);   // Ġ
  CHECK(bl::byte_to_char('\n') == 0x10A);  // Ċ
  CHECK(bl::byte_to_char('A') == U'A');
  CHECK(bl::byte_to_char(0xAD) == 0x143);  // the last remapped byte
  std::array<bool, 512> seen{};
  for (unsigned b = 0; b < 256; ++b) {
    const char32_t c = bl::byte_to_char(static_cast<std::uint8_t>(b));
    REQUIRE(c < 512);
    CHECK_FALSE(seen[c]);
    seen[c] = true;
    CHECK(bl::char_to_byte(c) == static_cast<std::uint8_t>(b));
    CHECK_FALSE(u::is_white_space(c));
  }
  CHECK_FALSE(bl::char_to_byte(U' ').has_value());
  CHECK_FALSE(bl::char_to_byte(0x144).has_value());
  std::string all;
  for (unsigned b = 0; b < 256; ++b) all += static_cast<char>(b);
  CHECK(bl::decode(bl::encode(all)) == all);
  CHECK(bl::encode(" hi\n") == "\xC4\xA0hi\xC4\x8A");
  CHECK_FALSE(bl::decode("a b").has_value());  // a plain space is not in the alphabet
}
