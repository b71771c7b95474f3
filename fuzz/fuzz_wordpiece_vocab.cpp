// libFuzzer target: BERT vocab.txt (wordpiece::from_vocab_text) on arbitrary bytes; the first byte picks the
// options (lower-casing, accent stripping, CJK splitting, clean-up). Contract: valid input loads, anything else throws
// slim::error; a loaded vocabulary encodes and decodes text.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "fuzz_support.hpp"
#include "slim/text/wordpiece.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  slim::text::wordpiece_options o;
  o.lowercase = data[0] & 1;
  if (data[0] & 2) o.strip_accents = (data[0] & 4) != 0;
  o.handle_chinese_chars = (data[0] & 8) != 0;
  o.clean_text = (data[0] & 16) == 0;
  std::optional<slim::text::wordpiece> t;
  slim::fuzz::loads([&] { t.emplace(slim::text::wordpiece::from_vocab_text(text, "vocab.txt", o)); });
  if (t) {  // outside `loads`: encode and decode may not throw at all
    slim::fuzz::check_encode(*t, text.substr(0, 256), {.add_special = true}, false);
    slim::fuzz::check_encode(*t, "Hello, WORLD! caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 [MASK] 123", {}, false);
  }
  return 0;
}
