// slim program — the `slim kernels` tour: each op of docs/kernels.md on each CPU backend this build and
// this CPU support, checked against the scalar oracle evaluated in double, and timed.
//
// The check is a smoke test of the whole kernel set on one mid-sized case per op; the Catch2 suites hold
// the exact contracts (odd tails, strides, bit-exact GEMM, finite differences). An op whose scalar kernel
// is missing from this build is listed as "not available" instead of failing the build, so the tour
// compiles against whatever part of the kernel set exists.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "cpu.hpp"
#include "slim/backend/scalar.hpp"
#include "slim/backend/simd.hpp"
#include "slim/core/half.hpp"
#include "slim/core/philox.hpp"
#include "slim/core/tensor.hpp"
#include "slim/core/thread_pool.hpp"
#include "str.hpp"

namespace slim::cli {

struct tour_options {
  std::size_t threads = 1;  // pool size for the simd backends (the scalar backend is single-threaded)
  bool quick = false;       // smaller cases, shorter timing
};

/// Agreement of a backend's outputs with the oracle's: max |got − ref|, the normwise relative error
/// max |got − ref| / max |ref|, and whether every element lies within atol + rtol·|ref|.
struct agreement {
  double max_abs = 0, max_ref = 0;
  bool pass = true;

  double rel() const { return max_ref > 0 ? max_abs / max_ref : max_abs; }

  void add_value(double got, double ref, double atol, double rtol) {
    const bool got_nan = got != got, ref_nan = ref != ref;
    if (got_nan || ref_nan) {
      pass = pass && got_nan && ref_nan;
      return;
    }
    if (got == ref) {  // also ±Inf
      max_ref = std::max(max_ref, std::abs(ref) < 1e300 ? std::abs(ref) : 0.0);
      return;
    }
    const double d = std::abs(got - ref);
    max_abs = std::max(max_abs, d);
    max_ref = std::max(max_ref, std::abs(ref));
    pass = pass && d <= atol + rtol * std::abs(ref);
  }
  template <class T, std::size_t R>
  void add(const tensor<T, R>& got, const tensor<double, R>& ref, double atol, double rtol) {
    if (got.extents() != ref.extents()) {
      pass = false;
      return;
    }
    for (index_t i = 0; i < got.size(); ++i) add_value(static_cast<double>(got.data()[i]), ref.data()[i], atol, rtol);
  }
  template <std::size_t R>
  void add_exact(const tensor<std::int32_t, R>& got, const tensor<std::int32_t, R>& ref) {
    if (got.extents() != ref.extents()) {
      pass = false;
      return;
    }
    for (index_t i = 0; i < got.size(); ++i)
      add_value(static_cast<double>(got.data()[i]), static_cast<double>(ref.data()[i]), 0, 0);
  }
};

enum class unit { flop, byte };

struct tour_row {
  std::string op, backend, shape;
  agreement check;
  double seconds = 0;  // per call
  double work = 0;     // flops or bytes per call
  unit work_unit = unit::byte;
};

class tour {
 public:
  explicit tour(tour_options options);

  const tour_options& options() const noexcept { return options_; }
  /// `normal` in a full tour, `quick` under --quick.
  index_t pick(index_t normal, index_t quick) const noexcept { return options_.quick ? quick : normal; }

  /// Calls f(backend_object, label) for every CPU backend compiled into this translation unit that this
  /// CPU can run, scalar first. simd backends get the tour's thread pool.
  template <class F>
  void each_backend(F&& f) {
    f(backend::scalar{}, std::string_view("scalar"));
    f(with_pool<backend::simd<xsimd::sse2>>(), std::string_view("simd<sse2>"));
#if XSIMD_WITH_FMA3_AVX2
    if (cpu_.runs_fma3_avx2())
      f(with_pool<backend::simd<xsimd::fma3<xsimd::avx2>>>(), std::string_view("simd<fma3<avx2>>"));
#endif
#if XSIMD_WITH_AVX512BW
    if (cpu_.runs_avx512bw()) f(with_pool<backend::simd<xsimd::avx512bw>>(), std::string_view("simd<avx512bw>"));
#endif
  }

