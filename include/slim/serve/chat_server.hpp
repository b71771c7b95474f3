// slim — an OpenAI-compatible chat-completions server (POST /v1/chat/completions, JSON or SSE streaming;
// GET /v1/models) over any completion function, with seeded fault injection for testing clients.
// SPDX-License-Identifier: Apache-2.0
#pragma once

// Debian's libcpp-httplib is a compiled library built with CPPHTTPLIB_OPENSSL_SUPPORT, and that macro changes the
// layout of httplib's client classes: every translation unit must see it, so it comes from one place, the build
// (pkg-config cpp-httplib's Cflags, which CMake target slim::http carries), never from a header.
#if !defined(CPPHTTPLIB_OPENSSL_SUPPORT)
#error "slim: compile with `pkg-config --cflags cpp-httplib` (CPPHTTPLIB_OPENSSL_SUPPORT): link slim::http"
#endif
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/core/philox.hpp"
#include "slim/io/json.hpp"

namespace slim::serve {

/// One message of a chat request.
struct chat_message {
  std::string role;  ///< "system", "user" or "assistant"
  std::string content;
};

/// A parsed chat-completions request.
struct chat_request {
  std::string model;                   ///< as the client sent it ("" when absent)
  std::vector<chat_message> messages;  ///< at least one
  std::int64_t max_tokens = -1;        ///< "max_tokens" (or "max_completion_tokens"); -1 when absent
  double temperature = -1;             ///< -1 when absent
  double top_p = -1;                   ///< -1 when absent
  std::int64_t seed = -1;              ///< -1 when absent
  bool stream = false;
  /// Streaming only (empty otherwise): called with each piece of text as it is generated; returns false when the
  /// client has gone, and the completion function should then stop early.
  std::function<bool(std::string_view)> on_token;

  /// The system messages' contents, joined by "\n\n" ("" when none).
  std::string system() const { return join("system"); }
  /// The user messages' contents, joined by "\n\n".
  std::string user() const { return join("user"); }

