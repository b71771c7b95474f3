// slim — chat formats (ChatML, Llama-2 [INST], Llama-3 headers): a prompt as text pieces and special-token
// pieces, rendered as text and encoded with a tokenizer's special tokens.
//
// Encoding rule: adjacent text pieces are joined and each run of text is encoded on its own with
// `split_special = false` (so a title that spells "<|im_end|>" stays text: no control-token injection);
// each special piece becomes the id of the tokenizer's token with that spelling — which must exist and be
// marked special. When it does not (GPT-2 has no "<|im_start|>"), `missing_special::error` (the default)
// throws slim::error naming the token and the format; `missing_special::as_text` encodes the spelling as
// plain text together with the text around it. This is what HF `tokenizers` does with a chat template's
// output (special tokens cut out first, the gaps encoded one by one), except that HF would also honour
// special spellings inside the messages.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/text/tokenizer.hpp"

namespace slim::prompt {

using text::token_id;

/// How system and user messages are wrapped for a chat model.
enum class chat_format {
  plain,   ///< system + "\n\n" + user, no markup (base models, HTTP teachers that take raw text)
  chatml,  ///< Qwen / OpenAI: <|im_start|>role\n...<|im_end|>\n, then "<|im_start|>assistant\n"
  llama2,  ///< <s>[INST] <<SYS>>\n...\n<</SYS>>\n\nuser [/INST]
  llama3,  ///< <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>, then the assistant header
};

/// What to do when the tokenizer has no special token for a piece of the chat format.
enum class missing_special {
  error,    ///< throw slim::error naming the token and the format (default: a silent fallback changes the ids)
  as_text,  ///< encode the spelling as ordinary text
};

/// Name of a chat format as written in configs and errors.
inline const char* to_string(chat_format f) noexcept {
  switch (f) {
    case chat_format::plain:
      return "plain";
    case chat_format::chatml:
      return "chatml";
    case chat_format::llama2:
      return "llama2";
    case chat_format::llama3:
      return "llama3";
  }
  return "?";
}

/// Parses "plain", "chatml", "llama2", "llama3" (throws slim::error otherwise).
inline chat_format chat_format_from_string(std::string_view s) {
  for (const chat_format f : {chat_format::plain, chat_format::chatml, chat_format::llama2, chat_format::llama3})
    if (s == to_string(f)) return f;
  throw error("chat_format", std::string(s), "unknown chat format (plain, chatml, llama2, llama3)");
}

/// One piece of a chat prompt.
struct chat_piece {
  std::string text;      ///< the text, or the spelling of the special token
  bool special = false;  ///< true: one special token
};

/// A chat prompt: its pieces in order.
struct chat_text {
  std::vector<chat_piece> pieces;

  /// The prompt as one string (special tokens by their spelling).
  std::string str() const {
    std::string s;
    for (const chat_piece& p : pieces) s += p.text;
    return s;
  }
  void text(std::string_view t) {
    if (t.empty()) return;
    if (!pieces.empty() && !pieces.back().special)
      pieces.back().text += t;
    else
      pieces.push_back({std::string(t), false});
  }
  void special(std::string_view spelling) { pieces.push_back({std::string(spelling), true}); }
};

/// The special token that ends the assistant's turn in `format` ("" for plain: use the tokenizer's EOS).
inline std::string_view end_of_turn(chat_format format) noexcept {
  switch (format) {
    case chat_format::chatml:
      return "<|im_end|>";
    case chat_format::llama2:
      return "</s>";
    case chat_format::llama3:
      return "<|eot_id|>";
    case chat_format::plain:
      break;
  }
  return "";
}

/// The prompt for one exchange: an optional system message (left out when empty) and the user message,
/// ending where the assistant's answer begins (the "generation prompt").
inline chat_text render_chat(chat_format format, std::string_view system, std::string_view user) {
  chat_text c;
  switch (format) {
    case chat_format::plain:
      if (!system.empty()) {
        c.text(system);
        c.text("\n\n");
      }
      c.text(user);
      break;
    case chat_format::chatml:
      if (!system.empty()) {
        c.special("<|im_start|>");
        c.text("system\n");
        c.text(system);
        c.special("<|im_end|>");
        c.text("\n");
      }
      c.special("<|im_start|>");
      c.text("user\n");
      c.text(user);
      c.special("<|im_end|>");
      c.text("\n");
      c.special("<|im_start|>");
      c.text("assistant\n");
      break;
    case chat_format::llama2:
      c.special("<s>");
      c.text("[INST] ");
      if (!system.empty()) {
        c.text("<<SYS>>\n");
        c.text(system);
        c.text("\n<</SYS>>\n\n");
      }
      c.text(user);
      c.text(" [/INST]");
      break;
    case chat_format::llama3:
      c.special("<|begin_of_text|>");
      if (!system.empty()) {
        c.special("<|start_header_id|>");
        c.text("system");
        c.special("<|end_header_id|>");
        c.text("\n\n");
        c.text(system);
        c.special("<|eot_id|>");
      }
      c.special("<|start_header_id|>");
      c.text("user");
      c.special("<|end_header_id|>");
      c.text("\n\n");
      c.text(user);
      c.special("<|eot_id|>");
      c.special("<|start_header_id|>");
      c.text("assistant");
      c.special("<|end_header_id|>");
      c.text("\n\n");
      break;
  }
  return c;
}

/// The id of the special token spelled `spelling`, if the tokenizer has one marked special.
template <text::Tokenizer T>
std::optional<token_id> special_id(const T& tok, std::string_view spelling) {
  const auto id = tok.token_to_id(spelling);
  if (id && tok.is_special(*id)) return id;
  return std::nullopt;
}

/// Token ids of a chat prompt (see the file comment for the rules). `format` only names the format in errors.
template <text::Tokenizer T>
std::vector<token_id> encode_chat(const T& tok, const chat_text& chat, missing_special policy = missing_special::error,
                                  chat_format format = chat_format::plain) {
  std::vector<token_id> ids;
  std::string run;  // text waiting to be encoded
  const text::encode_options opts{.add_special = false, .split_special = false};
  auto flush = [&] {
    if (run.empty()) return;
    const auto part = tok.encode(run, opts);
    ids.insert(ids.end(), part.begin(), part.end());
    run.clear();
  };
  for (const chat_piece& p : chat.pieces) {
    if (!p.special) {
      run += p.text;
      continue;
    }
    if (const auto id = special_id(tok, p.text)) {
      flush();
      ids.push_back(*id);
    } else if (policy == missing_special::as_text) {
      run += p.text;
    } else {
      throw error(
          "encode_chat", std::string("format ") + to_string(format),
          "the tokenizer has no special token " + p.text +
              " (use missing_special::as_text to encode it as plain text, or a tokenizer made for this format)");
    }
  }
  flush();
  return ids;
}

/// Ids of an assistant answer as it follows the prompt in training: the text (no special-token splitting)
/// and the format's end-of-turn token (plain: the tokenizer's EOS, if any). A missing end-of-turn token
/// follows `policy` as in `encode_chat`.
template <text::Tokenizer T>
std::vector<token_id> encode_answer(const T& tok, std::string_view answer, chat_format format,
                                    missing_special policy = missing_special::error) {
  chat_text c;
  c.text(answer);
  if (format != chat_format::plain) c.special(end_of_turn(format));
  std::vector<token_id> ids = encode_chat(tok, c, policy, format);
  if (format == chat_format::plain)
    if (const auto eos = tok.eos_id()) ids.push_back(*eos);
  return ids;
}

}  // namespace slim::prompt
