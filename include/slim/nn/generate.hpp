// slim — text generation with a KV cache over any `cached_lm`: a batch of prompts of different lengths,
// greedy or seeded sampling, stop tokens, stop strings, a token budget and a per-token streaming callback.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/core/tensor.hpp"
#include "slim/core/tensor_view.hpp"
#include "slim/nn/sampling.hpp"
#include "slim/text/tokenizer.hpp"
#include "slim/text/unicode.hpp"

namespace slim::nn {

namespace detail {
template <class M, class = void>
struct lm_value {
  using type = float;
};
template <class M>
struct lm_value<M, std::void_t<typename M::value_type>> {
  using type = typename M::value_type;
};
}  // namespace detail

/// The logits element type of a model: its `value_type` when it has one, else float.
template <class M>
using lm_value_t = typename detail::lm_value<M>::type;

/// The KV-cache type a model's `make_cache(batch, capacity)` returns.
template <class M>
using lm_cache_t = decltype(std::declval<const M&>().make_cache(index_t{}, index_t{}));

/// A language model that generates with a KV cache (nn::decoder_lm is one):
///   * `make_cache(batch, capacity)` — an empty cache for `batch` rows of up to `capacity` columns;
///   * `forward_cached(be, ids (B,S), kv_begin, cache, last_logits (B,V))` — appends the columns `ids` to the
///     cache and writes each row's logits for its last column. At prefill, rows are left-padded and
///     `kv_begin[b]` is the first real column of row b (the position of column t is t − kv_begin[b]); later
///     calls pass one column each and an empty `kv_begin`;
///   * `config().vocab_size` — V.
/// (has_kv_cache is the backend-independent half: make_cache and config().vocab_size.)
template <class M>
concept has_kv_cache = requires(const M& cm, index_t n) {
  cm.make_cache(n, n);
  { cm.config().vocab_size } -> std::convertible_to<index_t>;
};
template <class M, class Backend>
concept cached_lm = has_kv_cache<M> &&
    requires(M& m, const Backend& be, tensor_view<const std::int32_t, 2> ids, std::span<const std::int32_t> kv_begin,
             lm_cache_t<M>& cache, matrix_view<lm_value_t<M>> last_logits) {
  m.forward_cached(be, ids, kv_begin, cache, last_logits);
};

/// Why a row stopped.
enum class finish_reason : std::uint8_t {
  length,       ///< max_new_tokens reached
  stop_token,   ///< a stop token was generated (it is the last new token)
  stop_string,  ///< the text came to contain a stop string (text cut before it; the tokens are kept)
  callback,     ///< the per-token callback returned false
};

/// "length", "stop_token", "stop_string", "callback".
constexpr std::string_view finish_reason_name(finish_reason r) noexcept {
  switch (r) {
    case finish_reason::length:
      return "length";
    case finish_reason::stop_token:
      return "stop_token";
    case finish_reason::stop_string:
      return "stop_string";
    case finish_reason::callback:
      return "callback";
  }
  return "?";
}

/// What to generate. Plain data: usable with designated initialisers.
struct generation_config {
  index_t max_new_tokens = 16;  ///< at most this many new tokens per row (0: none, the model is not run)
  sampling_config sampling{};   ///< greedy by default; see sampling.hpp for temperature / top-k / top-p
  std::uint64_t seed = 0;       ///< sampling seed (row streams and steps are mixed in; see sampling_uniform)
  /// Ids that end a row (e.g. EOS). Kept as the row's last new token, as Hugging Face's generate does.
  std::vector<std::int32_t> stop_tokens{};
  /// Strings that end a row once the generated text (prompt excluded) contains one. Needs a detokenizer. The
  /// result's text is cut just before the earliest match; its tokens keep every token up to and including
  /// the one that completed the match.
  std::vector<std::string> stop_strings{};
  std::int32_t pad_id = 0;  ///< fills left padding and the input of rows that have finished (masked out)
  /// Pack the model's weights for the call when it can (`pack_weights(be)`, `weights_packed()`,
  /// `drop_packed_weights()`, as nn::decoder_lm has) and they are not packed already: each decoding step then
  /// reads every weight once instead of repacking it, at the cost of one more copy of the float weights while
  /// the call runs (weights the caller packed stay packed). The results are identical either way.
  bool pack_weights = true;

