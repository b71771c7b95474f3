// `slim tokenize`: JSON Lines through a tokenizer — {"text": "..."} in, {"ids": [...]} out, or the reverse
// with --decode — and `slim tokenize train`: a byte-level BPE tokenizer.json trained on a corpus.
//
// One output line per non-blank input line, in order; a trailing '\r' is ignored. Output is flushed whenever
// the program is about to wait for input, so it can serve another process line by line. A line that is not
// the expected JSON fails the run (exit status 1) with "stdin:LINE: ..." on stderr; lines before it have been
// written. Decoded text that is not valid UTF-8 (ids that split a character) is written with U+FFFD in place
// of each ill-formed unit, as JSON strings must be UTF-8.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "commands.hpp"
#include "slim/core/error.hpp"
#include "slim/io/json.hpp"
#include "slim/text/bpe_trainer.hpp"
#include "slim/text/load.hpp"
#include "slim/text/unicode.hpp"
#include "str.hpp"

namespace slim::cli {
namespace {

using nlohmann::json;
using text::token_id;

/// Reads standard input in blocks and hands out whole lines; calls `before_wait` before each read(2).
class line_reader {
 public:
  /// The next line without its '\n' (and '\r'); false at the end of input.
  template <class BeforeWait>
  bool next(std::string& line, BeforeWait&& before_wait) {
    for (;;) {
      const std::size_t eol = buffer_.find('\n', start_);
      if (eol != std::string::npos) {
        take(line, eol, eol + 1);
        return true;
      }
      if (eof_) {
        if (start_ == buffer_.size()) return false;
        take(line, buffer_.size(), buffer_.size());  // a last line without '\n'
        return true;
      }
      buffer_.erase(0, start_);
      start_ = 0;
      before_wait();
      char block[1 << 16];
      const ssize_t n = ::read(STDIN_FILENO, block, sizeof block);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw error("stdin", "", str("read failed: ", std::strerror(errno)));
      }
      if (n == 0)
        eof_ = true;
      else
        buffer_.append(block, static_cast<std::size_t>(n));
    }
  }
  std::size_t line_number() const noexcept { return line_number_; }

 private:
  void take(std::string& line, std::size_t end, std::size_t next) {
    std::size_t len = end - start_;
    if (len > 0 && buffer_[start_ + len - 1] == '\r') --len;
    line.assign(buffer_, start_, len);
    start_ = next;
    ++line_number_;
  }
  std::string buffer_;
  std::size_t start_ = 0, line_number_ = 0;
  bool eof_ = false;
};

/// Buffered standard output.
class output {
 public:
  ~output() { flush_noexcept(); }
  void write(std::string_view s) {
    buffer_.append(s);
    if (buffer_.size() >= (1u << 16)) flush();
  }
  void flush() {
    if (!buffer_.empty() && std::fwrite(buffer_.data(), 1, buffer_.size(), stdout) != buffer_.size())
      throw error("stdout", "", "write failed");
    buffer_.clear();
    if (std::fflush(stdout) != 0) throw error("stdout", "", "write failed");
  }

 private:
  void flush_noexcept() noexcept {
    if (!buffer_.empty()) std::fwrite(buffer_.data(), 1, buffer_.size(), stdout);
    std::fflush(stdout);
  }
  std::string buffer_;
};

error line_error(std::size_t line, const std::string& message) { return error(str("stdin:", line), "", message); }

/// The record on one line, which must be a JSON object holding `key`.
json parse_record(const std::string& line, std::size_t line_no, const char* expected) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception& e) {
    throw line_error(line_no, str("invalid JSON (", io::detail::json_message(e), "); expected ", expected));
  }
  if (!j.is_object()) throw line_error(line_no, str("expected ", expected, ", found a JSON ", j.type_name()));
  return j;
}

