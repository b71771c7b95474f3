// slim — a teacher behind any OpenAI-compatible /chat/completions endpoint (OpenAI, vLLM, TGI, llama.cpp server,
// `slim serve`): concurrent workers, retries honouring Retry-After, timeouts, an on-disk answer cache written as
// each answer arrives, and token and dollar accounting.
// SPDX-License-Identifier: Apache-2.0
#pragma once

// Debian's libcpp-httplib is a compiled library built with CPPHTTPLIB_OPENSSL_SUPPORT, and that macro changes the
// layout of httplib's client classes: every translation unit must see it, so it comes from one place, the build
// (pkg-config cpp-httplib's Cflags, which CMake target slim::http carries), never from a header.
#if !defined(CPPHTTPLIB_OPENSSL_SUPPORT)
#error "slim: compile with `pkg-config --cflags cpp-httplib` (CPPHTTPLIB_OPENSSL_SUPPORT): link slim::http"
#endif
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/core/philox.hpp"
#include "slim/distill/answer_cache.hpp"
#include "slim/distill/teacher.hpp"
#include "slim/io/json.hpp"

namespace slim::distill {

/// Settings of an http_teacher. Designated initialisers: `http_teacher_config{.base_url = ..., .model = ...}`.
struct http_teacher_config {
  /// scheme://host[:port][/prefix], scheme http or https. As in OpenAI's clients the prefix includes the API
  /// version: requests go to <prefix>/chat/completions; with no prefix, /v1 is assumed
  /// ("http://127.0.0.1:8080" → POST /v1/chat/completions; "https://api.openai.com/v1" likewise).
  std::string base_url = "http://127.0.0.1:8080";
  std::string model;                             ///< "model" of each request (and part of the cache key)
  std::string api_key_env = "OPENAI_API_KEY";    ///< environment variable holding the key; unset or "": no key sent
  int concurrency = 4;                           ///< worker threads, each with its own connection
  double timeout_s = 120;                        ///< connect, read and write timeout of one request
  int max_retries = 6;                           ///< retries of one request after its first attempt
  double backoff_base_s = 0.5;                   ///< first retry delay; doubles each retry ...
  double backoff_max_s = 30;                     ///< ... up to this; each delay times a uniform in [0.5, 1)
  std::uint64_t seed = 0;                        ///< jitter stream (Philox): delays do not depend on thread timing
  double temperature = 0;                        ///< < 0: not sent
  std::int64_t max_tokens = 1024;                ///< <= 0: not sent
  double price_prompt_per_1k = 0.0015;           ///< dollars per 1,000 prompt tokens (gpt-3.5-turbo, as in SLIM)
  double price_completion_per_1k = 0.002;        ///< dollars per 1,000 completion tokens
  std::string cache_dir;                         ///< answer cache directory; "" for none
  damaged_entry damaged = damaged_entry::error;  ///< what a damaged cache file means (answer_cache)
  std::string ca_cert_path;                      ///< https: CA bundle file ("" : the system's default)
};

/// What an http_teacher has spent, over all teach() calls.
struct teacher_accounting {
  std::int64_t prompt_tokens = 0;  ///< from the servers' "usage" (new answers only, not cache hits)
  std::int64_t completion_tokens = 0;
  double dollars = 0;           ///< prompt and completion tokens at the configured prices
  std::int64_t calls = 0;       ///< HTTP requests sent, retries included
  std::int64_t retries = 0;     ///< requests sent again after a failure
  std::int64_t answers = 0;     ///< new answers received
  std::int64_t cache_hits = 0;  ///< requests answered from the cache (or by a duplicate in the same batch)
  double seconds = 0;           ///< wall time of teach() calls
};

/// A Teacher that asks an OpenAI-compatible chat-completions endpoint.
///
/// teach(requests): requests already in the cache are answered from it; the distinct remaining ones (a request
/// repeated in the batch is asked once) are sent by `concurrency` workers, each with its own httplib client, as
/// POST <prefix>/chat/completions {"model", "messages": [{"role": "system", ...}?, {"role": "user", ...}],
/// "temperature", "max_tokens"}. Each answer is stored in the cache as soon as it arrives, so a crash or kill
/// loses at most the answers in flight and a rerun asks only for the rest.
///
/// Retried (up to max_retries times, then slim::error naming the URL and the last failure): connection errors and
/// timeouts (not TLS certificate failures), 408, 409, 429 and 5xx (waiting Retry-After seconds when the reply has
/// that header, else the jittered exponential backoff), and replies that are not a chat completion (not JSON, no
/// choices[0].message.content string). Not retried: other 4xx — slim::error with the status and the start of the
/// body.
/// On the first error the workers finish the request they hold (and cache it) and stop; teach then throws. The API key
/// is sent as a bearer token and never appears in an error message.
class http_teacher {
 public:
  static constexpr std::string_view name = "http";

