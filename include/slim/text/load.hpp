// slim — one tokenizer type for whatever a path holds: `load_tokenizer(path)` and `any_tokenizer`.
//
// What a path may be (a folder is searched in this order):
//   * `tokenizer.json` — HF tokenizers: a byte-level BPE model (byte_bpe) or a WordPiece model (wordpiece).
//     A SentencePiece-style BPE tokenizer.json (LLaMA-2: no ByteLevel decoder) is read from the
//     `tokenizer.model` beside it instead;
//   * `tokenizer.model` (or any `*.model`) — a SentencePiece BPE ModelProto (sentencepiece_bpe);
//   * a folder with GPT-2's `encoder.json` + `vocab.bpe` (or either of those two files) — byte_bpe;
//   * `vocab.txt` (or any `*.txt`) — a BERT WordPiece vocabulary (wordpiece, with the tokenizer_config.json
//     beside it when there is one).
// A file with another name is sniffed: a JSON object is a tokenizer.json, a first byte 0x0A (the tag of
// ModelProto's first field) a SentencePiece model, anything else a vocab.txt.
// Errors are slim::error naming the path (and, inside a file, the field or offset).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <filesystem>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/io/json.hpp"
#include "slim/text/byte_bpe.hpp"
#include "slim/text/detail/json_fields.hpp"
#include "slim/text/sentencepiece.hpp"
#include "slim/text/tokenizer.hpp"
#include "slim/text/wordpiece.hpp"

namespace slim::text {

/// Any of slim's tokenizers behind one value type (a std::variant); it is itself a Tokenizer, so code
/// written against the concept takes it unchanged, at the cost of one dispatch per call.
class any_tokenizer {
 public:
  using variant = std::variant<byte_bpe, sentencepiece_bpe, wordpiece>;

  /// Wraps a tokenizer of one of the supported models.
  template <class T>
  requires std::is_constructible_v<variant, T&&> any_tokenizer(T&& tokenizer)
      : v_(std::forward<T>(tokenizer)) {}  // NOLINT: implicit by design

  /// The model's name: "byte_bpe", "sentencepiece_bpe" or "wordpiece".
  std::string_view model() const noexcept {
    constexpr std::string_view names[] = {"byte_bpe", "sentencepiece_bpe", "wordpiece"};
    static_assert(std::size(names) == std::variant_size_v<variant>);
    return names[v_.index()];
  }

  /// The concrete tokenizer, or null when it is another model.
  template <class T>
  const T* get_if() const noexcept {
    return std::get_if<T>(&v_);
  }
  const variant& get() const noexcept { return v_; }

  // ---- Tokenizer ---------------------------------------------------------------------------------------

  std::vector<token_id> encode(std::string_view text, encode_options options = {}) const {
    return std::visit([&](const auto& t) { return t.encode(text, options); }, v_);
  }
  std::string decode(std::span<const token_id> ids, decode_options options = {}) const {
    return std::visit([&](const auto& t) { return t.decode(ids, options); }, v_);
  }
  std::string_view decode_piece(token_id id) const {
    return std::visit([&](const auto& t) { return t.decode_piece(id); }, v_);
  }
  std::size_t vocab_size() const noexcept {
    return std::visit([](const auto& t) { return t.vocab_size(); }, v_);
  }
  std::optional<token_id> token_to_id(std::string_view token) const {
    return std::visit([&](const auto& t) { return t.token_to_id(token); }, v_);
  }
  std::string_view id_to_token(token_id id) const {
    return std::visit([&](const auto& t) { return t.id_to_token(id); }, v_);
  }
  bool is_special(token_id id) const noexcept {
    return std::visit([&](const auto& t) { return t.is_special(id); }, v_);
  }
  std::optional<token_id> bos_id() const noexcept {
    return std::visit([](const auto& t) { return t.bos_id(); }, v_);
  }
  std::optional<token_id> eos_id() const noexcept {
    return std::visit([](const auto& t) { return t.eos_id(); }, v_);
  }

