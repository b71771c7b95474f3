// slim — the LLaMA-family model description (HF `config.json` of LlamaForCausalLM / Qwen2ForCausalLM) and its
// parser: sizes, RMSNorm epsilon, RoPE base and Llama-3 `rope_scaling`, tied head, q/k/v bias.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "slim/core/error.hpp"
#include "slim/core/tensor_view.hpp"
#include "slim/io/json.hpp"

namespace slim::io {

/// RoPE frequency scaling: none (HF "default" or null) or Llama-3's ("rope_type": "llama3").
enum class rope_scaling_type : std::uint8_t { none, llama3 };

/// HF `rope_scaling` (only the fields slim implements).
struct rope_scaling_config {
  rope_scaling_type type = rope_scaling_type::none;
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  index_t original_max_position_embeddings = 8192;
};

/// Sizes and options of a LLaMA-family decoder. Built in code with designated initialisers or read from an HF
/// config.json by `read_llama_config`. `head_dim_override` = 0 means hidden_size / num_heads.
struct llama_config {
  index_t vocab_size = 0;
  index_t hidden_size = 0;
  index_t intermediate_size = 0;
  index_t num_layers = 0;
  index_t num_heads = 0;
  index_t num_kv_heads = 0;
  index_t max_positions = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000;
  rope_scaling_config rope_scaling{};
  bool tie_word_embeddings = false;
  bool attention_bias = false;         ///< bias on q_proj, k_proj, v_proj
  bool attention_output_bias = false;  ///< bias on o_proj (LLaMA's attention_bias sets both; Qwen2 has q/k/v only)
  index_t head_dim_override = 0;

  /// Width of one attention head.
  index_t head_dim() const noexcept { return head_dim_override > 0 ? head_dim_override : hidden_size / num_heads; }

