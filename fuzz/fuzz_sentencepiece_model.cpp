// libFuzzer target: SentencePiece tokenizer.model (sentencepiece_bpe::from_model_proto) on arbitrary bytes.
// Contract: valid input loads, anything else throws slim::error; a loaded model encodes and decodes text.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "fuzz_support.hpp"
#include "slim/text/sentencepiece.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::optional<slim::text::sentencepiece_bpe> t;
  slim::fuzz::loads([&] { t.emplace(slim::text::sentencepiece_bpe::from_model_proto(bytes, "fuzz.model")); });
  if (t) {  // outside `loads`: encode and decode may not throw at all
    // decode drops the dummy-prefix space that stream_decoder keeps, so the stream check is off here
    slim::fuzz::check_encode(*t, bytes.substr(0, 128), {.add_special = true}, false);
    slim::fuzz::check_encode(*t, "  Hello,  world! 123 \xF0\x9F\x98\x80 \xFF", {}, false);
  }
  return 0;
}
