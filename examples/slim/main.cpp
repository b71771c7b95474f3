// slim — the program: one dispatcher for the subcommands; `slim run` is the main job (the SLIM pipeline end to
// end on the embedded synthetic world).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string_view>
#include <vector>

#include "commands.hpp"

namespace slim::cli {
namespace {

struct command {
  std::string_view name, synopsis, summary;
  int (*run)(args);
};

constexpr command commands[] = {
    {"run", "run [--config FILE] [--quick] [...]",
     "the main job: the SLIM pipeline end to end on the synthetic world\n"
     "(oracle teacher, student distillation, SASRec and GRU4Rec with the\n"
     "controls); the results table on stdout, artefacts in --run-dir",
     run_run},
    {"help", "help", "this text", run_help},
    {"version", "version", "version, compiler, compiled backends and architectures, CUDA availability", run_version},
    {"kernels", "kernels [--threads N] [--quick]",
     "tour of the kernel set: each op on each CPU backend this build and\n"
     "CPU support, checked against the scalar oracle, with its speed\n"
     "  --threads N  thread pool of the simd backends (default 1)\n"
     "  --quick      small cases, short timing",
     run_kernels},
    {"tokenize", "tokenize --tokenizer PATH [...]",
     "JSON Lines {\"text\"} on stdin -> {\"ids\"} on stdout (--decode: the\n"
     "reverse; --add-special; `tokenize train` trains a byte-level BPE);\n"
     "PATH: tokenizer.json, tokenizer.model, vocab.txt or a GPT-2 folder",
     run_tokenize},
    {"rec", "rec train --data PATH [...]",
     "train SASRec or GRU4Rec on a data set; progress on stderr, test\n"
     "metrics (sampled-100 and full ranking) as one JSON object on stdout",
     run_rec},
    {"lm", "lm <command> --model DIR [...]",
     "an HF checkpoint folder's language model: `lm logits`, `lm generate`,\n"
     "`lm train` (LoRA or full, from JSON Lines); `lm embed`: sentence\n"
     "embeddings from a BERT-family encoder; results as JSON on stdout",
     run_lm},
#if SLIM_CLI_HAS_SERVE
    {"serve", "serve --model DIR [...]",
     "an OpenAI-compatible chat-completions server (JSON and SSE) over a\n"
     "checkpoint folder's model; --fault injects faults for testing clients",
     run_serve},
#endif
};

void print_usage(std::FILE* out) {
  std::fprintf(out, "usage: slim <command> [options]\n\ncommands:\n");
  for (const command& c : commands) {
    std::string_view rest = c.summary;
    std::fprintf(out, "  %-33.*s", static_cast<int>(c.synopsis.size()), c.synopsis.data());
    for (bool first = true; !rest.empty(); first = false) {
      const std::size_t eol = std::min(rest.find('\n'), rest.size());
      std::fprintf(out, "%*s%.*s\n", first ? 0 : 35, "", static_cast<int>(eol), rest.data());
      rest.remove_prefix(std::min(eol + 1, rest.size()));
    }
  }
}

}  // namespace

int run_help(args a) {
  if (!a.empty()) throw usage_error("help takes no arguments");
  print_usage(stdout);
  return 0;
}

}  // namespace slim::cli

int main(int argc, char** argv) {
  using namespace slim::cli;
  const std::vector<std::string_view> all(argv + 1, argv + argc);
  if (all.empty()) {
    print_usage(stderr);
    return 2;
  }
  std::string_view name = all[0];
  if (name == "--help" || name == "-h") name = "help";
  if (name == "--version") name = "version";
  for (const command& c : commands) {
    if (c.name != name) continue;
    try {
      return c.run(args(all).subspan(1));
    } catch (const usage_error& e) {
      std::fprintf(stderr, "slim %.*s: %s\nrun `slim help` for usage\n", static_cast<int>(name.size()), name.data(),
                   e.what());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "slim %.*s: error: %s\n", static_cast<int>(name.size()), name.data(), e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "slim: unknown command '%.*s'\nrun `slim help` for usage\n", static_cast<int>(name.size()),
               name.data());
  return 2;
}
