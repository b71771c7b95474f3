// slim — the Tokenizer concept, its options, and streaming decode.
//
// A tokenizer maps text (bytes, normally UTF-8) to token ids and back. Conventions for every model:
//   * `encode` never throws on text: ill-formed UTF-8 follows the policy in unicode.hpp.
//   * `encode` recognises added/special tokens written in the text (HF `tokenizers` behaviour) unless
//     `encode_options::split_special` is false, and adds BOS/EOS (the model's post-processor) only when
//     `encode_options::add_special` is true.
//   * `decode` returns the exact bytes the tokens spell — no "clean-up" rewrites — so `decode(encode(s)) == s`
//     wherever the model can represent `s`. It may return ill-formed UTF-8 when the ids split a character;
//     `stream_decoder` and `unicode::to_valid_utf8` give valid text. An id outside the vocabulary is an
//     error (`slim::error`), never a silent skip.
//   * `decode_piece(id)` is the bytes of one token as it appears inside a text; `decode` concatenates them
//     (minus skipped special tokens). `stream_decoder` relies on this.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slim/text/unicode.hpp"

namespace slim::text {

/// Token id, as stored in vocabularies and embedding tables.
using token_id = std::int32_t;

/// How `encode` treats special tokens.
struct encode_options {
  /// Add the tokens the model's post-processor adds (e.g. BOS for LLaMA-3). HF's encode default is true;
  /// slim's is false so that plain text stays plain.
  bool add_special = false;
  /// Recognise special tokens written in the text ("<|im_start|>" → its id), as HF does. Turn off for
  /// untrusted text that must not inject control tokens: special tokens are then encoded as plain text
  /// (HF's encode_special_tokens); non-special added tokens are still recognised.
  bool split_special = true;
};

/// How `decode` treats special tokens.
struct decode_options {
  /// Leave out added tokens marked special (HF's skip_special_tokens).
  bool skip_special = false;
};

/// What every tokenizer model offers (byte-level BPE now; SentencePiece and WordPiece follow the same shape).
template <class T>
concept Tokenizer = requires(const T& t, std::string_view text, std::span<const token_id> ids, token_id id,
                             encode_options eo, decode_options dopt) {
  { t.encode(text, eo) } -> std::same_as<std::vector<token_id>>;
  { t.decode(ids, dopt) } -> std::same_as<std::string>;
  { t.decode_piece(id) } -> std::same_as<std::string_view>;
  { t.vocab_size() } -> std::same_as<std::size_t>;  // 1 + the largest id: the rows of an embedding table
  { t.token_to_id(text) } -> std::same_as<std::optional<token_id>>;
  { t.id_to_token(id) } -> std::same_as<std::string_view>;  // the vocabulary's own spelling ("Ġthe")
  { t.is_special(id) } -> std::same_as<bool>;
  { t.bos_id() } -> std::same_as<std::optional<token_id>>;
  { t.eos_id() } -> std::same_as<std::optional<token_id>>;
};

/// Decodes a stream of ids (a model generating) into valid UTF-8 text as soon as it is complete: bytes
/// that begin a character the next token may finish are held back; ill-formed bytes become U+FFFD. The
/// concatenation of every `push` and the final `finish` equals `to_valid_utf8(decode(all ids))`.
template <Tokenizer T>
class stream_decoder {
 public:
  explicit stream_decoder(const T& tokenizer, decode_options options = {}) : tok_(&tokenizer), options_(options) {}

  /// Adds one token; returns the text that became complete (possibly empty).
  std::string push(token_id id) {
    if (options_.skip_special && tok_->is_special(id)) return {};
    pending_ += tok_->decode_piece(id);
    const std::size_t hold = unicode::incomplete_utf8_suffix(pending_);
    std::string out = unicode::to_valid_utf8(std::string_view(pending_).substr(0, pending_.size() - hold));
    pending_.erase(0, pending_.size() - hold);
    return out;
  }

  /// Ends the stream: held-back bytes that never completed a character come out as U+FFFD.
  std::string finish() {
    std::string out = unicode::to_valid_utf8(pending_);
    pending_.clear();
    return out;
  }

  /// Bytes currently held back (0..3).
  std::size_t pending_bytes() const noexcept { return pending_.size(); }

 private:
  const T* tok_;
  decode_options options_;
  std::string pending_;
};

}  // namespace slim::text
