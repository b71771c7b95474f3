// slim — CUDA kernel benchmarks (Google Benchmark, timed with CUDA events): GEMM f32 / TF32 / bf16 in FLOP/s,
// attention forward and backward in FLOP/s, and the bandwidth-bound kernels in bytes/s beside the device's
// own device-to-device copy rate measured in the same run (counter `of_copy`). Its peer, PyTorch on the same
// GPU and shapes, is tools/bench/torch_cuda.py; tools/gpu_check.sh runs both in one device call.
// Needs a GPU: without one it prints why and exits 0.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "slim/backend/cuda/kernels.cuh"

namespace {

using namespace slim;
using K = kernels<backend::cuda>;

backend::cuda_context& context() {
  static backend::cuda_context& ctx = *new backend::cuda_context(0);  // never destroyed (runtime unload order)
  return ctx;
}
backend::cuda be() { return context().backend(); }

/// Times `body` (queued on the context's stream) with CUDA events, `reps` times per iteration.
template <class F>
void run_timed(benchmark::State& state, F&& body, int reps = 1) {
  cudaEvent_t start, stop;
  SLIM_CUDA_CHECK(cudaEventCreate(&start));
  SLIM_CUDA_CHECK(cudaEventCreate(&stop));
  body();  // warm-up (and lazy module loading)
  context().synchronize();
  for (auto _ : state) {
    SLIM_CUDA_CHECK(cudaEventRecord(start, context().stream()));
    for (int r = 0; r < reps; ++r) body();
    SLIM_CUDA_CHECK(cudaEventRecord(stop, context().stream()));
    SLIM_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    SLIM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(static_cast<double>(ms) / 1e3 / reps);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

template <class T, std::size_t R>
tensor<T, R, device_space> device_tensor(std::array<index_t, R> shape) {
  return tensor<T, R, device_space>(shape);  // zeroed
}

/// Fills a float device tensor with a smooth pattern in [-1, 1) (so exp and norms see ordinary values).
__global__ void pattern_kernel(float* p, index_t n, float phase) {
  for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < n; i += index_t{gridDim.x} * blockDim.x)
    p[i] = __sinf(0.001f * static_cast<float>(i % 100003) + phase);
}
template <std::size_t R>
void fill_pattern(tensor<float, R, device_space>& t, float phase = 0) {
  pattern_kernel<<<1024, 256, 0, context().stream()>>>(t.data(), t.size(), phase);
  backend::cuda_detail::check_launch("pattern_kernel", __FILE__, __LINE__);
}

double copy_rate_bytes_per_second() {  // read + write bytes of a 512 MiB device-to-device copy, best of 10
  static const double rate = [] {
    const std::size_t bytes = std::size_t{512} << 20;
    auto a = device_tensor<float, 1>({static_cast<index_t>(bytes / 4)});
    auto b = device_tensor<float, 1>({static_cast<index_t>(bytes / 4)});
    cudaEvent_t start, stop;
    SLIM_CUDA_CHECK(cudaEventCreate(&start));
    SLIM_CUDA_CHECK(cudaEventCreate(&stop));
    double best = 0;
    for (int r = 0; r < 11; ++r) {
      SLIM_CUDA_CHECK(cudaEventRecord(start, context().stream()));
      SLIM_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, context().stream()));
      SLIM_CUDA_CHECK(cudaEventRecord(stop, context().stream()));
      SLIM_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      SLIM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      if (r > 0) best = std::max(best, 2.0 * static_cast<double>(bytes) / (ms / 1e3));
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return best;
  }();
  return rate;
}

void report_bytes(benchmark::State& state, double bytes_per_iteration) {
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes_per_iteration * static_cast<double>(state.iterations())));
  state.counters["of_copy"] = benchmark::Counter(bytes_per_iteration / copy_rate_bytes_per_second(),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
void report_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOP/s"] = benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- the reference: device-to-device copy ----------------------------------------------------------------
void BM_copy_d2d(benchmark::State& state) {
  const index_t n = state.range(0);
  auto a = device_tensor<float, 1>({n}), b = device_tensor<float, 1>({n});
  run_timed(state, [&] {
    SLIM_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), static_cast<std::size_t>(n) * 4, cudaMemcpyDeviceToDevice,
                                    context().stream()));
  });
  report_bytes(state, 2.0 * 4.0 * static_cast<double>(n));
}
BENCHMARK(BM_copy_d2d)->Arg(index_t{1} << 27)->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---- GEMM ---------------------------------------------------------------------------------------------------
enum class gemm_kind { f32, tf32, bf16 };
template <gemm_kind Kind>
void BM_gemm(benchmark::State& state) {
  const index_t n = state.range(0);
  auto c = device_tensor<float, 2>({n, n});
  context().allow_tf32(Kind == gemm_kind::tf32);
  if constexpr (Kind == gemm_kind::bf16) {
    auto a = device_tensor<bf16, 2>({n, n}), b = device_tensor<bf16, 2>({n, n});
    run_timed(state, [&] { K::gemm(be(), 1.0f, a.view(), b.view(), 0.0f, c.view()); });
  } else {
    auto a = device_tensor<float, 2>({n, n}), b = device_tensor<float, 2>({n, n});
    fill_pattern(a);
    fill_pattern(b, 1.0f);
    run_timed(state, [&] { K::gemm(be(), 1.0f, a.view(), b.view(), 0.0f, c.view()); });
  }
  context().allow_tf32(false);
  report_flops(state, 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n));
}
BENCHMARK(BM_gemm<gemm_kind::f32>)->Arg(4096)->Arg(8192)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_gemm<gemm_kind::tf32>)->Arg(4096)->Arg(8192)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_gemm<gemm_kind::bf16>)->Arg(4096)->Arg(8192)->UseManualTime()->Unit(benchmark::kMillisecond);

