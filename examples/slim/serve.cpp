// `slim serve`: an HF checkpoint folder's language model behind an OpenAI-compatible chat-completions server
// (POST /v1/chat/completions, JSON or SSE streaming; GET /v1/models) — what `http_teacher` talks to, and a way to
// test it against faults (--fault). Prints {"host", "port", "model"} on stdout once listening; requests are
// logged on stderr; SIGINT or SIGTERM stops it. A bad command line exits with 2, any other failure with 1.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "backends.hpp"
#include "commands.hpp"
#include "parse.hpp"
#include "slim/core/error.hpp"
#include "slim/core/thread_pool.hpp"
#include "slim/io/hf_checkpoint.hpp"
#include "slim/io/json.hpp"
#include "slim/io/llama_config.hpp"
#include "slim/nn/decoder_lm.hpp"
#include "slim/nn/generate.hpp"
#include "slim/prompt/chat.hpp"
#include "slim/serve/chat_server.hpp"
#include "slim/text/load.hpp"
#include "str.hpp"

namespace slim::cli {
namespace {

constexpr const char* serve_usage =
    "usage: slim serve --model DIR [options]\n"
    "  an OpenAI-compatible server: POST /v1/chat/completions (\"stream\": true for SSE), GET /v1/models\n"
    "  --model DIR            HF checkpoint folder (config.json + safetensors)\n"
    "  --tokenizer PATH       tokenizer.json / tokenizer.model / vocab.txt (default: the model folder)\n"
    "  --host H               address to listen on (default 127.0.0.1: this machine only)\n"
    "  --port N               port (default 8080; 0: any free port, printed on stdout)\n"
    "  --max-new-tokens N     cap on new tokens per request (default 256; a request's max_tokens may lower it)\n"
    "  --chat-format F        chatml | llama2 | llama3 | plain | auto (default auto: chatml or llama3 when the\n"
    "                         tokenizer has their special tokens, else plain)\n"
    "  --name NAME            model id in responses (default: the folder's name)\n"
    "  --fault MODE[:K=V,..]  inject faults: drop | 500 | 429 | stall | malformed, on a seeded fraction p=0.25\n"
    "                         or the first=K requests; retry_after=S, stall=S, seed=N (see docs/teachers.md)\n"
    "  --backend auto|scalar|sse2|avx2|avx512 (default auto)   --threads T (kernel threads, default 1)\n";

struct serve_options {
  std::string model, tokenizer, host = "127.0.0.1", chat_format = "auto", name, fault, backend = "auto";
  long long port = 8080, max_new_tokens = 256, threads = 1;
};

serve_options parse_serve(args a) {
  serve_options o;
  static constexpr auto valued =
      std::to_array<std::string_view>({"--model", "--tokenizer", "--host", "--port", "--max-new-tokens",
                                       "--chat-format", "--name", "--fault", "--backend", "--threads"});
  for (option_reader r(a); r.next();) {
    const std::string_view name = r.name();
    if (std::find(valued.begin(), valued.end(), name) == valued.end())
      throw usage_error(str("unknown option '", name, "'"));
    const std::string_view value = r.value();
    if (name == "--model")
      o.model = value;
    else if (name == "--tokenizer")
      o.tokenizer = value;
    else if (name == "--host")
      o.host = value;
    else if (name == "--port")
      o.port = parse_int(name, value, 0, 65535);
    else if (name == "--max-new-tokens")
      o.max_new_tokens = parse_int(name, value, 1, 1 << 20);
    else if (name == "--chat-format")
      o.chat_format = value;
    else if (name == "--name")
      o.name = value;
    else if (name == "--fault")
      o.fault = value;
    else if (name == "--backend")
      o.backend = value;
    else if (name == "--threads")
      o.threads = parse_int(name, value, 1, 1024);
  }
  if (o.model.empty()) throw usage_error("serve needs --model DIR");
  if (o.chat_format != "auto" && o.chat_format != "plain" && o.chat_format != "chatml" && o.chat_format != "llama2" &&
      o.chat_format != "llama3")
    throw usage_error(str("--chat-format wants chatml, llama2, llama3, plain or auto, not '", o.chat_format, "'"));
  check_backend_name(o.backend);
  if (!o.fault.empty()) {
    try {
      (void)serve::parse_fault(o.fault);
    } catch (const error& e) {
      throw usage_error(str("--fault: ", e.what()));
    }
  }
  return o;
}

/// eos_token_id (an integer or a list) of generation_config.json, else of config.json.
std::vector<std::int32_t> eos_ids(const std::string& dir, const nlohmann::json& config) {
  std::vector<std::int32_t> ids;
  const auto take = [&](const nlohmann::json& j, const std::string& file) {
    if (!j.is_object() || !j.contains("eos_token_id") || j["eos_token_id"].is_null()) return false;
    const nlohmann::json& e = j["eos_token_id"];
    for (const nlohmann::json& v : e.is_array() ? e : nlohmann::json::array({e})) {
      if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > INT32_MAX)
        throw error(file, "field eos_token_id", str("expected a token id, found ", v.dump()));
      ids.push_back(static_cast<std::int32_t>(v.get<std::int64_t>()));
    }
    return true;
  };
  std::error_code ec;
  const std::string gen = dir + "/generation_config.json";
  if (std::filesystem::is_regular_file(gen, ec) && take(io::read_json(gen), gen)) return ids;
  take(config, dir + "/config.json");
  return ids;
}

/// The chat format --chat-format names; auto: chatml or llama3 when the tokenizer has their markers, else plain.
prompt::chat_format pick_format(const std::string& name, const text::any_tokenizer& tok) {
  if (name != "auto") return prompt::chat_format_from_string(name);
  if (prompt::special_id(tok, "<|im_start|>")) return prompt::chat_format::chatml;
  if (prompt::special_id(tok, "<|start_header_id|>")) return prompt::chat_format::llama3;
  return prompt::chat_format::plain;
}

/// The completion function: chat request → prompt in the chat format → generation (one request at a time: the
/// model and its buffers are shared).
template <class B, class Model>
serve::completion_fn make_completion(Model& model, const B& be, const text::any_tokenizer& tok,
                                     prompt::chat_format format, const std::vector<std::int32_t>& stop_ids,
                                     index_t max_new_cap, std::mutex& mutex) {
  return [&model, be, &tok, format, stop_ids, max_new_cap, &mutex](const serve::chat_request& r) {
    for (const serve::chat_message& m : r.messages)
      if (m.role == "assistant")
        throw serve::request_error("slim serve", "messages", "multi-turn conversations are not supported");
    const prompt::chat_text chat = prompt::render_chat(format, r.system(), r.user());
    std::vector<std::int32_t> ids;
    for (const text::token_id id : prompt::encode_chat(tok, chat, prompt::missing_special::error, format))
      ids.push_back(static_cast<std::int32_t>(id));
    if (ids.empty()) throw serve::request_error("slim serve", "messages", "the prompt gives no tokens");
    for (const std::int32_t id : ids)
      if (id >= model.config().vocab_size)
        throw error("slim serve", "tokenizer",
                    str("token id ", id, " is outside the model's vocabulary of ", model.config().vocab_size,
                        ": the tokenizer does not belong to this model"));
    nn::generation_config gen;
    gen.max_new_tokens =
        r.max_tokens >= 0 ? std::min<index_t>(static_cast<index_t>(r.max_tokens), max_new_cap) : max_new_cap;
    gen.sampling.greedy = !(r.temperature > 0);
    if (r.temperature > 0) gen.sampling.temperature = r.temperature;
    if (r.top_p > 0) gen.sampling.top_p = r.top_p;
    gen.seed = r.seed >= 0 ? static_cast<std::uint64_t>(r.seed) : 0;
    gen.stop_tokens = stop_ids;
    const index_t need = static_cast<index_t>(ids.size()) + std::max<index_t>(gen.max_new_tokens, 1) - 1;
    if (need > model.config().max_positions)
      throw serve::request_error("slim serve", "messages",
                                 str("the prompt (", ids.size(), " tokens) and max_tokens ", gen.max_new_tokens,
                                     " exceed the model's ", model.config().max_positions, " positions"));
    nn::generation_hooks hooks;
    hooks.detokenize = nn::detokenizer(tok);
    if (r.on_token)
      hooks.on_token = [&r](index_t, std::int32_t, std::string_view piece) {
        return r.on_token(text::unicode::to_valid_utf8(piece));
      };
    std::lock_guard<std::mutex> lock(mutex);
    const nn::generation_result out = nn::generate_one(model, be, std::span<const std::int32_t>(ids), gen, hooks);
    serve::completion c;
    c.text = text::unicode::to_valid_utf8(out.text);
    c.prompt_tokens = static_cast<std::int64_t>(ids.size());
    c.completion_tokens = static_cast<std::int64_t>(out.tokens.size());
    c.finish_reason = out.reason == nn::finish_reason::length ? "length" : "stop";
    return c;
  };
}

}  // namespace

