// slim — a minimal protocol-buffers wire-format reader (varints, fixed32/64, length-delimited fields) for
// tokenizer files such as SentencePiece's `tokenizer.model`. Every malformed or truncated input throws
// slim::error naming the file, the field path and the byte offset.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "slim/core/error.hpp"

namespace slim::text::detail {

/// Wire types of the protobuf encoding.
enum class wire_type : std::uint8_t { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

/// One field as read from the wire: its number, its type, where it starts, and its value (the integer for
/// varint/fixed types, the bytes for length-delimited ones).
struct pb_field {
  std::uint32_t number = 0;
  wire_type type = wire_type::varint;
  std::size_t offset = 0;  ///< byte offset of the field's tag in the whole file
  std::uint64_t integer = 0;
  std::string_view bytes;
  std::size_t bytes_offset = 0;  ///< byte offset of `bytes` in the whole file
};

/// Reads the fields of one message in order. `base` is the message's offset in the file (for messages).
class pb_reader {
 public:
  /// Names a field number for messages ("piece"), or returns null for an unknown number.
  using name_fn = const char* (*)(std::uint32_t number);

  pb_reader(std::string_view data, std::size_t base, const std::string& file, std::string path, name_fn names = nullptr)
      : data_(data), base_(base), file_(&file), path_(std::move(path)), names_(names) {}

  /// Reads the next field into `f`; false at the end of the message.
  bool next(pb_field& f) {
    if (pos_ >= data_.size()) return false;
    f = pb_field{};
    f.offset = base_ + pos_;
    const std::uint64_t tag = varint("field tag");
    const std::uint64_t number = tag >> 3;
    const auto type = static_cast<unsigned>(tag & 7);
    if (number == 0 || number > 0x1FFFFFFF) fail(f.offset, "field number " + std::to_string(number) + " is invalid");
    f.number = static_cast<std::uint32_t>(number);
    switch (type) {
      case 0:
        f.type = wire_type::varint;
        f.integer = varint(field_name(f.number));
        break;
      case 1:
        f.type = wire_type::fixed64;
        f.integer = fixed(8, f.number);
        break;
      case 2: {
        f.type = wire_type::length_delimited;
        const std::uint64_t len = varint(field_name(f.number) + " length");
        if (len > data_.size() - pos_)
          fail(base_ + pos_, field_name(f.number) + ": length " + std::to_string(len) + " runs past the end (" +
                                 std::to_string(data_.size() - pos_) + " bytes left)");
        f.bytes_offset = base_ + pos_;
        f.bytes = data_.substr(pos_, static_cast<std::size_t>(len));
        pos_ += static_cast<std::size_t>(len);
        break;
      }
      case 5:
        f.type = wire_type::fixed32;
        f.integer = fixed(4, f.number);
        break;
      default:
        fail(f.offset, field_name(f.number) + ": unsupported wire type " + std::to_string(type));
    }
    return true;
  }

  /// Throws unless `f` has wire type `t` (`what` names the field for the message).
  void expect(const pb_field& f, wire_type t, const std::string& what) const {
    if (f.type != t)
      fail(f.offset, what + ": wire type " + std::to_string(static_cast<unsigned>(f.type)) + ", expected " +
                         std::to_string(static_cast<unsigned>(t)));
  }

  /// Throws slim::error(file, "offset N", path + ": " + message).
  [[noreturn]] void fail(std::size_t offset, const std::string& message) const {
    throw error(*file_, "offset " + std::to_string(offset), path_.empty() ? message : path_ + "." + message);
  }

  const std::string& path() const noexcept { return path_; }
  const std::string& file() const noexcept { return *file_; }

 private:
  std::string field_name(std::uint32_t number) const {
    if (names_)
      if (const char* n = names_(number)) return n;
    return "field " + std::to_string(number);
  }

  std::uint64_t varint(const std::string& what) {
    const std::size_t start = base_ + pos_;
    std::uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (pos_ >= data_.size()) fail(start, what + ": truncated varint");
      const auto b = static_cast<unsigned char>(data_[pos_++]);
      if (shift == 63 && (b & 0x7E)) fail(start, what + ": varint overflows 64 bits");
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(start, what + ": varint longer than 10 bytes");
  }

  std::uint64_t fixed(std::size_t n, std::uint32_t number) {
    if (data_.size() - pos_ < n) fail(base_ + pos_, field_name(number) + ": truncated fixed-width value");
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i)
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(data_[pos_ + i])) << (8 * i);
    pos_ += n;
    return v;
  }

  std::string_view data_;
  std::size_t base_;
  std::size_t pos_ = 0;
  const std::string* file_;
  std::string path_;
  name_fn names_;
};

/// The float stored in a fixed32 field.
inline float pb_float(std::uint64_t bits) noexcept {
  const auto b = static_cast<std::uint32_t>(bits);
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

}  // namespace slim::text::detail
