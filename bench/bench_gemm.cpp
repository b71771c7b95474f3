// GEMM: slim's simd SGEMM (AVX-512 and AVX2 micro-kernels), slim's scalar oracle (small sizes), Eigen and
// OpenBLAS side by side, on square sizes and transformer shapes, at 1 and 2 threads. Every figure is
// FLOP/s (2·M·N·K per call); read it against probe_fma (bench_probes.cpp) of the same run.
//
// Names state the shape as M, K, N: C (M,N) = A (M,K) · B (K,N), all row-major, β = 0. gemm_Bt: B is a
// transposed view of a stored (N,K) weight (x·Wᵀ, a linear layer in PyTorch's layout).
// OpenBLAS: run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` so that it picks its own kernel for this
// CPU (the label shows the core it chose). Eigen is measured at 1 thread only (this target has no OpenMP).
#include <Eigen/Core>
#include <chrono>
#include <thread>
#include <utility>

#include "bench_common.hpp"

#if defined(SLIM_BENCH_HAVE_OPENBLAS)
#include <cblas.h>
#endif

namespace {

using slim::index_t;
using slim::tensor;

constexpr double gemm_flops(index_t m, index_t n, index_t k) { return 2.0 * static_cast<double>(m * n * k); }

void set_flops(benchmark::State& state, index_t m, index_t n, index_t k) {
  state.counters["FLOP/s"] = benchmark::Counter(gemm_flops(m, n, k), benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
}

/// Inputs A (M,K), B (K,N) and output C (M,N), filled once per benchmark. `bt`: B is stored (N,K) — a
/// weight in PyTorch's layout, used as Wᵀ — and `b_view` is its transpose.
template <class TB = float>
struct gemm_data {
  index_t m, k, n;
  tensor<float, 2> a;
  tensor<TB, 2> b;
  tensor<float, 2> c;
  slim::matrix_view<const TB> b_view;
  explicit gemm_data(const benchmark::State& state, bool bt = false)
      : m(state.range(0)),
        k(state.range(1)),
        n(state.range(2)),
        a({m, k}),
        b(bt ? std::array<index_t, 2>{n, k} : std::array<index_t, 2>{k, n}),
        c({m, n}) {
    slim::bench::fill(a, 1);
    slim::bench::fill(b, 2);
    b_view = bt ? slim::transpose(std::as_const(b).view()) : std::as_const(b).view();
  }
};

template <class Backend, class TB = float, bool BT = false>
void bm_gemm_slim(benchmark::State& state) {
  gemm_data<TB> d(state, BT);
  const auto be = slim::bench::make_backend<Backend>(static_cast<std::size_t>(state.range(3)));
  for (auto _ : state) {
    slim::kernels<Backend>::gemm(be, 1.0f, d.a.view(), d.b_view, 0.0f, d.c.view());
    benchmark::DoNotOptimize(d.c.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, d.m, d.n, d.k);
}

void bm_gemm_eigen(benchmark::State& state) {
  gemm_data<> d(state);
  using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const row_major> a(d.a.data(), d.m, d.k), b(d.b.data(), d.k, d.n);
  Eigen::Map<row_major> c(d.c.data(), d.m, d.n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(d.c.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, d.m, d.n, d.k);
}

#if defined(SLIM_BENCH_HAVE_OPENBLAS)
template <bool BT = false>
void bm_gemm_openblas(benchmark::State& state) {
  gemm_data<> d(state, BT);
  openblas_set_num_threads(static_cast<int>(state.range(3)));
  const auto m = static_cast<int>(d.m), n = static_cast<int>(d.n), k = static_cast<int>(d.k);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, BT ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, d.a.data(), k, d.b.data(),
                BT ? k : n, 0.0f, d.c.data(), n);
    benchmark::DoNotOptimize(d.c.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, d.m, d.n, d.k);
  state.SetLabel(std::string("OpenBLAS core ") + openblas_get_corename());
  // OpenBLAS's workers spin for a while (~2^28 cycles) after each call before they sleep: let them park,
  // or they take a core from whatever benchmark runs next.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
}
#endif

/// Square sizes 64..2048 and the transformer shapes (M, K, N): a projection of 512 tokens 2048 → 512,
/// an MLP-like 512 → 2048 over 2048 tokens, and a decode step of 8 tokens through a 4096×4096 weight.
void shapes(benchmark::internal::Benchmark* b, index_t max_square, bool two_threads) {
  b->ArgNames({"M", "K", "N", "threads"});
  for (const index_t threads : {index_t{1}, index_t{2}}) {
    if (threads == 2 && !two_threads) continue;
    for (index_t s = 64; s <= max_square; s *= 2) b->Args({s, s, s, threads});
    if (max_square < 512) continue;
    b->Args({512, 2048, 512, threads});
    b->Args({2048, 512, 2048, threads});
    b->Args({8, 4096, 4096, threads});
  }
  b->UseRealTime();
  b->Unit(benchmark::kMicrosecond);
}
void all_shapes(benchmark::internal::Benchmark* b) { shapes(b, 2048, true); }
void one_thread(benchmark::internal::Benchmark* b) { shapes(b, 2048, false); }
void small_squares(benchmark::internal::Benchmark* b) { shapes(b, 256, false); }
void transformer_one_thread(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "K", "N", "threads"});
  b->Args({512, 2048, 512, 1})->Args({2048, 512, 2048, 1})->Args({8, 4096, 4096, 1});
  b->UseRealTime();
  b->Unit(benchmark::kMicrosecond);
}

}  // namespace

#if defined(SLIM_BENCH_AVX512)
BENCHMARK_TEMPLATE(bm_gemm_slim, slim::bench::avx512)->Name("gemm/slim_simd_avx512")->Apply(all_shapes);
BENCHMARK_TEMPLATE(bm_gemm_slim, slim::bench::avx512, slim::bf16)
    ->Name("gemm/slim_simd_avx512_bf16_B")
    ->Apply(transformer_one_thread);
BENCHMARK_TEMPLATE(bm_gemm_slim, slim::bench::avx512, float, true)
    ->Name("gemm_Bt/slim_simd_avx512")
    ->Apply(transformer_one_thread);
#endif
#if defined(SLIM_BENCH_AVX2)
BENCHMARK_TEMPLATE(bm_gemm_slim, slim::bench::avx2)->Name("gemm/slim_simd_avx2")->Apply(all_shapes);
#endif
BENCHMARK_TEMPLATE(bm_gemm_slim, slim::backend::scalar)->Name("gemm/slim_scalar")->Apply(small_squares);
BENCHMARK(bm_gemm_eigen)->Name("gemm/eigen")->Apply(one_thread);
#if defined(SLIM_BENCH_HAVE_OPENBLAS)
BENCHMARK_TEMPLATE(bm_gemm_openblas, false)->Name("gemm/openblas")->Apply(all_shapes);
BENCHMARK_TEMPLATE(bm_gemm_openblas, true)->Name("gemm_Bt/openblas")->Apply(transformer_one_thread);
#endif
