// slim benchmark — the pipeline's cost line: the main job's student writing rationales (greedy, KV cache) for the
// synthetic world's users, batched (64 prompts) and one prompt at a time, beside what the same number of
// teacher calls costs at the configured gpt-3.5-turbo prices (teacher prompts counted with the same tokenizer,
// answers of the same length). The student has the main job's shape and random weights (speed does not depend
// on the values); every row generates exactly `new` tokens (no stop token) so the work is fixed.
// Run: build/release/bench/slim_bench_rationales [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "slim/backend/simd.hpp"
#include "slim/core/thread_pool.hpp"
#include "slim/distill/student.hpp"
#include "slim/nn/decoder_lm.hpp"
#include "slim/nn/generate.hpp"
#include "slim/nn/init.hpp"
#include "slim/pipeline/slim_pipeline.hpp"
#include "slim/prompt/slim_cot.hpp"
#include "slim/rec/split.hpp"
#include "slim/synth/world.hpp"

namespace {

using slim::index_t;
#if XSIMD_WITH_FMA3_AVX2
using cpu = slim::backend::simd<xsimd::fma3<xsimd::avx2>>;
#else
using cpu = slim::backend::simd<xsimd::sse2>;
#endif
using student =
    slim::nn::decoder_lm<cpu, slim::nn::lora<slim::nn::q_proj, slim::nn::k_proj, slim::nn::v_proj, slim::nn::o_proj,
                                             slim::nn::gate_proj, slim::nn::up_proj, slim::nn::down_proj>>;
constexpr index_t new_tokens = 64;

/// The main job's world, tokenizer, prompts and student shape, built once.
struct setup {
  std::unique_ptr<slim::text::byte_bpe> tok;
  std::vector<std::vector<std::int32_t>> student_prompts;
  double teacher_prompt_tokens = 0;  // mean over users
  std::unique_ptr<student> model;

  setup() {
    const slim::synth::world w = slim::synth::make_world({});
    const slim::rec::sequence_split split = slim::rec::leave_one_out(w.data);
    const slim::pipeline::pipeline_config pc;
    slim::prompt::slim_cot_config cc = pc.prompt;
    cc.domain = "games";  // as `slim run` sets them
    cc.item_kind = "game";
    cc.category_kind = "genres and brands";
    tok = std::make_unique<slim::text::byte_bpe>(
        slim::distill::train_student_bpe(slim::pipeline::student_tokenizer_corpus(w.data, cc), pc.vocab_size)
            .tokenizer());
    const slim::prompt::slim_cot cot(cc);
    auto titles = [&](slim::rec::item_id i) { return w.data.items[static_cast<std::size_t>(i)].title; };
    double teacher = 0;
    for (index_t u = 0; u < split.num_users(); ++u) {
      const slim::prompt::training_prefix prefix(split.train[static_cast<std::size_t>(u)]);
      student_prompts.push_back(cot.student_prompt(*tok, prefix, titles).ids);
      teacher += static_cast<double>(cot.teacher_prompt(*tok, prefix, titles).ids.size());
    }
    teacher_prompt_tokens = teacher / static_cast<double>(split.num_users());
    slim::nn::decoder_config c = pc.student;
    c.vocab_size = static_cast<index_t>(tok->vocab_size());
    model = std::make_unique<student>(c, pc.lora);
    model->reset_parameters(1);
  }
};

setup& shared() {
  static setup s;
  return s;
}

/// Rationales for the first 256 users in batches of state.range(0), on state.range(1) threads.
void bm_rationales(benchmark::State& state) {
  setup& s = shared();
  const auto batch = static_cast<std::size_t>(state.range(0));
  slim::thread_pool pool(static_cast<std::size_t>(state.range(1)));
  cpu be{};
  be.pool = &pool;
  const std::size_t users = batch == 1 ? 32 : 256;
  slim::nn::generation_config g;
  g.max_new_tokens = new_tokens;
  std::size_t prompt_tokens = 0;
  for (std::size_t u = 0; u < users; ++u) prompt_tokens += s.student_prompts[u].size();
  for (auto _ : state) {
    for (std::size_t b0 = 0; b0 < users; b0 += batch) {
      const std::span<const std::vector<std::int32_t>> part(s.student_prompts.data() + b0, std::min(batch, users - b0));
      auto out = slim::nn::generate(*s.model, be, part, g);
      benchmark::DoNotOptimize(out.data());
    }
  }
  const double n = static_cast<double>(users) * static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<std::int64_t>(n));  // rationales
  state.counters["student_s_per_rationale"] =
      benchmark::Counter(n, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["new_tokens_per_s"] = benchmark::Counter(n * new_tokens, benchmark::Counter::kIsRate);
  state.counters["student_prompt_tokens"] = static_cast<double>(prompt_tokens) / static_cast<double>(users);
  // the peer: the same number of teacher calls, billed at gpt-3.5-turbo's $0.0015 / $0.002 per 1K tokens for a
  // teacher prompt of the mean length and an answer of `new_tokens` tokens
  const slim::pipeline::pipeline_config pc;
  state.counters["teacher_usd_per_1k_rationales"] =
      1000.0 * (s.teacher_prompt_tokens / 1000.0 * pc.price_prompt_per_1k +
                static_cast<double>(new_tokens) / 1000.0 * pc.price_completion_per_1k);
  state.counters["teacher_prompt_tokens"] = s.teacher_prompt_tokens;
}

}  // namespace

BENCHMARK(bm_rationales)
    ->ArgNames({"batch", "threads"})
    ->Args({64, 1})
    ->Args({64, 2})
    ->Args({1, 1})
    ->Args({1, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);

BENCHMARK_MAIN();
