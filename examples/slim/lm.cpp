// `slim lm`: the student language model and the text encoder from the command line — logits of a token
// sequence, generation, LoRA or full fine-tuning from JSON Lines, and sentence embeddings. DIR is an HF
// checkpoint folder (config.json + model.safetensors or shards). Results go to stdout as one JSON object,
// progress and errors to stderr; a bad command line exits with 2, any other failure with 1.
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "backends.hpp"
#include "commands.hpp"
#include "slim/core/error.hpp"
#include "slim/core/thread_pool.hpp"
#include "slim/io/hf_checkpoint.hpp"
#include "slim/io/llama_config.hpp"
#include "slim/io/peft.hpp"
#include "slim/io/safetensors.hpp"
#include "slim/nn/decoder_lm.hpp"
#include "slim/nn/generate.hpp"
#include "slim/nn/sentence_encoder.hpp"
#include "slim/text/load.hpp"
#include "slim/train/lm_data.hpp"
#include "slim/train/lm_trainer.hpp"
#include "parse.hpp"
#include "str.hpp"


namespace slim::cli {
namespace {

constexpr const char* lm_usage =
    "usage: slim lm <logits|generate|train|embed> --model DIR [options]\n"
    "  slim lm logits --model DIR --ids 5,17,250 [--adapter DIR]\n"
    "      {\"logits\": [[V floats], ...]}: one row per input position\n"
    "  slim lm generate --model DIR (--ids 5,17 | --prompt TEXT) [options]\n"
    "      {\"ids\": [new tokens]} (+ \"text\" with --prompt)\n"
    "      --max-new-tokens N  (default 16)      --greedy (the default unless a sampling option is given)\n"
    "      --temperature T --top-k K --top-p P   sample (defaults 1, 0: off, 1: off)\n"
    "      --seed S            sampling seed (default 0)\n"
    "      --stop-id ID        stop token, repeatable (default: the model's eos_token_id)\n"
    "      --ignore-eos        no default stop token\n"
    "      --adapter DIR       a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors)\n"
    "  slim lm train --model DIR --data FILE.jsonl --out DIR [options]\n"
    "      JSON Lines {\"prompt\": ..., \"completion\": ...} (token ids, or text when DIR has a tokenizer);\n"
    "      the loss counts completion tokens only. --out receives the result, a PEFT adapter (LoRA) or an\n"
    "      HF checkpoint (--full), and the trainer state: the same command run again resumes from it.\n"
    "      Progress on stderr.\n"
    "      --lora q,v          LoRA targets: q,v | q,k,v,o | all (q,k,v,o,gate,up,down) (default q,v)\n"
    "      --rank R --alpha A  LoRA rank (8) and alpha (16)   --lora-dropout P (0)   --rslora\n"
    "      --full              full fine-tuning instead of LoRA\n"
    "      --epochs N (1) --max-steps N (0: epochs decide) --batch B (8) --grad-accum G (1)\n"
    "      --lr X (2e-4) --warmup N (0) --max-len L (256, or the model's positions if fewer) --seed S (0)\n"
    "      --save-every N      save the trainer state every N steps (default 100; 0: at the end only)\n"
    "  slim lm embed --model DIR (--text S ... | JSON Lines {\"text\": ...} on stdin) [options]\n"
    "      {\"embeddings\": [[H floats], ...]} from a BERT-family sentence encoder\n"
    "      --pooling mean|cls  (default: the folder's sentence-transformers settings, else mean)\n"
    "      --normalize         L2-normalise (default: as the folder says)\n"
    "  every command: --backend auto|scalar|sse2|avx2|avx512 (default auto)  --threads T (default 1)\n";

// ---------------------------------------------------------------------------------------------------------
// Options

struct lm_options {
  std::string command;
  std::string model, adapter, data, out, prompt, backend = "auto", lora = "q,v", pooling;
  std::vector<std::int32_t> ids, stop_ids;
  std::vector<std::string> texts;
  bool have_ids = false, greedy = false, sampling = false, ignore_eos = false, full = false, rslora = false,
       normalize = false;
  long long max_new_tokens = 16, top_k = 0, seed = 0, threads = 1, rank = 8, epochs = 1, max_steps = 0, batch = 8,
            grad_accum = 1, warmup = 0, max_len = 256, save_every = 100;
  double temperature = 1.0, top_p = 1.0, alpha = 16, lora_dropout = 0, lr = 2e-4;
  std::vector<std::string> given;  // option names seen, for the per-command check
};

/// "5,17,250" → {5, 17, 250}; every entry a non-negative 32-bit integer.
std::vector<std::int32_t> parse_ids(std::string_view name, std::string_view s) {
  std::vector<std::int32_t> ids;
  for (std::size_t pos = 0;;) {
    const std::size_t comma = std::min(s.find(',', pos), s.size());
    const std::string_view item = s.substr(pos, comma - pos);
    std::int32_t v = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc{} || end != item.data() + item.size() || v < 0)
      throw usage_error(str(name, " wants comma-separated token ids (integers >= 0), not '", s, "'"));
    ids.push_back(v);
    if (comma == s.size()) break;
    pos = comma + 1;
  }
  return ids;
}

/// The options each subcommand accepts (besides --backend and --threads).
bool accepts(std::string_view command, std::string_view option) {
  static constexpr auto common = std::to_array<std::string_view>({"--model", "--backend", "--threads"});
  static constexpr auto logits = std::to_array<std::string_view>({"--ids", "--adapter"});
  static constexpr auto generate =
      std::to_array<std::string_view>({"--ids", "--prompt", "--adapter", "--max-new-tokens", "--greedy",
                                       "--temperature", "--top-k", "--top-p", "--seed", "--stop-id", "--ignore-eos"});
  static constexpr auto train = std::to_array<std::string_view>(
      {"--data", "--out", "--lora", "--rank", "--alpha", "--lora-dropout", "--rslora", "--full", "--epochs",
       "--max-steps", "--batch", "--grad-accum", "--lr", "--warmup", "--max-len", "--seed", "--save-every"});
  static constexpr auto embed = std::to_array<std::string_view>({"--text", "--pooling", "--normalize"});
  const auto in = [&](const auto& list) { return std::find(list.begin(), list.end(), option) != list.end(); };
  if (in(common)) return true;
  if (command == "logits") return in(logits);
  if (command == "generate") return in(generate);
  if (command == "train") return in(train);
  if (command == "embed") return in(embed);
  return false;
}

lm_options parse_lm(std::string_view command, args a) {
  lm_options o;
  o.command = command;
  constexpr long long big = 1000000000;
  for (option_reader r(a); r.next();) {
    const std::string_view name = r.name();
    const bool known_flag =
        name == "--greedy" || name == "--ignore-eos" || name == "--full" || name == "--rslora" || name == "--normalize";
    static constexpr auto known_valued = std::to_array<std::string_view>(
        {"--model",   "--adapter",     "--data",    "--out",       "--prompt",         "--backend",    "--lora",
         "--pooling", "--ids",         "--stop-id", "--text",      "--max-new-tokens", "--top-k",      "--seed",
         "--threads", "--rank",        "--epochs",  "--max-steps", "--batch",          "--grad-accum", "--warmup",
         "--max-len", "--temperature", "--top-p",   "--alpha",     "--lora-dropout",   "--lr",         "--save-every"});
    const bool known_value = std::find(known_valued.begin(), known_valued.end(), name) != known_valued.end();
    if (!known_flag && !known_value) throw usage_error(str("unknown option '", name, "'"));
    if (!accepts(command, name)) throw usage_error(str(name, " does not apply to `lm ", command, "`"));
    o.given.emplace_back(name);
    if (known_flag) {
      r.no_value();
      if (name == "--greedy") o.greedy = true;
      if (name == "--ignore-eos") o.ignore_eos = true;
      if (name == "--full") o.full = true;
      if (name == "--rslora") o.rslora = true;
      if (name == "--normalize") o.normalize = true;
      continue;
    }
    const std::string_view value = r.value();
    if (name == "--model")
      o.model = value;
    else if (name == "--adapter")
      o.adapter = value;
    else if (name == "--data")
      o.data = value;
    else if (name == "--out")
      o.out = value;
    else if (name == "--prompt")
      o.prompt = value;
    else if (name == "--backend")
      o.backend = value;
    else if (name == "--lora")
      o.lora = value;
    else if (name == "--pooling")
      o.pooling = value;
    else if (name == "--text")
      o.texts.emplace_back(value);
    else if (name == "--ids") {
      o.ids = parse_ids(name, value);
      o.have_ids = true;
    } else if (name == "--stop-id") {
      for (std::int32_t id : parse_ids(name, value)) o.stop_ids.push_back(id);
    } else if (name == "--max-new-tokens")
      o.max_new_tokens = parse_int(name, value, 0, big);
    else if (name == "--top-k") {
      o.top_k = parse_int(name, value, 0, big);
      o.sampling = true;
    } else if (name == "--temperature") {
      o.temperature = parse_real(name, value, 0, 1e6);
      o.sampling = true;
    } else if (name == "--top-p") {
      o.top_p = parse_real(name, value, 1e-12, 1);
      o.sampling = true;
    } else if (name == "--seed")
      o.seed = parse_int(name, value, 0, (1LL << 62));
    else if (name == "--threads")
      o.threads = parse_int(name, value, 1, 1024);
    else if (name == "--rank")
      o.rank = parse_int(name, value, 1, 65536);
    else if (name == "--epochs")
      o.epochs = parse_int(name, value, 1, big);
    else if (name == "--max-steps")
      o.max_steps = parse_int(name, value, 0, big);
    else if (name == "--batch")
      o.batch = parse_int(name, value, 1, big);
    else if (name == "--grad-accum")
      o.grad_accum = parse_int(name, value, 1, big);
    else if (name == "--warmup")
      o.warmup = parse_int(name, value, 0, big);
    else if (name == "--save-every")
      o.save_every = parse_int(name, value, 0, big);
    else if (name == "--max-len")
      o.max_len = parse_int(name, value, 2, 1 << 24);
    else if (name == "--alpha")
      o.alpha = parse_real(name, value, 1e-12, 1e9);
    else if (name == "--lora-dropout")
      o.lora_dropout = parse_real(name, value, 0, 0.999);
    else if (name == "--lr")
      o.lr = parse_real(name, value, 0, 1e3);
  }
  if (o.model.empty()) throw usage_error(str("lm ", command, " needs --model DIR"));
  check_backend_name(o.backend);
  if (command == "logits" && !o.have_ids) throw usage_error("lm logits needs --ids 5,17,...");
  if (command == "generate") {
    if (o.have_ids == !o.prompt.empty()) throw usage_error("lm generate needs one of --ids 5,17,... or --prompt TEXT");
    if (o.greedy && o.sampling) throw usage_error("--greedy does not combine with --temperature, --top-k or --top-p");
    if (o.ignore_eos && !o.stop_ids.empty()) throw usage_error("--ignore-eos does not combine with --stop-id");
  }
  if (command == "train") {
    if (o.data.empty()) throw usage_error("lm train needs --data FILE.jsonl");
    if (o.out.empty()) throw usage_error("lm train needs --out DIR");
    const auto given = [&](std::string_view n) {
      return std::find(o.given.begin(), o.given.end(), n) != o.given.end();
    };
    if (o.full)
      for (std::string_view n : {"--lora", "--rank", "--alpha", "--lora-dropout", "--rslora"})
        if (given(n)) throw usage_error(str(n, " does not combine with --full"));
  }
  if (command == "embed" && !o.pooling.empty() && o.pooling != "mean" && o.pooling != "cls")
    throw usage_error(str("--pooling wants mean or cls, not '", o.pooling, "'"));
  return o;
}

// ---------------------------------------------------------------------------------------------------------
// Adapter policies

using nn::projection;
constexpr unsigned bit(projection p) { return 1u << static_cast<unsigned>(p); }
constexpr unsigned targets_qv = bit(projection::q_proj) | bit(projection::v_proj);
constexpr unsigned targets_qkvo = targets_qv | bit(projection::k_proj) | bit(projection::o_proj);
constexpr unsigned targets_all =
    targets_qkvo | bit(projection::gate_proj) | bit(projection::up_proj) | bit(projection::down_proj);

using lora_qv = nn::lora<nn::q_proj, nn::v_proj>;
using lora_qkvo = nn::lora<nn::q_proj, nn::k_proj, nn::v_proj, nn::o_proj>;
using lora_all = nn::lora<nn::q_proj, nn::k_proj, nn::v_proj, nn::o_proj, nn::gate_proj, nn::up_proj, nn::down_proj>;

/// The LoRA target set that `--lora` names: short (q, k, v, o, gate, up, down) or HF (q_proj, ...) names, or "all".
[[maybe_unused]] unsigned parse_targets(std::string_view s) {
  unsigned mask = 0;
  for (std::size_t pos = 0;;) {
    const std::size_t comma = std::min(s.find(',', pos), s.size());
    std::string_view item = s.substr(pos, comma - pos);
    if (item == "all") {
      mask |= targets_all;
    } else {
      if (item.ends_with("_proj")) item.remove_suffix(5);
      bool found = false;
      for (int p = 0; p < 7; ++p) {
        std::string_view full = nn::projection_name(static_cast<projection>(p));
        full.remove_suffix(5);
        if (item == full) {
          mask |= bit(static_cast<projection>(p));
          found = true;
        }
      }
      if (!found)
        throw usage_error(str("--lora: '", item, "' is not a projection (q, k, v, o, gate, up, down or all)"));
    }
    if (comma == s.size()) break;
    pos = comma + 1;
  }
  return mask;
}

std::string targets_name(unsigned mask) {
  std::string s;
  for (int p = 0; p < 7; ++p)
    if (mask & bit(static_cast<projection>(p)))
      s += str(s.empty() ? "" : ",", nn::projection_name(static_cast<projection>(p)));
  return s;
}

/// Calls f.template operator()<Policy>() for the adapter policy compiled for `mask` (0: no adapter). The program
/// carries a fixed set of policies (a PEFT adapter must target exactly the projections its model adapts).
template <class F>
int with_policy(unsigned mask, F&& f) {
  if (mask == 0) return f.template operator()<nn::no_adapter>();
  if (mask == targets_qv) return f.template operator()<lora_qv>();
  if (mask == targets_qkvo) return f.template operator()<lora_qkvo>();
  if (mask == targets_all) return f.template operator()<lora_all>();
  throw usage_error(str("LoRA on ", targets_name(mask),
                        " is not compiled into this program (it has q,v; q,k,v,o; and all seven projections)"));
}

// ---------------------------------------------------------------------------------------------------------
// Model folders

/// The tokenizer in a model folder, if it holds one.
std::optional<text::any_tokenizer> folder_tokenizer(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const char* f : {"tokenizer.json", "tokenizer.model", "vocab.txt", "encoder.json"})
    if (fs::is_regular_file(fs::path(dir) / f, ec)) return text::load_tokenizer(dir);
  return std::nullopt;
}

