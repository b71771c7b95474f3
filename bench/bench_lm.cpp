// Student LM benchmarks (nn/train layers): (a) one LoRA training step of the student config at 1 and 2
// threads, with the model's FLOP rate (compare it with probe_fma, compiled into the same program from
// bench_probes.cpp); (b) greedy generation tokens/s at batch 1 and 8 for llama2.c-shaped ~15M and ~110M configs;
// (c) the training process's peak RSS against the analytic bytes. Peers: tools/bench/lm_speed.py.
//
// Flags (before Google Benchmark's own):
//   --lm-dir=DIR      HF folders DIR/stories15M and DIR/stories110M (config.json + model.safetensors, F32), e.g.
//                     the random weights lm_speed.py writes so that every peer runs the same weights; without
//                     them each generation model is built in code with seeded random N(0, 0.02²) weights
//   --train-steps=N   timed training steps per benchmark (default 3, after one untimed warm-up step)
//   --gen-reps=N      timed generate calls per benchmark (default 1, after one untimed warm-up call)
//   --rss-child       internal: run two training steps in this fresh process and print its peak RSS as JSON
// SPDX-License-Identifier: Apache-2.0
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench_common.hpp"
#include "slim/io/hf_checkpoint.hpp"
#include "slim/io/llama_config.hpp"
#include "slim/nn/decoder_lm.hpp"
#include "slim/nn/generate.hpp"
#include "slim/train/lm_loss.hpp"
#include "slim/train/lm_trainer.hpp"

namespace {

using slim::index_t;

#if defined(SLIM_BENCH_AVX512)
using best = slim::bench::avx512;
constexpr const char* best_name = "avx512";
#elif defined(SLIM_BENCH_AVX2)
using best = slim::bench::avx2;
constexpr const char* best_name = "avx2";
#else
using best = slim::backend::simd<xsimd::default_arch>;  // a benchmark program, not library code
constexpr const char* best_name = "default";
#endif

struct options {
  std::string lm_dir;
  int train_steps = 3;
  int gen_reps = 1;
  bool rss_child = false;
};
options& opts() {
  static options o;
  return o;
}

// ---------------------------------------------------------------------------------------------------------------
// (a) training step

/// The student: d=256, 4 layers, 8 heads, 8 KV heads (Dh = 32), intermediate 688, vocab 4096, untied head
/// (HF LlamaConfig's default). Batch 8 × seq 256; LoRA r = 8 (alpha 16) on q_proj and v_proj.
slim::nn::decoder_config student_config() {
  slim::nn::decoder_config c;
  c.vocab_size = 4096;
  c.hidden_size = 256;
  c.intermediate_size = 688;
  c.num_layers = 4;
  c.num_heads = 8;
  c.num_kv_heads = 8;
  c.max_positions = 256;
  c.rms_norm_eps = 1e-5;
  return c;
}
constexpr index_t train_batch = 8, train_seq = 256, lora_rank = 8;

/// Model FLOPs of one training step per token (2 per multiply-add), counted analytically for this LoRA setup:
///   forward, per token: every projection 2·(4H² + 3HI) per layer, the LM head 2HV, attention QKᵀ and PV
///     2·2·Dh·Hq per visible key, (S+1)/2 visible keys on average under the causal mask, LoRA 2·2·2rH per layer
///     (q and v: A then B);
///   backward: the base is frozen, so each projection and the head need only the input gradient (1× forward) —
///     except layer 0's q, k, v, whose input gradient goes nowhere (frozen embedding), so 0×; attention 2× forward
///     (dQ, dK from dS; dP, dV); LoRA 2× forward (its factors' gradients and its input gradient).
/// For the student: forward 8.42 (GEMMs) + 0.53 (attention) + 0.07 (LoRA) = 9.02 MFLOP; backward 8.03 + 1.05 + 0.13
/// = 9.21 MFLOP; ≈ 18.2 MFLOP per token (the issue's ≈ 20), ≈ 37.3 GFLOP per step of 2,048 tokens. Norms, RoPE,
/// softmax, SiLU, the loss and AdamW are not counted.
double train_flops_per_token(const slim::nn::decoder_config& c, index_t seq, index_t rank) {
  const double h = static_cast<double>(c.hidden_size), in = static_cast<double>(c.intermediate_size);
  const double v = static_cast<double>(c.vocab_size), l = static_cast<double>(c.num_layers);
  const double dh = static_cast<double>(c.head_dim()), hq = static_cast<double>(c.num_heads);
  const double hkv = static_cast<double>(c.num_kv_heads), r = static_cast<double>(rank);
  const double qkv = 2 * h * (hq * dh + 2 * hkv * dh);         // q, k, v projections
  const double proj = qkv + 2 * hq * dh * h + 2 * 3 * h * in;  // + o, gate, up, down
  const double head = 2 * h * v;
  const double attn = 2 * 2 * dh * hq * (static_cast<double>(seq) + 1) / 2;
  const double lora = 2 * 2 * (2 * r * h);  // q and v: x·Aᵀ (r·H) then ·Bᵀ (H·r), H = hq·dh for this config
  const double fwd = l * (proj + attn + lora) + head;
  const double bwd = l * proj - qkv + head + 2 * l * attn + 2 * l * lora;
  return fwd + bwd;
}

using student_lm = slim::nn::decoder_lm<best, slim::nn::lora<slim::nn::q_proj, slim::nn::v_proj>>;

/// A ready training setup: model, optimizer, a fixed random batch (every next token counts) and buffers.
struct train_setup {
  slim::nn::decoder_config cfg = student_config();
  student_lm model{cfg, slim::nn::lora_config{.rank = lora_rank, .alpha = 16}};
  slim::train::adam<best, float> opt;
  slim::tensor<std::int32_t, 2> ids{{train_batch, train_seq}};
  std::vector<std::int32_t> targets;
  std::vector<float> logits, dlogits;
  slim::train::token_nll<best, float> nll;

