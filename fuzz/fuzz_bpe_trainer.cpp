// libFuzzer target: the BPE trainer on arbitrary corpora. The first byte picks the settings (split pattern,
// prefix space, full or used-bytes alphabet, a special token), the second the vocabulary size (256..511 plus
// specials); the rest is fed line by line. Properties: training never throws on text (but refuses, with
// slim::error, to build an empty vocabulary); the saved
// tokenizer.json loads into byte_bpe with the same vocabulary and merge count; the vocabulary has at most
// vocab_size tokens (or just specials + alphabet) and no token twice; a full-alphabet model round-trips the
// whole input (without add_prefix_space), with special tokens recognised or not.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "slim/text/bpe_trainer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace st = slim::text;
  namespace fz = slim::fuzz;
  if (size < 2) return 0;
  const std::uint8_t flags = data[0];
  st::bpe_trainer_options o;
  o.pattern = static_cast<st::split_pattern>((flags & 3) % 3);
  o.add_prefix_space = flags & 4;
  o.full_alphabet = !(flags & 8);
  o.ignore_merges = flags & 16;
  if (flags & 32) {
    o.special_tokens = {"<|endoftext|>", "<s>"};
    if (flags & 64) o.bos_token = "<s>";
  }
  o.vocab_size = 256 + o.special_tokens.size() + data[1];
  o.min_frequency = (flags & 128) ? 2 : 0;
  const std::string_view corpus(reinterpret_cast<const char*>(data) + 2, size - 2);

  st::bpe_trainer trainer(o);
  trainer.feed_lines(corpus);
  if (!o.full_alphabet && o.special_tokens.empty() && trainer.word_count() == 0) {
    // the one refusal: an empty vocabulary
    fz::check(!fz::loads([&] { trainer.train(); }), "trained an empty vocabulary");
    return 0;
  }
  const st::trained_bpe m = trainer.train();
  fz::check(m.tokens.size() <= std::max<std::size_t>(o.vocab_size, 256 + o.special_tokens.size()),
            "vocabulary larger than asked");
  fz::check(std::set<std::string>(m.tokens.begin(), m.tokens.end()).size() == m.tokens.size(), "a token twice");
  const st::byte_bpe tok = st::byte_bpe::from_hf_json(m.to_json(), "trained");
  fz::check(tok.vocab_size() == m.tokens.size(), "saved vocabulary size differs");
  fz::check(tok.merge_count() == m.merges.size(), "saved merge count differs");
  if (o.full_alphabet && !o.add_prefix_space) {  // a prefix space is added text: no round trip, by design
    fz::check(tok.decode(tok.encode(corpus, {.split_special = false})) == corpus, "trained model: no round trip");
    const auto ids = tok.encode(corpus);
    fz::check(tok.decode(ids) == corpus, "trained model: no round trip with special tokens");
  }
  return 0;
}