// ---- attention: B 4, heads 16, S = L = range(0), Dh 128, causal (the FLOPs count the visible half) -----------
void BM_attention(benchmark::State& state) {
  const index_t b = 4, h = 16, s = state.range(0), dh = 128;
  const bool backward = state.range(1) != 0;
  auto q = device_tensor<float, 4>({b, s, h, dh}), k = device_tensor<float, 4>({b, s, h, dh}),
       v = device_tensor<float, 4>({b, s, h, dh}), o = device_tensor<float, 4>({b, s, h, dh}),
       dout = device_tensor<float, 4>({b, s, h, dh}), dq = device_tensor<float, 4>({b, s, h, dh}),
       dk = device_tensor<float, 4>({b, s, h, dh}), dv = device_tensor<float, 4>({b, s, h, dh});
  auto lse = device_tensor<float, 3>({b, h, s});
  fill_pattern(q);
  fill_pattern(k, 0.5f);
  fill_pattern(v, 1.0f);
  fill_pattern(dout, 1.5f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  const vector_view<const std::int32_t, device_space> none{};
  K::attention_forward(be(), q.view(), k.view(), v.view(), scale, true, none, o.view(), lse.view());
  if (backward)
    run_timed(state, [&] {
      K::attention_backward(be(), q.view(), k.view(), v.view(), o.view(), dout.view(), lse.view(), scale, true, none,
                            dq.view(), dk.view(), dv.view());
    });
  else
    run_timed(state, [&] {
      K::attention_forward(be(), q.view(), k.view(), v.view(), scale, true, none, o.view(), lse.view());
    });
  const double fwd = 4.0 * static_cast<double>(b * h) * static_cast<double>(s) * static_cast<double>(s) *
                     static_cast<double>(dh) / 2.0;
  report_flops(state, backward ? 2.5 * fwd : fwd);
}
BENCHMARK(BM_attention)->Args({1024, 0})->Args({4096, 0})->Args({1024, 1})->Args({4096, 1})->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// ---- bandwidth-bound kernels: N 16,384 rows of D 4,096 floats (256 MiB per operand) ------------------------
constexpr index_t rows = 16384, cols = 4096;

void BM_rmsnorm_forward(benchmark::State& state) {
  auto x = device_tensor<float, 2>({rows, cols}), y = device_tensor<float, 2>({rows, cols});
  auto w = device_tensor<float, 1>({cols}), rstd = device_tensor<float, 1>({rows});
  fill_pattern(x);
  fill_pattern(w);
  run_timed(state, [&] { K::rmsnorm_forward(be(), x.view(), w.view(), 1e-5f, y.view(), rstd.view()); });
  report_bytes(state, 2.0 * 4.0 * static_cast<double>(rows * cols));
}
void BM_rmsnorm_backward(benchmark::State& state) {
  auto x = device_tensor<float, 2>({rows, cols}), dy = device_tensor<float, 2>({rows, cols}),
       dx = device_tensor<float, 2>({rows, cols});
  auto w = device_tensor<float, 1>({cols}), rstd = device_tensor<float, 1>({rows}), dw = device_tensor<float, 1>({cols});
  fill_pattern(x);
  fill_pattern(dy, 1.0f);
  fill_pattern(w);
  K::rmsnorm_forward(be(), x.view(), w.view(), 1e-5f, dx.view(), rstd.view());
  run_timed(state, [&] { K::rmsnorm_backward(be(), x.view(), w.view(), rstd.view(), dy.view(), dx.view(), dw.view()); });
  report_bytes(state, 4.0 * 4.0 * static_cast<double>(rows * cols) + 2.0 * 4.0 * static_cast<double>(rows * cols));
}
void BM_layernorm_forward(benchmark::State& state) {
  auto x = device_tensor<float, 2>({rows, cols}), y = device_tensor<float, 2>({rows, cols});
  auto w = device_tensor<float, 1>({cols}), b = device_tensor<float, 1>({cols});
  auto mean = device_tensor<float, 1>({rows}), rstd = device_tensor<float, 1>({rows});
  fill_pattern(x);
  fill_pattern(w);
  run_timed(state, [&] {
    K::layernorm_forward(be(), x.view(), w.view(), b.view(), 1e-5f, y.view(), mean.view(), rstd.view());
  });
  report_bytes(state, 2.0 * 4.0 * static_cast<double>(rows * cols));
}
void BM_softmax_forward(benchmark::State& state) {
  auto x = device_tensor<float, 3>({1, rows, cols}), y = device_tensor<float, 3>({1, rows, cols});
  fill_pattern(x);
  run_timed(state, [&] { K::softmax_forward(be(), x.view(), 1.0f, false, y.view()); });
  report_bytes(state, 2.0 * 4.0 * static_cast<double>(rows * cols));
}
void BM_silu_forward(benchmark::State& state) {
  auto x = device_tensor<float, 2>({rows, cols}), y = device_tensor<float, 2>({rows, cols});
  fill_pattern(x);
  run_timed(state, [&] { K::silu_forward(be(), x.view(), y.view()); });
  report_bytes(state, 2.0 * 4.0 * static_cast<double>(rows * cols));
}
void BM_swiglu_forward(benchmark::State& state) {
  auto g = device_tensor<float, 2>({rows, cols}), u = device_tensor<float, 2>({rows, cols}),
       y = device_tensor<float, 2>({rows, cols});
  fill_pattern(g);
  fill_pattern(u, 1.0f);
  run_timed(state, [&] { K::swiglu_forward(be(), g.view(), u.view(), y.view()); });
  report_bytes(state, 3.0 * 4.0 * static_cast<double>(rows * cols));
}
void BM_dropout_forward(benchmark::State& state) {
  auto x = device_tensor<float, 2>({rows, cols}), y = device_tensor<float, 2>({rows, cols});
  fill_pattern(x);
  run_timed(state, [&] { K::dropout_forward(be(), x.view(), 0.1f, 7, 0, y.view()); });
  report_bytes(state, 2.0 * 4.0 * static_cast<double>(rows * cols));
}
void BM_adamw_step(benchmark::State& state) {
  const index_t n = rows * cols;
  auto p = device_tensor<float, 1>({n}), g = device_tensor<float, 1>({n}), m = device_tensor<float, 1>({n}),
       v = device_tensor<float, 1>({n});
  fill_pattern(p);
  fill_pattern(g, 1.0f);
  backend::adam_config cfg;
  cfg.weight_decay = 0.01f;
  std::int64_t step = 0;
  run_timed(state, [&] { K::adamw_step(be(), p.view(), g.view(), m.view(), v.view(), cfg, ++step); });
  report_bytes(state, 7.0 * 4.0 * static_cast<double>(n));  // read θ, g, m, v; write θ, m, v
}
void BM_cross_entropy_forward(benchmark::State& state) {  // LLaMA's vocabulary
  const index_t n = 4096, vocab = 32000;
  auto logits = device_tensor<float, 2>({n, vocab});
  auto targets = device_tensor<std::int32_t, 1>({n});
  auto loss = device_tensor<float, 1>({n}), lse = device_tensor<float, 1>({n});
  fill_pattern(logits);
  run_timed(state, [&] {
    benchmark::DoNotOptimize(
        K::cross_entropy_forward(be(), logits.view(), targets.view(), -100, loss.view(), lse.view()));
  });
  report_bytes(state, 4.0 * static_cast<double>(n * vocab));
}
void BM_embedding_forward(benchmark::State& state) {
  const index_t vocab = 32000, n = 16384, d = 4096;
  auto table = device_tensor<float, 2>({vocab, d}), out = device_tensor<float, 2>({n, d});
  auto ids = device_tensor<std::int32_t, 1>({n});
  run_timed(state, [&] { K::embedding_forward(be(), table.view(), ids.view(), out.view()); });
  report_bytes(state, 2.0 * 4.0 * static_cast<double>(n * d));
}
BENCHMARK(BM_rmsnorm_forward)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_rmsnorm_backward)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_layernorm_forward)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_softmax_forward)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_silu_forward)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_swiglu_forward)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_dropout_forward)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_adamw_step)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cross_entropy_forward)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_embedding_forward)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  std::string why;
  if (slim::backend::cuda_device_count(&why) == 0) {
    std::printf("slim_bench_cuda: no CUDA device (%s); nothing measured\n", why.c_str());
    return 0;
  }
  const auto info = slim::backend::cuda_device_properties(0);
  std::printf("device: %s, sm_%d%d; device-to-device copy: %.0f GB/s (read + write)\n", info.name.c_str(), info.major,
              info.minor, copy_rate_bytes_per_second() / 1e9);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