  static slim::train::lm_train_config optimizer_config() {
    slim::train::lm_train_config c;
    c.lr = 1e-4;
    return c;
  }

  train_setup() : opt(slim::train::make_lm_optimizer<best, float>(model, optimizer_config())) {
    model.reset_parameters(1234);
    slim::philox_stream rng(99);
    for (auto& x : ids)
      x = static_cast<std::int32_t>(rng.uniform(0, 1) * static_cast<double>(cfg.vocab_size)) %
          static_cast<std::int32_t>(cfg.vocab_size);
    targets.assign(static_cast<std::size_t>(train_batch * train_seq), slim::train::ignore_target);
    for (index_t b = 0; b < train_batch; ++b)
      for (index_t t = 0; t + 1 < train_seq; ++t)
        targets[static_cast<std::size_t>(b * train_seq + t)] = ids.view()(b, t + 1);
    logits.resize(static_cast<std::size_t>(train_batch * train_seq * cfg.vocab_size));
    dlogits.resize(logits.size());
  }

  /// forward, masked NLL, backward into the LoRA factors, AdamW. Returns the loss.
  double step(const best& be) {
    const index_t rows = train_batch * train_seq;
    const slim::matrix_view<float> z(logits.data(), {rows, cfg.vocab_size});
    const slim::matrix_view<float> dz(dlogits.data(), {rows, cfg.vocab_size});
    slim::nn::zero_grad(model);
    std::fill(dlogits.begin(), dlogits.end(), 0.0f);
    model.forward(be, ids.view(), z);
    const double loss = nll.forward(be, slim::matrix_view<const float>(z),
                                    slim::vector_view<const std::int32_t>(targets.data(), {rows}));
    nll.backward(be, dz, 1.0);
    model.backward(be, slim::matrix_view<const float>(dz));
    opt.step(be);
    return loss;
  }
};

void bm_train_step(benchmark::State& state) {
  const auto threads = static_cast<std::size_t>(state.range(0));
  const best be = slim::bench::make_backend<best>(threads);
  train_setup s;
  benchmark::DoNotOptimize(s.step(be));  // warm-up: buffers are allocated here
  double loss = 0;
  for (auto _ : state) loss = s.step(be);
  const double tokens = static_cast<double>(train_batch * train_seq);
  state.counters["tokens/s"] =
      benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["FLOP/s"] =
      benchmark::Counter(tokens * train_flops_per_token(s.cfg, train_seq, lora_rank),
                         benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["MFLOP/token"] = train_flops_per_token(s.cfg, train_seq, lora_rank) / 1e6;
  state.counters["loss"] = loss;
}

// ---------------------------------------------------------------------------------------------------------------
// (c) peak RSS of a training process

/// Analytic bytes of one training step: weights, gradients and AdamW moments of the trainable (LoRA) parameters,
/// and activations — each block's cache (6H + 3I + 2·Hkv·Dh values per token, docs/lm.md), the final norm's rows
/// (H per token) and the logits and their gradient (2V per token). Backward temporaries shared by the blocks are
/// not counted (they are part of what the ratio measures).
struct rss_parts {
  double weights = 0, trainable = 0, activations = 0;
  double total() const { return 4 * (weights + 3 * trainable + activations); }
};
rss_parts analytic_training_bytes(train_setup& s) {
  rss_parts p;
  s.model.visit_parameters([&](auto& prm) {
    p.weights += static_cast<double>(prm.size());
    if (prm.trainable) p.trainable += static_cast<double>(prm.size());
  });
  const auto& c = s.cfg;
  const double n = static_cast<double>(train_batch * train_seq);
  p.activations =
      static_cast<double>(c.num_layers) *
          static_cast<double>(6 * c.hidden_size + 3 * c.intermediate_size + 2 * c.num_kv_heads * c.head_dim()) * n +
      static_cast<double>(c.hidden_size) * n + 2 * static_cast<double>(c.vocab_size) * n;
  return p;
}

long rss_kib_now() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

/// In a fresh process: two training steps on one thread, then one JSON line with the peak RSS (KiB), the RSS
/// before the model was built and the analytic parts (bytes).
int rss_child() {
  const long base = rss_kib_now();
  const best be = slim::bench::make_backend<best>(1);
  train_setup s;
  s.step(be);
  s.step(be);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const rss_parts p = analytic_training_bytes(s);
  std::printf(
      "{\"peak_rss_kib\": %ld, \"base_rss_kib\": %ld, \"weights_bytes\": %.0f, \"trainable_state_bytes\": %.0f, "
      "\"activation_bytes\": %.0f, \"analytic_bytes\": %.0f}\n",
      ru.ru_maxrss, base, 4 * p.weights, 4 * 3 * p.trainable, 4 * p.activations, p.total());
  return 0;
}

void bm_train_rss(benchmark::State& state) {
  std::string out;
  for (auto _ : state) {
    int fd[2];
    if (pipe(fd) != 0) {
      state.SkipWithError("pipe failed");
      return;
    }
    const pid_t pid = fork();
    if (pid == 0) {
      dup2(fd[1], 1);
      close(fd[0]);
      execl("/proc/self/exe", "slim_bench_lm", "--rss-child", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fd[1]);
    char buf[512];
    out.clear();
    for (ssize_t k; (k = read(fd[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(k));
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      state.SkipWithError("the --rss-child process failed");
      return;
    }
  }
  auto field = [&](const char* key) {
    const auto at = out.find(std::string("\"") + key + "\": ");
    return at == std::string::npos ? -1.0 : std::strtod(out.c_str() + at + std::strlen(key) + 4, nullptr);
  };
  const double peak = field("peak_rss_kib") * 1024, base = field("base_rss_kib") * 1024;
  const double analytic = field("analytic_bytes");
  state.counters["peak_rss_MiB"] = peak / (1 << 20);
  state.counters["base_rss_MiB"] = base / (1 << 20);
  state.counters["analytic_MiB"] = analytic / (1 << 20);
  state.counters["ratio"] = peak / analytic;
  state.counters["ratio_less_base"] = (peak - base) / analytic;
  std::cerr << "rss-child: " << out;
}

// ---------------------------------------------------------------------------------------------------------------
// (b) generation

/// llama2.c's stories models: dim, layers, heads (= KV heads), vocab 32000, hidden from its rule
/// (hidden = 4·dim, then 2/3 of it, rounded up to a multiple of 32), tied classifier. 15M: 288/6/6 → 768;
/// 110M: 768/12/12 → 2048.
slim::nn::decoder_config stories_config(index_t dim, index_t layers, index_t heads, index_t max_pos) {
  index_t hidden = 2 * (4 * dim) / 3;
  hidden = 32 * ((hidden + 31) / 32);
  slim::nn::decoder_config c;
  c.vocab_size = 32000;
  c.hidden_size = dim;
  c.intermediate_size = hidden;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = heads;
  c.max_positions = max_pos;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = true;
  return c;
}

using gen_lm = slim::nn::decoder_lm<best, slim::nn::no_adapter>;
constexpr index_t prompt_len = 16, new_tokens = 128;

gen_lm& gen_model(const std::string& name) {
  static std::map<std::string, std::unique_ptr<gen_lm>> models;
  auto& m = models[name];
  if (!m) {
    const std::string dir = opts().lm_dir.empty() ? "" : opts().lm_dir + "/" + name;
    std::error_code ec;
    if (!dir.empty() && std::filesystem::exists(dir + "/config.json", ec)) {
      m = std::make_unique<gen_lm>(slim::io::read_llama_config(dir + "/config.json"));
      m->load(slim::io::hf_checkpoint(dir));
      std::cerr << "loaded " << dir << "\n";
    } else {
      m = std::make_unique<gen_lm>(name == "stories15M" ? stories_config(288, 6, 6, 256)
                                                        : stories_config(768, 12, 12, 1024));
      m->reset_parameters(4321);
    }
  }
  return *m;
}

/// The prompts every peer uses: row b, column t holds (1 + 7·b + 13·t) mod 32000 (lm_speed.py builds the same).
std::vector<std::vector<std::int32_t>> gen_prompts(index_t batch) {
  std::vector<std::vector<std::int32_t>> p(static_cast<std::size_t>(batch));
  for (index_t b = 0; b < batch; ++b)
    for (index_t t = 0; t < prompt_len; ++t)
      p[static_cast<std::size_t>(b)].push_back(static_cast<std::int32_t>((1 + 7 * b + 13 * t) % 32000));
  return p;
}

void bm_generate(benchmark::State& state, const std::string& name) {
  const index_t batch = state.range(0);
  const auto threads = static_cast<std::size_t>(state.range(1));
  const best be = slim::bench::make_backend<best>(threads);
  gen_lm& model = gen_model(name);
  const auto prompts = gen_prompts(batch);
  // packed:1 is the default (weights packed once per generate call); packed:0 repacks each weight per product, the
  // behaviour before packed weights, kept beside it for the comparison.
  const slim::nn::generation_config cfg{.max_new_tokens = new_tokens, .pack_weights = state.range(2) != 0};
  const std::span<const std::vector<std::int32_t>> ps(prompts);
  auto first = slim::nn::generate(model, be, ps, cfg);  // warm-up
  for (auto _ : state) {
    auto out = slim::nn::generate(model, be, ps, cfg);
    benchmark::DoNotOptimize(out.data());
  }
  double count = 0;
  for (const auto& r : first) count += static_cast<double>(r.tokens.size());
  state.counters["tokens/s"] =
      benchmark::Counter(count, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  // the first new tokens of row 0, for lm_speed.py's check that every peer runs the same model
  std::string head;
  for (std::size_t i = 0; i < std::min<std::size_t>(8, first[0].tokens.size()); ++i)
    head += (i ? "," : "") + std::to_string(first[0].tokens[i]);
  state.SetLabel("row0=" + head);
}

void register_all() {
  const std::string arch = best_name;
  benchmark::RegisterBenchmark(("lm_train_step/" + arch).c_str(), bm_train_step)
      ->ArgName("threads")
      ->Arg(1)
      ->Arg(2)
      ->Iterations(opts().train_steps)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("lm_train_rss", bm_train_rss)
      ->Iterations(1)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  for (const std::string name : {"stories15M", "stories110M"})
    benchmark::RegisterBenchmark(("lm_generate/" + arch + "/" + name).c_str(),
                                 [name](benchmark::State& st) { bm_generate(st, name); })
        ->ArgNames({"batch", "threads", "packed"})
        ->Args({1, 1, 1})
        ->Args({1, 1, 0})
        ->Args({8, 1, 1})
        ->Args({8, 1, 0})
        ->Iterations(opts().gen_reps)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
}

int run(int argc, char** argv) {
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.rfind("--lm-dir=", 0) == 0)
      opts().lm_dir = std::string(a.substr(9));
    else if (a.rfind("--train-steps=", 0) == 0)
      opts().train_steps = std::max(1, std::atoi(argv[i] + 14));
    else if (a.rfind("--gen-reps=", 0) == 0)
      opts().gen_reps = std::max(1, std::atoi(argv[i] + 11));
    else if (a == "--rss-child")
      opts().rss_child = true;
    else
      rest.push_back(argv[i]);
  }
  if (opts().rss_child) return rss_child();
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 1;
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "bench_lm: " << e.what() << "\n";
    return 1;
  }
}