std::vector<token_id> ids_of(const json& record, std::size_t line_no) {
  const auto it = record.find("ids");
  if (it == record.end() || !it->is_array()) throw line_error(line_no, "expected {\"ids\": [...]}");
  std::vector<token_id> ids;
  ids.reserve(it->size());
  for (std::size_t i = 0; i < it->size(); ++i) {
    const json& v = (*it)[i];
    if (!v.is_number_integer()) throw line_error(line_no, str("ids[", i, "] is not an integer (", v.type_name(), ")"));
    const bool fits = v.is_number_unsigned()
                          ? v.get<std::uint64_t>() <= std::numeric_limits<token_id>::max()
                          : v.get<std::int64_t>() >= 0 && v.get<std::int64_t>() <= std::numeric_limits<token_id>::max();
    if (!fits) throw line_error(line_no, str("ids[", i, "] = ", v.dump(), " is not a token id"));
    ids.push_back(static_cast<token_id>(v.get<std::int64_t>()));
  }
  return ids;
}

std::string_view value_of(args a, std::size_t& i, std::string_view name) {
  if (a[i].size() > name.size() && a[i].substr(0, name.size()) == name && a[i][name.size()] == '=')
    return a[i].substr(name.size() + 1);
  if (i + 1 == a.size()) throw usage_error(str(name, " needs a value"));
  return a[++i];
}
bool is_option(std::string_view arg, std::string_view name) {
  return arg == name || (arg.size() > name.size() && arg.substr(0, name.size()) == name && arg[name.size()] == '=');
}

std::uint64_t parse_count(std::string_view s, std::string_view name, std::uint64_t low, std::uint64_t high) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v < low || v > high)
    throw usage_error(
        str(name, " wants an integer from ", std::to_string(low), " to ", std::to_string(high), ", not '", s, "'"));
  return v;
}

int run_train(args a) {
  std::vector<std::string> corpora;
  std::string out;
  std::optional<bool> jsonl;
  text::bpe_trainer_options o;
  bool have_vocab = false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (is_option(a[i], "--corpus")) {
      corpora.emplace_back(value_of(a, i, "--corpus"));
    } else if (is_option(a[i], "--vocab-size")) {
      o.vocab_size = parse_count(value_of(a, i, "--vocab-size"), "--vocab-size", 1, text::bpe_trainer::max_vocab_size);
      have_vocab = true;
    } else if (is_option(a[i], "--out")) {
      out = value_of(a, i, "--out");
    } else if (is_option(a[i], "--pattern")) {
      const std::string_view p = value_of(a, i, "--pattern");
      if (p == "gpt2")
        o.pattern = text::split_pattern::gpt2;
      else if (p == "llama3")
        o.pattern = text::split_pattern::llama3;
      else if (p == "qwen2")
        o.pattern = text::split_pattern::qwen2;
      else
        throw usage_error(str("--pattern wants gpt2, llama3 or qwen2, not '", p, "'"));
    } else if (is_option(a[i], "--min-frequency")) {
      o.min_frequency = parse_count(value_of(a, i, "--min-frequency"), "--min-frequency", 0,
                                    std::numeric_limits<std::uint32_t>::max());
    } else if (is_option(a[i], "--special")) {
      o.special_tokens.emplace_back(value_of(a, i, "--special"));
    } else if (is_option(a[i], "--bos")) {
      o.bos_token = std::string(value_of(a, i, "--bos"));
    } else if (is_option(a[i], "--eos")) {
      o.eos_token = std::string(value_of(a, i, "--eos"));
    } else if (a[i] == "--add-prefix-space") {
      o.add_prefix_space = true;
    } else if (a[i] == "--ignore-merges") {
      o.ignore_merges = true;
    } else if (a[i] == "--used-bytes-only") {
      o.full_alphabet = false;
    } else if (a[i] == "--jsonl") {
      jsonl = true;
    } else if (a[i] == "--text") {
      jsonl = false;
    } else {
      throw usage_error(str("unknown option '", a[i], "'"));
    }
  }
  if (corpora.empty()) throw usage_error("train needs --corpus FILE");
  if (!have_vocab) throw usage_error("train needs --vocab-size N");
  if (out.empty()) throw usage_error("train needs --out PATH");
  for (const auto& t : {o.bos_token, o.eos_token})
    if (t && std::find(o.special_tokens.begin(), o.special_tokens.end(), *t) == o.special_tokens.end())
      o.special_tokens.push_back(*t);

  const auto t0 = std::chrono::steady_clock::now();
  text::bpe_trainer trainer(o);
  std::size_t bytes = 0, sequences = 0;
  for (const auto& path : corpora) {
    const bool as_jsonl = jsonl ? *jsonl : path.size() >= 6 && path.substr(path.size() - 6) == ".jsonl";
    if (as_jsonl) {
      io::read_jsonl(path, [&](json&& record, std::size_t line) {
        const auto it = record.is_object() ? record.find("text") : record.end();
        if (!record.is_object() || it == record.end() || !it->is_string())
          throw error(path, str("line ", line), "expected {\"text\": \"...\"}");
        const auto& s = it->get_ref<const std::string&>();
        bytes += s.size();
        ++sequences;
        trainer.feed(s);
      });
    } else {  // plain text: one sequence per line, '\n' included (HF `train` from files)
      const std::string s = io::read_file(path);
      bytes += s.size();
      sequences += static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
      trainer.feed_lines(s);
    }
  }
  const auto t1 = std::chrono::steady_clock::now();
  const text::trained_bpe model = trainer.train();
  const auto t2 = std::chrono::steady_clock::now();
  model.save(out);
  const auto seconds = [](auto d) { return std::chrono::duration<double>(d).count(); };
  std::fprintf(stderr,
               "slim tokenize train: %zu bytes, %zu sequences, %zu distinct words (%.2f s); %zu tokens, %zu merges "
               "(%.2f s) -> %s\n",
               bytes, sequences, model.distinct_words, seconds(t1 - t0), model.tokens.size(), model.merges.size(),
               seconds(t2 - t1), out.c_str());
  return 0;
}

}  // namespace

