// slim — fit_lm: supervised fine-tuning of a causal LM (nn::decoder_lm, LoRA or full) on (prompt, completion)
// examples: masked next-token NLL over the completion tokens of each accumulated batch, optional logit
// distillation, global-norm clipping, AdamW with warmup + cosine, and checkpoint/resume that reproduces an
// uninterrupted run exactly (docs/lm_training.md).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "slim/backend/common.hpp"
#include "slim/core/error.hpp"
#include "slim/core/tensor.hpp"
#include "slim/io/json.hpp"
#include "slim/io/safetensors.hpp"
#include "slim/nn/context.hpp"
#include "slim/nn/parameter.hpp"
#include "slim/train/adam.hpp"
#include "slim/train/clip.hpp"
#include "slim/train/lm_data.hpp"
#include "slim/train/lm_loss.hpp"
#include "slim/train/schedule.hpp"

namespace slim::train {

/// Settings of fit_lm. One optimizer step consumes grad_accum micro-batches of batch_size examples.
struct lm_train_config {
  index_t epochs = 1;         ///< passes over the examples (ignored when max_steps > 0)
  index_t max_steps = 0;      ///< optimizer steps to run, crossing epochs as needed (0: epochs decide)
  index_t batch_size = 8;     ///< examples per micro-batch
  index_t grad_accum = 1;     ///< micro-batches per optimizer step
  index_t max_len = 256;      ///< tokens per sequence (truncate_example)
  double lr = 2e-4;           ///< peak learning rate
  double weight_decay = 0.0;  ///< AdamW's decoupled decay, on every trainable parameter but biases and norm weights
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  index_t warmup_steps = 0;      ///< linear warmup length in optimizer steps (wins over warmup_ratio when > 0)
  double warmup_ratio = 0;       ///< warmup as a fraction of the total steps (HF's warmup_ratio; rounded up)
  double min_lr_ratio = 0;       ///< the cosine ends at lr · min_lr_ratio
  double clip_norm = 1.0;        ///< clip the global gradient norm to this (0: no clipping)
  std::uint64_t seed = 0;        ///< the epoch shuffles and LoRA dropout
  std::string checkpoint_dir;    ///< where to save and resume (empty: no checkpoints)
  index_t checkpoint_every = 0;  ///< save every this many optimizer steps (0: only at the end)
  double kd_weight = 0;          ///< loss = (1 − kd_weight)·NLL + kd_weight·KD; needs a teacher when > 0
  double kd_temperature = 1;     ///< τ of the KD term (scaled by τ²)
  index_t kd_top_k = 0;          ///< KD against the teacher's top-k logits only (0: the full vocabulary)
};

/// What the progress callback receives after every optimizer step (after the checkpoint of that step).
struct lm_step_event {
  index_t step = 0;  ///< 1-based count of optimizer steps done
  index_t total_steps = 0;
  double loss = 0;               ///< the step's loss (see fit_lm for the normalisation)
  double lr = 0;                 ///< the learning rate the step used
  double grad_norm = 0;          ///< global gradient norm before clipping
  double tokens_per_second = 0;  ///< real (non-padding) tokens of the step over its wall time
  index_t epoch = 0;             ///< 0-based epoch the step belonged to
};

/// The outcome of fit_lm. After a resume, step_loss, steps, seconds and tokens cover the whole run.
struct lm_train_report {
  std::vector<double> step_loss;
  index_t steps = 0;
  double seconds = 0, tokens = 0;
  index_t resumed_from = 0;  ///< the checkpoint's step when the run resumed, else 0
};

/// A teacher for distillation: fills logits (B·S, V) for a right-padded batch ids (B,S), rows laid out as the
/// student's training forward lays them out (row b·S + t). Only rows whose target counts are read.
template <class T>
using lm_teacher = std::function<void(tensor_view<const std::int32_t, 2> ids, matrix_view<T> logits)>;

/// The default progress callback: nothing.
struct no_lm_progress {
  void operator()(const lm_step_event&) const noexcept {}
};

/// Optimizer steps in one epoch of n examples: ⌈⌈n / batch_size⌉ / grad_accum⌉ (the last step of an epoch
/// may hold fewer micro-batches, and its last micro-batch fewer examples).
inline index_t lm_steps_per_epoch(index_t n, const lm_train_config& c) {
  const index_t micro = (n + c.batch_size - 1) / c.batch_size;
  return (micro + c.grad_accum - 1) / c.grad_accum;
}

/// Total optimizer steps of a run over n examples: max_steps when positive, else epochs · steps per epoch.
inline index_t lm_total_steps(index_t n, const lm_train_config& c) {
  return c.max_steps > 0 ? c.max_steps : c.epochs * lm_steps_per_epoch(n, c);
}

/// The warmup length in steps: warmup_steps, or ⌈warmup_ratio · total⌉ when warmup_steps is 0.
inline index_t lm_warmup_steps(index_t total, const lm_train_config& c) {
  if (c.warmup_steps > 0) return std::min(c.warmup_steps, total);
  return std::min(total, static_cast<index_t>(std::ceil(c.warmup_ratio * static_cast<double>(total))));
}

/// Whether AdamW's weight decay applies to `p`: to every parameter but biases and norm weights, as the HF
/// Trainer groups them (embeddings, the LM head and LoRA factors decay).
template <class T>
bool lm_decays(const nn::parameter<T>& p) noexcept {
  return p.role != nn::parameter_role::bias && p.role != nn::parameter_role::norm;
}

/// The AdamW fit_lm uses, attached to `model`'s trainable parameters (lm_decays selects the decayed ones).
template <class Backend, class T, class Model>
adam<Backend, T> make_lm_optimizer(Model& model, const lm_train_config& c) {
  const backend::adam_config base{.lr = static_cast<float>(c.lr),
                                  .beta1 = static_cast<float>(c.beta1),
                                  .beta2 = static_cast<float>(c.beta2),
                                  .eps = static_cast<float>(c.eps),
                                  .weight_decay = static_cast<float>(c.weight_decay)};
  adam<Backend, T> opt(base, adam_variant::adamw);
  backend::adam_config no_decay = base;
  no_decay.weight_decay = 0.0f;
  opt.add_group([](const nn::parameter<T>& p) { return !lm_decays(p); }, no_decay);
  opt.attach(model);
  return opt;
}

namespace detail {

inline constexpr const char* lm_checkpoint_format = "slim lm checkpoint 1";
inline constexpr const char* lm_checkpoint_json = "lm_checkpoint.json";

/// A 64-bit hash of byte runs (for recognising a checkpoint's data and frozen weights, not for security).
struct lm_hasher {
  std::uint64_t h = 0x6a09e667f3bcc909ull;
  void mix(std::uint64_t w) noexcept {
    h ^= w + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
  }
  void bytes(const void* p, std::size_t n) noexcept {
    const auto* c = static_cast<const unsigned char*>(p);
    mix(n);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, c + i, 8);
      mix(w);
    }
    std::uint64_t tail = 0;
    if (n > i) std::memcpy(&tail, c + i, n - i);
    mix(tail);
  }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
  }
};

