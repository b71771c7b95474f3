// slim — a minimal PNG writer for charts: an RGB canvas with filled rectangles, lines and a 5x7 bitmap font,
// saved as an 8-bit truecolour PNG (zlib "stored" blocks, CRC-32 and Adler-32 computed here), atomically.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/io/atomic_file.hpp"

namespace slim::io {

/// An RGB colour.
struct rgb {
  std::uint8_t r = 0, g = 0, b = 0;
};

/// An RGB image in memory, origin top left.
class canvas {
 public:
  canvas(int width, int height, rgb background = {255, 255, 255}) : w_(width), h_(height) {
    require(width > 0 && height > 0 && width <= 16384 && height <= 16384, "slim::io::canvas", "size ", width, "x",
            height, " out of range");
    px_.assign(static_cast<std::size_t>(width) * static_cast<std::size_t>(height), background);
  }
  int width() const noexcept { return w_; }
  int height() const noexcept { return h_; }
  rgb at(int x, int y) const {
    return px_[static_cast<std::size_t>(y) * static_cast<std::size_t>(w_) + static_cast<std::size_t>(x)];
  }

  /// Sets a pixel (outside the canvas: ignored).
  void set(int x, int y, rgb c) noexcept {
    if (x >= 0 && y >= 0 && x < w_ && y < h_)
      px_[static_cast<std::size_t>(y) * static_cast<std::size_t>(w_) + static_cast<std::size_t>(x)] = c;
  }
  /// Fills [x0, x1) × [y0, y1) (clipped; corners in any order).
  void fill(int x0, int y0, int x1, int y1, rgb c) noexcept {
    if (x0 > x1) std::swap(x0, x1);
    if (y0 > y1) std::swap(y0, y1);
    for (int y = std::max(0, y0); y < std::min(h_, y1); ++y)
      for (int x = std::max(0, x0); x < std::min(w_, x1); ++x) set(x, y, c);
  }
  void hline(int x0, int x1, int y, rgb c) noexcept { fill(x0, y, x1 + 1, y + 1, c); }
  void vline(int x, int y0, int y1, rgb c) noexcept { fill(x, std::min(y0, y1), x + 1, std::max(y0, y1) + 1, c); }

  /// Draws `s` with the 5x7 font at `scale` (1: 6 px per character); lower case is drawn as upper case and
  /// characters without a glyph as a blank. Returns the width drawn.
  int text(int x, int y, std::string_view s, rgb c, int scale = 1) noexcept {
    int cx = x;
    for (const char ch : s) {
      const auto& g = glyph(ch);
      for (int row = 0; row < 7; ++row)
        for (int col = 0; col < 5; ++col)
          if (g[static_cast<std::size_t>(row)] & (0x10 >> col))
            fill(cx + col * scale, y + row * scale, cx + (col + 1) * scale, y + (row + 1) * scale, c);
      cx += 6 * scale;
    }
    return cx - x;
  }
  static int text_width(std::string_view s, int scale = 1) noexcept { return static_cast<int>(s.size()) * 6 * scale; }

  /// The image as PNG bytes.
  std::string png() const {
    std::string raw;  // filter byte 0 + RGB per row
    raw.reserve(static_cast<std::size_t>(h_) * (1 + 3 * static_cast<std::size_t>(w_)));
    for (int y = 0; y < h_; ++y) {
      raw.push_back('\0');
      for (int x = 0; x < w_; ++x) {
        const rgb p = at(x, y);
        raw.push_back(static_cast<char>(p.r));
        raw.push_back(static_cast<char>(p.g));
        raw.push_back(static_cast<char>(p.b));
      }
    }
    std::string z = "\x78\x01";  // zlib header: deflate, 32K window, no preset dictionary, fastest
    for (std::size_t off = 0; off < raw.size() || off == 0; off += 65535) {
      const std::size_t n = std::min<std::size_t>(65535, raw.size() - off);
      const bool last = off + n >= raw.size();
      z.push_back(last ? '\x01' : '\x00');
      z.push_back(static_cast<char>(n & 0xff));
      z.push_back(static_cast<char>(n >> 8));
      z.push_back(static_cast<char>(~n & 0xff));
      z.push_back(static_cast<char>((~n >> 8) & 0xff));
      z.append(raw, off, n);
      if (last) break;
    }
    put32(z, adler32(raw));
    std::string out = "\x89PNG\r\n\x1a\n";
    std::string ihdr;
    put32(ihdr, static_cast<std::uint32_t>(w_));
    put32(ihdr, static_cast<std::uint32_t>(h_));
    ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8 bits, truecolour, deflate, adaptive filters, no interlace
    chunk(out, "IHDR", ihdr);
    chunk(out, "IDAT", z);
    chunk(out, "IEND", "");
    return out;
  }
  /// Writes the PNG atomically.
  void save(const std::string& path) const { write_file_atomic(path, png()); }

  static std::uint32_t crc32(std::string_view a, std::string_view b = {}) noexcept {
    std::uint32_t c = 0xffffffffu;
    for (const std::string_view s : {a, b})
      for (const char ch : s) {
        c ^= static_cast<std::uint8_t>(ch);
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
      }
    return ~c;
  }
  static std::uint32_t adler32(std::string_view s) noexcept {
    std::uint32_t a = 1, b = 0;
    for (const char ch : s) {
      a = (a + static_cast<std::uint8_t>(ch)) % 65521u;
      b = (b + a) % 65521u;
    }
    return (b << 16) | a;
  }

 private:
  static void put32(std::string& s, std::uint32_t v) {
    for (int k = 3; k >= 0; --k) s.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
  }
  static void chunk(std::string& out, std::string_view type, std::string_view data) {
    put32(out, static_cast<std::uint32_t>(data.size()));
    out.append(type);
    out.append(data);
    put32(out, crc32(type, data));
  }
  /// 5x7 glyphs, one byte per row, bit 4 = leftmost column.
  static const std::array<std::uint8_t, 7>& glyph(char ch) noexcept {
    static constexpr std::array<std::uint8_t, 7> blank{};
    struct entry {
      char c;
      std::array<std::uint8_t, 7> rows;
    };
    static constexpr entry font[] = {
        {'A', {0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}}, {'B', {0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e}},
        {'C', {0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e}}, {'D', {0x1e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1e}},
        {'E', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f}}, {'F', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10}},
        {'G', {0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f}}, {'H', {0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}},
        {'I', {0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c}},
        {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f}},
        {'M', {0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
        {'O', {0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}}, {'P', {0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10}},
        {'Q', {0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d}}, {'R', {0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11}},
        {'S', {0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e}}, {'T', {0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
        {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04}},
        {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a}}, {'X', {0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11}},
        {'Y', {0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04}}, {'Z', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f}},
        {'0', {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e}}, {'1', {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e}},
        {'2', {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f}}, {'3', {0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e}},
        {'4', {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02}}, {'5', {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e}},
        {'6', {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e}}, {'7', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
        {'8', {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e}}, {'9', {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c}},
        {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c}}, {'+', {0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00}},
        {'-', {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00}}, {'=', {0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00}},
        {'@', {0x0e, 0x11, 0x17, 0x15, 0x17, 0x10, 0x0e}}, {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
        {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}}, {':', {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00}},
        {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}}, {',', {0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08}},
    };
    const char u = ch >= 'a' && ch <= 'z' ? static_cast<char>(ch - 32) : ch;
    for (const entry& e : font)
      if (e.c == u) return e.rows;
    return blank;
  }

  int w_, h_;
  std::vector<rgb> px_;
};

}  // namespace slim::io