  /// Throws slim::error(`where`, "field <name>", ...) on the first inconsistent value.
  void validate(const std::string& where = "slim::nn::decoder_config") const {
    const auto fail = [&](const char* field, const std::string& msg) {
      throw error(where, std::string("field ") + field, msg);
    };
    if (vocab_size <= 0) fail("vocab_size", "must be positive, got " + std::to_string(vocab_size));
    if (hidden_size <= 0) fail("hidden_size", "must be positive, got " + std::to_string(hidden_size));
    if (intermediate_size <= 0) fail("intermediate_size", "must be positive, got " + std::to_string(intermediate_size));
    if (num_layers <= 0) fail("num_hidden_layers", "must be positive, got " + std::to_string(num_layers));
    if (num_heads <= 0) fail("num_attention_heads", "must be positive, got " + std::to_string(num_heads));
    if (num_kv_heads <= 0) fail("num_key_value_heads", "must be positive, got " + std::to_string(num_kv_heads));
    if (num_heads % num_kv_heads != 0)
      fail("num_key_value_heads", "num_attention_heads " + std::to_string(num_heads) + " is not a multiple of " +
                                      std::to_string(num_kv_heads));
    if (head_dim_override < 0) fail("head_dim", "must be positive, got " + std::to_string(head_dim_override));
    if (head_dim_override == 0 && hidden_size % num_heads != 0)
      fail("num_attention_heads", "hidden_size " + std::to_string(hidden_size) + " is not divisible by " +
                                      std::to_string(num_heads) + " heads");
    if (head_dim() % 2 != 0) fail("head_dim", "RoPE needs an even head dimension, got " + std::to_string(head_dim()));
    if (max_positions <= 0) fail("max_position_embeddings", "must be positive, got " + std::to_string(max_positions));
    if (!(rms_norm_eps > 0) || !std::isfinite(rms_norm_eps))
      fail("rms_norm_eps", "must be positive and finite, got " + std::to_string(rms_norm_eps));
    if (!(rope_theta > 0) || !std::isfinite(rope_theta))
      fail("rope_theta", "must be positive and finite, got " + std::to_string(rope_theta));
    if (rope_scaling.type == rope_scaling_type::llama3) {
      const auto& r = rope_scaling;
      if (!(r.factor > 0) || !std::isfinite(r.factor))
        fail("rope_scaling/factor", "must be positive, got " + std::to_string(r.factor));
      if (!(r.low_freq_factor > 0))
        fail("rope_scaling/low_freq_factor", "must be positive, got " + std::to_string(r.low_freq_factor));
      if (!(r.high_freq_factor > r.low_freq_factor) || !std::isfinite(r.high_freq_factor))
        fail("rope_scaling/high_freq_factor", "must exceed low_freq_factor (" + std::to_string(r.low_freq_factor) +
                                                  "), got " + std::to_string(r.high_freq_factor));
      if (r.original_max_position_embeddings <= 0)
        fail("rope_scaling/original_max_position_embeddings",
             "must be positive, got " + std::to_string(r.original_max_position_embeddings));
    }
  }
};

/// Reads the model description from a parsed HF config.json; `where` (the file) is named in every error. Missing
/// num_key_value_heads defaults to num_attention_heads; rope_scaling null or of type "default" means none; any
/// other rope type is refused as unsupported.
inline llama_config parse_llama_config(const json& j, const std::string& where) {
  const json_where w(where);
  llama_config c;
  c.vocab_size = get<index_t>(j, "vocab_size", w);
  c.hidden_size = get<index_t>(j, "hidden_size", w);
  c.intermediate_size = get<index_t>(j, "intermediate_size", w);
  c.num_layers = get<index_t>(j, "num_hidden_layers", w);
  c.num_heads = get<index_t>(j, "num_attention_heads", w);
  c.num_kv_heads = get_or<index_t>(j, "num_key_value_heads", c.num_heads, w);
  c.max_positions = get_or<index_t>(j, "max_position_embeddings", c.max_positions, w);
  c.rms_norm_eps = get_or<double>(j, "rms_norm_eps", c.rms_norm_eps, w);
  c.rope_theta = get_or<double>(j, "rope_theta", c.rope_theta, w);
  c.tie_word_embeddings = get_or<bool>(j, "tie_word_embeddings", false, w);
  // transformers' LlamaConfig.attention_bias puts a bias on q, k, v and o; a Qwen2 config has no such key and
  // its attention always has q/k/v biases and none on o.
  const std::string model_type = has(j, "model_type", w) ? get<std::string>(j, "model_type", w) : std::string();
  if (model_type == "qwen2") {
    c.attention_bias = true;
    c.attention_output_bias = false;
    if (get_or<bool>(j, "use_sliding_window", false, w))
      throw error(where, "field use_sliding_window", "sliding-window attention is not supported");
  } else {
    c.attention_bias = get_or<bool>(j, "attention_bias", false, w);
    c.attention_output_bias = c.attention_bias;
  }
  if (has(j, "head_dim", w)) c.head_dim_override = get<index_t>(j, "head_dim", w);
  if (has(j, "rope_scaling", w)) {
    std::string type;
    if (has(j, "rope_scaling/rope_type", w))
      type = get<std::string>(j, "rope_scaling/rope_type", w);
    else if (has(j, "rope_scaling/type", w))
      type = get<std::string>(j, "rope_scaling/type", w);
    else
      throw error(where, "field rope_scaling", "has neither rope_type nor type");
    if (type == "llama3") {
      auto& r = c.rope_scaling;
      r.type = rope_scaling_type::llama3;
      r.factor = get<double>(j, "rope_scaling/factor", w);
      r.low_freq_factor = get<double>(j, "rope_scaling/low_freq_factor", w);
      r.high_freq_factor = get<double>(j, "rope_scaling/high_freq_factor", w);
      r.original_max_position_embeddings = get<index_t>(j, "rope_scaling/original_max_position_embeddings", w);
    } else if (type != "default") {
      throw error(where, "field rope_scaling/rope_type",
                  "rope scaling \"" + type + "\" is not supported (slim implements \"default\" and \"llama3\")");
    }
  }
  if (has(j, "hidden_act", w)) {
    const auto act = get<std::string>(j, "hidden_act", w);
    if (act != "silu") throw error(where, "field hidden_act", "\"" + act + "\" is not supported (only \"silu\")");
  }
  if (get_or<bool>(j, "mlp_bias", false, w)) throw error(where, "field mlp_bias", "MLP biases are not supported");
  c.validate(where);
  return c;
}

/// Reads and checks an HF config.json file.
inline llama_config read_llama_config(const std::string& path) { return parse_llama_config(read_json(path), path); }

}  // namespace slim::io
