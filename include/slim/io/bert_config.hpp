// slim — io::bert_config: the fields of an HF BERT-family config.json that fix the shape of an encoder
// (nn::encoder), parsed and checked with errors that name the file and the field.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"
#include "slim/io/json.hpp"

namespace slim::io {

/// The activation of a BERT intermediate layer: HF's "gelu" is the exact (erf) form; "gelu_new",
/// "gelu_pytorch_tanh" and "gelu_fast" are the tanh approximation (the same function written three ways).
enum class bert_activation : std::uint8_t { gelu_erf, gelu_tanh };

/// The HF name of an activation ("gelu" or "gelu_new").
inline std::string_view bert_activation_name(bert_activation a) noexcept {
  return a == bert_activation::gelu_erf ? "gelu" : "gelu_new";
}

/// A BERT-family encoder's shape, under HF's field names. Built in code (designated initialisers) or read
/// from a config.json by `parse_bert_config` / `read_bert_config`.
struct bert_config {
  index_t vocab_size = 0;
  index_t hidden_size = 0;
  index_t num_hidden_layers = 0;
  index_t num_attention_heads = 0;
  index_t intermediate_size = 0;
  index_t max_position_embeddings = 512;
  index_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  bert_activation hidden_act = bert_activation::gelu_erf;

  /// hidden_size / num_attention_heads.
  index_t head_dim() const noexcept { return num_attention_heads > 0 ? hidden_size / num_attention_heads : 0; }

  /// Throws slim::error(where, "field <name>", ...) unless every size is positive, hidden_size is a multiple
  /// of num_attention_heads, and layer_norm_eps is finite and ≥ 0.
  void validate(const std::string& where = "slim::io::bert_config") const {
    const auto positive = [&](index_t v, const char* field) {
      if (v <= 0) throw error(where, std::string("field ") + field, "must be positive, found " + std::to_string(v));
    };
    positive(vocab_size, "vocab_size");
    positive(hidden_size, "hidden_size");
    positive(num_hidden_layers, "num_hidden_layers");
    positive(num_attention_heads, "num_attention_heads");
    positive(intermediate_size, "intermediate_size");
    positive(max_position_embeddings, "max_position_embeddings");
    positive(type_vocab_size, "type_vocab_size");
    if (hidden_size % num_attention_heads != 0)
      throw error(where, "field num_attention_heads",
                  "hidden_size " + std::to_string(hidden_size) + " is not a multiple of num_attention_heads " +
                      std::to_string(num_attention_heads));
    if (!(layer_norm_eps >= 0.0) || !std::isfinite(layer_norm_eps))
      throw error(where, "field layer_norm_eps", "must be finite and non-negative");
  }
};

/// Reads a bert_config from a parsed config.json; `where` names the file in errors. Required: vocab_size,
/// hidden_size, num_hidden_layers, num_attention_heads, intermediate_size. Optional with HF's defaults:
/// max_position_embeddings (512), type_vocab_size (2), layer_norm_eps (1e-12), hidden_act ("gelu").
/// Refused with a message saying why: a model_type other than "bert", a position_embedding_type other than
/// "absolute", an activation other than the GELU forms, and any field that fails `validate`.
inline bert_config parse_bert_config(const json& j, const std::string& where) {
  if (!j.is_object()) throw error(where, "", "a config.json must be a JSON object");
  const std::string model_type = get_or<std::string>(j, "model_type", "bert", where);
  if (model_type != "bert")
    throw error(where, "field model_type",
                "\"" + model_type +
                    "\" is not supported: slim's encoder implements the BERT layout (RoBERTa-style models offset "
                    "their positions and name their weights differently)");
  const std::string positions = get_or<std::string>(j, "position_embedding_type", "absolute", where);
  if (positions != "absolute")
    throw error(where, "field position_embedding_type",
                "\"" + positions + "\" is not supported: only absolute position embeddings are implemented");
  bert_config c;
  c.vocab_size = get<index_t>(j, "vocab_size", where);
  c.hidden_size = get<index_t>(j, "hidden_size", where);
  c.num_hidden_layers = get<index_t>(j, "num_hidden_layers", where);
  c.num_attention_heads = get<index_t>(j, "num_attention_heads", where);
  c.intermediate_size = get<index_t>(j, "intermediate_size", where);
  c.max_position_embeddings = get_or<index_t>(j, "max_position_embeddings", 512, where);
  c.type_vocab_size = get_or<index_t>(j, "type_vocab_size", 2, where);
  c.layer_norm_eps = get_or<double>(j, "layer_norm_eps", 1e-12, where);
  const std::string act = get_or<std::string>(j, "hidden_act", "gelu", where);
  if (act == "gelu")
    c.hidden_act = bert_activation::gelu_erf;
  else if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast")
    c.hidden_act = bert_activation::gelu_tanh;
  else
    throw error(where, "field hidden_act",
                "\"" + act + "\" is not supported (gelu, gelu_new, gelu_pytorch_tanh or gelu_fast)");
  c.validate(where);
  return c;
}

/// Reads `path`: a config.json, or a folder holding one.
inline bert_config read_bert_config(const std::string& path) {
  std::error_code ec;
  const std::string file = std::filesystem::is_directory(path, ec) ? path + "/config.json" : path;
  return parse_bert_config(read_json(file), file);
}

}  // namespace slim::io
