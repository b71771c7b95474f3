// libFuzzer target: GPT-2's encoder.json + vocab.bpe (byte_bpe::from_gpt2_text). The input is split in two at
// the first "\n@@\n": encoder.json before it, vocab.bpe after it (no separator: all encoder.json, empty merges).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "fuzz_support.hpp"
#include "slim/text/byte_bpe.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view separator = "\n@@\n";
  const std::size_t cut = all.find(separator);
  const std::string_view encoder = all.substr(0, cut);
  const std::string_view merges =
      cut == std::string_view::npos ? std::string_view() : all.substr(cut + separator.size());
  std::optional<slim::text::byte_bpe> t;
  slim::fuzz::loads(
      [&] { t.emplace(slim::text::byte_bpe::from_gpt2_text(encoder, "encoder.json", merges, "vocab.bpe")); });
  if (t) {  // outside `loads`: encode and decode may not throw at all
    slim::fuzz::check_encode(*t, merges.substr(0, 256), {.add_special = true}, true);
    slim::fuzz::check_encode(*t, "Hello, world! 123 \xF0\x9F\x98\x80<|endoftext|>", {}, true);
  }
  return 0;
}
