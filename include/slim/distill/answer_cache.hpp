// slim — the teacher's on-disk answer cache: one JSON file per answer in a directory, keyed by a 128-bit hash of
// (model, system, prompt), each written atomically as its answer arrives, so a crash loses nothing and a rerun
// asks only for what is not there.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/distill/teacher.hpp"
#include "slim/io/atomic_file.hpp"
#include "slim/io/json.hpp"

namespace slim::distill {

/// A 128-bit hash value.
struct hash128 {
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;

  /// 32 lowercase hex digits, high word first.
  std::string hex() const {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s(32, '0');
    for (int i = 0; i < 16; ++i) {
      s[static_cast<std::size_t>(15 - i)] = digits[(hi >> (4 * i)) & 15];
      s[static_cast<std::size_t>(31 - i)] = digits[(lo >> (4 * i)) & 15];
    }
    return s;
  }
  friend bool operator==(const hash128&, const hash128&) = default;
};

/// FNV-1a with 128-bit state (offset basis 0x6c62272e07bb014262b821756295c58d, prime 2^88 + 0x13b, per the
/// FNV specification, draft-eastlake-fnv): for each byte, h ^= byte; h *= prime (mod 2^128). `h` continues a
/// previous hash (start from fnv1a_128_basis()). Not cryptographic: the cache stores the hashed texts and
/// compares them on every lookup, so a collision is detected, never served.
class fnv1a_128 {
 public:
  static constexpr std::uint64_t basis_hi = 0x6c62272e07bb0142ull, basis_lo = 0x62b821756295c58dull;

  /// Mixes `bytes` into the state.
  constexpr fnv1a_128& update(std::string_view bytes) noexcept {
    for (const char c : bytes) {
      lo_ ^= static_cast<unsigned char>(c);
      multiply_by_prime();
    }
    return *this;
  }
  /// Mixes the length of `field` (8 bytes, little-endian) and then its bytes: a sequence of fields hashes
  /// differently from any other split of the same bytes.
  constexpr fnv1a_128& field(std::string_view bytes) noexcept {
    std::uint64_t n = bytes.size();
    char len[8] = {};
    for (char& b : len) {
      b = static_cast<char>(n & 0xff);
      n >>= 8;
    }
    update(std::string_view(len, 8));
    return update(bytes);
  }
  constexpr hash128 value() const noexcept { return {hi_, lo_}; }

