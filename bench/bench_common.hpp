// Shared by the benchmark files: the CPU backends measured (this binary is built with -march=native),
// thread pools, and deterministic inputs.
#pragma once

#include <benchmark/benchmark.h>
#include <xsimd/xsimd.hpp>

#include "slim/backend/simd.hpp"
#include "slim/core/philox.hpp"
#include "slim/core/tensor.hpp"

namespace slim::bench {

inline thread_pool& pool(std::size_t threads) {
  static thread_pool one(1), two(2);
  return threads == 1 ? one : two;
}
template <class B>
B make_backend(std::size_t threads) {
  B b{};
  if constexpr (requires { b.pool; }) b.pool = &pool(threads);
  return b;
}
template <class T, std::size_t R>
void fill(tensor<T, R>& t, std::uint64_t seed, float lo = -1, float hi = 1) {
  philox_stream rng(seed);
  for (auto& x : t) x = static_cast<T>(rng.uniform(lo, hi));
}

#if defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#define SLIM_BENCH_AVX512 1
using avx512 = backend::simd<xsimd::avx512bw>;
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define SLIM_BENCH_AVX2 1
using avx2 = backend::simd<xsimd::fma3<xsimd::avx2>>;
#endif

}  // namespace slim::bench