inline io::json lm_settings_json(const lm_train_config& c) {
  return io::json{{"epochs", c.epochs},
                  {"max_steps", c.max_steps},
                  {"batch_size", c.batch_size},
                  {"grad_accum", c.grad_accum},
                  {"max_len", c.max_len},
                  {"lr", c.lr},
                  {"weight_decay", c.weight_decay},
                  {"beta1", c.beta1},
                  {"beta2", c.beta2},
                  {"eps", c.eps},
                  {"warmup_steps", c.warmup_steps},
                  {"warmup_ratio", c.warmup_ratio},
                  {"min_lr_ratio", c.min_lr_ratio},
                  {"clip_norm", c.clip_norm},
                  {"seed", c.seed},
                  {"kd_weight", c.kd_weight},
                  {"kd_temperature", c.kd_temperature},
                  {"kd_top_k", c.kd_top_k}};
}

/// Every parameter's name, shape and trainability, the element size, and a hash of the frozen values (a LoRA
/// checkpoint holds only the adapters, so resuming on another base must be caught here).
template <class T, class Model>
io::json lm_model_json(Model& model) {
  io::json params = io::json::array();
  lm_hasher frozen;
  model.visit_parameters([&](nn::parameter<T>& p) {
    params.push_back(io::json{p.name, p.rank, p.rows, p.cols, p.trainable});
    if (!p.trainable) frozen.bytes(p.value.data(), static_cast<std::size_t>(p.size()) * sizeof(T));
  });
  return io::json{{"value_bytes", sizeof(T)}, {"parameters", std::move(params)}, {"frozen_hash", frozen.hex()}};
}