int run_serve(args a) {
  if (!a.empty() && (a[0] == "--help" || a[0] == "-h" || a[0] == "help")) {
    std::fprintf(stdout, "%s", serve_usage);
    return 0;
  }
  const serve_options o = parse_serve(a);
  const io::hf_checkpoint ck(o.model);
  const text::any_tokenizer tok = text::load_tokenizer(o.tokenizer.empty() ? o.model : o.tokenizer);
  const prompt::chat_format format = pick_format(o.chat_format, tok);
  std::vector<std::int32_t> stop_ids = eos_ids(o.model, ck.config());
  if (const std::string_view eot = prompt::end_of_turn(format); !eot.empty())
    if (const auto id = prompt::special_id(tok, eot)) stop_ids.push_back(static_cast<std::int32_t>(*id));

  serve::chat_server_config sc;
  sc.host = o.host;
  sc.port = static_cast<int>(o.port);
  sc.model_name = o.name.empty() ? std::filesystem::path(o.model).filename().string() : o.name;
  if (sc.model_name.empty()) sc.model_name = "slim";
  if (!o.fault.empty()) sc.fault = serve::parse_fault(o.fault);
  sc.log_requests = true;

  thread_pool pool(static_cast<std::size_t>(o.threads));
  return with_backend(o.backend, pool, [&](const auto& be, std::string_view) {
    using B = std::decay_t<decltype(be)>;
    const io::llama_config cfg = io::parse_llama_config(ck.config(), ck.dir() + "/config.json");
    auto model = std::make_unique<nn::decoder_lm<B, nn::no_adapter>>(cfg, nn::lora_config{});
    model->load(ck);
    std::mutex mutex;
    // Block SIGINT and SIGTERM before any thread starts (threads inherit the mask); this thread waits for them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    serve::chat_server server(
        sc, make_completion(*model, be, tok, format, stop_ids, static_cast<index_t>(o.max_new_tokens), mutex));
    const int port = server.start();
    const nlohmann::json ready = {
        {"host", sc.host}, {"port", port}, {"model", sc.model_name}, {"chat_format", prompt::to_string(format)}};
    std::printf("%s\n", ready.dump().c_str());
    std::fflush(stdout);
    std::fprintf(stderr, "slim serve: listening on http://%s:%d (model %s, chat format %s)\n", sc.host.c_str(), port,
                 sc.model_name.c_str(), prompt::to_string(format));
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "slim serve: stopping (signal %d)\n", sig);
    server.stop();
    return 0;
  });
}

}  // namespace slim::cli