  explicit http_teacher(http_teacher_config config) : config_(std::move(config)) {
    parse_base_url();
    if (config_.model.empty()) throw error("http_teacher", "model", "no model name");
    if (config_.concurrency < 1) throw error("http_teacher", "concurrency", "must be >= 1");
    if (!(config_.timeout_s > 0)) throw error("http_teacher", "timeout_s", "must be > 0");
    if (config_.max_retries < 0) throw error("http_teacher", "max_retries", "must be >= 0");
    if (!(config_.backoff_base_s >= 0) || !(config_.backoff_max_s >= config_.backoff_base_s))
      throw error("http_teacher", "backoff", "need 0 <= backoff_base_s <= backoff_max_s");
    if (!config_.api_key_env.empty())
      if (const char* key = std::getenv(config_.api_key_env.c_str()); key != nullptr && *key != '\0') api_key_ = key;
    if (!config_.cache_dir.empty()) cache_.emplace(config_.cache_dir, config_.damaged);
  }

  /// Answers every request, in order (see the class comment). Throws slim::error when a request cannot be answered.
  std::vector<teacher_answer> teach(std::span<const teacher_request> requests) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<teacher_answer> answers(requests.size());
    // Cache first; then one job per distinct remaining request, its duplicates answered from it afterwards.
    std::map<std::pair<std::string_view, std::string_view>, std::size_t> first_of;  // (system, prompt) → index
    std::vector<std::size_t> jobs;
    std::vector<std::pair<std::size_t, std::size_t>> copies;  // (duplicate, original)
    for (std::size_t i = 0; i < requests.size(); ++i) {
      if (cache_) {
        if (std::optional<teacher_answer> a = cache_->find(config_.model, requests[i])) {
          answers[i] = std::move(*a);
          ++acct_.cache_hits;
          continue;
        }
      }
      const auto [it, fresh] = first_of.try_emplace({requests[i].system, requests[i].prompt}, i);
      if (fresh)
        jobs.push_back(i);
      else
        copies.emplace_back(i, it->second);
    }

    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex mutex;  // accounting and the first error
    std::exception_ptr first_error;
    const auto work = [&] {
      std::unique_ptr<httplib::Client> client;
      for (;;) {
        if (failed.load()) return;
        const std::size_t k = next.fetch_add(1);
        if (k >= jobs.size()) return;
        const std::size_t i = jobs[k];
        try {
          if (!client) client = make_client();
          teacher_answer a = ask(*client, requests[i], i, mutex);
          if (cache_) cache_->store(config_.model, requests[i], a);
          {
            std::lock_guard<std::mutex> lock(mutex);
            acct_.prompt_tokens += a.prompt_tokens;
            acct_.completion_tokens += a.completion_tokens;
            ++acct_.answers;
          }
          answers[i] = std::move(a);
        } catch (...) {
          std::lock_guard<std::mutex> lock(mutex);
          if (!first_error) first_error = std::current_exception();
          failed.store(true);
          return;
        }
      }
    };
    const std::size_t n_workers = std::min<std::size_t>(static_cast<std::size_t>(config_.concurrency), jobs.size());
    if (n_workers == 1) {
      work();
    } else if (n_workers > 1) {
      std::vector<std::thread> workers;
      workers.reserve(n_workers);
      try {
        for (std::size_t w = 0; w < n_workers; ++w) workers.emplace_back(work);
      } catch (...) {  // cannot start a thread: let the started ones finish, then report
        failed.store(true);
        for (std::thread& t : workers) t.join();
        throw;
      }
      for (std::thread& t : workers) t.join();
    }
    acct_.dollars = price(acct_.prompt_tokens, acct_.completion_tokens);
    acct_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (first_error) std::rethrow_exception(first_error);
    for (const auto& [dup, orig] : copies) {
      answers[dup] = answers[orig];
      answers[dup].cached = true;
      answers[dup].seconds = 0;
      ++acct_.cache_hits;
    }
    return answers;
  }

