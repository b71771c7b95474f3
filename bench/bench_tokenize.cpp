// Tokenizer encode throughput (one thread): GPT-2 byte-level BPE and LLaMA-2 SentencePiece BPE over a text
// corpus, plus a 256 KB / 1 MB single "word" and single-character run for each (linear-time evidence: the
// 1 MB figures should be ≈ 4x the 256 KB ones in time, the same in bytes/s). Peers: tools/bench/tokenize_speed.py.
//
// Inputs (flags after Google Benchmark's own; each falls back to an environment variable):
//   --corpus=PATH   JSON Lines {"text": ...}, one document per line  [SLIM_BENCH_TOKENIZE_CORPUS]
//                   (tools/bench/tokenize_speed.py assembles it from the shared data; without it the corpus
//                   benchmarks are skipped)
//   --gpt2=PATH     a folder with encoder.json + vocab.bpe, or a tokenizer.json
//                   [SLIM_BENCH_GPT2, default $SLIM_DATA_DIR/tokenizers/gpt2]
//   --llama=PATH    a SentencePiece tokenizer.model  [SLIM_BENCH_LLAMA, default $SLIM_DATA_DIR/tokenizers/llama/...]
//   --ids-out=PATH  before benchmarking, write {"doc", "gpt2", "llama2"} ids of every K-th corpus document
//   --ids-every=K   (default 97) for --ids-out
// SLIM_DATA_DIR defaults to ../shared/data beside the source tree. A missing file skips what needs it (with a
// note on stderr); with nothing left to run the program says so and exits 0. Each corpus benchmark encodes
// every document separately (encode_into, no special tokens added) and reports bytes/s and the token count
// of one pass (`tokens`).
// SPDX-License-Identifier: Apache-2.0
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "slim/core/philox.hpp"
#include "slim/text/byte_bpe.hpp"
#include "slim/text/sentencepiece.hpp"

#ifndef SLIM_BENCH_DEFAULT_DATA_DIR
#define SLIM_BENCH_DEFAULT_DATA_DIR "../shared/data"
#endif

namespace {

using slim::text::token_id;

struct options {
  std::string corpus, gpt2, llama, ids_out;
  std::size_t ids_every = 97;
};

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

bool exists(const std::string& path) {
  std::error_code ec;
  return !path.empty() && std::filesystem::exists(path, ec);
}

std::vector<std::string> read_corpus(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open corpus " + path);
  std::vector<std::string> docs;
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    const auto row = nlohmann::json::parse(line, nullptr, false);
    if (row.is_discarded() || !row.is_object() || !row.contains("text") || !row["text"].is_string())
      throw std::runtime_error(path + ": line " + std::to_string(line_no) + ": expected {\"text\": string}");
    docs.push_back(row["text"].get<std::string>());
  }
  return docs;
}

/// Encodes every document separately, `ids` reused; returns the number of ids of one pass.
template <class Tok>
std::size_t encode_all(const Tok& tok, const std::vector<std::string>& docs, std::vector<token_id>& ids) {
  std::size_t n = 0;
  for (const auto& d : docs) {
    ids.clear();
    tok.encode_into(d, ids);
    n += ids.size();
  }
  return n;
}