  /// Seconds per call of f: one warm-up call, then doubling repetitions until the batch takes long enough.
  template <class F>
  double time(F&& f) const {
    using clock = std::chrono::steady_clock;
    const double min_seconds = options_.quick ? 0.002 : 0.05;
    f();
    for (long reps = 1;; reps *= 2) {
      const auto t0 = clock::now();
      for (long r = 0; r < reps; ++r) f();
      const double dt = std::chrono::duration<double>(clock::now() - t0).count();
      if (dt >= min_seconds || reps >= (1L << 24)) return dt / static_cast<double>(reps);
    }
  }

  /// Uniform values in [lo, hi) from a fresh Philox stream (every call of a tour draws the same numbers).
  template <class T = float, std::size_t R>
  tensor<T, R> uniform(std::array<index_t, R> shape, double lo = -1, double hi = 1) {
    tensor<T, R> t(shape);
    philox_stream rng(++seed_);
    for (auto& x : t) x = static_cast<T>(lo + (hi - lo) * static_cast<double>(rng.uniform()));
    return t;
  }
  /// Integers in [0, n).
  template <std::size_t R>
  tensor<std::int32_t, R> integers(std::array<index_t, R> shape, std::uint32_t n) {
    tensor<std::int32_t, R> t(shape);
    philox_stream rng(++seed_);
    for (auto& x : t) x = static_cast<std::int32_t>(rng.below(n));
    return t;
  }

  /// Prints and keeps one line of the table.
  void record(std::string op, std::string_view backend, std::string shape, const agreement& check, double seconds,
              double work, unit work_unit);
  /// Notes an op the kernel set of this build lacks.
  void missing(std::string op);

  void print_header() const;
  const std::vector<tour_row>& rows() const noexcept { return rows_; }
  const std::vector<std::string>& missing_ops() const noexcept { return missing_; }

 private:
  template <class B>
  B with_pool() {
    B b{};
    b.pool = &pool_;
    return b;
  }

  tour_options options_;
  cpu_features cpu_;
  thread_pool pool_;
  std::uint64_t seed_ = 0x5113;
  std::vector<tour_row> rows_;
  std::vector<std::string> missing_;
};

/// The CPU backends compiled into the program (what `each_backend` may visit), whatever this CPU runs.
inline std::vector<std::string> compiled_cpu_backends() {
  std::vector<std::string> names = {"scalar", "simd<sse2>"};
#if XSIMD_WITH_FMA3_AVX2
  names.push_back("simd<fma3<avx2>>");
#endif
#if XSIMD_WITH_AVX512BW
  names.push_back("simd<avx512bw>");
#endif
  return names;
}

/// A copy in double, for the oracle.
template <class T, std::size_t R>
tensor<double, R> widen(const tensor<T, R>& t) {
  tensor<double, R> d(t.extents());
  for (index_t i = 0; i < t.size(); ++i) d.data()[i] = static_cast<double>(static_cast<float>(t.data()[i]));
  return d;
}
/// A copy in float (inputs some backward ops take from a forward result).
template <class T, std::size_t R>
tensor<float, R> narrow(const tensor<T, R>& t) {
  tensor<float, R> f(t.extents());
  for (index_t i = 0; i < t.size(); ++i) f.data()[i] = static_cast<float>(t.data()[i]);
  return f;
}

/// "256x512x64".
template <class... I>
std::string dims(I... extent) {
  std::string s;
  ((s += str(s.empty() ? "" : "x", extent)), ...);
  return s;
}

// One function per group of op families (tour_gemm.cpp, tour_rows.cpp, tour_model.cpp).
void tour_gemm(tour& t);
void tour_rows(tour& t);
void tour_model(tour& t);

}  // namespace slim::cli