  /// Throws slim::error naming the field unless the values are usable.
  void validate() const {
    if (max_new_tokens < 0)
      throw error("slim::nn::generation_config", "max_new_tokens",
                  "must be >= 0, got " + std::to_string(max_new_tokens));
    sampling.validate();
    for (const auto& s : stop_strings)
      if (s.empty()) throw error("slim::nn::generation_config", "stop_strings", "a stop string is empty");
  }
};

/// A callable that turns ids into text (and is not a Tokenizer).
template <class F>
concept ids_to_text =
    !text::Tokenizer<F> && std::is_invocable_r_v<std::string, const F&, std::span<const std::int32_t>>;

/// Turns generated ids into text, one token's piece at a time (bytes that start a UTF-8 character the next
/// token may finish are held back; ill-formed bytes become U+FFFD, as text::stream_decoder does).
/// Empty (the default): no text.
class detokenizer {
 public:
  detokenizer() = default;
  /// From a tokenizer, through its decode_piece. The tokenizer must outlive the detokenizer. By default
  /// special tokens (EOS, chat markers) give no text.
  template <text::Tokenizer Tok>
  explicit detokenizer(const Tok& tok, text::decode_options options = {.skip_special = true})
      : piece_([&tok, options](std::int32_t id) {
          if (options.skip_special && tok.is_special(id)) return std::string();
          return std::string(tok.decode_piece(id));
        }) {}
  /// From a callable ids → text; generation calls it with one id at a time and concatenates the results.
  template <ids_to_text F>
  explicit detokenizer(F f)
      : piece_([f = std::move(f)](std::int32_t id) { return std::string(f(std::span<const std::int32_t>(&id, 1))); }) {}

  explicit operator bool() const noexcept { return static_cast<bool>(piece_); }
  /// The bytes of one token (possibly an incomplete UTF-8 character).
  std::string piece(std::int32_t id) const { return piece_(id); }

 private:
  std::function<std::string(std::int32_t)> piece_;
};

/// Called once per new token of a row, steps in order and, within a step, rows in ascending order: the row
/// (index into the prompts), the token and the text that became final with it — which may be empty (held
/// back: an incomplete UTF-8 character, or the start of what may become a stop string) and may include text
/// of earlier tokens. For rows that do not stop through the callback, the pieces concatenate to the result's
/// text. Returning false stops the row: its token is kept, and its result's text is all that was decoded
/// (held-back text included, an incomplete character as U+FFFD) although the held-back part was not delivered.
using token_callback = std::function<bool(index_t row, std::int32_t token, std::string_view text)>;

/// What generation reports to, and reads from, the caller besides the config.
struct generation_hooks {
  /// The sampling stream of each row (size = number of prompts); empty: row b uses stream b. Give each prompt
  /// the same stream whatever batch it is put in (e.g. its index in the whole job) and its sampled output does
  /// not depend on the batch.
  std::span<const std::uint64_t> streams{};
  detokenizer detokenize{};   ///< needed for stop strings and for text in results and callbacks
  token_callback on_token{};  ///< optional streaming callback
};

/// One row's output.
struct generation_result {
  std::vector<std::int32_t> tokens{};  ///< the new tokens only (prompt excluded)
  std::string text{};                  ///< their text when a detokenizer was given (cut before a stop string)
  finish_reason reason = finish_reason::length;
};

namespace detail {

/// One row's text state while generating.
struct generation_row_text {
  std::string pending;       // bytes of an incomplete UTF-8 character
  std::string text;          // valid UTF-8 decoded so far (cut at a stop string when one matched)
  std::size_t released = 0;  // bytes of `text` already handed to the callback

