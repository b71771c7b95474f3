// Scale: a 1 MB single word and 1 MB runs of one character encode in time close to linear (the merge
// queue is O(n log n); a quadratic merge loop would take hours at this size), and round-trip exactly.
#include <time.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>

#include "slim/core/philox.hpp"
#include "slim/text/byte_bpe.hpp"
#include "text_test_support.hpp"

using slim::text::byte_bpe;
namespace tt = slim::testing::text;

namespace {
// This thread's CPU seconds: unlike wall-clock time, it does not grow when other processes share the cores.
double thread_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
double seconds_to_encode(const byte_bpe& t, const std::string& text, std::vector<slim::text::token_id>& ids) {
  const double t0 = thread_seconds();
  ids = t.encode(text);
  return thread_seconds() - t0;
}
}  // namespace

TEST_CASE("1 MB words and runs encode in near-linear time and round-trip", "[text][bpe][scale]") {
  const auto t = byte_bpe::from_file(tt::fixture("llama3_bpe.json"));
  constexpr std::size_t mb = 1 << 20;
  slim::philox_stream rng(3);
  std::string word(mb, 'a');  // one \p{L}+ piece of random letters
  for (auto& c : word) c = static_cast<char>('a' + rng.below(26));
  std::string cjk;
  while (cjk.size() < mb / 4) cjk += "\xE4\xB8\xAD";
  // The two 1 MB cases the contract names, then shorter runs of the other character classes.
  const std::vector<std::pair<const char*, std::string>> inputs{
      {"1 MB random-letter word", word},
      {"1 MB run of 'a'", std::string(mb, 'a')},
      {"256 KB run of spaces", std::string(mb / 4, ' ')},
      {"256 KB run of '!'", std::string(mb / 4, '!')},
      {"256 KB run of U+4E2D", cjk},
  };
  for (const auto& [name, text] : inputs) {
    std::vector<slim::text::token_id> ids, small_ids;
    const double big = seconds_to_encode(t, text, ids);
    // the smaller input's time is the best of three (a short timing is the one noise distorts most)
    double small = 1e300;
    for (int rep = 0; rep < 3; ++rep)
      small = std::min(small, seconds_to_encode(t, text.substr(0, text.size() / 8), small_ids));
    INFO(name << ": " << big << " s; an eighth of it: " << small << " s; " << ids.size() << " tokens");
    // Generous: well under a second of CPU time at -O2 here; sanitizers get 20x headroom.
    CHECK(big < 15.0);
    // 8x the input may cost at most ~8 log-factors more, not 64x (quadratic). Tiny timings are noise.
    CHECK((big < 0.25 || big < 24 * small));
    CHECK(ids.size() < text.size());
    CHECK(t.decode(ids) == text);
  }
}