int run_tokenize(args a) {
  if (!a.empty() && a[0] == "train") return run_train(a.subspan(1));
  std::string path;
  bool add_special = false, decode = false, skip_special = false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (is_option(a[i], "--tokenizer"))
      path = value_of(a, i, "--tokenizer");
    else if (a[i] == "--add-special")
      add_special = true;
    else if (a[i] == "--decode")
      decode = true;
    else if (a[i] == "--skip-special")
      skip_special = true;
    else
      throw usage_error(str("unknown option '", a[i], "'"));
  }
  if (path.empty()) throw usage_error("tokenize needs --tokenizer PATH");
  if (decode && add_special) throw usage_error("--add-special applies to encoding, not to --decode");
  if (!decode && skip_special) throw usage_error("--skip-special applies to --decode");

  const text::any_tokenizer tok = text::load_tokenizer(path);
  line_reader in;
  output out;
  std::string line, buf;
  std::vector<token_id> ids;
  const auto flush = [&] { out.flush(); };
  while (in.next(line, flush)) {
    const std::size_t n = in.line_number();
    if (io::detail::is_blank(line)) continue;
    if (decode) {
      const json record = parse_record(line, n, "{\"ids\": [...]}");
      ids = ids_of(record, n);
      std::string s;
      try {
        s = tok.decode(ids, {.skip_special = skip_special});
      } catch (const error& e) {
        throw line_error(n, e.what());
      }
      buf = "{\"text\":";
      buf += json(text::unicode::to_valid_utf8(s)).dump();
      buf += "}\n";
    } else {
      const json record = parse_record(line, n, "{\"text\": \"...\"}");
      const auto it = record.find("text");
      if (it == record.end() || !it->is_string()) throw line_error(n, "expected {\"text\": \"...\"}");
      ids = tok.encode(it->get_ref<const std::string&>(), {.add_special = add_special});
      buf = "{\"ids\":[";
      for (std::size_t k = 0; k < ids.size(); ++k) {
        if (k) buf += ',';
        char num[16];
        const auto r = std::to_chars(num, num + sizeof num, ids[k]);
        buf.append(num, r.ptr);
      }
      buf += "]}\n";
    }
    out.write(buf);
  }
  out.flush();
  return 0;
}

}  // namespace slim::cli
