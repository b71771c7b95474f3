// Tests of the HTTP teacher, its answer cache and the chat server: a server on a free loopback port with a
// deterministic fake model answers, faults are injected, a child process is killed mid-run, and every prompt must
// end up answered exactly once.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "slim/distill/answer_cache.hpp"
#include "slim/distill/http_teacher.hpp"
#include "slim/io/atomic_file.hpp"
#include "slim/serve/chat_server.hpp"

namespace {

using slim::distill::answer_cache;
using slim::distill::http_teacher;
using slim::distill::http_teacher_config;
using slim::distill::teacher_answer;
using slim::distill::teacher_request;
namespace serve = slim::serve;
namespace fs = std::filesystem;

/// The fake model's answer: a function of the request only, so the test knows what each prompt must get.
std::string expected_answer(const std::string& system, const std::string& prompt) {
  return "[" + system + "] answer to: " + prompt + " — ünïcode ok";
}

/// A deterministic model that counts how often it completed each prompt.
struct fake_model {
  std::mutex mutex;
  std::map<std::string, int> completed;  // user text → successful completions
  int delay_ms = 0;

  serve::completion operator()(const serve::chat_request& r) {
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    serve::completion c;
    c.text = expected_answer(r.system(), r.user());
    c.prompt_tokens = static_cast<std::int64_t>(r.system().size() + r.user().size());
    c.completion_tokens = static_cast<std::int64_t>(c.text.size());
    if (r.on_token)  // stream word by word (the pieces concatenate to the text)
      for (std::size_t pos = 0; pos < c.text.size();) {
        const std::size_t space = c.text.find(' ', pos);
        const std::size_t end = space == std::string::npos ? c.text.size() : space + 1;
        if (!r.on_token(std::string_view(c.text).substr(pos, end - pos))) break;
        pos = end;
      }
    std::lock_guard<std::mutex> lock(mutex);
    ++completed[r.user()];
    return c;
  }
  int count(const std::string& prompt) {
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = completed.find(prompt);
    return it == completed.end() ? 0 : it->second;
  }
};

/// A fresh empty directory under the system's temporary folder.
std::string temp_dir(const std::string& tag) {
  const fs::path p = fs::temp_directory_path() / ("slim_http_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::vector<teacher_request> make_requests(int n, const std::string& tag) {
  std::vector<teacher_request> r;
  for (int i = 0; i < n; ++i)
    r.push_back({i, i % 3 == 0 ? "" : "You are a recommender.", tag + " user " + std::to_string(i) + " likes games"});
  return r;
}

serve::chat_server_config server_config(serve::fault_config fault) {
  serve::chat_server_config c;
  c.model_name = "fake";
  c.fault = fault;
  return c;
}

/// A teacher configuration: `url`, model "m", no key, quick retries.
http_teacher_config quick_config(const std::string& url, int max_retries) {
  http_teacher_config c;
  c.base_url = url;
  c.model = "m";
  c.api_key_env = "";
  c.max_retries = max_retries;
  c.backoff_base_s = 0.001;
  c.backoff_max_s = 0.001;
  return c;
}

/// A server with `model` behind it, started on a free loopback port.
struct test_server {
  fake_model model;
  serve::chat_server server;
  explicit test_server(serve::fault_config fault = {}, int delay_ms = 0)
      : server(server_config(fault), [this](const serve::chat_request& r) { return model(r); }) {
    model.delay_ms = delay_ms;
    server.start();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server.port()); }
};

http_teacher_config config_for(const test_server& s, const std::string& cache_dir) {
  http_teacher_config c;
  c.base_url = s.url();
  c.model = "fake-model";
  c.api_key_env = "";
  c.concurrency = 4;
  c.timeout_s = 5;
  c.max_retries = 8;
  c.backoff_base_s = 0.005;
  c.backoff_max_s = 0.05;
  c.seed = 3;
  c.cache_dir = cache_dir;
  return c;
}

void check_answers(const std::vector<teacher_request>& requests, const std::vector<teacher_answer>& answers) {
  REQUIRE(answers.size() == requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i)
    CHECK(answers[i].text == expected_answer(requests[i].system, requests[i].prompt));
}

/// Every entry file parses, holds one of the requests, and each request has exactly one entry.
void check_cache_holds_each_once(const std::string& dir, const std::vector<teacher_request>& requests) {
  answer_cache cache(dir);
  CHECK(cache.entries().size() == requests.size());
  for (const teacher_request& r : requests) {
    const auto a = cache.find("fake-model", r);
    REQUIRE(a.has_value());
    CHECK(a->text == expected_answer(r.system, r.prompt));
    CHECK(a->cached);
  }
}

std::string http_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const slim::error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("fnv1a_128 matches the FNV reference values", "[distill][cache]") {
  // Reference: FNV-1a 128 over the bytes, computed with arbitrary-precision integers (offset basis and prime of
  // the FNV specification): "" is the offset basis itself.
  CHECK(slim::distill::fnv1a_128().value().hex() == "6c62272e07bb014262b821756295c58d");
  CHECK(slim::distill::fnv1a_128().update("a").value().hex() == "d228cb696f1a8caf78912b704e4a8964");
  CHECK(slim::distill::fnv1a_128().update("foobar").value().hex() == "343e1662793c64bf6f0d3597ba446f18");
  // Field boundaries matter: ("ab", "c") and ("a", "bc") differ.
  CHECK(slim::distill::answer_key("m", "ab", "c") != slim::distill::answer_key("m", "a", "bc"));
}

TEST_CASE("answer_cache round-trips, refuses a collision and reports damaged files", "[distill][cache]") {
  const std::string dir = temp_dir("cache");
  answer_cache cache(dir);
  const teacher_request a{0, "sys", "prompt A"}, b{1, "sys", "prompt B"};
  CHECK_FALSE(cache.find("m", a).has_value());
  cache.store("m", a, teacher_answer{"text A", 10, 20, 0.5, false});
  const auto got = cache.find("m", a);
  REQUIRE(got.has_value());
  CHECK(got->text == "text A");
  CHECK(got->prompt_tokens == 10);
  CHECK(got->completion_tokens == 20);
  CHECK(got->cached);
  CHECK_FALSE(cache.find("other model", a).has_value());
  CHECK(cache.entries().size() == 1);

  // B's file holding A's request (what a hash collision would look like): an error naming the file.
  fs::copy_file(cache.path_of("m", a), cache.path_of("m", b));
  const std::string collision = http_error_of([&] { (void)cache.find("m", b); });
  CHECK(collision.find(cache.path_of("m", b)) != std::string::npos);
  CHECK(collision.find("different request") != std::string::npos);

  // A truncated file: an error naming it, or (reask) absent and counted.
  const std::string text = slim::io::read_file(cache.path_of("m", a));
  slim::io::write_file_atomic(cache.path_of("m", a), text.substr(0, text.size() / 2));
  const std::string damaged = http_error_of([&] { (void)cache.find("m", a); });
  CHECK(damaged.find(cache.path_of("m", a)) != std::string::npos);
  answer_cache lenient(dir, slim::distill::damaged_entry::reask);
  CHECK_FALSE(lenient.find("m", a).has_value());
  CHECK(lenient.damaged() == 1);
  fs::remove_all(dir);
}

TEST_CASE("http_teacher answers every prompt, caches it, and a rerun makes no calls", "[distill][http]") {
  test_server s;
  const std::string dir = temp_dir("basic");
  const auto requests = make_requests(24, "basic");
  {
    http_teacher t(config_for(s, dir));
    const auto answers = t.teach(requests);
    check_answers(requests, answers);
    const auto& acct = t.accounting();
    CHECK(acct.calls == 24);
    CHECK(acct.retries == 0);
    CHECK(acct.cache_hits == 0);
    CHECK(acct.answers == 24);
    // Tokens are the server's usage: the fake bills bytes of system + user and of the answer.
    std::int64_t pt = 0, ct = 0;
    for (const auto& r : requests) {
      pt += static_cast<std::int64_t>(r.system.size() + r.prompt.size());
      ct += static_cast<std::int64_t>(expected_answer(r.system, r.prompt).size());
    }
    CHECK(acct.prompt_tokens == pt);
    CHECK(acct.completion_tokens == ct);
    CHECK(acct.dollars == Approx(static_cast<double>(pt) * 0.0015 / 1000 + static_cast<double>(ct) * 0.002 / 1000));
    for (const auto& a : answers) CHECK_FALSE(a.cached);
  }
  {
    http_teacher t(config_for(s, dir));
    const auto answers = t.teach(requests);
    check_answers(requests, answers);
    CHECK(t.accounting().calls == 0);
    CHECK(t.accounting().cache_hits == 24);
    CHECK(t.accounting().dollars == 0);
    for (const auto& a : answers) CHECK(a.cached);
  }
  for (const auto& r : requests) CHECK(s.model.count(r.prompt) == 1);
  check_cache_holds_each_once(dir, requests);
  fs::remove_all(dir);
}

TEST_CASE("a request repeated within a batch is asked once", "[distill][http]") {
  test_server s;
  const std::string dir = temp_dir("dup");
  auto requests = make_requests(3, "dup");
  requests.push_back(requests[1]);
  requests.push_back(requests[1]);
  http_teacher t(config_for(s, dir));
  check_answers(requests, t.teach(requests));
  CHECK(t.accounting().calls == 3);
  CHECK(t.accounting().cache_hits == 2);
  CHECK(s.model.count(requests[1].prompt) == 1);
  fs::remove_all(dir);
}

TEST_CASE("under every fault mode each prompt is answered exactly once", "[distill][http][faults]") {
  const char* specs[] = {"drop:p=0.3,seed=1", "500:p=0.3,seed=2", "429:p=0.3,seed=3,retry_after=0",
                         "stall:p=0.2,seed=4,stall=2.5", "malformed:p=0.3,seed=5"};
  for (const char* spec : specs) {
    DYNAMIC_SECTION(spec) {
      test_server s(serve::parse_fault(spec));
      const std::string dir = temp_dir("fault");
      const auto requests = make_requests(16, spec);
      auto cfg = config_for(s, dir);
      cfg.timeout_s = 1;  // well below the stall, well above a normal reply on a loaded machine
      http_teacher t(cfg);
      check_answers(requests, t.teach(requests));
      const auto stats = s.server.stats();
      CHECK(stats.faults > 0);                        // the fault did happen ...
      CHECK(t.accounting().retries == stats.faults);  // ... and each one cost exactly one retry
      CHECK(stats.completions == 16);
      for (const auto& r : requests) CHECK(s.model.count(r.prompt) == 1);
      check_cache_holds_each_once(dir, requests);
      fs::remove_all(dir);
    }
  }
}

TEST_CASE("Retry-After is honoured", "[distill][http][faults]") {
  test_server s(serve::parse_fault("429:first=1,retry_after=1"));
  auto cfg = config_for(s, "");
  cfg.concurrency = 1;  // backoff alone would wait at most 0.05 s
  http_teacher t(cfg);
  const auto requests = make_requests(1, "retry-after");
  const auto t0 = std::chrono::steady_clock::now();
  check_answers(requests, t.teach(requests));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(waited >= 1.0);
  CHECK(waited < 3.0);
  CHECK(t.accounting().retries == 1);
  CHECK(t.accounting().calls == 2);
}

TEST_CASE("replies that are never a chat completion end in slim::error, not a crash", "[distill][http][faults]") {
  SECTION("malformed body") {
    test_server s(serve::parse_fault("malformed:first=1000"));
    auto cfg = config_for(s, "");
    cfg.max_retries = 2;
    http_teacher t(cfg);
    const std::string e = http_error_of([&] { (void)t.teach(make_requests(1, "bad")); });
    CHECK(e.find(s.url() + "/v1/chat/completions") != std::string::npos);
    CHECK(e.find("not JSON") != std::string::npos);
    CHECK(e.find("3 attempts") != std::string::npos);
    CHECK(t.accounting().calls == 3);
  }
  SECTION("JSON without choices") {
    httplib::Server raw;
    raw.Post("/v1/chat/completions", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"id": "x", "choices": []})", "application/json");
    });
    const int port = raw.bind_to_any_port("127.0.0.1");
    std::thread th([&] { raw.listen_after_bind(); });
    http_teacher t(quick_config("http://127.0.0.1:" + std::to_string(port), 1));
    const std::string e = http_error_of([&] { (void)t.teach(make_requests(2, "nochoices")); });
    raw.stop();
    th.join();
    CHECK(e.find("choices[0].message.content") != std::string::npos);
  }
  SECTION("a 4xx other than 429 is not retried") {
    test_server s;
    http_teacher t(config_for(s, ""));
    const teacher_request empty{0, "", ""};  // the server refuses a request with no text: 400
    const std::string e = http_error_of([&] { (void)t.teach(std::span<const teacher_request>(&empty, 1)); });
    CHECK(e.find("HTTP 400") != std::string::npos);
    CHECK(e.find("no system or user message") != std::string::npos);
    CHECK(t.accounting().calls == 1);
  }
  SECTION("nothing listening") {
    // A port that was free a moment ago and is closed now (bound, never listened on, closed).
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    ::close(fd);
    auto cfg = quick_config("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), 1);
    cfg.timeout_s = 2;
    http_teacher t(cfg);
    const std::string e = http_error_of([&] { (void)t.teach(make_requests(1, "refused")); });
    CHECK(e.find("gave up after 2 attempts") != std::string::npos);
    CHECK(e.find("request failed") != std::string::npos);
  }
}