 private:
  std::string join(std::string_view role) const {
    std::string s;
    for (const chat_message& m : messages)
      if (m.role == role) {
        if (!s.empty()) s += "\n\n";
        s += m.content;
      }
    return s;
  }
};

/// What a completion function returns: the whole text (also when it streamed it piece by piece) and token counts.
struct completion {
  std::string text;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::string finish_reason = "stop";  ///< "stop" or "length"
};

/// The model behind the server. Called concurrently from the server's threads (serialise inside if needed).
using completion_fn = std::function<completion(const chat_request&)>;

/// Thrown by a completion function for a request it cannot serve as asked (prompt too long, ...): the client gets
/// 400 with the message. Any other exception gives 500.
struct request_error : error {
  using error::error;
};

/// Faults the server can inject into POST /v1/chat/completions, to test clients.
enum class fault_kind {
  none,
  drop,        ///< send the response headers, then close the connection (the body never arrives)
  error_500,   ///< 500 with a JSON error body
  rate_limit,  ///< 429 with `Retry-After: <retry_after_s>`
  stall,       ///< hold the request for stall_s seconds (longer than the client's timeout), then drop it
  malformed,   ///< 200 with a body that is not a chat completion (not JSON)
};

/// Which requests get the fault: the first `first` requests (when first > 0), else each request n independently
/// with probability `fraction` (Philox stream `seed`, element n: n counts chat-completion requests from 0 in
/// arrival order). A faulted request never reaches the completion function.
struct fault_config {
  fault_kind kind = fault_kind::none;
  double fraction = 0;
  std::int64_t first = 0;
  std::uint64_t seed = 0;
  int retry_after_s = 1;  ///< rate_limit's Retry-After value (whole seconds)
  double stall_s = 5;     ///< how long stall holds a request
};

/// Parses "MODE[:KEY=VALUE,...]": MODE is none, drop, 500, 429, stall or malformed; keys p (fraction, default
/// 0.25), first (the first K requests instead), seed, retry_after (seconds), stall (seconds). Example:
/// "429:first=2,retry_after=1". Throws slim::error naming the bad part.
inline fault_config parse_fault(std::string_view spec) {
  fault_config f;
  const std::size_t colon = spec.find(':');
  const std::string_view mode = spec.substr(0, colon);
  if (mode == "none")
    f.kind = fault_kind::none;
  else if (mode == "drop")
    f.kind = fault_kind::drop;
  else if (mode == "500")
    f.kind = fault_kind::error_500;
  else if (mode == "429")
    f.kind = fault_kind::rate_limit;
  else if (mode == "stall")
    f.kind = fault_kind::stall;
  else if (mode == "malformed")
    f.kind = fault_kind::malformed;
  else
    throw error("fault", std::string(mode), "unknown fault mode (none, drop, 500, 429, stall, malformed)");
  f.fraction = 0.25;
  if (colon == std::string_view::npos) return f;
  std::string_view rest = spec.substr(colon + 1);
  while (!rest.empty()) {
    const std::size_t comma = std::min(rest.find(','), rest.size());
    const std::string_view item = rest.substr(0, comma);
    rest.remove_prefix(std::min(comma + 1, rest.size()));
    const std::size_t eq = item.find('=');
    const std::string key(item.substr(0, eq));
    const std::string value(eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1));
    const auto number = [&](double lo, double hi) {
      std::size_t used = 0;
      double v = 0;
      try {
        v = std::stod(value, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (value.empty() || used != value.size() || !(v >= lo && v <= hi))
        throw error("fault", key,
                    "wants a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], not '" + value + "'");
      return v;
    };
    if (key == "p")
      f.fraction = number(0, 1);
    else if (key == "first")
      f.first = static_cast<std::int64_t>(number(0, 1e12));
    else if (key == "seed")
      f.seed = static_cast<std::uint64_t>(number(0, 9e15));
    else if (key == "retry_after")
      f.retry_after_s = static_cast<int>(number(0, 86400));
    else if (key == "stall")
      f.stall_s = number(0, 86400);
    else
      throw error("fault", key, "unknown key (p, first, seed, retry_after, stall)");
  }
  return f;
}

/// Server settings.
struct chat_server_config {
  std::string host = "127.0.0.1";   ///< loopback by default: expose it on purpose, not by accident
  int port = 0;                     ///< 0: any free port (see chat_server::port())
  std::string model_name = "slim";  ///< the id in responses and GET /v1/models
  fault_config fault;
  int threads = 8;                        ///< request threads
  std::size_t max_body_bytes = 8u << 20;  ///< larger bodies get 413
  bool log_requests = false;              ///< one line per request on stderr
};

/// Counters of what the server did.
struct chat_server_stats {
  std::int64_t requests = 0;      ///< chat-completion requests received
  std::int64_t completions = 0;   ///< answered successfully (completion function returned)
  std::int64_t faults = 0;        ///< faults injected
  std::int64_t bad_requests = 0;  ///< answered 400
  std::int64_t errors = 0;        ///< answered 500 because the completion function threw
};

/// An OpenAI-compatible server on top of a completion function. start() binds and serves on a background
/// thread; the destructor stops it. Routes:
///   POST /v1/chat/completions  {"model", "messages": [{"role", "content"}...], "max_tokens", "temperature",
///     "top_p", "seed", "stream"} → {"id", "object": "chat.completion", "created", "model", "choices":
///     [{"index": 0, "message": {"role": "assistant", "content"}, "finish_reason"}], "usage": {"prompt_tokens",
///     "completion_tokens", "total_tokens"}}; with "stream": true, Server-Sent Events "data: <chat.completion.chunk>"
///     (a role delta, content deltas, a final chunk with finish_reason and usage) and "data: [DONE]".
///   GET /v1/models → {"object": "list", "data": [{"id": model_name, "object": "model", ...}]}
/// Malformed requests get 400 with {"error": {"message", "type": "invalid_request_error"}}; nothing a client
/// sends can crash the server.
class chat_server {
 public:
  chat_server(chat_server_config config, completion_fn complete)
      : config_(std::move(config)), complete_(std::move(complete)) {
    if (!complete_) throw error("chat_server", "", "no completion function");
    const int threads = config_.threads > 0 ? config_.threads : 1;
    server_.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
    server_.set_payload_max_length(config_.max_body_bytes);
    server_.Post("/v1/chat/completions",
                 [this](const httplib::Request& req, httplib::Response& res) { handle_chat(req, res); });
    server_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { handle_models(res); });
    server_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      set_error(res, 500, "internal error", "server_error");
    });
    if (config_.log_requests)
      server_.set_logger([](const httplib::Request& req, const httplib::Response& res) {
        std::fprintf(stderr, "%s %s -> %d\n", req.method.c_str(), req.path.c_str(), res.status);
      });
  }
  chat_server(const chat_server&) = delete;
  chat_server& operator=(const chat_server&) = delete;
  ~chat_server() { stop(); }

  /// Binds the listening socket (config.port, or any free port when 0) without serving yet: connections wait in
  /// the backlog until start(). Returns the port. Idempotent.
  int bind() {
    if (port_ != 0) return port_;
    if (config_.port == 0) {
      const int p = server_.bind_to_any_port(config_.host);
      if (p <= 0) throw error("chat_server", config_.host, "cannot bind to any port");
      port_ = p;
    } else {
      if (!server_.bind_to_port(config_.host, config_.port))
        throw error("chat_server", config_.host + ":" + std::to_string(config_.port), "cannot bind (port in use?)");
      port_ = config_.port;
    }
    return port_;
  }

  /// Binds (if not yet bound) and starts serving on a background thread. Returns the port.
  int start() {
    if (thread_.joinable()) throw error("chat_server", "", "already started");
    bind();
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    return port_;
  }

  /// Blocks until stop() is called from another thread (or a signal handler's thread).
  void wait() {
    if (thread_.joinable()) thread_.join();
  }

  /// Stops serving: wakes stalled requests, closes the listening socket, joins the threads. Idempotent.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  /// The bound port (0 before start()).
  int port() const noexcept { return port_; }
  const chat_server_config& config() const noexcept { return config_; }

  chat_server_stats stats() const {
    return {requests_.load(), completions_.load(), faults_.load(), bad_requests_.load(), errors_.load()};
  }

 private:
  static void set_error(httplib::Response& res, int status, const std::string& message, const char* type) {
    res.status = status;
    const io::json body = {{"error", {{"message", message}, {"type", type}}}};
    res.set_content(body.dump(-1, ' ', false, io::json::error_handler_t::replace), "application/json");
  }

  void bad_request(httplib::Response& res, const std::string& message) {
    ++bad_requests_;
    set_error(res, 400, message, "invalid_request_error");
  }

  static std::int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  /// Parses the body; on failure answers 400 and returns false.
  bool parse_request(const std::string& body, chat_request& out, std::string& why) {
    io::json j;
    try {
      j = io::parse_json(body, "request body");
    } catch (const error& e) {
      why = e.what();
      return false;
    }
    if (!j.is_object()) return why = "the request body must be a JSON object", false;
    try {
      const io::json_where w("request body");
      out.model = io::get_or<std::string>(j, "model", "", w);
      if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty())
        return why = "\"messages\" must be a non-empty array", false;
      for (std::size_t i = 0; i < j["messages"].size(); ++i) {
        const std::string at = "messages/" + std::to_string(i);
        chat_message m;
        m.role = io::get<std::string>(j, at + "/role", w);
        if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "developer")
          return why = at + "/role: unknown role '" + m.role + "'", false;
        if (m.role == "developer") m.role = "system";
        const io::json& content = j["messages"][i]["content"];
        if (content.is_string()) {
          m.content = content.get<std::string>();
        } else if (content.is_array()) {  // [{"type": "text", "text": ...}, ...]
          for (std::size_t k = 0; k < content.size(); ++k)
            if (content[k].is_object() && content[k].value("type", "") == "text")
              m.content += io::get<std::string>(content[k], "text", w);
            else
              return why = at + "/content/" + std::to_string(k) + ": only text parts are supported", false;
        } else {
          return why = at + "/content: expected a string", false;
        }
        out.messages.push_back(std::move(m));
      }
      if (io::has(j, "max_completion_tokens", w))
        out.max_tokens = io::get<std::int64_t>(j, "max_completion_tokens", w);
      else
        out.max_tokens = io::get_or<std::int64_t>(j, "max_tokens", -1, w);
      if (io::has(j, "max_tokens", w) || io::has(j, "max_completion_tokens", w))
        if (out.max_tokens < 0) return why = "max_tokens must be >= 0", false;
      out.temperature = io::get_or<double>(j, "temperature", -1, w);
      if (io::has(j, "temperature", w) && !(out.temperature >= 0 && out.temperature <= 2))
        return why = "temperature must be in [0, 2]", false;
      out.top_p = io::get_or<double>(j, "top_p", -1, w);
      if (io::has(j, "top_p", w) && !(out.top_p > 0 && out.top_p <= 1)) return why = "top_p must be in (0, 1]", false;
      out.seed = io::get_or<std::int64_t>(j, "seed", -1, w);
      out.stream = io::get_or<bool>(j, "stream", false, w);
    } catch (const error& e) {
      why = e.what();
      return false;
    }
    if (out.user().empty() && out.system().empty()) return why = "no system or user message", false;
    return true;
  }

  /// Applies the configured fault to request number n; true when the request was faulted (res is set up).
  bool inject_fault(std::int64_t n, httplib::Response& res) {
    const fault_config& f = config_.fault;
    if (f.kind == fault_kind::none) return false;
    const bool hit = f.first > 0
                         ? n < f.first
                         : static_cast<double>(philox_uniform(f.seed, static_cast<std::uint64_t>(n))) < f.fraction;
    if (!hit) return false;
    ++faults_;
    const auto drop = [&res] {
      // Headers announce a body that never comes: the provider fails, httplib closes the connection.
      res.set_content_provider(64, "application/json",
                               [](std::size_t, std::size_t, httplib::DataSink&) { return false; });
    };
    switch (f.kind) {
      case fault_kind::drop:
        drop();
        break;
      case fault_kind::error_500:
        set_error(res, 500, "injected fault: internal server error", "server_error");
        break;
      case fault_kind::rate_limit:
        set_error(res, 429, "injected fault: rate limit", "rate_limit_error");
        res.set_header("Retry-After", std::to_string(f.retry_after_s));
        break;
      case fault_kind::stall: {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait_for(lock, std::chrono::duration<double>(f.stall_s), [this] { return stopping_; });
        lock.unlock();
        drop();
        break;
      }
      case fault_kind::malformed:
        res.status = 200;
        res.set_content("{\"id\": \"chatcmpl-x\", \"choices\": [{\"index\": 0, \"message\": ", "application/json");
        break;
      case fault_kind::none:
        break;
    }
    return true;
  }

  io::json usage_json(const completion& c) const {
    return {{"prompt_tokens", c.prompt_tokens},
            {"completion_tokens", c.completion_tokens},
            {"total_tokens", c.prompt_tokens + c.completion_tokens}};
  }

  static std::string dump(const io::json& j) { return j.dump(-1, ' ', false, io::json::error_handler_t::replace); }

  void handle_chat(const httplib::Request& req, httplib::Response& res) {
    const std::int64_t n = requests_++;
    if (inject_fault(n, res)) return;
    auto request = std::make_shared<chat_request>();
    std::string why;
    if (!parse_request(req.body, *request, why)) return bad_request(res, why);
    const std::string id = "chatcmpl-" + std::to_string(now_seconds()) + "-" + std::to_string(n);
    const std::int64_t created = now_seconds();
    if (!request->stream) {
      completion c;
      if (!run(*request, c, res)) return;
      const io::json body = {{"id", id},
                             {"object", "chat.completion"},
                             {"created", created},
                             {"model", config_.model_name},
                             {"choices", io::json::array({{{"index", 0},
                                                           {"message", {{"role", "assistant"}, {"content", c.text}}},
                                                           {"finish_reason", c.finish_reason}}})},
                             {"usage", usage_json(c)}};
      res.status = 200;
      res.set_content(dump(body), "application/json");
      return;
    }
    // Streaming: the completion runs inside the content provider, writing one event per piece.
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [this, request, id, created](std::size_t, httplib::DataSink& sink) {
          const auto chunk = [&](io::json delta, const io::json& finish, const io::json* usage) {
            io::json j = {
                {"id", id},
                {"object", "chat.completion.chunk"},
                {"created", created},
                {"model", config_.model_name},
                {"choices", io::json::array({{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", finish}}})}};
            if (usage) j["usage"] = *usage;
            const std::string event = "data: " + dump(j) + "\n\n";
            return sink.write(event.data(), event.size());
          };
          bool open = chunk({{"role", "assistant"}, {"content", ""}}, nullptr, nullptr);
          request->on_token = [&](std::string_view piece) {
            if (open && !piece.empty()) open = chunk({{"content", std::string(piece)}}, nullptr, nullptr);
            return open;
          };
          completion c;
          try {
            c = complete_(*request);
            ++completions_;
          } catch (const std::exception& e) {
            ++errors_;
            const std::string event =
                "data: " + dump({{"error", {{"message", e.what()}, {"type", "server_error"}}}}) + "\n\n";
            if (open) sink.write(event.data(), event.size());
            sink.done();
            return open;
          }
          if (open) {
            const io::json usage = usage_json(c);
            open = chunk(io::json::object(), c.finish_reason, &usage);
          }
          static constexpr std::string_view done = "data: [DONE]\n\n";
          if (open) open = sink.write(done.data(), done.size());
          sink.done();
          return open;
        });
  }

  /// Runs the completion function; on an exception answers 400 (request_error) or 500 and returns false.
  bool run(const chat_request& request, completion& out, httplib::Response& res) {
    try {
      out = complete_(request);
      ++completions_;
      return true;
    } catch (const request_error& e) {
      bad_request(res, e.what());
    } catch (const std::exception& e) {
      ++errors_;
      set_error(res, 500, e.what(), "server_error");
    }
    return false;
  }

  void handle_models(httplib::Response& res) {
    const io::json body = {
        {"object", "list"},
        {"data",
         io::json::array({{{"id", config_.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "slim"}}})}};
    res.set_content(dump(body), "application/json");
  }

  chat_server_config config_;
  completion_fn complete_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<std::int64_t> requests_{0}, completions_{0}, faults_{0}, bad_requests_{0}, errors_{0};
};

}  // namespace slim::serve