template <class Tok>
void register_corpus(const char* name, std::shared_ptr<const Tok> tok,
                     std::shared_ptr<const std::vector<std::string>> docs) {
  std::int64_t bytes = 0;
  for (const auto& d : *docs) bytes += static_cast<std::int64_t>(d.size());
  benchmark::RegisterBenchmark(name,
                               [tok, docs, bytes](benchmark::State& state) {
                                 std::vector<token_id> ids;
                                 ids.reserve(1 << 16);
                                 std::size_t tokens = 0;
                                 for (auto _ : state) {
                                   tokens = encode_all(*tok, *docs, ids);
                                   benchmark::DoNotOptimize(tokens);
                                 }
                                 state.SetBytesProcessed(bytes * static_cast<std::int64_t>(state.iterations()));
                                 state.counters["tokens"] = static_cast<double>(tokens);
                                 state.counters["documents"] = static_cast<double>(docs->size());
                               })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

/// The long inputs: a word of seeded random lowercase letters (one pre-token) and a run of 'a'.
std::string long_input(bool word, std::size_t size) {
  std::string s(size, 'a');
  if (word) {
    slim::philox_stream rng(11);
    for (auto& c : s) c = static_cast<char>('a' + rng.below(26));
  }
  return s;
}

template <class Tok>
void register_scale(const std::string& prefix, std::shared_ptr<const Tok> tok) {
  for (const bool word : {true, false}) {
    for (const std::size_t kb : {256u, 1024u}) {
      const std::string name = prefix + (word ? "/word_" : "/run_a_") + (kb == 1024 ? "1MB" : "256KB");
      auto text = std::make_shared<const std::string>(long_input(word, kb * 1024));
      benchmark::RegisterBenchmark(name.c_str(),
                                   [tok, text](benchmark::State& state) {
                                     std::vector<token_id> ids;
                                     for (auto _ : state) {
                                       ids.clear();
                                       tok->encode_into(*text, ids);
                                       benchmark::DoNotOptimize(ids.data());
                                     }
                                     state.SetBytesProcessed(static_cast<std::int64_t>(text->size()) *
                                                             static_cast<std::int64_t>(state.iterations()));
                                     state.counters["tokens"] = static_cast<double>(ids.size());
                                   })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
}

void write_ids(const std::string& path, std::size_t every, const std::vector<std::string>& docs,
               const slim::text::byte_bpe* gpt2, const slim::text::sentencepiece_bpe* llama) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error("cannot write " + path);
  for (std::size_t i = 0; i < docs.size(); i += every) {
    nlohmann::json row;
    row["doc"] = i;
    if (gpt2) row["gpt2"] = gpt2->encode(docs[i]);
    if (llama) row["llama2"] = llama->encode(docs[i]);
    out << row.dump() << '\n';
  }
}

int run(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const std::string data = env_or("SLIM_DATA_DIR", SLIM_BENCH_DEFAULT_DATA_DIR);
  options o;
  o.corpus = env_or("SLIM_BENCH_TOKENIZE_CORPUS", "");
  o.gpt2 = env_or("SLIM_BENCH_GPT2", data + "/tokenizers/gpt2");
  o.llama = env_or("SLIM_BENCH_LLAMA", data + "/tokenizers/llama/tokenizer.model");
  for (int i = 1; i < argc; ++i) {
    const std::string_view a(argv[i]);
    auto value = [&](std::string_view flag) -> std::optional<std::string> {
      if (a.substr(0, flag.size()) == flag) return std::string(a.substr(flag.size()));
      return std::nullopt;
    };
    if (auto v = value("--corpus="))
      o.corpus = *v;
    else if (auto v2 = value("--gpt2="))
      o.gpt2 = *v2;
    else if (auto v3 = value("--llama="))
      o.llama = *v3;
    else if (auto v4 = value("--ids-out="))
      o.ids_out = *v4;
    else if (auto v5 = value("--ids-every="))
      o.ids_every = std::max<std::size_t>(1, std::stoul(*v5));
    else {
      std::cerr << "bench_tokenize: unknown argument " << a << "\n";
      return 2;
    }
  }

  std::shared_ptr<const slim::text::byte_bpe> gpt2;
  std::shared_ptr<const slim::text::sentencepiece_bpe> llama;
  std::shared_ptr<const std::vector<std::string>> docs;
  if (exists(o.gpt2))
    gpt2 = std::make_shared<const slim::text::byte_bpe>(slim::text::byte_bpe::from_file(o.gpt2));
  else
    std::cerr << "bench_tokenize: skipping GPT-2 (no tokenizer at '" << o.gpt2 << "')\n";
  if (exists(o.llama))
    llama = std::make_shared<const slim::text::sentencepiece_bpe>(slim::text::sentencepiece_bpe::from_file(o.llama));
  else
    std::cerr << "bench_tokenize: skipping LLaMA-2 (no tokenizer.model at '" << o.llama << "')\n";
  if (exists(o.corpus))
    docs = std::make_shared<const std::vector<std::string>>(read_corpus(o.corpus));
  else
    std::cerr << "bench_tokenize: skipping the corpus benchmarks (no corpus"
              << (o.corpus.empty() ? std::string(": give --corpus=PATH") : " at '" + o.corpus + "'") << ")\n";

  if (docs && !o.ids_out.empty()) write_ids(o.ids_out, o.ids_every, *docs, gpt2.get(), llama.get());
  if (gpt2 && docs) register_corpus("tokenize/gpt2/corpus", gpt2, docs);
  if (llama && docs) register_corpus("tokenize/llama2/corpus", llama, docs);
  if (gpt2) register_scale("tokenize/gpt2", gpt2);
  if (llama) register_scale("tokenize/llama2", llama);
  if (!gpt2 && !llama) {
    std::cerr << "bench_tokenize: no tokenizer files found; nothing to run (skipped)\n";
    return 0;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "bench_tokenize: " << e.what() << "\n";
    return 1;
  }
}