 private:
  // h * (2^88 + 0x13b) mod 2^128 = h * 0x13b + (h << 88), on two 64-bit words.
  constexpr void multiply_by_prime() noexcept {
    const std::uint64_t a0 = lo_ & 0xffffffffull, a1 = lo_ >> 32;
    const std::uint64_t p0 = a0 * 0x13bull, p1 = a1 * 0x13bull;   // each < 2^41
    const std::uint64_t low = p0 + ((p1 & 0xffffffffull) << 32);  // may wrap: carry below
    const std::uint64_t carry = (low < p0) ? 1 : 0;
    const std::uint64_t high = hi_ * 0x13bull + (p1 >> 32) + carry;  // (hi * 0x13b + carries) mod 2^64
    hi_ = high + (lo_ << 24);                                        // (h << 88): lo's low 40 bits into hi
    lo_ = low;
  }
  std::uint64_t hi_ = basis_hi, lo_ = basis_lo;
};

/// The cache key of one request to one model: FNV-1a-128 over the fields "slim-answer-cache-v1", model, system
/// and prompt, each length-prefixed.
inline hash128 answer_key(std::string_view model, std::string_view system, std::string_view prompt) noexcept {
  return fnv1a_128().field("slim-answer-cache-v1").field(model).field(system).field(prompt).value();
}

/// What to do with a cache file that cannot be read back (not JSON, a field missing or of the wrong type).
/// Files are only ever written whole (temporary file, fsync, rename), so such a file means outside damage.
enum class damaged_entry {
  error,  ///< throw slim::error naming the file (default: nothing is re-asked silently)
  reask,  ///< treat it as absent, count it in answer_cache::damaged(), and overwrite it with the new answer
};

/// A directory of answers, one file "<32 hex digits of answer_key>.json" each, holding
///   {"format": "slim-answer-cache-v1", "key": hex, "model", "system", "prompt", "text",
///    "prompt_tokens", "completion_tokens", "seconds"}.
/// `store` writes a file atomically and durably (io::write_json: temporary file, fsync, rename, directory
/// fsync): after it returns the answer survives a crash, and a crash during it leaves the old state (at most a
/// hidden temporary ".<name>.tmp.<pid>.<n>" that lookups never read). `find` checks that the file's model,
/// system and prompt equal the asked ones: a different request under the same key (a hash collision, or a file
/// copied under the wrong name) throws slim::error naming the file instead of returning someone else's answer.
/// Thread-safe for distinct keys; the same key from two threads is the caller's to avoid (http_teacher asks
/// each distinct request once).
class answer_cache {
 public:
  /// Opens (creating if needed, one level) the directory `dir`.
  explicit answer_cache(std::string dir, damaged_entry policy = damaged_entry::error)
      : dir_(std::move(dir)), policy_(policy) {
    if (dir_.empty()) throw error("answer_cache", "", "empty directory name");
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
    if (::mkdir(dir_.c_str(), 0777) != 0 && errno != EEXIST)
      throw io::detail::system_error(dir_, "cannot create the cache directory", errno);
    struct stat st {};
    if (::stat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw error(dir_, "", "not a directory");
  }

  const std::string& directory() const noexcept { return dir_; }

  /// The file that holds (or would hold) the answer to this request.
  std::string path_of(std::string_view model, const teacher_request& r) const {
    return dir_ + "/" + answer_key(model, r.system, r.prompt).hex() + ".json";
  }

  /// The stored answer to `r` asked of `model` (cached = true, seconds as first measured), or nullopt.
  std::optional<teacher_answer> find(std::string_view model, const teacher_request& r) const {
    const std::string path = path_of(model, r);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return std::nullopt;
      throw io::detail::system_error(path, "cannot stat cache file", errno);
    }
    io::json j;
    try {
      j = io::read_json(path);
    } catch (const error&) {
      if (policy_ == damaged_entry::reask) {
        ++damaged_;
        return std::nullopt;
      }
      throw;
    }
    const io::json_where w{path};
    teacher_answer a;
    std::string stored_model, stored_system, stored_prompt;
    try {
      if (io::get<std::string>(j, "format", w) != "slim-answer-cache-v1")
        throw error(path, "field format", "not a slim-answer-cache-v1 entry");
      stored_model = io::get<std::string>(j, "model", w);
      stored_system = io::get<std::string>(j, "system", w);
      stored_prompt = io::get<std::string>(j, "prompt", w);
      a.text = io::get<std::string>(j, "text", w);
      a.prompt_tokens = io::get<std::int64_t>(j, "prompt_tokens", w);
      a.completion_tokens = io::get<std::int64_t>(j, "completion_tokens", w);
      a.seconds = io::get<double>(j, "seconds", w);
    } catch (const error&) {
      if (policy_ == damaged_entry::reask) {
        ++damaged_;
        return std::nullopt;
      }
      throw;
    }
    if (stored_model != model || stored_system != r.system || stored_prompt != r.prompt)
      throw error(path, "",
                  "the entry under this key was stored for a different request (model, system or prompt differ): "
                  "a hash collision or a misplaced file; remove it to re-ask");
    a.cached = true;
    return a;
  }

  /// Writes the answer to `r` from `model` atomically and durably (see the class comment).
  void store(std::string_view model, const teacher_request& r, const teacher_answer& a) const {
    const hash128 key = answer_key(model, r.system, r.prompt);
    io::json j = {{"format", "slim-answer-cache-v1"},
                  {"key", key.hex()},
                  {"model", std::string(model)},
                  {"system", r.system},
                  {"prompt", r.prompt},
                  {"text", a.text},
                  {"prompt_tokens", a.prompt_tokens},
                  {"completion_tokens", a.completion_tokens},
                  {"seconds", a.seconds}};
    io::write_json(dir_ + "/" + key.hex() + ".json", j, -1);
  }

  /// The names of the entry files in the directory (not temporaries), sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    DIR* d = ::opendir(dir_.c_str());
    if (d == nullptr) throw io::detail::system_error(dir_, "cannot list the cache directory", errno);
    while (const dirent* e = ::readdir(d)) {
      const std::string_view n = e->d_name;
      if (n.size() == 37 && n.ends_with(".json") && n.find_first_not_of("0123456789abcdef") == 32)
        names.emplace_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }

  /// Damaged files met so far under damaged_entry::reask.
  std::size_t damaged() const noexcept { return damaged_; }

 private:
  std::string dir_;
  damaged_entry policy_;
  mutable std::atomic<std::size_t> damaged_{0};
};

}  // namespace slim::distill