inline io::json lm_data_json(std::span<const lm_example> ex) {
  lm_hasher h;
  for (const lm_example& e : ex) {
    h.bytes(e.prompt.data(), e.prompt.size() * sizeof(std::int32_t));
    h.bytes(e.completion.data(), e.completion.size() * sizeof(std::int32_t));
  }
  return io::json{{"examples", ex.size()}, {"hash", h.hex()}};
}

/// The first place where `a` (the checkpoint) and `b` (this run) differ, as "key.sub[3]" (empty: equal).
inline std::string lm_json_difference(const io::json& a, const io::json& b, const std::string& at) {
  if (a.type() != b.type() && !(a.is_number() && b.is_number())) return at.empty() ? "(root)" : at;
  if (a.is_object()) {
    for (auto it = b.begin(); it != b.end(); ++it) {
      const std::string k = at.empty() ? it.key() : at + "." + it.key();
      if (!a.contains(it.key())) return k;
      const std::string d = lm_json_difference(a[it.key()], it.value(), k);
      if (!d.empty()) return d;
    }
    for (auto it = a.begin(); it != a.end(); ++it)
      if (!b.contains(it.key())) return at.empty() ? it.key() : at + "." + it.key();
    return "";
  }
  if (a.is_array()) {
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
      const std::string d = lm_json_difference(a[i], b[i], at + "[" + std::to_string(i) + "]");
      if (!d.empty()) return d;
    }
    return a.size() == b.size() ? "" : at + " (length)";
  }
  return a == b ? "" : (at.empty() ? "(root)" : at);
}

/// The value at a path lm_json_difference returned, shortened for a message.
inline std::string lm_json_at(const io::json& j, const std::string& path) {
  const io::json* cur = &j;
  std::size_t i = 0;
  while (i < path.size() && cur) {
    if (path[i] == '.') ++i;
    if (path[i] == '[') {
      const std::size_t close = path.find(']', i);
      const std::size_t k = std::stoul(path.substr(i + 1, close - i - 1));
      cur = cur->is_array() && k < cur->size() ? &(*cur)[k] : nullptr;
      i = close + 1;
      continue;
    }
    if (path[i] == ' ') break;
    std::size_t e = i;
    while (e < path.size() && path[e] != '.' && path[e] != '[' && path[e] != ' ') ++e;
    const std::string key = path.substr(i, e - i);
    cur = cur->is_object() && cur->contains(key) ? &(*cur)[key] : nullptr;
    i = e;
  }
  if (!cur) return "(absent)";
  std::string s = cur->dump();
  return s.size() > 120 ? s.substr(0, 117) + "..." : s;
}

inline std::string lm_state_name(index_t step) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "lm_state_%08lld.safetensors", static_cast<long long>(step));
  return buf;
}

inline bool is_lm_state_name(const std::string& n) {
  constexpr std::string_view pre = "lm_state_", post = ".safetensors";
  if (n.size() <= pre.size() + post.size() || n.compare(0, pre.size(), pre) != 0 ||
      n.compare(n.size() - post.size(), post.size(), post) != 0)
    return false;
  for (std::size_t i = pre.size(); i < n.size() - post.size(); ++i)
    if (n[i] < '0' || n[i] > '9') return false;
  return true;
}

