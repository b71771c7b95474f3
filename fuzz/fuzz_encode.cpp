// libFuzzer target: encode (and decode) arbitrary bytes with every fixture tokenizer — byte-level BPE
// (tests/data/text: LLaMA-3, Qwen2 and GPT-2-pattern models, added-token rules, <unk>/fuse_unk), SentencePiece
// (the tiny fixture models) and WordPiece (vocab.txt, tokenizer.json) — plus GPT-2 and LLaMA-2 themselves when
// $SLIM_DATA_DIR holds them. Properties checked on every input, beyond "no crash, no UB, no leak":
//   * ids lie in the vocabulary; decode takes them back; stream_decoder agrees with decode (tokenizer.hpp);
//   * a full-alphabet byte-level BPE without strip rules round-trips any bytes: decode(encode(s)) == s, with
//     special tokens recognised or not;
//   * decode of arbitrary ids throws slim::error exactly when an id is outside the vocabulary.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "slim/text/byte_bpe.hpp"
#include "slim/text/load.hpp"
#include "slim/text/sentencepiece.hpp"
#include "slim/text/wordpiece.hpp"

namespace {

namespace st = slim::text;

struct fixtures {
  std::vector<st::byte_bpe> round_trip;  // full alphabet, no lstrip/rstrip: decode(encode(s)) == s
  std::vector<st::byte_bpe> other_bpe;
  std::vector<st::sentencepiece_bpe> spm;
  std::vector<st::wordpiece> wp;
};

const fixtures& all() {
  static const std::unique_ptr<fixtures> f = [] {
    auto p = std::make_unique<fixtures>();
    namespace fz = slim::fuzz;
    for (const char* name : {"llama3_bpe.json", "qwen2_bpe.json", "trainer_gpt2_hf.json", "trainer_llama3_hf.json"})
      p->round_trip.push_back(st::byte_bpe::from_file(fz::fixture(name)));
    p->round_trip.push_back(st::byte_bpe::from_file(fz::fixture("trainer_gpt2")));
    for (const char* name : {"added_bpe.json", "unk_bpe.json", "edge_bpe.json"})
      p->other_bpe.push_back(st::byte_bpe::from_file(fz::fixture(name)));
    for (const char* name : {"spm_tiny_fallback.model", "spm_tiny_plain.model", "spm_tiny_unused.model"})
      p->spm.push_back(st::sentencepiece_bpe::from_file(fz::fixture(name)));
    for (const char* name : {"wordpiece_vocab.txt", "wordpiece_small.json"})
      p->wp.push_back(st::wordpiece::from_file(fz::fixture(name)));
    if (const std::string data = fz::data_dir(); !data.empty()) {
      const auto t = st::load_tokenizer(data + "/tokenizers/gpt2");
      p->round_trip.push_back(*t.get_if<st::byte_bpe>());
      p->spm.push_back(st::sentencepiece_bpe::from_file(data + "/tokenizers/llama/tokenizer.model"));
    }
    std::fprintf(stderr, "fuzz_encode: %zu round-trip BPE, %zu other BPE, %zu SentencePiece, %zu WordPiece\n",
                 p->round_trip.size(), p->other_bpe.size(), p->spm.size(), p->wp.size());
    return p;
  }();
  return *f;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  all();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fz = slim::fuzz;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::span<const std::uint8_t> bytes(data, size);
  const fixtures& f = all();
  for (const auto& t : f.round_trip) {
    for (const bool split_special : {true, false}) {
      const auto ids = fz::check_encode(t, text, {.add_special = true, .split_special = split_special}, true);
      const auto plain = t.encode(text, {.split_special = split_special});
      fz::check(t.decode(plain) == text, "byte-level BPE: decode(encode(s)) != s");
    }
    fz::check_decode_bytes(t, bytes);
  }
  for (const auto& t : f.other_bpe) {
    fz::check_encode(t, text, {.add_special = true}, true);
    fz::check_decode_bytes(t, bytes);
  }
  for (const auto& t : f.spm) {
    fz::check_encode(t, text, {.add_special = true}, false);
    fz::check_decode_bytes(t, bytes);
  }
  for (const auto& t : f.wp) {
    fz::check_encode(t, text, {.add_special = true}, false);
    fz::check_decode_bytes(t, bytes);
  }
  return 0;
}