 private:
  variant v_;
};

static_assert(Tokenizer<any_tokenizer>);

namespace detail {

inline bool is_folder(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_directory(p, ec);
}

/// A tokenizer.json: its model.type decides the loader.
inline any_tokenizer load_tokenizer_json(const std::filesystem::path& p) {
  const std::string path = p.string();
  const std::string text = read_file(path);
  const json root = io::parse_json(text, path);  // any nlohmann error (e.g. number overflow) becomes slim::error
  const json_reader r(path);
  if (!root.is_object()) r.fail("(top level)", "expected an object");
  const json* model = r.find(root, "model", "");
  if (!model) {
    if (r.find(root, "vocab", "") || r.find(root, "merges", ""))
      r.fail("model", "missing (a bare vocab/merges file is not a tokenizer.json; pass the folder)");
    r.fail("model", "missing: not an HF tokenizer.json");
  }
  const std::string type = r.get_string(*model, "type", "model");
  if (type == "WordPiece") return wordpiece::from_hf_json(text, path);
  if (type == "BPE") {
    const json* dec = r.find(root, "decoder", "");
    const bool byte_level_decoder = dec && dec->is_object() && dec->contains("type") && (*dec)["type"].is_string() &&
                                    (*dec)["type"].get<std::string>() == "ByteLevel";
    const auto spm = (p.parent_path() / "tokenizer.model").string();
    if (!byte_level_decoder && file_exists(spm)) return sentencepiece_bpe::from_file(spm);
    return byte_bpe::from_file(path);
  }
  r.fail("model.type", "expected BPE or WordPiece, found " + type);
}

}  // namespace detail

/// Loads the tokenizer at `path` (see the file comment for what a path may be). Throws slim::error naming
/// the path when it holds none of them, and the loaders' errors (naming file and field) when it is malformed.
inline any_tokenizer load_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  std::error_code ec;
  if (!fs::exists(p, ec)) throw error(path, "", "no such file or folder");
  if (detail::is_folder(p)) {
    if (detail::file_exists((p / "tokenizer.json").string())) return detail::load_tokenizer_json(p / "tokenizer.json");
    if (detail::file_exists((p / "tokenizer.model").string()))
      return sentencepiece_bpe::from_file((p / "tokenizer.model").string());
    const auto enc = (p / "encoder.json").string(), bpe = (p / "vocab.bpe").string();
    if (detail::file_exists(enc) && detail::file_exists(bpe)) return byte_bpe::from_gpt2(enc, bpe);
    if (detail::file_exists((p / "vocab.txt").string())) return wordpiece::from_file((p / "vocab.txt").string());
    throw error(path, "", "folder holds no tokenizer.json, tokenizer.model, encoder.json + vocab.bpe or vocab.txt");
  }
  const std::string name = p.filename().string(), ext = p.extension().string();
  if (name == "encoder.json" || name == "vocab.bpe") {
    const auto enc = (p.parent_path() / "encoder.json").string(), bpe = (p.parent_path() / "vocab.bpe").string();
    if (detail::file_exists(enc) && detail::file_exists(bpe)) return byte_bpe::from_gpt2(enc, bpe);
    throw error(path, "", "GPT-2 files come in pairs: encoder.json and vocab.bpe in the same folder");
  }
  if (ext == ".json") return detail::load_tokenizer_json(p);
  if (ext == ".model") return sentencepiece_bpe::from_file(path);
  if (ext == ".txt") return wordpiece::from_file(path);
  const std::string bytes = detail::read_file(path);
  const std::size_t first = bytes.find_first_not_of(" \t\r\n");
  if (bytes.empty()) throw error(path, "", "empty file: expected a tokenizer.json, tokenizer.model or vocab.txt");
  if (first != std::string::npos && bytes[first] == '{') return detail::load_tokenizer_json(p);
  if (bytes[0] == '\x0A') return sentencepiece_bpe::from_model_proto(bytes, path);
  return wordpiece::from_file(path);  // a vocab.txt by another name
}

}  // namespace slim::text