/// eos_token_id (an integer or a list) of generation_config.json, else of config.json; empty when neither says.
std::vector<std::int32_t> eos_ids(const std::string& dir, const nlohmann::json& config) {
  std::vector<std::int32_t> ids;
  const auto take = [&](const nlohmann::json& j, const std::string& file) {
    if (!j.is_object() || !j.contains("eos_token_id")) return false;
    const nlohmann::json& e = j["eos_token_id"];
    const auto one = [&](const nlohmann::json& v) {
      if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > INT32_MAX)
        throw error(file, "field eos_token_id", str("expected a token id, found ", v.dump()));
      ids.push_back(static_cast<std::int32_t>(v.get<std::int64_t>()));
    };
    if (e.is_null()) return true;
    if (e.is_array())
      for (const auto& v : e) one(v);
    else
      one(e);
    return true;
  };
  std::error_code ec;
  const std::string gen = dir + "/generation_config.json";
  if (std::filesystem::is_regular_file(gen, ec) && take(io::read_json(gen), gen)) return ids;
  take(config, dir + "/config.json");
  return ids;
}

/// The adapter's LoRA settings and target set (from adapter_config.json).
struct adapter_info {
  nn::lora_config lora;
  unsigned mask = 0;
};

adapter_info read_adapter(const std::string& dir) {
  const io::peft_adapter_config c = io::read_peft_config(dir);
  adapter_info a;
  a.lora = io::to_lora_config<nn::lora_config>(c);
  a.lora.dropout = 0;  // inference
  // The projections target_modules selects in a layer (import_peft_adapter then checks every module exactly).
  const auto selects = [&](projection p) {
    const std::string name = nn::projection_name(p);
    const std::string path = str("model.layers.0.", p <= projection::o_proj ? "self_attn." : "mlp.", name);
    return io::peft_selects(c, path);
  };
  for (int p = 0; p < 7; ++p)
    if (selects(static_cast<projection>(p))) a.mask |= bit(static_cast<projection>(p));
  if (a.mask == 0)
    throw error(c.path, "field target_modules",
                "selects none of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj");
  return a;
}