TEST_CASE("https: the teacher verifies the server's certificate", "[distill][http][tls]") {
  // A self-signed certificate for 127.0.0.1, made by the openssl program (without it this case only warns).
  const std::string dir = temp_dir("tls");
  const std::string cert = dir + "/cert.pem", key = dir + "/key.pem";
  const std::string make =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext "
      "subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  if (std::system(make.c_str()) != 0) {
    WARN("openssl cannot make a test certificate here: https not tested");
    return;
  }
  httplib::SSLServer tls(cert.c_str(), key.c_str());
  REQUIRE(tls.is_valid());
  std::atomic<int> completed{0};
  tls.Post("/v1/chat/completions", [&](const httplib::Request& req, httplib::Response& res) {
    const auto j = nlohmann::json::parse(req.body);
    const std::string prompt = j["messages"].back()["content"];
    const nlohmann::json reply = {
        {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", "tls: " + prompt}}}}}},
        {"usage", {{"prompt_tokens", 3}, {"completion_tokens", 4}}}};
    ++completed;
    res.set_content(reply.dump(), "application/json");
  });
  const int port = tls.bind_to_any_port("127.0.0.1");
  std::thread th([&] { tls.listen_after_bind(); });
  const std::string url = "https://127.0.0.1:" + std::to_string(port);
  const auto requests = make_requests(3, "tls");
  {
    auto cfg = quick_config(url, 1);
    cfg.ca_cert_path = cert;  // trust the test certificate
    http_teacher t(cfg);
    const auto answers = t.teach(requests);
    for (std::size_t i = 0; i < requests.size(); ++i) CHECK(answers[i].text == "tls: " + requests[i].prompt);
    CHECK(t.accounting().prompt_tokens == 9);
    CHECK(t.accounting().completion_tokens == 12);
  }
  {
    http_teacher t(quick_config(url, 3));  // the system's CAs do not know it: refused at once, never answered
    const std::string e = http_error_of([&] { (void)t.teach(make_requests(1, "tls-untrusted")); });
    CHECK(e.find("SSL") != std::string::npos);
    CHECK(t.accounting().calls == 1);
  }
  CHECK(completed == 3);
  tls.stop();
  th.join();
  fs::remove_all(dir);
}

