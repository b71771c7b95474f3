// Machine probes: the limits every kernel figure is read against, measured in the same run.
//   probe_fma/<arch>: peak FMA throughput — independent register-resident FMA chains (enough of them to
//     cover the FMA latency on every port), no memory traffic. FLOP/s counts 2 per lane per FMA.
//   probe_mem/copy, probe_mem/triad: bandwidth of streaming large arrays (far beyond the last-level
//     cache): copy b = a (2 arrays), triad a = b + s·c (3 arrays). bytes/s counts each array once per
//     pass, as STREAM does (write-allocate traffic is not counted).
// Both at 1 and 2 threads (slim's thread pool; each thread runs its own share).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "bench_common.hpp"

namespace {

using slim::index_t;

/// `chains` independent accumulators, each updated `steps` times by acc = acc·x + y; returns a value that
/// depends on every chain so nothing is optimised away. `V` is the raw vector type of one arch.
template <class V, class Fma, class Add>
[[gnu::noinline]] V fma_chains(V x, V y, long steps, Fma fma, Add add) {
  V a0 = y, a1 = add(y, y), a2 = add(a1, y), a3 = add(a2, y), a4 = add(a3, y), a5 = add(a4, y);
  V a6 = add(a5, y), a7 = add(a6, y), a8 = add(a7, y), a9 = add(a8, y), a10 = add(a9, y), a11 = add(a10, y);
  for (long i = 0; i < steps; ++i) {
    a0 = fma(a0, x, y);
    a1 = fma(a1, x, y);
    a2 = fma(a2, x, y);
    a3 = fma(a3, x, y);
    a4 = fma(a4, x, y);
    a5 = fma(a5, x, y);
    a6 = fma(a6, x, y);
    a7 = fma(a7, x, y);
    a8 = fma(a8, x, y);
    a9 = fma(a9, x, y);
    a10 = fma(a10, x, y);
    a11 = fma(a11, x, y);
  }
  return add(add(add(add(a0, a1), add(a2, a3)), add(add(a4, a5), add(a6, a7))), add(add(a8, a9), add(a10, a11)));
}
constexpr int fma_chain_count = 12;  // ≥ latency (4) × FMA ports (2), with room to spare

/// Runs `body(thread)` on `threads` threads of slim's pool at once.
template <class Body>
void on_threads(std::size_t threads, Body&& body) {
  slim::parallel_for(&slim::bench::pool(threads), static_cast<index_t>(threads), 1, [&](index_t b, index_t e) {
    for (index_t t = b; t < e; ++t) body(t);
  });
}

template <int Lanes, class V, class Fma, class Add, class Set1>
void probe_fma(benchmark::State& state, Fma fma, Add add, Set1 set1) {
  const auto threads = static_cast<std::size_t>(state.range(0));
  constexpr long steps = 1 << 20;
  for (auto _ : state) {
    on_threads(threads, [&](index_t t) {
      V r = fma_chains<V>(set1(0.999f), set1(1e-3f * static_cast<float>(t + 1)), steps, fma, add);
      benchmark::DoNotOptimize(r);
    });
  }
  const double flops = 2.0 * Lanes * fma_chain_count * static_cast<double>(steps) * static_cast<double>(threads);
  state.counters["FLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

#if defined(SLIM_BENCH_AVX512)
void bm_probe_fma_avx512(benchmark::State& state) {
  probe_fma<16, __m512>(
      state, [](__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); },
      [](__m512 a, __m512 b) { return _mm512_add_ps(a, b); }, [](float v) { return _mm512_set1_ps(v); });
}
BENCHMARK(bm_probe_fma_avx512)->Name("probe_fma/avx512")->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();
#endif
#if defined(SLIM_BENCH_AVX2)
void bm_probe_fma_avx2(benchmark::State& state) {
  probe_fma<8, __m256>(
      state, [](__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); },
      [](__m256 a, __m256 b) { return _mm256_add_ps(a, b); }, [](float v) { return _mm256_set1_ps(v); });
}
BENCHMARK(bm_probe_fma_avx2)->Name("probe_fma/avx2")->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();
#endif

/// 3 arrays of 32 Mi floats (128 MiB each): far beyond any cache of this machine class (L3 ≤ 48 MiB).
struct stream_arrays {
  static constexpr index_t n = index_t{1} << 25;
  std::vector<float, slim::aligned_allocator<float>> a, b, c;
  stream_arrays() : a(n, 1.0f), b(n, 2.0f), c(n, 0.5f) {}
  static stream_arrays& get() {
    static stream_arrays s;
    return s;
  }
};

/// Thread t of `threads` owns one contiguous share of [0, n).
inline std::pair<index_t, index_t> share(index_t n, index_t t, std::size_t threads) {
  const index_t per = n / static_cast<index_t>(threads);
  return {t * per, t + 1 == static_cast<index_t>(threads) ? n : (t + 1) * per};
}

void bm_probe_copy(benchmark::State& state) {
  auto& s = stream_arrays::get();
  const auto threads = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    on_threads(threads, [&](index_t t) {
      const auto [b, e] = share(s.n, t, threads);
      std::memcpy(s.b.data() + b, s.a.data() + b, sizeof(float) * static_cast<std::size_t>(e - b));
    });
    benchmark::ClobberMemory();
  }
  state.counters["bytes/s"] =
      benchmark::Counter(2.0 * sizeof(float) * static_cast<double>(s.n), benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1024);
}
BENCHMARK(bm_probe_copy)->Name("probe_mem/copy")->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();

void bm_probe_triad(benchmark::State& state) {
  auto& s = stream_arrays::get();
  const auto threads = static_cast<std::size_t>(state.range(0));
  const float scale = 3.0f;
  for (auto _ : state) {
    on_threads(threads, [&](index_t t) {
      const auto [b, e] = share(s.n, t, threads);
      float* __restrict a = s.a.data();
      const float* __restrict bb = s.b.data();
      const float* __restrict c = s.c.data();
      for (index_t i = b; i < e; ++i) a[i] = bb[i] + scale * c[i];
    });
    benchmark::ClobberMemory();
  }
  state.counters["bytes/s"] =
      benchmark::Counter(3.0 * sizeof(float) * static_cast<double>(s.n), benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1024);
}
BENCHMARK(bm_probe_triad)->Name("probe_mem/triad")->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();

}  // namespace