/// The k largest entries of each counted row of `z` (ties: the lower index first).
template <class T>
void lm_top_k(matrix_view<const T> z, std::span<const std::int32_t> targets, index_t k, matrix_view<T> values,
              matrix_view<std::int32_t> indices) {
  const index_t n = z.extent(0), v = z.extent(1);
  std::vector<std::int32_t> idx(static_cast<std::size_t>(v));
  for (index_t r = 0; r < n; ++r) {
    if (targets[static_cast<std::size_t>(r)] == ignore_target) {
      for (index_t j = 0; j < k; ++j) {
        values(r, j) = T(0);
        indices(r, j) = static_cast<std::int32_t>(j);
      }
      continue;
    }
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](std::int32_t a, std::int32_t b) {
      return z(r, a) > z(r, b) || (z(r, a) == z(r, b) && a < b);
    });
    for (index_t j = 0; j < k; ++j) {
      indices(r, j) = idx[static_cast<std::size_t>(j)];
      values(r, j) = z(r, idx[static_cast<std::size_t>(j)]);
    }
  }
}

}  // namespace detail

/// Fine-tunes `model` (forward(be, ids, logits), backward(be, dlogits), visit_parameters, config(), value_type;
/// set_context when it has dropout) on `examples`.
///
/// Each optimizer step takes the next grad_accum micro-batches of the epoch's shuffled order (lm_epoch_order),
/// each batch_size examples (make_lm_batch). Its loss is the mean token NLL over EVERY counted target of the
/// accumulated batch — Σ NLL / C with C the completion targets of all its micro-batches (HF Trainer ≥ 4.46's
/// num_items_in_batch) — so accumulating micro-batches equals one batch of their union up to rounding. With
/// kd_weight = w > 0 the loss is (1 − w)·NLL + w·KD, KD = τ²/C·Σ KL(teacher ‖ student) at temperature τ over the
/// same targets, against the teacher's full or top-k logits. Then: global-norm clip (clip_norm > 0), AdamW
/// (make_lm_optimizer) at lr · warmup_cosine(step), gradients zeroed before the next step.
///
/// With checkpoint_dir, the trainable parameters, Adam moments, step, epoch, position in the epoch and loss
/// history are saved every checkpoint_every steps and at the end (lm_state_<step>.safetensors, then
/// lm_checkpoint.json naming it; both atomic). When lm_checkpoint.json exists at the start, the run resumes
/// from it and ends exactly as an uninterrupted run would on the same backend; a checkpoint from other
/// settings, data, model shapes or frozen base weights, or a damaged one, throws slim::error naming the file.
/// Exceptions from `progress` (called after each step's checkpoint) or `teacher` propagate.
template <class Backend, class Model, class Progress = no_lm_progress>
lm_train_report fit_lm(const Backend& be, Model& model, std::span<const lm_example> examples,
                       const lm_train_config& cfg, Progress&& progress = {},
                       const lm_teacher<typename std::remove_cvref_t<Model>::value_type>& teacher = {}) {
  using T = typename std::remove_cvref_t<Model>::value_type;
  using clock = std::chrono::steady_clock;
  namespace fs = std::filesystem;
  constexpr const char* where = "slim::train::fit_lm";

  const index_t n = static_cast<index_t>(examples.size());
  const index_t vocab = model.config().vocab_size;
  require(n > 0, where, "no training examples");
  require(cfg.epochs >= 0 && cfg.max_steps >= 0, where, "epochs and max_steps must not be negative");
  require(cfg.batch_size > 0 && cfg.grad_accum > 0, where, "batch_size and grad_accum must be positive, got ",
          cfg.batch_size, " and ", cfg.grad_accum);
  require(cfg.max_len > 0 && cfg.max_len <= model.config().max_positions, where, "max_len ", cfg.max_len,
          " must lie in [1, max_position_embeddings = ", model.config().max_positions, "]");
  require(cfg.lr >= 0 && cfg.weight_decay >= 0 && cfg.clip_norm >= 0 && cfg.eps > 0, where,
          "lr, weight_decay and clip_norm must not be negative and eps must be positive");
  require(cfg.beta1 >= 0 && cfg.beta1 < 1 && cfg.beta2 >= 0 && cfg.beta2 < 1, where, "betas must lie in [0, 1)");
  require(cfg.warmup_steps >= 0 && cfg.warmup_ratio >= 0 && cfg.warmup_ratio <= 1, where,
          "warmup_steps must not be negative and warmup_ratio must lie in [0, 1]");
  require(cfg.min_lr_ratio >= 0 && cfg.min_lr_ratio <= 1, where, "min_lr_ratio must lie in [0, 1]");
  require(cfg.checkpoint_every >= 0, where, "checkpoint_every must not be negative");
  require(cfg.kd_weight >= 0 && cfg.kd_weight <= 1, where, "kd_weight ", cfg.kd_weight, " must lie in [0, 1]");
  require(cfg.kd_temperature > 0 && std::isfinite(cfg.kd_temperature), where, "kd_temperature must be positive");
  require(cfg.kd_top_k >= 0 && cfg.kd_top_k <= vocab, where, "kd_top_k ", cfg.kd_top_k, " must lie in [0, ", vocab,
          "]");
  require(cfg.kd_weight == 0 || static_cast<bool>(teacher), where, "kd_weight ", cfg.kd_weight, " needs a teacher");
  for (index_t i = 0; i < n; ++i) {
    const lm_example& e = examples[static_cast<std::size_t>(i)];
    require(!e.completion.empty(), where, "example ", i, " has an empty completion");
    for (const auto* part : {&e.prompt, &e.completion})
      for (const std::int32_t id : *part)
        if (id < 0 || id >= vocab)
          throw error(
              where, "example " + std::to_string(i) + (part == &e.prompt ? " prompt" : " completion"),
              "token id " + std::to_string(id) + " lies outside the vocabulary [0, " + std::to_string(vocab) + ")");
  }

  const index_t per_epoch = lm_steps_per_epoch(n, cfg);
  const index_t total = lm_total_steps(n, cfg);
  const index_t micro_per_epoch = (n + cfg.batch_size - 1) / cfg.batch_size;
  const warmup_cosine schedule{lm_warmup_steps(total, cfg), std::max<index_t>(total, 1), cfg.min_lr_ratio};
  adam<Backend, T> opt = make_lm_optimizer<Backend, T>(model, cfg);

  lm_train_report rep;
  index_t step = 0, epoch = 0, position = 0;

  // ---- checkpoint: identity of the run, save, resume
  const bool checkpointing = !cfg.checkpoint_dir.empty();
  const std::string dir = cfg.checkpoint_dir;
  const std::string json_path = checkpointing ? (fs::path(dir) / detail::lm_checkpoint_json).string() : "";
  io::json identity;
  std::string fingerprint;
  if (checkpointing) {
    identity = io::json{{"settings", detail::lm_settings_json(cfg)},
                        {"model", detail::lm_model_json<T>(model)},
                        {"data", detail::lm_data_json(examples)}};
    detail::lm_hasher h;
    const std::string text = identity.dump();
    h.bytes(text.data(), text.size());
    fingerprint = h.hex();
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw error(dir, "", "cannot create the checkpoint directory: " + ec.message());
  }
  const io::dtype value_dtype = io::dtype_of<T>();
  auto shape_of = [](const nn::parameter<T>& p) {
    return p.rank == 2 ? std::vector<index_t>{p.rows, p.cols} : std::vector<index_t>{p.cols};
  };

  auto save = [&] {
    const std::string state_name = detail::lm_state_name(step);
    const std::string state_path = (fs::path(dir) / state_name).string();
    std::vector<io::tensor_entry> entries;
    auto add = [&](std::string name, std::vector<index_t> shape, const T* data, index_t size) {
      entries.push_back(io::tensor_entry{std::move(name), value_dtype, std::move(shape),
                                         std::as_bytes(std::span<const T>(data, static_cast<std::size_t>(size)))});
    };
    opt.visit_state([&](nn::parameter<T>& p, tensor<T, 1>& m, tensor<T, 1>& v) {
      add(p.name, shape_of(p), p.value.data(), p.size());
      add("optimizer.exp_avg." + p.name, shape_of(p), m.data(), m.size());
      add("optimizer.exp_avg_sq." + p.name, shape_of(p), v.data(), v.size());
    });
    entries.push_back(io::tensor_entry{"trainer.step_loss",
                                       io::dtype::f64,
                                       {static_cast<index_t>(rep.step_loss.size())},
                                       std::as_bytes(std::span<const double>(rep.step_loss))});
    const std::map<std::string, std::string> meta{{"format", detail::lm_checkpoint_format},
                                                  {"fingerprint", fingerprint},
                                                  {"step", std::to_string(step)},
                                                  {"epoch", std::to_string(epoch)},
                                                  {"position", std::to_string(position)}};
    io::write_safetensors(state_path, entries, meta);
    io::json j = identity;
    j["format"] = detail::lm_checkpoint_format;
    j["fingerprint"] = fingerprint;
    j["state_file"] = state_name;
    j["step"] = step;
    j["total_steps"] = total;
    j["epoch"] = epoch;
    j["position"] = position;
    j["rng"] = io::json{{"shuffle", "philox(seed, epoch): lm_epoch_order"}, {"dropout", "philox(seed, micro-batch)"}};
    j["seconds"] = rep.seconds;
    j["tokens"] = rep.tokens;
    j["last_loss"] = rep.step_loss.empty() ? 0.0 : rep.step_loss.back();
    io::write_json(json_path, j);  // the commit point: from here on the new state file is the checkpoint
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name != state_name && detail::is_lm_state_name(name)) fs::remove(it->path(), ec);
    }
  };

  if (checkpointing && fs::exists(json_path)) {
    const io::json j = io::read_json(json_path);
    auto field = [&](const char* key) -> const io::json& {
      if (!j.is_object() || !j.contains(key)) throw error(json_path, key, "missing: not a slim lm checkpoint");
      return j[key];
    };
    if (field("format") != detail::lm_checkpoint_format)
      throw error(json_path, "format",
                  "not a slim lm checkpoint (expected \"" + std::string(detail::lm_checkpoint_format) + "\")");
    for (const char* part : {"settings", "model", "data"}) {
      const std::string d = detail::lm_json_difference(field(part), identity[part], part);
      if (!d.empty())
        throw error(json_path, d,
                    "the checkpoint has " + detail::lm_json_at(j, d) + ", this run " + detail::lm_json_at(identity, d) +
                        ": it was written by another model, other settings or other data; resume with the same "
                        "ones, or use another checkpoint_dir");
    }
    auto count = [&](const char* key) -> index_t {
      const io::json& v = field(key);
      if (!v.is_number_integer() || v.get<std::int64_t>() < 0)
        throw error(json_path, key, "expected a non-negative integer, got " + v.dump());
      return static_cast<index_t>(v.get<std::int64_t>());
    };
    step = count("step");
    epoch = count("epoch");
    position = count("position");
    if (step > total || position >= per_epoch || epoch * per_epoch + position != step)
      throw error(json_path, "step",
                  "step " + std::to_string(step) + ", epoch " + std::to_string(epoch) + ", position " +
                      std::to_string(position) + " are inconsistent with this run (a damaged checkpoint)");
    const io::json& sf = field("state_file");
    if (!sf.is_string() || !detail::is_lm_state_name(sf.get<std::string>()))
      throw error(json_path, "state_file", "expected a file name lm_state_<step>.safetensors, got " + sf.dump());
    const std::string state_path = (fs::path(dir) / sf.get<std::string>()).string();
    const io::safetensors_file st(state_path);
    const auto& meta = st.metadata();
    auto meta_is = [&](const char* key, const std::string& want) {
      const auto it = meta.find(key);
      if (it == meta.end() || it->second != want)
        throw error(state_path, std::string("metadata ") + key,
                    (it == meta.end() ? std::string("missing") : "is \"" + it->second + "\"") + ", " + json_path +
                        " says \"" + want + "\": the pair does not belong together (a damaged checkpoint)");
    };
    meta_is("format", detail::lm_checkpoint_format);
    meta_is("fingerprint", fingerprint);
    meta_is("step", std::to_string(step));
    meta_is("epoch", std::to_string(epoch));
    meta_is("position", std::to_string(position));
    auto read = [&](const std::string& name, const std::vector<index_t>& shape, T* data, index_t size) {
      if (!st.contains(name)) throw error(state_path, "tensor " + name, "missing from the checkpoint");
      const io::tensor_info& info = st.info(name);
      if (info.type != value_dtype || info.shape != shape)
        throw error(state_path, "tensor " + name,
                    "stored as " + std::string(io::dtype_name(info.type)) + " of " + std::to_string(info.numel()) +
                        " values, this model needs " + std::string(io::dtype_name(value_dtype)) + " of " +
                        std::to_string(size));
      st.read_flat(name, std::span<T>(data, static_cast<std::size_t>(size)));
    };
    std::size_t expected = 1;
    opt.visit_state([&](nn::parameter<T>& p, tensor<T, 1>& m, tensor<T, 1>& v) {
      read(p.name, shape_of(p), p.value.data(), p.size());
      read("optimizer.exp_avg." + p.name, shape_of(p), m.data(), m.size());
      read("optimizer.exp_avg_sq." + p.name, shape_of(p), v.data(), v.size());
      expected += 3;
    });
    if (st.size() != expected)
      throw error(
          state_path, "header",
          "holds " + std::to_string(st.size()) + " tensors, this model's trainable state " + std::to_string(expected));
    if (!st.contains("trainer.step_loss") || st.info("trainer.step_loss").type != io::dtype::f64 ||
        st.info("trainer.step_loss").shape != std::vector<index_t>{step})
      throw error(state_path, "tensor trainer.step_loss",
                  "missing, or not F64 of shape (" + std::to_string(step) + ")");
    rep.step_loss = st.to_vector<double>("trainer.step_loss");
    opt.set_steps(static_cast<std::int64_t>(step));
    const io::json& secs = field("seconds");
    const io::json& toks = field("tokens");
    rep.seconds = secs.is_number() ? secs.get<double>() : 0.0;
    rep.tokens = toks.is_number() ? toks.get<double>() : 0.0;
    rep.resumed_from = step;
  }

  // ---- training
  token_nll<Backend, T> nll;
  kl_distillation<Backend, T> kd(cfg.kd_temperature);
  std::vector<T> logits, dlogits, tlogits, tvalues;
  std::vector<std::int32_t> tindices;
  std::vector<std::uint8_t> row_mask;
  std::vector<index_t> order;
  index_t order_epoch = -1;
  const double w_kd = cfg.kd_weight, w_nll = 1.0 - cfg.kd_weight;

  while (step < total) {
    const auto t0 = clock::now();
    if (order_epoch != epoch) {
      order = lm_epoch_order(n, cfg.seed, static_cast<std::uint64_t>(epoch));
      order_epoch = epoch;
    }
    std::vector<lm_batch> micro;
    const index_t m0 = position * cfg.grad_accum, m1 = std::min(micro_per_epoch, m0 + cfg.grad_accum);
    index_t counted = 0, tokens = 0;
    for (index_t m = m0; m < m1; ++m) {
      const index_t r0 = m * cfg.batch_size, r1 = std::min(n, r0 + cfg.batch_size);
      micro.push_back(make_lm_batch(
          examples,
          std::span<const index_t>(order).subspan(static_cast<std::size_t>(r0), static_cast<std::size_t>(r1 - r0)),
          cfg.max_len));
      counted += micro.back().counted;
      tokens += micro.back().tokens;
    }
    nn::zero_grad(model);
    double loss = 0;
    for (std::size_t mi = 0; mi < micro.size(); ++mi) {
      const lm_batch& b = micro[mi];
      const index_t rows = b.rows() * b.columns();
      if constexpr (requires { model.set_context(nn::step_context{}); })
        model.set_context(nn::step_context{true, cfg.seed, static_cast<std::uint64_t>(step * cfg.grad_accum) + mi + 1});
      logits.resize(static_cast<std::size_t>(rows * vocab));
      dlogits.assign(static_cast<std::size_t>(rows * vocab), T(0));
      const matrix_view<T> z(logits.data(), {rows, vocab});
      const matrix_view<T> dz(dlogits.data(), {rows, vocab});
      const tensor_view<const std::int32_t, 2> ids = b.ids.view();
      if (b.counted == 0) continue;  // nothing to learn here: C counts no row of it
      model.forward(be, ids, z);
      const double share = static_cast<double>(b.counted) / static_cast<double>(counted);
      const vector_view<const std::int32_t> targets(b.targets.data(), {rows});
      if (w_nll > 0) {
        loss += w_nll * share * nll.forward(be, matrix_view<const T>(z), targets);
        nll.backward(be, dz, w_nll * share);
      }
      if (w_kd > 0) {
        tlogits.resize(static_cast<std::size_t>(rows * vocab));
        const matrix_view<T> tz(tlogits.data(), {rows, vocab});
        teacher(ids, tz);
        row_mask.resize(static_cast<std::size_t>(rows));
        for (index_t r = 0; r < rows; ++r)
          row_mask[static_cast<std::size_t>(r)] = b.targets[static_cast<std::size_t>(r)] != ignore_target ? 1 : 0;
        double kd_loss = 0;
        if (cfg.kd_top_k > 0) {
          const index_t k = cfg.kd_top_k;
          tvalues.resize(static_cast<std::size_t>(rows * k));
          tindices.resize(static_cast<std::size_t>(rows * k));
          const matrix_view<T> tv(tvalues.data(), {rows, k});
          const matrix_view<std::int32_t> ti(tindices.data(), {rows, k});
          detail::lm_top_k(matrix_view<const T>(tz), std::span<const std::int32_t>(b.targets), k, tv, ti);
          kd_loss = kd.forward_topk(be, matrix_view<const T>(z), matrix_view<const T>(tv),
                                    matrix_view<const std::int32_t>(ti), row_mask);
        } else {
          kd_loss = kd.forward(be, matrix_view<const T>(z), matrix_view<const T>(tz), row_mask);
        }
        loss += w_kd * share * kd_loss;
        kd.backward(be, dz, w_kd * share);
      }
      model.backward(be, matrix_view<const T>(dz));
    }
    const double grad_norm = cfg.clip_norm > 0 ? clip_gradient_norm(model, cfg.clip_norm) : gradient_norm(model);
    const double scale = schedule(static_cast<std::int64_t>(step));
    opt.set_lr_scale(scale);
    opt.step(be);
    const index_t step_epoch = epoch;
    ++step;
    if (++position == per_epoch) {
      ++epoch;
      position = 0;
    }
    const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
    rep.step_loss.push_back(loss);
    rep.seconds += seconds;
    rep.tokens += static_cast<double>(tokens);
    if (checkpointing && ((cfg.checkpoint_every > 0 && step % cfg.checkpoint_every == 0) || step == total)) save();
    const lm_step_event ev{step,           total,     loss,
                           cfg.lr * scale, grad_norm, seconds > 0 ? static_cast<double>(tokens) / seconds : 0.0,
                           step_epoch};
    if constexpr (std::is_constructible_v<bool, std::remove_reference_t<Progress>&>) {
      if (static_cast<bool>(progress)) progress(ev);  // an empty std::function: no callback
    } else {
      progress(ev);
    }
  }
  rep.steps = step;
  return rep;
}

}  // namespace slim::train