template <class Model>
void load_adapter(Model& model, const std::string& dir) {
  io::import_peft_adapter(model, dir);
}

/// A decoder from an HF folder, with an adapter policy and (optionally) a PEFT adapter loaded into it.
template <class B, class Policy>
std::unique_ptr<nn::decoder_lm<B, Policy>> load_decoder(const io::hf_checkpoint& ck, const nn::lora_config& lcfg,
                                                        const std::string& adapter_dir) {
  const io::llama_config cfg = io::parse_llama_config(ck.config(), ck.dir() + "/config.json");
  auto model = std::make_unique<nn::decoder_lm<B, Policy>>(cfg, lcfg);
  model->load(ck);
  if (!adapter_dir.empty()) load_adapter(*model, adapter_dir);
  return model;
}

void check_ids(std::span<const std::int32_t> ids, index_t vocab) {
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] >= vocab)
      throw usage_error(
          str("--ids: token id ", ids[i], " (position ", i, ") is outside the model's vocabulary [0, ", vocab, ")"));
}

// ---------------------------------------------------------------------------------------------------------
// JSON output

/// A float as JSON that reads back to the same float (%.9g); NaN and infinities, which JSON lacks, as null.
void append_float(std::string& s, double v) {
  if (!std::isfinite(v)) {
    s += "null";
    return;
  }
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%.9g", v);
  s.append(buf, static_cast<std::size_t>(n));
}

