// slim — PEFT LoRA adapter folders (adapter_config.json + adapter_model.safetensors) as PEFT saves and loads
// them: reading and checking the config, exporting a model's LoRA factors, importing them shape-checked.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"
#include "slim/core/tensor_view.hpp"
#include "slim/io/atomic_file.hpp"
#include "slim/io/json.hpp"
#include "slim/io/safetensors.hpp"

// Conventions (PEFT 0.x LoRA, checked against adapters PEFT 0.21 wrote; docs/peft.md):
//   * a folder holds adapter_config.json and adapter_model.safetensors;
//   * the tensor of module M's factor X is "base_model.model." + M + ".lora_X.weight", M the module path inside
//     the *ForCausalLM model ("model.layers.0.self_attn.q_proj"); A is (r, in_features), B (out_features, r),
//     and the adapter adds scale·B·A to the (out, in) base weight, scale = lora_alpha / r (lora_alpha / √r with
//     use_rslora);
//   * target_modules as a list selects a module whose path equals an entry or ends with "." + entry; as a
//     string it is a regular expression that must match the whole path (Python's re.fullmatch), except
//     "all-linear", every linear layer but the output head. slim evaluates a subset of regular expressions
//     (literals, '.', escapes, [classes], groups with '|', quantifiers * + ?) by hand and refuses the rest.
//
// This header sits in the io layer, below nn, so it names no nn type: the model is a template parameter and is
// used through the members nn::decoder_lm has (see `import_peft_adapter`).

namespace slim::io {

/// The fields of adapter_config.json that slim acts on. read_peft_config fills it only for adapters slim can
/// reproduce exactly; every other PEFT feature is refused there.
struct peft_adapter_config {
  std::string path;                         ///< the adapter_config.json it was read from (for messages)
  std::string peft_type = "LORA";           ///< always "LORA"
  std::string task_type;                    ///< "CAUSAL_LM", or empty when the file says null
  std::string base_model_name_or_path;      ///< as written (often relative or a hub id)
  index_t r = 8;                            ///< rank
  double lora_alpha = 8;                    ///< scale numerator
  double lora_dropout = 0;                  ///< dropout on the adapter input while training
  bool use_rslora = false;                  ///< scale = lora_alpha / √r instead of lora_alpha / r
  std::vector<std::string> target_modules;  ///< the list form (empty when target_regex is used)
  std::string target_regex;                 ///< the string form (a full-match regular expression, or "all-linear")
  bool target_is_regex = false;             ///< which of the two forms the file used
  std::string bias = "none";                ///< always "none"

  /// lora_alpha / r, or lora_alpha / √r with rsLoRA.
  double scale() const noexcept {
    return use_rslora ? lora_alpha / std::sqrt(static_cast<double>(r)) : lora_alpha / static_cast<double>(r);
  }
};

/// The model-side LoRA settings (nn::lora_config or any type with rank, alpha, dropout, use_rslora members) of an
/// adapter: build the model with these before import_peft_adapter.
template <class LoraConfig>
LoraConfig to_lora_config(const peft_adapter_config& c) {
  LoraConfig out{};
  out.rank = c.r;
  out.alpha = c.lora_alpha;
  out.dropout = c.lora_dropout;
  out.use_rslora = c.use_rslora;
  return out;
}

namespace detail::peft {

// ---------------------------------------------------------------------------------------------------------------
// A hand-written subset of Python regular expressions, full-match only: literals, '.', escapes (\. \d \w \s and
// their negations, any escaped punctuation), [classes] with ranges and '^', groups (...) and (?:...) with '|',
// quantifiers * + ? (a lazy '?' after them is accepted: it cannot change whether a full match exists), '^' first
// and '$' last. Anything else ({m,n}, backreferences, lookaround, \b, inline flags) is refused by the parser.

struct rx_piece;
using rx_seq = std::vector<rx_piece>;

struct rx_atom {
  enum class kind : std::uint8_t { literal, any, set, group } k = kind::literal;
  char c = 0;
  std::array<bool, 256> in{};  // kind::set
  std::vector<rx_seq> alts;    // kind::group
};

struct rx_piece {
  rx_atom atom;
  int min = 1, max = 1;  // max < 0: unbounded
};

class rx_parser {
 public:
  rx_parser(std::string_view p, const std::string& path) : p_(p), path_(path) {}

