// Tests of the PNG writer: CRC-32 and Adler-32 against their published check values, and a written image read
// back by walking its chunks and stored deflate blocks.
// SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include "slim/io/png.hpp"

namespace {

std::uint32_t be32(const std::string& s, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<std::uint8_t>(s[at])) << 24) |
         (static_cast<std::uint32_t>(static_cast<std::uint8_t>(s[at + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<std::uint8_t>(s[at + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<std::uint8_t>(s[at + 3]));
}

}  // namespace

TEST_CASE("png: checksums match their standard check values", "[io][png]") {
  // CRC-32 (ISO-HDLC) of "123456789" is 0xCBF43926; Adler-32 of "Wikipedia" is 0x11E60398 (RFC 1950's example).
  CHECK(slim::io::canvas::crc32("123456789") == 0xCBF43926u);
  CHECK(slim::io::canvas::crc32("1234", "56789") == 0xCBF43926u);
  CHECK(slim::io::canvas::adler32("Wikipedia") == 0x11E60398u);
}

TEST_CASE("png: the file holds the pixels drawn, in valid chunks", "[io][png]") {
  // wide enough that the image data needs more than one 65,535-byte stored block
  slim::io::canvas c(300, 120, {255, 255, 255});
  c.fill(10, 20, 30, 40, {200, 10, 20});
  c.set(299, 119, {1, 2, 3});
  c.text(50, 50, "NDCG@10", {0, 0, 0});
  const std::string png = c.png();
  REQUIRE(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  std::size_t at = 8;
  std::string idat;
  std::vector<std::string> types;
  while (at < png.size()) {
    const std::uint32_t n = be32(png, at);
    const std::string type = png.substr(at + 4, 4), data = png.substr(at + 8, n);
    CHECK(be32(png, at + 8 + n) == slim::io::canvas::crc32(type, data));
    types.push_back(type);
    if (type == "IHDR") {
      CHECK(be32(data, 0) == 300);
      CHECK(be32(data, 4) == 120);
      CHECK(data[8] == 8);
      CHECK(data[9] == 2);
    }
    if (type == "IDAT") idat += data;
    at += 12 + n;
  }
  CHECK(types == std::vector<std::string>{"IHDR", "IDAT", "IEND"});
  // zlib: header, stored blocks (BFINAL on the last), Adler-32 of the raw scanlines
  REQUIRE(((static_cast<std::uint8_t>(idat[0]) << 8) | static_cast<std::uint8_t>(idat[1])) % 31 == 0);
  std::string raw;
  std::size_t p = 2;
  int blocks = 0;
  for (bool last = false; !last; ++blocks) {
    last = idat[p] & 1;
    const unsigned len = static_cast<std::uint8_t>(idat[p + 1]) | (static_cast<std::uint8_t>(idat[p + 2]) << 8);
    const unsigned nlen = static_cast<std::uint8_t>(idat[p + 3]) | (static_cast<std::uint8_t>(idat[p + 4]) << 8);
    REQUIRE((len ^ 0xffffu) == nlen);
    raw += idat.substr(p + 5, len);
    p += 5 + len;
  }
  CHECK(blocks >= 2);
  REQUIRE(raw.size() == 120u * (1 + 3 * 300));
  CHECK(be32(idat, p) == slim::io::canvas::adler32(raw));
  auto pixel = [&](int x, int y) {
    const std::size_t o = static_cast<std::size_t>(y) * (1 + 3 * 300) + 1 + 3 * static_cast<std::size_t>(x);
    return std::array<int, 3>{static_cast<std::uint8_t>(raw[o]), static_cast<std::uint8_t>(raw[o + 1]),
                              static_cast<std::uint8_t>(raw[o + 2])};
  };
  CHECK(pixel(10, 20) == std::array<int, 3>{200, 10, 20});
  CHECK(pixel(29, 39) == std::array<int, 3>{200, 10, 20});
  CHECK(pixel(30, 40) == std::array<int, 3>{255, 255, 255});
  CHECK(pixel(299, 119) == std::array<int, 3>{1, 2, 3});
  // the 'N' glyph's top-left pixel is ink
  CHECK(pixel(50, 50) == std::array<int, 3>{0, 0, 0});
  for (std::size_t y = 0; y < 120; ++y) CHECK(raw[y * (1 + 3 * 300)] == 0);  // filter type None
}
