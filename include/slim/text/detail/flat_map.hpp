// slim — small open-addressing hash maps for the tokenizers' hot lookups (merge ranks by token pair, ids
// by byte string). Insert-only, no erase; keys are hashed with a multiplicative mix.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace slim::text::detail {

inline std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

/// FNV-1a over bytes, finished with mix64.
inline std::uint64_t hash_bytes(std::string_view s) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return mix64(h);
}

/// Map from a 64-bit key (never ~0) to a trivially copyable value.
template <class V>
class u64_map {
 public:
  static constexpr std::uint64_t empty_key = ~std::uint64_t{0};

  void reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap < 2 * n + 2) cap *= 2;
    if (cap > slots_.size()) rehash(cap);
  }

  /// Inserts or overwrites.
  void insert_or_assign(std::uint64_t key, const V& value) {
    if (2 * (size_ + 1) > slots_.size()) rehash(slots_.empty() ? 16 : 2 * slots_.size());
    std::size_t i = mix64(key) & (slots_.size() - 1);
    while (slots_[i].key != empty_key && slots_[i].key != key) i = (i + 1) & (slots_.size() - 1);
    if (slots_[i].key == empty_key) ++size_;
    slots_[i] = {key, value};
  }

  /// The value for `key`, or null.
  const V* find(std::uint64_t key) const noexcept {
    if (slots_.empty()) return nullptr;
    std::size_t i = mix64(key) & (slots_.size() - 1);
    while (true) {
      const auto& s = slots_[i];
      if (s.key == key) return &s.value;
      if (s.key == empty_key) return nullptr;
      i = (i + 1) & (slots_.size() - 1);
    }
  }

  std::size_t size() const noexcept { return size_; }

 private:
  struct slot {
    std::uint64_t key = empty_key;
    V value{};
  };
  void rehash(std::size_t cap) {
    std::vector<slot> old;
    old.swap(slots_);
    slots_.assign(cap, slot{});
    size_ = 0;
    for (const auto& s : old)
      if (s.key != empty_key) insert_or_assign(s.key, s.value);
  }
  std::vector<slot> slots_;
  std::size_t size_ = 0;
};

/// Map from a byte string to an int32 value; the strings live in one arena.
class string_map {
 public:
  void reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap < 2 * n + 2) cap *= 2;
    if (cap > slots_.size()) rehash(cap);
  }

  /// Inserts `key` unless present; returns false (and leaves the old value) when it was present.
  bool insert(std::string_view key, std::int32_t value) {
    if (2 * (size_ + 1) > slots_.size()) rehash(slots_.empty() ? 16 : 2 * slots_.size());
    const std::uint64_t h = hash_bytes(key);
    std::size_t i = h & (slots_.size() - 1);
    while (slots_[i].used) {
      if (slots_[i].hash == h && view(slots_[i]) == key) return false;
      i = (i + 1) & (slots_.size() - 1);
    }
    slots_[i] = {h, static_cast<std::uint32_t>(arena_.size()), static_cast<std::uint32_t>(key.size()), value, true};
    arena_.append(key);
    ++size_;
    return true;
  }

  /// The value for `key`, or null.
  const std::int32_t* find(std::string_view key) const noexcept {
    if (slots_.empty()) return nullptr;
    const std::uint64_t h = hash_bytes(key);
    std::size_t i = h & (slots_.size() - 1);
    while (slots_[i].used) {
      if (slots_[i].hash == h && view(slots_[i]) == key) return &slots_[i].value;
      i = (i + 1) & (slots_.size() - 1);
    }
    return nullptr;
  }

  std::size_t size() const noexcept { return size_; }

 private:
  struct slot {
    std::uint64_t hash = 0;
    std::uint32_t offset = 0, length = 0;
    std::int32_t value = 0;
    bool used = false;
  };
  std::string_view view(const slot& s) const noexcept { return std::string_view(arena_).substr(s.offset, s.length); }
  void rehash(std::size_t cap) {
    std::vector<slot> old;
    old.swap(slots_);
    slots_.assign(cap, slot{});
    for (const auto& s : old) {
      if (!s.used) continue;
      std::size_t i = s.hash & (cap - 1);
      while (slots_[i].used) i = (i + 1) & (cap - 1);
      slots_[i] = s;
    }
  }
  std::vector<slot> slots_;
  std::string arena_;
  std::size_t size_ = 0;
};

}  // namespace slim::text::detail