  std::vector<rx_seq> parse() {
    if (!p_.empty() && p_.front() == '^') ++i_;
    std::size_t end = p_.size();
    if (end > i_ && p_[end - 1] == '$' && !(end >= 2 && p_[end - 2] == '\\')) --end;
    end_ = end;
    std::vector<rx_seq> alts = parse_alts();
    if (i_ != end_) fail("unbalanced ')'");
    return alts;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw error(path_, "field target_modules",
                "the regular expression \"" + std::string(p_) + "\" uses " + what + " at offset " + std::to_string(i_) +
                    ", which slim does not implement (supported: literals, '.', escapes, [classes], (a|b) groups, "
                    "* + ?); write target_modules as a list of module names instead");
  }
  bool at_end() const noexcept { return i_ >= end_; }

  std::vector<rx_seq> parse_alts() {
    std::vector<rx_seq> alts;
    alts.push_back(parse_seq());
    while (!at_end() && p_[i_] == '|') {
      ++i_;
      alts.push_back(parse_seq());
    }
    return alts;
  }

  rx_seq parse_seq() {
    rx_seq seq;
    while (!at_end() && p_[i_] != '|' && p_[i_] != ')') {
      rx_piece piece;
      piece.atom = parse_atom();
      if (!at_end() && (p_[i_] == '*' || p_[i_] == '+' || p_[i_] == '?')) {
        const char q = p_[i_++];
        piece.min = q == '+' ? 1 : 0;
        piece.max = q == '?' ? 1 : -1;
        if (!at_end() && p_[i_] == '?') ++i_;  // lazy: same full-match result
        if (!at_end() && (p_[i_] == '*' || p_[i_] == '+' || p_[i_] == '?' || p_[i_] == '{'))
          fail("a repeated quantifier");
      }
      if (!at_end() && p_[i_] == '{') fail("a {m,n} quantifier");
      seq.push_back(std::move(piece));
    }
    return seq;
  }