TEST_CASE("bad configurations are refused", "[distill][http]") {
  CHECK_THROWS_AS(http_teacher(quick_config("ftp://x", 1)), slim::error);
  CHECK_THROWS_AS(http_teacher(quick_config("http://", 1)), slim::error);
  CHECK_THROWS_AS(http_teacher(quick_config("http://h:99999999999/v1", 1)), slim::error);
  CHECK_THROWS_AS(http_teacher(quick_config("http://h:x", 1)), slim::error);
  http_teacher_config no_model = quick_config("http://h", 1);
  no_model.model = "";
  CHECK_THROWS_AS(http_teacher(no_model), slim::error);
  http_teacher_config no_workers = quick_config("http://h", 1);
  no_workers.concurrency = 0;
  CHECK_THROWS_AS(http_teacher(no_workers), slim::error);
  CHECK(http_teacher(quick_config("https://api.example.com/v1", 1)).url() ==
        "https://api.example.com/v1/chat/completions");
  CHECK(http_teacher(quick_config("http://h:81/", 1)).url() == "http://h:81/v1/chat/completions");
}

TEST_CASE("a teacher killed mid-run loses and duplicates nothing", "[distill][http][crash]") {
  // Bind before forking, serve after: the child starts with no threads of ours running in either process.
  fake_model model;
  model.delay_ms = 25;
  serve::chat_server server(serve::chat_server_config{}, [&](const serve::chat_request& r) { return model(r); });
  const int port = server.bind();
  const std::string dir = temp_dir("kill");
  const auto requests = make_requests(60, "kill");
  http_teacher_config cfg = quick_config("http://127.0.0.1:" + std::to_string(port), 3);
  cfg.model = "fake-model";
  cfg.concurrency = 2;
  cfg.timeout_s = 5;
  cfg.cache_dir = dir;
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    try {
      http_teacher t(cfg);
      (void)t.teach(requests);
    } catch (...) {
    }
    ::_exit(0);
  }
  server.start();
  answer_cache cache(dir);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (cache.entries().size() < 10 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  // Let the server finish what the child had in flight (it completes, but nobody stores it).
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  // What the child left: whole, valid entries only (find() parses and checks each one).
  std::vector<bool> cached_before(requests.size());
  std::size_t n_before = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto a = cache.find("fake-model", requests[i]);
    cached_before[i] = a.has_value();
    if (a) CHECK(a->text == expected_answer(requests[i].system, requests[i].prompt));
    n_before += a.has_value();
  }
  CHECK(cache.entries().size() == n_before);
  REQUIRE(n_before >= 10);
  REQUIRE(n_before < requests.size());
  const std::int64_t completions_before = server.stats().completions;
  CHECK(completions_before >= static_cast<std::int64_t>(n_before));
  CHECK(completions_before <= static_cast<std::int64_t>(n_before) + 2);  // at most one in flight per worker

  // The rerun asks exactly for what is not cached.
  http_teacher t(cfg);
  check_answers(requests, t.teach(requests));
  CHECK(t.accounting().cache_hits == static_cast<std::int64_t>(n_before));
  CHECK(t.accounting().calls == static_cast<std::int64_t>(requests.size() - n_before));
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const int c = model.count(requests[i].prompt);
    if (cached_before[i])
      CHECK(c == 1);
    else
      CHECK((c == 1 || c == 2));  // 2: it was in flight when the child died
  }
  check_cache_holds_each_once(dir, requests);
  server.stop();
  fs::remove_all(dir);
}

