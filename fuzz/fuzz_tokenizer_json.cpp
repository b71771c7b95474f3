// libFuzzer target: HF tokenizer.json loaders (byte_bpe::from_hf_json, wordpiece::from_hf_json) on arbitrary
// bytes. Contract: valid input loads, anything else throws slim::error; a loaded tokenizer encodes and
// decodes its own input without throwing.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "fuzz_support.hpp"
#include "slim/text/byte_bpe.hpp"
#include "slim/text/wordpiece.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  namespace st = slim::text;
  std::optional<st::byte_bpe> bpe;
  slim::fuzz::loads([&] { bpe.emplace(st::byte_bpe::from_hf_json(text, "fuzz.json")); });
  if (bpe) {  // outside `loads`: encode and decode may not throw at all
    slim::fuzz::check_encode(*bpe, text.substr(0, 256), {.add_special = true}, true);
    slim::fuzz::check_encode(*bpe, "Hello, world! 123 \xF0\x9F\x98\x80", {}, true);
  }
  std::optional<st::wordpiece> wp;
  slim::fuzz::loads([&] { wp.emplace(st::wordpiece::from_hf_json(text, "fuzz.json")); });
  if (wp) {
    slim::fuzz::check_encode(*wp, text.substr(0, 256), {.add_special = true}, false);
    slim::fuzz::check_encode(*wp, "Hello, world! 123 \xE4\xB8\xAD", {}, false);
  }
  return 0;
}