  /// Totals over all teach() calls so far.
  const teacher_accounting& accounting() const noexcept { return acct_; }
  const http_teacher_config& config() const noexcept { return config_; }
  /// What the answers depend on besides the prompt: the endpoint, model, temperature and token limit.
  std::string fingerprint() const {
    return url() + ";model=" + config_.model + ";temperature=" + std::to_string(config_.temperature) +
           ";max_tokens=" + std::to_string(config_.max_tokens);
  }
  /// The full URL requests go to.
  std::string url() const { return origin_ + path_; }

  /// Dollars for these token counts at the configured prices.
  double price(std::int64_t prompt_tokens, std::int64_t completion_tokens) const noexcept {
    return static_cast<double>(prompt_tokens) / 1000.0 * config_.price_prompt_per_1k +
           static_cast<double>(completion_tokens) / 1000.0 * config_.price_completion_per_1k;
  }

 private:
  void parse_base_url() {
    const std::string& u = config_.base_url;
    const bool http = u.starts_with("http://"), https = u.starts_with("https://");
    if (!http && !https) throw error("http_teacher", "base_url", "'" + u + "' is not an http:// or https:// URL");
    const std::size_t host_begin = http ? 7 : 8;
    const std::size_t slash = u.find('/', host_begin);
    origin_ = u.substr(0, slash);
    if (origin_.size() == host_begin) throw error("http_teacher", "base_url", "'" + u + "' has no host");
    const std::size_t close = origin_.rfind(']'), colon = origin_.rfind(':');
    if (colon > host_begin && (close == std::string::npos || colon > close)) {  // an explicit port
      const std::string port = origin_.substr(colon + 1);
      if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
          std::stoi(port) > 65535)
        throw error("http_teacher", "base_url", "'" + u + "' has a bad port");
    }
    std::string prefix = slash == std::string::npos ? std::string() : u.substr(slash);
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    if (prefix.empty()) prefix = "/v1";
    path_ = prefix + "/chat/completions";
  }

  std::unique_ptr<httplib::Client> make_client() const {
    auto c = std::make_unique<httplib::Client>(origin_);
    if (!c->is_valid()) throw error(url(), "", "cannot create an HTTP client for this URL");
    const auto t = std::chrono::duration<double>(config_.timeout_s);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t);
    c->set_connection_timeout(us);
    c->set_read_timeout(us);
    c->set_write_timeout(us);
    c->set_keep_alive(true);
    if (!api_key_.empty()) c->set_bearer_token_auth(api_key_);
    if (!config_.ca_cert_path.empty()) c->set_ca_cert_path(config_.ca_cert_path);
    return c;
  }

  std::string body_of(const teacher_request& r) const {
    io::json messages = io::json::array();
    if (!r.system.empty()) messages.push_back({{"role", "system"}, {"content", r.system}});
    messages.push_back({{"role", "user"}, {"content", r.prompt}});
    io::json j = {{"model", config_.model}, {"messages", std::move(messages)}};
    if (config_.temperature >= 0) j["temperature"] = config_.temperature;
    if (config_.max_tokens > 0) j["max_tokens"] = config_.max_tokens;
    try {
      return j.dump();
    } catch (const io::json::exception& e) {
      throw error(url(), "request", std::string("cannot serialise (invalid UTF-8 in the prompt?): ") + e.what());
    }
  }

  /// Up to 300 bytes of a reply body, control characters replaced, for error messages.
  static std::string excerpt(const std::string& body) {
    std::string s = body.substr(0, 300);
    for (char& c : s)
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    if (body.size() > 300) s += "...";
    return s;
  }

  /// The answer in a 200 reply, or nullopt with `why` set.
  std::optional<teacher_answer> parse_reply(const std::string& body, std::string& why) const {
    io::json j;
    try {
      j = io::parse_json(body, url());
    } catch (const error& e) {
      why = std::string("reply is not JSON: ") + e.what();
      return std::nullopt;
    }
    const io::json* content = nullptr;
    if (j.is_object() && j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
      const io::json& c0 = j["choices"][0];
      if (c0.is_object() && c0.contains("message") && c0["message"].is_object() && c0["message"].contains("content"))
        content = &c0["message"]["content"];
    }
    if (content == nullptr || !content->is_string()) {
      why = "reply has no choices[0].message.content string: " + excerpt(body);
      return std::nullopt;
    }
    teacher_answer a;
    a.text = content->get<std::string>();
    if (j.contains("usage") && j["usage"].is_object()) {
      const io::json& u = j["usage"];
      const auto count = [&](const char* key) -> std::int64_t {
        return u.contains(key) && u[key].is_number_integer() ? std::max<std::int64_t>(0, u[key].get<std::int64_t>())
                                                             : 0;
      };
      a.prompt_tokens = count("prompt_tokens");
      a.completion_tokens = count("completion_tokens");
    }
    return a;
  }

  /// Retry-After in seconds (integer or decimal form; an HTTP date is not honoured), or -1.
  static double retry_after(const httplib::Response& res) {
    if (!res.has_header("Retry-After")) return -1;
    const std::string v = res.get_header_value("Retry-After");
    std::size_t used = 0;
    double s = -1;
    try {
      s = std::stod(v, &used);
    } catch (const std::exception&) {
      return -1;
    }
    if (used != v.size() || !(s >= 0)) return -1;
    return std::min(s, 3600.0);
  }

  /// Jittered exponential backoff before retry `attempt` (1-based) of request `index`.
  double backoff(std::size_t index, int attempt) const {
    const double base = config_.backoff_base_s * std::ldexp(1.0, std::min(attempt - 1, 60));
    const double jitter =
        0.5 + 0.5 * static_cast<double>(philox_uniform(
                        config_.seed, static_cast<std::uint64_t>(index) * 64 + static_cast<std::uint64_t>(attempt)));
    return std::min(base, config_.backoff_max_s) * jitter;
  }

  teacher_answer ask(httplib::Client& client, const teacher_request& r, std::size_t index, std::mutex& mutex) {
    const std::string body = body_of(r);
    std::string last;
    const auto t0 = std::chrono::steady_clock::now();  // the answer's seconds include its retries
    for (int attempt = 0;; ++attempt) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        ++acct_.calls;
        if (attempt > 0) ++acct_.retries;
      }
      double wait = -1;  // seconds before the next attempt; -1: backoff
      httplib::Result res = client.Post(path_, body, "application/json");
      if (!res) {
        const httplib::Error e = res.error();
        last = "request failed: " + httplib::to_string(e);
        // A certificate that does not verify, or one that cannot be loaded, will not get better by asking again.
        if (e == httplib::Error::SSLServerVerification || e == httplib::Error::SSLLoadingCerts ||
            e == httplib::Error::BindIPAddress)
          throw error(url(), "", last);
      } else if (res->status == 200) {
        if (std::optional<teacher_answer> a = parse_reply(res->body, last)) {
          a->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          return std::move(*a);
        }
      } else {
        const int s = res->status;
        last = "HTTP " + std::to_string(s) + ": " + excerpt(res->body);
        if (!(s == 408 || s == 409 || s == 429 || s >= 500)) throw error(url(), "", last);
        wait = retry_after(*res);
      }
      if (attempt >= config_.max_retries)
        throw error(url(), "", "gave up after " + std::to_string(attempt + 1) + " attempts; last: " + last);
      if (wait < 0) wait = backoff(index, attempt + 1);
      std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    }
  }

  http_teacher_config config_;
  std::string origin_, path_, api_key_;
  std::optional<answer_cache> cache_;
  teacher_accounting acct_;
};

static_assert(Teacher<http_teacher>);

}  // namespace slim::distill