TEST_CASE("chat_server speaks the OpenAI protocol, streaming included", "[serve]") {
  test_server s;
  httplib::Client c(s.url());
  const std::string body =
      R"({"model": "x", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hello there"}]})";
  auto res = c.Post("/v1/chat/completions", body, "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  const auto j = nlohmann::json::parse(res->body);
  CHECK(j["object"] == "chat.completion");
  CHECK(j["model"] == "fake");
  CHECK(j["id"].is_string());
  CHECK(j["created"].is_number_integer());
  CHECK(j["choices"][0]["index"] == 0);
  CHECK(j["choices"][0]["message"]["role"] == "assistant");
  const std::string content = j["choices"][0]["message"]["content"];
  CHECK(content == expected_answer("S", "hello there"));
  CHECK(j["choices"][0]["finish_reason"] == "stop");
  CHECK(j["usage"]["total_tokens"] ==
        j["usage"]["prompt_tokens"].get<int>() + j["usage"]["completion_tokens"].get<int>());

  SECTION("stream: the deltas concatenate to the non-streaming content") {
    const std::string stream_body = body.substr(0, body.size() - 1) + R"(, "stream": true})";
    auto sres = c.Post("/v1/chat/completions", stream_body, "application/json");
    REQUIRE(sres);
    REQUIRE(sres->status == 200);
    CHECK(sres->get_header_value("Content-Type").find("text/event-stream") == 0);
    std::string text, finish;
    std::vector<std::string> events;
    for (std::size_t pos = 0; pos < sres->body.size();) {
      const std::size_t end = sres->body.find("\n\n", pos);
      REQUIRE(end != std::string::npos);  // every event ends with a blank line
      const std::string event = sres->body.substr(pos, end - pos);
      REQUIRE(event.rfind("data: ", 0) == 0);
      events.push_back(event.substr(6));
      pos = end + 2;
    }
    REQUIRE(events.size() >= 3);
    CHECK(events.back() == "[DONE]");
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
      const auto e = nlohmann::json::parse(events[i]);
      CHECK(e["object"] == "chat.completion.chunk");
      const auto& delta = e["choices"][0]["delta"];
      if (delta.contains("content")) text += delta["content"].get<std::string>();
      if (!e["choices"][0]["finish_reason"].is_null()) finish = e["choices"][0]["finish_reason"];
    }
    CHECK(text == content);
    CHECK(finish == "stop");
    CHECK(events.size() > 4);  // it did stream in pieces
  }
  SECTION("models") {
    auto m = c.Get("/v1/models");
    REQUIRE(m);
    CHECK(m->status == 200);
    CHECK(nlohmann::json::parse(m->body)["data"][0]["id"] == "fake");
  }
  SECTION("bad requests get 400 with a JSON error, and the server carries on") {
    for (const char* bad : {"not json", "[]", "{}", R"({"messages": []})", R"({"messages": [{"role": "user"}]})",
                            R"({"messages": [{"role": "robot", "content": "x"}]})",
                            R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})",
                            R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": -3})"}) {
      auto r = c.Post("/v1/chat/completions", bad, "application/json");
      REQUIRE(r);
      CHECK(r->status == 400);
      CHECK(nlohmann::json::parse(r->body)["error"]["type"] == "invalid_request_error");
    }
    CHECK(s.server.stats().bad_requests == 8);
    auto ok = c.Post("/v1/chat/completions", body, "application/json");
    REQUIRE(ok);
    CHECK(ok->status == 200);
  }
}

TEST_CASE("parse_fault reads modes and options and refuses nonsense", "[serve]") {
  const auto f = serve::parse_fault("429:first=2,retry_after=3,seed=9");
  CHECK(f.kind == serve::fault_kind::rate_limit);
  CHECK(f.first == 2);
  CHECK(f.retry_after_s == 3);
  CHECK(f.seed == 9);
  CHECK(serve::parse_fault("drop").fraction == 0.25);
  CHECK(serve::parse_fault("stall:p=0.5,stall=2").stall_s == 2);
  CHECK_THROWS_AS(serve::parse_fault("explode"), slim::error);
  CHECK_THROWS_AS(serve::parse_fault("500:p=2"), slim::error);
  CHECK_THROWS_AS(serve::parse_fault("500:colour=red"), slim::error);
}