  /// Appends a token's bytes; returns the byte offset of the earliest stop string that now matches, or npos.
  std::size_t push(std::string_view piece, std::span<const std::string> stops, std::size_t longest_stop) {
    const std::size_t old_size = text.size();
    pending += piece;
    const std::size_t hold = text::unicode::incomplete_utf8_suffix(pending);
    text += text::unicode::to_valid_utf8(std::string_view(pending).substr(0, pending.size() - hold));
    pending.erase(0, pending.size() - hold);
    // A new match ends in the new text, so it starts at most longest_stop − 1 bytes before it.
    const std::size_t from = old_size >= longest_stop ? old_size - (longest_stop - 1) : 0;
    std::size_t best = std::string::npos;
    for (const auto& s : stops) best = std::min(best, text.find(s, from));
    return best;
  }
  /// Ends the row: flushes held-back bytes (U+FFFD for an incomplete character).
  void flush() {
    text += text::unicode::to_valid_utf8(pending);
    pending.clear();
  }
  /// The text that became final: everything when `finished`, else all but the longest suffix that begins a
  /// stop string.
  std::string_view release(bool finished, std::span<const std::string> stops) {
    std::size_t keep = 0;
    if (!finished)
      for (const auto& s : stops)
        for (std::size_t k = std::min(s.size() - 1, text.size()); k > keep; --k)
          if (std::string_view(text).substr(text.size() - k) == std::string_view(s).substr(0, k)) {
            keep = k;
            break;
          }
    const std::size_t end = std::max(released, text.size() - keep);
    const std::string_view out = std::string_view(text).substr(released, end - released);
    released = end;
    return out;
  }
};

}  // namespace detail

/// Generates continuations of `prompts` (token ids, each non-empty, ids in [0, V)) as one batch: rows are
/// left-padded to the longest prompt, prefilled once, then decoded one token per step with the KV cache. A
/// row that finishes stops emitting (it still rides along in the batch; its logits are ignored); generation
/// ends when every row has finished. Row b's choices depend only on its own prompt, the config and its
/// sampling stream — not on the other rows, the batch size or the thread count — as long as the model's
/// logits for a row do not depend on the other rows (nn::decoder_lm's do not). Host-memory backends only.
template <class Backend, cached_lm<Backend> Model>
std::vector<generation_result> generate(Model& model, const Backend& be,
                                        std::span<const std::vector<std::int32_t>> prompts,
                                        const generation_config& cfg, const generation_hooks& hooks = {}) {
  using T = lm_value_t<Model>;
  static_assert(std::is_same_v<typename Backend::memory_space, host_space>,
                "slim::nn::generate reads logits on the host: use a host-memory backend");
  constexpr const char* where = "slim::nn::generate";
  cfg.validate();
  const index_t batch = static_cast<index_t>(prompts.size());
  const index_t vocab = static_cast<index_t>(model.config().vocab_size);
  if (!cfg.stop_strings.empty() && !hooks.detokenize)
    throw error(where, "stop_strings", "stop strings need a detokenizer (generation_hooks::detokenize)");
  if (!hooks.streams.empty() && static_cast<index_t>(hooks.streams.size()) != batch)
    throw error(where, "streams",
                "has " + std::to_string(hooks.streams.size()) + " entries for " + std::to_string(batch) + " prompts");
  index_t longest = 0;
  for (index_t b = 0; b < batch; ++b) {
    const auto& p = prompts[static_cast<std::size_t>(b)];
    if (p.empty()) throw error(where, "prompt " + std::to_string(b), "is empty (a prompt needs at least one token)");
    for (std::size_t i = 0; i < p.size(); ++i)
      if (p[i] < 0 || p[i] >= vocab)
        throw error(
            where, "prompt " + std::to_string(b) + " position " + std::to_string(i),
            "token id " + std::to_string(p[i]) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
    longest = std::max(longest, static_cast<index_t>(p.size()));
  }
  std::vector<generation_result> results(static_cast<std::size_t>(batch));
  if (batch == 0 || cfg.max_new_tokens == 0) return results;

  std::size_t longest_stop = 0;
  for (const auto& s : cfg.stop_strings) longest_stop = std::max(longest_stop, s.size());
  const std::span<const std::string> stops(cfg.stop_strings);
  const bool with_text = static_cast<bool>(hooks.detokenize);
  const auto is_stop_token = [&](std::int32_t t) {
    return std::find(cfg.stop_tokens.begin(), cfg.stop_tokens.end(), t) != cfg.stop_tokens.end();
  };

  // Weights packed for the call (dropped on every way out), unless the caller packed them already.
  struct packed_for_call {
    Model* model = nullptr;
    ~packed_for_call() {
      if constexpr (requires { model->drop_packed_weights(); })
        if (model) model->drop_packed_weights();
    }
  } packed;
  if constexpr (requires { model.pack_weights(be); model.drop_packed_weights(); model.weights_packed(); })
    if (cfg.pack_weights && !model.weights_packed()) {
      packed.model = &model;
      model.pack_weights(be);
    }

  // Prefill: left-padded (B, S) ids; kv_begin[b] = first real column of row b.
  auto cache = model.make_cache(batch, longest + cfg.max_new_tokens - 1);
  tensor<std::int32_t, 2> ids({batch, longest});  // (B,S)
  std::vector<std::int32_t> kv_begin(static_cast<std::size_t>(batch));
  for (index_t b = 0; b < batch; ++b) {
    const auto& p = prompts[static_cast<std::size_t>(b)];
    const index_t begin = longest - static_cast<index_t>(p.size());
    kv_begin[static_cast<std::size_t>(b)] = static_cast<std::int32_t>(begin);
    for (index_t t = 0; t < longest; ++t) ids(b, t) = t < begin ? cfg.pad_id : p[static_cast<std::size_t>(t - begin)];
  }
  tensor<T, 2> logits({batch, vocab});  // (B,V)
  model.forward_cached(be, tensor_view<const std::int32_t, 2>(ids.view()), std::span<const std::int32_t>(kv_begin),
                       cache, logits.view());

  std::vector<detail::generation_row_text> texts(with_text ? static_cast<std::size_t>(batch) : 0);
  std::vector<char> done(static_cast<std::size_t>(batch), 0);
  index_t running = batch;
  tensor<std::int32_t, 2> next({batch, 1});  // (B,1)
  for (index_t step = 0;; ++step) {
    for (index_t b = 0; b < batch; ++b) {
      const auto ub = static_cast<std::size_t>(b);
      if (done[ub]) continue;
      const std::span<const T> row(logits.data() + b * vocab, static_cast<std::size_t>(vocab));
      const std::uint64_t stream = hooks.streams.empty() ? static_cast<std::uint64_t>(b) : hooks.streams[ub];
      const std::int32_t tok = select_token(row, cfg.sampling, cfg.seed, stream, static_cast<std::uint64_t>(step));
      generation_result& r = results[ub];
      r.tokens.push_back(tok);
      bool finished = false;
      if (with_text) {
        auto& tx = texts[ub];
        const std::size_t match = tx.push(hooks.detokenize.piece(tok), stops, longest_stop);
        if (match != std::string::npos) {
          tx.text.resize(match);
          tx.pending.clear();
          r.reason = finish_reason::stop_string;
          finished = true;
        }
      }
      if (!finished && is_stop_token(tok)) {
        r.reason = finish_reason::stop_token;
        finished = true;
      }
      if (!finished && static_cast<index_t>(r.tokens.size()) == cfg.max_new_tokens) {
        r.reason = finish_reason::length;
        finished = true;
      }
      std::string_view piece;
      if (with_text) {
        if (finished) texts[ub].flush();
        piece = texts[ub].release(finished, stops);
      }
      if (hooks.on_token && !hooks.on_token(b, tok, piece) && !finished) {
        r.reason = finish_reason::callback;
        finished = true;
      }
      if (finished) {
        done[ub] = 1;
        --running;
        if (with_text) {
          texts[ub].flush();  // after a callback stop: an incomplete character becomes U+FFFD
          r.text = std::move(texts[ub].text);
        }
      }
      next(b, 0) = tok;
    }
    if (running == 0) break;
    for (index_t b = 0; b < batch; ++b)
      if (done[static_cast<std::size_t>(b)]) next(b, 0) = cfg.pad_id;
    model.forward_cached(be, tensor_view<const std::int32_t, 2>(next.view()), std::span<const std::int32_t>(), cache,
                         logits.view());
  }
  return results;
}

/// One prompt: generate({prompt}) with stream `hooks.streams[0]` (0 when empty).
template <class Backend, cached_lm<Backend> Model>
generation_result generate_one(Model& model, const Backend& be, std::span<const std::int32_t> prompt,
                               const generation_config& cfg, const generation_hooks& hooks = {}) {
  const std::vector<std::vector<std::int32_t>> prompts{std::vector<std::int32_t>(prompt.begin(), prompt.end())};
  return std::move(generate(model, be, std::span<const std::vector<std::int32_t>>(prompts), cfg, hooks)[0]);
}

}  // namespace slim::nn