void append_rows(std::string& s, const float* data, index_t rows, index_t cols) {
  s += '[';
  for (index_t r = 0; r < rows; ++r) {
    s += r ? ",[" : "[";
    for (index_t c = 0; c < cols; ++c) {
      if (c) s += ',';
      append_float(s, data[r * cols + c]);
    }
    s += ']';
  }
  s += ']';
}

void append_ids(std::string& s, std::span<const std::int32_t> ids) {
  s += '[';
  for (std::size_t i = 0; i < ids.size(); ++i) s += str(i ? "," : "", ids[i]);
  s += ']';
}

void print_line(const std::string& s) {
  if (std::fwrite(s.data(), 1, s.size(), stdout) != s.size() || std::fputc('\n', stdout) == EOF ||
      std::fflush(stdout) != 0)
    throw error("stdout", "", "write failed");
}

// ---------------------------------------------------------------------------------------------------------
// lm logits / lm generate

int run_logits(const lm_options& o, thread_pool& pool) {
  const io::hf_checkpoint ck(o.model);
  const adapter_info ad = o.adapter.empty() ? adapter_info{} : read_adapter(o.adapter);
  return with_backend(o.backend, pool, [&](const auto& be, std::string_view) {
    using B = std::decay_t<decltype(be)>;
    return with_policy(ad.mask, [&]<class Policy>() {
      auto model = load_decoder<B, Policy>(ck, ad.lora, o.adapter);
      const index_t vocab = model->config().vocab_size, n = static_cast<index_t>(o.ids.size());
      check_ids(o.ids, vocab);
      if (n > model->config().max_positions)
        throw usage_error(
            str("--ids: ", n, " positions exceed the model's max_position_embeddings ", model->config().max_positions));
      const tensor_view<const std::int32_t, 2> ids(o.ids.data(), {1, n});
      tensor<float, 2> logits({n, vocab});
      model->forward(be, ids, logits.view());
      std::string s = "{\"logits\":";
      s.reserve(static_cast<std::size_t>(n * vocab) * 14 + 16);
      append_rows(s, logits.data(), n, vocab);
      s += '}';
      print_line(s);
      return 0;
    });
  });
}

