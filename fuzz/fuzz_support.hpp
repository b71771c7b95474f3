// slim fuzz targets — shared helpers: the loader contract (slim::error or success, nothing else) and checks
// that abort with a message, so libFuzzer records the input as a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/text/tokenizer.hpp"
#include "slim/text/unicode.hpp"

#ifndef SLIM_FUZZ_FIXTURE_DIR
#error "SLIM_FUZZ_FIXTURE_DIR must name tests/data/text (fuzz/CMakeLists.txt and fuzz/run_all.sh set it)"
#endif

namespace slim::fuzz {

/// Aborts with `what` on stderr: a property the code promises does not hold.
[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "\n*** slim fuzz finding: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

inline void check(bool ok, const char* what) {
  if (!ok) finding(what);
}

/// Runs `load`; a slim::error is the allowed way to refuse input. Any other exception escapes, which
/// libFuzzer reports as a crash (uncaught exception → std::terminate → abort).
template <class Load>
bool loads(Load&& load) {
  try {
    load();
    return true;
  } catch (const slim::error&) {
    return false;
  }
}

inline std::string fixture(const char* name) { return std::string(SLIM_FUZZ_FIXTURE_DIR) + "/" + name; }

/// The shared data folder ($SLIM_DATA_DIR), or empty.
inline std::string data_dir() {
  const char* d = std::getenv("SLIM_DATA_DIR");
  return d ? std::string(d) : std::string();
}

/// What every tokenizer promises for any text: encode does not throw, ids are in the vocabulary, decode
/// takes them back without throwing, and stream_decoder's output is to_valid_utf8(decode(ids)) — for
/// models whose decode has no start-of-text rule (`stream_equals_decode`).
template <slim::text::Tokenizer T>
std::vector<slim::text::token_id> check_encode(const T& tok, std::string_view text, slim::text::encode_options eo,
                                               bool stream_equals_decode) {
  const auto ids = tok.encode(text, eo);
  for (const auto id : ids)
    check(id >= 0 && static_cast<std::size_t>(id) < tok.vocab_size(), "encode produced an id outside the vocabulary");
  const std::string decoded = tok.decode(ids);
  if (stream_equals_decode) {
    slim::text::stream_decoder<T> dec(tok);
    std::string streamed;
    for (const auto id : ids) streamed += dec.push(id);
    streamed += dec.finish();
    check(streamed == slim::text::unicode::to_valid_utf8(decoded), "stream_decoder output != to_valid_utf8(decode)");
  }
  return ids;
}

/// Decodes ids read from the bytes (3 bytes each, so ids reach past any fixture's vocabulary): only
/// slim::error may come out, and only when an id is outside the vocabulary.
template <slim::text::Tokenizer T>
void check_decode_bytes(const T& tok, std::span<const std::uint8_t> bytes) {
  std::vector<slim::text::token_id> ids;
  bool out_of_range = false;
  for (std::size_t i = 0; i + 3 <= bytes.size() && ids.size() < 64; i += 3) {
    const auto id = static_cast<slim::text::token_id>(bytes[i] | (bytes[i + 1] << 8) | ((bytes[i + 2] & 0x7F) << 16));
    out_of_range |= static_cast<std::size_t>(id) >= tok.vocab_size();
    ids.push_back(id);
  }
  try {
    (void)tok.decode(ids, {.skip_special = !bytes.empty() && (bytes[0] & 1) != 0});
  } catch (const slim::error&) {
    // vocabularies may have holes, so an in-range id can be absent too; an error is never wrong here
    return;
  }
  check(!out_of_range, "decode accepted an id outside the vocabulary");
}

}  // namespace slim::fuzz