  static void add_escape_class(char e, std::array<bool, 256>& in) {
    for (int ch = 0; ch < 256; ++ch) {
      const auto c = static_cast<unsigned char>(ch);
      const bool digit = c >= '0' && c <= '9';
      const bool word = digit || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
      const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
      bool v = false;
      switch (e) {
        case 'd':
          v = digit;
          break;
        case 'D':
          v = !digit;
          break;
        case 'w':
          v = word;
          break;
        case 'W':
          v = !word;
          break;
        case 's':
          v = space;
          break;
        case 'S':
          v = !space;
          break;
        default:
          break;
      }
      if (v) in[c] = true;
    }
  }
  static bool is_class_escape(char e) noexcept {
    return e == 'd' || e == 'D' || e == 'w' || e == 'W' || e == 's' || e == 'S';
  }
  static bool is_alnum(char e) noexcept {
    return (e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z');
  }

  rx_atom parse_atom() {
    rx_atom a;
    const char c = p_[i_];
    if (c == '(') {
      ++i_;
      if (!at_end() && p_[i_] == '?') {
        if (i_ + 1 < end_ && p_[i_ + 1] == ':')
          i_ += 2;
        else
          fail("a (?...) group other than (?:...)");
      }
      a.k = rx_atom::kind::group;
      a.alts = parse_alts();
      if (at_end() || p_[i_] != ')') fail("an unclosed '('");
      ++i_;
      return a;
    }
    if (c == '[') return parse_set();
    if (c == '.') {
      ++i_;
      a.k = rx_atom::kind::any;
      return a;
    }
    if (c == '\\') {
      if (i_ + 1 >= end_) fail("a trailing '\\'");
      const char e = p_[i_ + 1];
      if (is_class_escape(e)) {
        a.k = rx_atom::kind::set;
        add_escape_class(e, a.in);
      } else if (is_alnum(e)) {
        fail(std::string("the escape \\") + e);
      } else {
        a.c = e;
      }
      i_ += 2;
      return a;
    }
    if (c == '*' || c == '+' || c == '?') fail("a quantifier with nothing to repeat");
    if (c == '^' || c == '$') fail(std::string("an anchor '") + c + "' inside the pattern");
    if (c == '{' || c == '}') fail("a {m,n} quantifier");
    a.c = c;
    ++i_;
    return a;
  }

  rx_atom parse_set() {
    rx_atom a;
    a.k = rx_atom::kind::set;
    ++i_;  // '['
    bool negate = false;
    if (!at_end() && p_[i_] == '^') {
      negate = true;
      ++i_;
    }
    bool first = true;
    while (!at_end() && (p_[i_] != ']' || first)) {
      first = false;
      char lo = p_[i_];
      if (lo == '[') fail("a nested '[' in a class");
      if (lo == '\\') {
        if (i_ + 1 >= end_) fail("a trailing '\\'");
        const char e = p_[i_ + 1];
        i_ += 2;
        if (is_class_escape(e)) {
          add_escape_class(e, a.in);
          continue;
        }
        if (is_alnum(e)) fail(std::string("the escape \\") + e);
        lo = e;
      } else {
        ++i_;
      }
      char hi = lo;
      if (i_ + 1 < end_ && p_[i_] == '-' && p_[i_ + 1] != ']') {
        hi = p_[i_ + 1];
        if (hi == '\\') fail("an escape as a range end");
        i_ += 2;
        if (static_cast<unsigned char>(hi) < static_cast<unsigned char>(lo)) fail("a reversed range");
      }
      for (int ch = static_cast<unsigned char>(lo); ch <= static_cast<unsigned char>(hi); ++ch) a.in[ch] = true;
    }
    if (at_end()) fail("an unclosed '['");
    ++i_;  // ']'
    if (negate)
      for (bool& b : a.in) b = !b;
    return a;
  }

  std::string_view p_;
  const std::string& path_;
  std::size_t i_ = 0, end_ = 0;
};

using rx_cont = std::function<bool(std::size_t)>;

bool rx_match_alts(const std::vector<rx_seq>& alts, std::string_view s, std::size_t pos, const rx_cont& k);

inline bool rx_match_atom(const rx_atom& a, std::string_view s, std::size_t pos, const rx_cont& k) {
  switch (a.k) {
    case rx_atom::kind::literal:
      return pos < s.size() && s[pos] == a.c && k(pos + 1);
    case rx_atom::kind::any:
      return pos < s.size() && s[pos] != '\n' && k(pos + 1);
    case rx_atom::kind::set:
      return pos < s.size() && a.in[static_cast<unsigned char>(s[pos])] && k(pos + 1);
    case rx_atom::kind::group:
      return rx_match_alts(a.alts, s, pos, k);
  }
  return false;
}

inline bool rx_match_seq(const rx_seq& seq, std::size_t i, std::string_view s, std::size_t pos, const rx_cont& k);

// Greedy repetition of seq[i] with `count` copies already matched; an iteration that consumes nothing stops the loop.
inline bool rx_match_repeat(const rx_seq& seq, std::size_t i, int count, std::string_view s, std::size_t pos,
                            const rx_cont& k) {
  const rx_piece& p = seq[i];
  if (p.max < 0 || count < p.max) {
    const rx_cont more = [&](std::size_t next) {
      if (next == pos && count >= p.min) return false;  // an empty iteration only while the minimum is unmet
      return rx_match_repeat(seq, i, count + 1, s, next, k);
    };
    if (rx_match_atom(p.atom, s, pos, more)) return true;
  }
  return count >= p.min && rx_match_seq(seq, i + 1, s, pos, k);
}

inline bool rx_match_seq(const rx_seq& seq, std::size_t i, std::string_view s, std::size_t pos, const rx_cont& k) {
  if (i == seq.size()) return k(pos);
  return rx_match_repeat(seq, i, 0, s, pos, k);
}

inline bool rx_match_alts(const std::vector<rx_seq>& alts, std::string_view s, std::size_t pos, const rx_cont& k) {
  for (const rx_seq& seq : alts)
    if (rx_match_seq(seq, 0, s, pos, k)) return true;
  return false;
}

/// True when the pattern matches the whole of `s`.
inline bool rx_full_match(const std::vector<rx_seq>& rx, std::string_view s) {
  return rx_match_alts(rx, s, 0, [&](std::size_t end) { return end == s.size(); });
}

// ---------------------------------------------------------------------------------------------------------------
// adapter_config.json fields

inline bool is_null_or_empty(const json& v) noexcept {
  return v.is_null() || ((v.is_object() || v.is_array() || v.is_string()) && v.empty());
}

[[noreturn]] inline void refuse(const std::string& path, const std::string& field, const std::string& message) {
  throw error(path, "field " + field, message);
}

inline std::string shown(const json& v) {
  std::string s = v.dump();
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

/// The seven projections of a LLaMA block, the modules slim can adapt.
inline constexpr std::array<std::string_view, 7> projection_names = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                                     "gate_proj", "up_proj", "down_proj"};

inline std::string_view last_component(std::string_view module) noexcept {
  const std::size_t dot = module.rfind('.');
  return dot == std::string_view::npos ? module : module.substr(dot + 1);
}

inline bool is_projection(std::string_view module) noexcept {
  const std::string_view last = last_component(module);
  return std::find(projection_names.begin(), projection_names.end(), last) != projection_names.end();
}

inline std::string shape_text(index_t a, index_t b) { return "(" + std::to_string(a) + ", " + std::to_string(b) + ")"; }
inline std::string shape_text(const std::vector<index_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

/// Writes a number as PEFT's JSON does: an integer when it is one.
inline json number(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::abs(v) < 9.0e15) return json(static_cast<std::int64_t>(v));
  return json(v);
}

inline void make_directory(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0777) == 0) return;
  const int e = errno;
  struct stat st {};
  if (e == EEXIST && ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return;
  throw error(dir, "", "cannot create the adapter folder: " + std::string(std::strerror(e)));
}

}  // namespace detail::peft

/// Reads dir/adapter_config.json and checks that slim can reproduce the adapter exactly. Refused, each with
/// slim::error(path, "field <name>", what slim does not implement): peft_type other than "LORA"; use_dora;
/// fan_in_fan_out; bias other than "none"; lora_bias; modules_to_save; non-empty rank_pattern or alpha_pattern;
/// layers_to_transform, layers_pattern, exclude_modules, target_parameters, trainable_token_indices,
/// layer_replication, megatron_config, alora_invocation_tokens, use_qalora, arrow_config; init_lora_weights
/// "loftq", "pissa…", "olora", "corda" (they rewrite the base weights, so the adapter does not apply to the
/// original base); a missing or ill-typed r, lora_alpha or target_modules; a regex target_modules outside the
/// subset above. Fields slim does not know are ignored (PEFT adds fields in new versions).
inline peft_adapter_config read_peft_config(const std::string& dir) {
  namespace dp = detail::peft;
  peft_adapter_config c;
  c.path = dir + "/adapter_config.json";
  const json j = read_json(c.path);
  const std::string& p = c.path;
  if (!j.is_object()) throw error(p, "", "adapter_config.json must hold a JSON object");
  const auto field = [&](const char* name) -> const json* {
    const auto it = j.find(name);
    return it == j.end() ? nullptr : &*it;
  };

  // peft_type
  if (const json* v = field("peft_type"); v != nullptr) {
    if (!v->is_string()) dp::refuse(p, "peft_type", "must be a string, got " + dp::shown(*v));
    c.peft_type = v->get<std::string>();
    if (c.peft_type != "LORA")
      dp::refuse(p, "peft_type", "is \"" + c.peft_type + "\"; slim implements LoRA adapters only (\"LORA\")");
  }
  if (const json* v = field("task_type"); v != nullptr && !v->is_null()) {
    if (!v->is_string()) dp::refuse(p, "task_type", "must be a string or null, got " + dp::shown(*v));
    c.task_type = v->get<std::string>();
    if (c.task_type != "CAUSAL_LM")
      dp::refuse(p, "task_type", "is \"" + c.task_type + "\"; slim's decoder is a causal LM (\"CAUSAL_LM\" or null)");
  }
  if (const json* v = field("base_model_name_or_path"); v != nullptr && v->is_string())
    c.base_model_name_or_path = v->get<std::string>();

  // r, lora_alpha, lora_dropout, use_rslora
  const json* r = field("r");
  if (r == nullptr || !r->is_number_integer() || r->get<std::int64_t>() <= 0)
    dp::refuse(p, "r", r == nullptr ? "missing" : "must be a positive integer, got " + dp::shown(*r));
  c.r = static_cast<index_t>(r->get<std::int64_t>());
  const json* alpha = field("lora_alpha");
  if (alpha == nullptr || !alpha->is_number() || !std::isfinite(alpha->get<double>()))
    dp::refuse(p, "lora_alpha", alpha == nullptr ? "missing" : "must be a finite number, got " + dp::shown(*alpha));
  c.lora_alpha = alpha->get<double>();
  if (const json* v = field("lora_dropout"); v != nullptr && !v->is_null()) {
    if (!v->is_number() || !(v->get<double>() >= 0 && v->get<double>() < 1))
      dp::refuse(p, "lora_dropout", "must be a number in [0, 1), got " + dp::shown(*v));
    c.lora_dropout = v->get<double>();
  }
  if (const json* v = field("use_rslora"); v != nullptr && !v->is_null()) {
    if (!v->is_boolean()) dp::refuse(p, "use_rslora", "must be true or false, got " + dp::shown(*v));
    c.use_rslora = v->get<bool>();
  }

  // Features slim does not implement.
  const auto refuse_true = [&](const char* name, const char* what) {
    if (const json* v = field(name); v != nullptr && !v->is_null() && !(v->is_boolean() && !v->get<bool>()))
      dp::refuse(p, name, "is " + dp::shown(*v) + "; slim does not implement " + what);
  };
  refuse_true("use_dora", "DoRA (weight-decomposed LoRA)");
  refuse_true("fan_in_fan_out", "fan_in_fan_out (Conv1D-style (in, out) base weights, as in GPT-2)");
  refuse_true("lora_bias", "a trainable bias on lora_B");
  refuse_true("use_qalora", "QA-LoRA");
  if (const json* v = field("bias"); v != nullptr && !v->is_null()) {
    if (!v->is_string()) dp::refuse(p, "bias", "must be a string, got " + dp::shown(*v));
    c.bias = v->get<std::string>();
    if (c.bias != "none")
      dp::refuse(p, "bias",
                 "is \"" + c.bias + "\"; slim does not implement trained biases in an adapter (\"none\" only)");
  }
  const auto refuse_set = [&](const char* name, const char* what) {
    if (const json* v = field(name); v != nullptr && !dp::is_null_or_empty(*v))
      dp::refuse(p, name, "is " + dp::shown(*v) + "; slim does not implement " + what);
  };
  refuse_set("modules_to_save", "modules_to_save (fully trained extra modules stored with the adapter)");
  refuse_set("rank_pattern", "per-module ranks (rank_pattern): every adapted module has rank r");
  refuse_set("alpha_pattern", "per-module alphas (alpha_pattern): every adapted module has lora_alpha");
  refuse_set("layers_to_transform", "adapting a subset of the layers (layers_to_transform)");
  refuse_set("layers_pattern", "layers_pattern");
  refuse_set("exclude_modules", "exclude_modules");
  refuse_set("target_parameters", "LoRA on parameters (target_parameters)");
  refuse_set("trainable_token_indices", "trainable token embeddings (trainable_token_indices)");
  refuse_set("layer_replication", "layer replication");
  refuse_set("megatron_config", "Megatron-parallel LoRA layers");
  refuse_set("alora_invocation_tokens", "activated LoRA (aLoRA)");
  refuse_set("arrow_config", "Arrow routing");
  if (const json* v = field("init_lora_weights"); v != nullptr && v->is_string()) {
    const std::string init = v->get<std::string>();
    if (init == "loftq" || init.starts_with("pissa") || init == "olora" || init == "corda")
      dp::refuse(p, "init_lora_weights",
                 "is \"" + init +
                     "\"; that initialisation rewrites the base weights, so the adapter does not apply to the "
                     "original base model, and slim does not implement it (convert the adapter to plain LoRA in PEFT "
                     "first)");
  }

  // target_modules
  const json* t = field("target_modules");
  if (t == nullptr || t->is_null()) dp::refuse(p, "target_modules", "missing: the adapter names no modules");
  if (t->is_string()) {
    c.target_is_regex = true;
    c.target_regex = t->get<std::string>();
    if (c.target_regex != "all-linear") (void)dp::rx_parser(c.target_regex, p).parse();  // refuses what it lacks
  } else if (t->is_array()) {
    if (t->empty()) dp::refuse(p, "target_modules", "is an empty list: the adapter names no modules");
    for (const json& e : *t) {
      if (!e.is_string() || e.get<std::string>().empty())
        dp::refuse(p, "target_modules", "entries must be non-empty strings, got " + dp::shown(e));
      c.target_modules.push_back(e.get<std::string>());
    }
  } else {
    dp::refuse(p, "target_modules", "must be a list of module names or a string, got " + dp::shown(*t));
  }
  return c;
}

/// Writes `model`'s LoRA factors as a PEFT adapter folder `dir` (created when absent; one level):
/// adapter_model.safetensors (F32, keys "base_model.model.<module>.lora_A.weight" (r, in) and ".lora_B.weight"
/// (out, r), metadata {"format": "pt"}) and adapter_config.json (peft_type LORA, task_type CAUSAL_LM, r,
/// lora_alpha, lora_dropout, use_rslora, target_modules = the adapted projection names, bias "none",
/// fan_in_fan_out false, use_dora false, base_model_name_or_path, …), each file written atomically (the pair is
/// not: the config is written last, so a folder with a config is complete). PEFT's
/// PeftModel.from_pretrained(base, dir) loads it. A model without adapters (no_adapter) throws slim::error.
/// Model: nn::decoder_lm (uses visit_adapters and adapter_config(); it reads the model only).
template <class Model>
void export_peft_adapter(const Model& model, const std::string& dir, const std::string& base_model_name_or_path = "") {
  namespace dp = detail::peft;
  // visit_adapters is not const in nn::decoder_lm; nothing below writes through `m`.
  Model& m = const_cast<Model&>(model);
  const auto lc = m.adapter_config();
  std::vector<tensor_entry> entries;
  std::set<std::string> targets;
  index_t rank = -1;
  m.visit_adapters([&](auto& p) {
    using value_type = std::remove_cv_t<std::remove_reference_t<decltype(*p.value.data())>>;
    entries.push_back(entry_of<value_type, 2>("base_model.model." + p.name,
                                              tensor_view<const value_type, 2>(p.value.data(), {p.rows, p.cols})));
    const std::string_view name = p.name;
    const std::size_t cut = name.rfind(".lora_");
    if (cut != std::string_view::npos) targets.insert(std::string(dp::last_component(name.substr(0, cut))));
    if (name.ends_with(".lora_A.weight")) rank = p.rows;
  });
  if (entries.empty())
    throw error(dir, "", "the model has no LoRA adapter to export (built with no_adapter, or no target projection)");
  if (rank != lc.rank)
    throw error(dir, "",
                "the model's LoRA factors have rank " + std::to_string(rank) + ", its lora_config says " +
                    std::to_string(lc.rank));
  dp::make_directory(dir);
  write_safetensors(dir + "/adapter_model.safetensors", entries, {{"format", "pt"}});

  json c = json::object();
  c["alpha_pattern"] = json::object();
  c["auto_mapping"] = nullptr;
  c["base_model_name_or_path"] = base_model_name_or_path.empty() ? json(nullptr) : json(base_model_name_or_path);
  c["bias"] = "none";
  c["fan_in_fan_out"] = false;
  c["inference_mode"] = true;
  c["init_lora_weights"] = true;
  c["layers_pattern"] = nullptr;
  c["layers_to_transform"] = nullptr;
  c["lora_alpha"] = dp::number(lc.alpha);
  c["lora_dropout"] = lc.dropout;
  c["modules_to_save"] = nullptr;
  c["peft_type"] = "LORA";
  c["r"] = static_cast<std::int64_t>(lc.rank);
  c["rank_pattern"] = json::object();
  c["revision"] = nullptr;
  c["target_modules"] = std::vector<std::string>(targets.begin(), targets.end());
  c["task_type"] = "CAUSAL_LM";
  c["use_dora"] = false;
  c["use_rslora"] = lc.use_rslora;
  write_json(dir + "/adapter_config.json", c, 2);
}

/// Whether `c.target_modules` selects the module at dotted path `module` (e.g. "model.layers.0.self_attn.q_proj")
/// under PEFT's rule: a list entry equals the path or its last dotted components; a string is a full-match
/// regular expression (the subset read_peft_config accepts), or "all-linear" (every one of the seven projections).
inline bool peft_selects(const peft_adapter_config& c, std::string_view module) {
  namespace dp = detail::peft;
  if (c.target_is_regex) {
    if (c.target_regex == "all-linear") return dp::is_projection(module);
    return dp::rx_full_match(dp::rx_parser(c.target_regex, c.path).parse(), module);
  }
  for (const std::string& t : c.target_modules)
    if (module == t || (module.size() > t.size() && module.ends_with(t) && module[module.size() - t.size() - 1] == '.'))
      return true;
  return false;
}

/// Reads a PEFT adapter folder into `model`'s LoRA factors, checking first (nothing is written into the model
/// unless every check passes):
///   * adapter_config.json as read_peft_config checks it;
///   * r, lora_alpha and use_rslora equal the model's lora_config (build the model with
///     to_lora_config<nn::lora_config>(read_peft_config(dir))); lora_dropout is a training setting and the model
///     keeps its own;
///   * target_modules selects at least one module; every selected module is one the model adapts (a projection
///     the model's Adapter policy leaves alone, or a module that is not one of the seven projections, is an
///     error saying which); every module the model adapts is selected;
///   * adapter_model.safetensors holds, for each adapted module M, "base_model.model.M.lora_A.weight" of shape
///     (r, in) and "…lora_B.weight" of shape (out, r), (out, in) being M's base weight, in a floating dtype
///     (F32, F16, BF16, F64; converted); a missing, transposed or mis-shaped factor, or a tensor the model has no
///     place for (e.g. DoRA's lora_magnitude_vector), throws slim::error naming the file and the tensor.
/// Merged adapters are unmerged first (the model is left unmerged).
/// Model: nn::decoder_lm (visit_base_parameters, visit_adapters, adapter_config(), unmerge_adapters()).
template <class Model>
void import_peft_adapter(Model& model, const std::string& dir) {
  namespace dp = detail::peft;
  const peft_adapter_config c = read_peft_config(dir);
  const std::string& cpath = c.path;
  const auto lc = model.adapter_config();

  bool has_adapters = false;
  model.visit_adapters([&](auto&) { has_adapters = true; });
  if (!has_adapters)
    throw error(cpath, "",
                "the model has no LoRA adapter (built with no_adapter): build it with lora<...> on the "
                "projections the adapter targets");
  if (c.r != lc.rank)
    dp::refuse(cpath, "r",
               "is " + std::to_string(c.r) + " but the model was built with rank " + std::to_string(lc.rank) +
                   "; build the model with io::to_lora_config(io::read_peft_config(dir))");
  if (c.lora_alpha != lc.alpha)
    dp::refuse(cpath, "lora_alpha",
               "is " + dp::shown(json(c.lora_alpha)) + " but the model was built with alpha " +
                   dp::shown(json(static_cast<double>(lc.alpha))) +
                   "; build the model with io::to_lora_config(io::read_peft_config(dir))");
  if (c.use_rslora != lc.use_rslora)
    dp::refuse(cpath, "use_rslora",
               std::string("is ") + (c.use_rslora ? "true" : "false") + " but the model was built with use_rslora " +
                   (lc.use_rslora ? "true" : "false") +
                   "; build the model with io::to_lora_config(io::read_peft_config(dir))");

  // The model's modules: every base parameter's module and all its ancestors; the (out, in) shape of each
  // module's weight; the adapted modules with their factors.
  std::map<std::string, std::pair<index_t, index_t>> weight_shape;
  std::set<std::string> modules;
  model.visit_base_parameters([&](auto& p) {
    const std::string_view name = p.name;
    const std::size_t dot = name.rfind('.');
    if (dot == std::string_view::npos) return;
    const std::string module(name.substr(0, dot));
    if (p.rank == 2 && name.substr(dot + 1) == "weight") weight_shape[module] = {p.rows, p.cols};
    for (std::string m = module;;) {
      modules.insert(m);
      const std::size_t up = m.rfind('.');
      if (up == std::string::npos) break;
      m.resize(up);
    }
  });
  using param_ptr = void*;
  std::map<std::string, std::pair<param_ptr, param_ptr>> adapted;  // module → (A, B)
  model.visit_adapters([&](auto& p) {
    const std::string_view name = p.name;
    const std::size_t cut = name.rfind(".lora_");
    if (cut == std::string_view::npos) return;
    auto& slot = adapted[std::string(name.substr(0, cut))];
    (name.ends_with(".lora_A.weight") ? slot.first : slot.second) = static_cast<param_ptr>(&p);
  });

  // target_modules → selected modules (PEFT's rule).
  std::vector<dp::rx_seq> rx;
  if (c.target_is_regex && c.target_regex != "all-linear") rx = dp::rx_parser(c.target_regex, cpath).parse();
  const auto selected = [&](const std::string& module) {
    if (c.target_is_regex) {
      if (c.target_regex == "all-linear") return weight_shape.count(module) > 0 && dp::is_projection(module);
      return dp::rx_full_match(rx, module);
    }
    for (const std::string& t : c.target_modules)
      if (module == t ||
          (module.size() > t.size() && module.ends_with(t) && module[module.size() - t.size() - 1] == '.'))
        return true;
    return false;
  };
  std::set<std::string> chosen;
  for (const std::string& module : modules)
    if (selected(module)) chosen.insert(module);
  const std::string targets_text = c.target_is_regex ? "\"" + c.target_regex + "\"" : dp::shown(json(c.target_modules));
  if (chosen.empty())
    dp::refuse(cpath, "target_modules",
               targets_text +
                   " matches no module of the model (PEFT matches a list entry against the end of a "
                   "module path such as model.layers.0.self_attn.q_proj, and a string as a regular "
                   "expression against the whole path)");
  for (const std::string& module : chosen) {
    if (adapted.count(module)) continue;
    if (dp::is_projection(module) && weight_shape.count(module))
      dp::refuse(cpath, "target_modules",
                 targets_text + " selects " + module + ", but the model's Adapter policy does not adapt " +
                     std::string(dp::last_component(module)) + ": build the model with lora<..., " +
                     std::string(dp::last_component(module)) + ">");
    dp::refuse(cpath, "target_modules",
               targets_text + " selects " + module +
                   ", which slim cannot adapt: slim implements LoRA on the seven projections (q_proj, k_proj, "
                   "v_proj, o_proj, gate_proj, up_proj, down_proj) only");
  }
  for (const auto& [module, factors] : adapted)
    if (!chosen.count(module))
      dp::refuse(cpath, "target_modules",
                 targets_text + " does not select " + module +
                     ", which the model's Adapter policy adapts: build the model with lora<...> on exactly the "
                     "targeted projections");

  // The tensors: presence, dtype and shape against the base weight, then read into staging buffers.
  const std::string spath = dir + "/adapter_model.safetensors";
  const safetensors_file f(spath);
  std::set<std::string> used;
  struct staged {
    void* param;
    std::vector<double> values;
  };
  std::vector<staged> stage;
  for (const auto& [module, factors] : adapted) {
    const auto ws = weight_shape.find(module);
    if (ws == weight_shape.end())
      throw error(spath, "module " + module, "the model adapts it but has no base weight for it");
    const index_t out = ws->second.first, in = ws->second.second;
    for (int which = 0; which < 2; ++which) {
      const std::string key = "base_model.model." + module + (which == 0 ? ".lora_A.weight" : ".lora_B.weight");
      const index_t rows = which == 0 ? c.r : out, cols = which == 0 ? in : c.r;
      if (!f.contains(key))
        throw error(spath, "tensor " + key,
                    std::string("missing: adapter_config.json targets ") + module +
                        ", so the file must hold its lora_" + (which == 0 ? "A" : "B") + " " +
                        dp::shape_text(rows, cols));
      const tensor_info& ti = f.info(key);
      if (!is_floating(ti.type))
        throw error(spath, "tensor " + key,
                    "stored as " + std::string(dtype_name(ti.type)) + "; a LoRA factor must be F32, F16, BF16 or F64");
      const bool ok = ti.shape.size() == 2 && ti.shape[0] == rows && ti.shape[1] == cols;
      if (!ok) {
        const bool transposed = ti.shape.size() == 2 && ti.shape[0] == cols && ti.shape[1] == rows;
        throw error(spath, "tensor " + key,
                    "stored shape " + dp::shape_text(ti.shape) + " but " + module + ".weight is " +
                        dp::shape_text(out, in) + " (out, in) and r = " + std::to_string(c.r) + ", so lora_" +
                        (which == 0 ? "A must be (r, in) = " : "B must be (out, r) = ") + dp::shape_text(rows, cols) +
                        (transposed ? "; the factor is transposed (slim does not guess: a transposed factor would "
                                      "load as a wrong model)"
                                    : ""));
      }
      staged s{which == 0 ? factors.first : factors.second, std::vector<double>(static_cast<std::size_t>(rows * cols))};
      f.read(key, tensor_view<double, 2>(s.values.data(), {rows, cols}));
      stage.push_back(std::move(s));
      used.insert(key);
    }
  }
  for (const std::string& name : f.names())
    if (!used.count(name)) {
      const bool dora = name.find("lora_magnitude_vector") != std::string::npos;
      throw error(spath, "tensor " + name,
                  dora ? std::string("a DoRA magnitude vector: slim does not implement DoRA")
                       : std::string("the model has no place for it (adapter_config.json does not target its module, "
                                     "or slim does not implement that kind of tensor)"));
    }

  // Every check passed: write the factors.
  if constexpr (requires { model.unmerge_adapters(); }) model.unmerge_adapters();
  model.visit_adapters([&](auto& p) {
    using value_type = std::remove_reference_t<decltype(*p.value.data())>;
    for (const staged& s : stage)
      if (s.param == static_cast<void*>(&p))
        for (std::size_t k = 0; k < s.values.size(); ++k) p.value.data()[k] = static_cast<value_type>(s.values[k]);
  });
}

}  // namespace slim::io