int run_generate(const lm_options& o, thread_pool& pool) {
  const io::hf_checkpoint ck(o.model);
  const nlohmann::json config = ck.config();
  const adapter_info ad = o.adapter.empty() ? adapter_info{} : read_adapter(o.adapter);
  std::optional<text::any_tokenizer> tok;
  std::vector<std::int32_t> prompt = o.ids;
  if (!o.prompt.empty()) {
    tok = folder_tokenizer(o.model);
    if (!tok)
      throw error(o.model, "",
                  "--prompt needs a tokenizer in the model folder (tokenizer.json, tokenizer.model or vocab.txt)");
    for (const text::token_id id : tok->encode(o.prompt, {.add_special = true}))
      prompt.push_back(static_cast<std::int32_t>(id));
    if (prompt.empty()) throw usage_error("--prompt: the text gives no tokens");
  }
  nn::generation_config gen;
  gen.max_new_tokens = o.max_new_tokens;
  gen.seed = static_cast<std::uint64_t>(o.seed);
  gen.sampling.greedy = !o.sampling;
  gen.sampling.temperature = o.temperature;
  gen.sampling.top_k = o.top_k;
  gen.sampling.top_p = o.top_p;
  gen.stop_tokens = !o.stop_ids.empty() ? o.stop_ids
                    : o.ignore_eos      ? std::vector<std::int32_t>{}
                                        : eos_ids(o.model, config);
  return with_backend(o.backend, pool, [&](const auto& be, std::string_view) {
    using B = std::decay_t<decltype(be)>;
    return with_policy(ad.mask, [&]<class Policy>() {
      auto model = load_decoder<B, Policy>(ck, ad.lora, o.adapter);
      const index_t vocab = model->config().vocab_size;
      if (o.have_ids) check_ids(prompt, vocab);
      const index_t need = static_cast<index_t>(prompt.size()) + std::max<index_t>(o.max_new_tokens, 1) - 1;
      if (need > model->config().max_positions)
        throw usage_error(str("the prompt (", prompt.size(), " tokens) and --max-new-tokens ", o.max_new_tokens,
                              " exceed the model's max_position_embeddings ", model->config().max_positions));
      nn::generation_hooks hooks;
      if (tok) hooks.detokenize = nn::detokenizer(*tok);
      const nn::generation_result r = nn::generate_one(*model, be, std::span<const std::int32_t>(prompt), gen, hooks);
      std::string s = "{\"ids\":";
      append_ids(s, r.tokens);
      if (tok) s += str(",\"text\":", nlohmann::json(text::unicode::to_valid_utf8(r.text)).dump());
      s += '}';
      print_line(s);
      return 0;
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// lm train

/// Writes every base parameter as an HF checkpoint (model.safetensors, F32) with the source's config.json.
template <class Model>
void write_hf_checkpoint(Model& model, const std::string& source_dir, const std::string& out) {
  std::vector<io::tensor_entry> entries;
  model.visit_base_parameters([&](auto& p) {
    std::vector<index_t> shape = p.rank == 2 ? std::vector<index_t>{p.rows, p.cols} : std::vector<index_t>{p.cols};
    entries.push_back(
        io::f32_entry(p.name, shape, std::span<const float>(p.value.data(), static_cast<std::size_t>(p.size()))));
  });
  io::write_safetensors(out + "/model.safetensors", entries, {{"format", "pt"}});
  std::filesystem::copy_file(source_dir + "/config.json", out + "/config.json",
                             std::filesystem::copy_options::overwrite_existing);
  std::error_code ec;
  const std::string gen = source_dir + "/generation_config.json";
  if (std::filesystem::is_regular_file(gen, ec))
    std::filesystem::copy_file(gen, out + "/generation_config.json", std::filesystem::copy_options::overwrite_existing);
}

int run_train(const lm_options& o, thread_pool& pool) {
  const unsigned mask = o.full ? 0u : parse_targets(o.lora);
  if (!o.full && mask == 0) throw usage_error("--lora names no projection");
  const io::hf_checkpoint ck(o.model);
  std::vector<train::lm_example> examples;
  const std::optional<text::any_tokenizer> tok = folder_tokenizer(o.model);
  if (tok)
    examples = train::read_lm_jsonl(o.data, *tok);
  else
    examples = train::read_lm_jsonl(o.data);
  if (examples.empty()) throw error(o.data, "", "holds no examples");
  std::filesystem::create_directories(o.out);

  nn::lora_config lcfg;
  lcfg.rank = o.rank;
  lcfg.alpha = o.alpha;
  lcfg.dropout = o.lora_dropout;
  lcfg.use_rslora = o.rslora;
  lcfg.seed = static_cast<std::uint64_t>(o.seed);
  train::lm_train_config tc;
  tc.epochs = o.epochs;
  tc.max_steps = o.max_steps;
  tc.batch_size = o.batch;
  tc.grad_accum = o.grad_accum;
  const bool max_len_given = std::find(o.given.begin(), o.given.end(), "--max-len") != o.given.end();
  const index_t max_positions = io::parse_llama_config(ck.config(), ck.dir() + "/config.json").max_positions;
  tc.max_len = max_len_given ? o.max_len : std::min<long long>(o.max_len, max_positions);
  tc.lr = o.lr;
  tc.warmup_steps = o.warmup;
  tc.checkpoint_every = o.save_every;
  tc.seed = static_cast<std::uint64_t>(o.seed);
  tc.checkpoint_dir = o.out;
  std::fprintf(stderr, "[slim lm] %zu examples from %s; %s\n", examples.size(), o.data.c_str(),
               o.full ? "full fine-tuning" : str("LoRA r=", o.rank, " on ", targets_name(mask)).c_str());
  return with_backend(o.backend, pool, [&](const auto& be, std::string_view backend_name) {
    using B = std::decay_t<decltype(be)>;
    return with_policy(mask, [&]<class Policy>() {
      auto model = load_decoder<B, Policy>(ck, lcfg, "");
      std::fprintf(stderr, "[slim lm] training on %.*s, %lld thread(s)\n", static_cast<int>(backend_name.size()),
                   backend_name.data(), o.threads);
      const auto progress = [](const train::lm_step_event& e) {
        std::fprintf(stderr, "[slim lm] step %lld/%lld  loss %.4f  lr %.3g  grad-norm %.3g  %.0f tokens/s\n",
                     static_cast<long long>(e.step), static_cast<long long>(e.total_steps), e.loss, e.lr, e.grad_norm,
                     e.tokens_per_second);
      };
      const train::lm_train_report r =
          train::fit_lm(be, *model, std::span<const train::lm_example>(examples), tc, progress);
      std::string result;
      if constexpr (Policy::freezes_base) {
        io::export_peft_adapter(*model, o.out, o.model);
        result = "peft_adapter";
      } else {
        write_hf_checkpoint(*model, o.model, o.out);
        result = "hf_checkpoint";
      }
      nlohmann::json out = {{"steps", r.steps},
                            {"resumed_from", r.resumed_from},
                            {"seconds", r.seconds},
                            {"tokens", r.tokens},
                            {"final_loss", r.step_loss.empty() ? nlohmann::json() : nlohmann::json(r.step_loss.back())},
                            {"out", o.out},
                            {"saved", result}};
      print_line(out.dump());
      return 0;
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// lm embed

/// The "text" of each JSON Lines record on stdin ("stdin:LINE: ..." on a bad line).
std::vector<std::string> read_texts_from_stdin() {
  std::string all;
  char block[1 << 16];
  for (std::size_t n; (n = std::fread(block, 1, sizeof block, stdin)) > 0;) all.append(block, n);
  if (std::ferror(stdin)) throw error("stdin", "", "read failed");
  std::vector<std::string> texts;
  std::size_t line_no = 0;
  for (std::size_t pos = 0; pos < all.size();) {
    const std::size_t eol = std::min(all.find('\n', pos), all.size());
    std::string_view line(all.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string())
      throw error(str("stdin:", line_no), "", "expected {\"text\": \"...\"}");
    texts.push_back(j["text"].get<std::string>());
  }
  return texts;
}

int run_embed(const lm_options& o, thread_pool& pool) {
  const std::vector<std::string> texts = o.texts.empty() ? read_texts_from_stdin() : o.texts;
  return with_backend(o.backend, pool, [&](const auto& be, std::string_view) {
    using B = std::decay_t<decltype(be)>;
    auto enc = nn::sentence_encoder<B>::from_pretrained(o.model);
    if (!o.pooling.empty()) enc.settings().options.pooling = o.pooling == "cls" ? nn::pooling::cls : nn::pooling::mean;
    if (o.normalize) enc.settings().options.normalize = true;
    const index_t n = static_cast<index_t>(texts.size()), h = enc.dimension();
    tensor<float, 2> out({n, h});
    if (n > 0) enc.embed(be, std::span<const std::string>(texts), out.view());
    std::string s = "{\"embeddings\":";
    append_rows(s, out.data(), n, h);
    s += '}';
    print_line(s);
    return 0;
  });
}

}  // namespace

int run_lm(args a) {
  if (const auto status = usage_if_asked(a, lm_usage, "lm", {"logits", "generate", "train", "embed"})) return *status;
  const std::string_view command = a[0];
  const lm_options o = parse_lm(command, a.subspan(1));
  thread_pool pool(static_cast<std::size_t>(o.threads));
  if (command == "logits") return run_logits(o, pool);
  if (command == "generate") return run_generate(o, pool);
  if (command == "train") return run_train(o, pool);
  return run_embed(o, pool);
}

}  // namespace slim::cli
