// Test helpers: elementwise comparison with atol + rtol·|ref| (first mismatches printed, llm.c style),
// deterministic random fills, and central finite differences in double.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "slim/core/half.hpp"
#include "slim/core/philox.hpp"
#include "slim/core/tensor.hpp"

namespace slim::testing {

/// Exit code a test program returns when it cannot run here (no GPU, no data, CPU lacks the ISA);
/// ctest's SKIP_RETURN_CODE turns it into "skipped", never "passed".
inline constexpr int skip_return_code = 77;

/// Result of comparing two tensors elementwise.
struct comparison {
  bool ok = true;
  double max_abs = 0, max_rel = 0;
  index_t mismatches = 0;
  std::string report;
};

template <class T>
double to_float_any(T v) {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) return static_cast<float>(v);
  else return static_cast<double>(v);
}

/// |got − ref| ≤ atol + rtol·|ref| for every element; NaN only matches NaN, ±Inf only itself.
template <class T, class U, std::size_t R>
comparison compare(tensor_view<const T, R> got, tensor_view<const U, R> ref, double atol, double rtol) {
  comparison c;
  std::ostringstream os;
  REQUIRE(same_shape(got, tensor_view<const T, R>{nullptr, ref.extents(), ref.strides()}));
  std::array<index_t, R> idx{};
  const index_t n = ref.size();
  for (index_t lin = 0; lin < n; ++lin) {
    index_t rem = lin;
    for (std::size_t r = R; r-- > 0;) {
      idx[r] = rem % ref.extent(r);
      rem /= ref.extent(r);
    }
    index_t og = 0, orf = 0;
    for (std::size_t r = 0; r < R; ++r) {
      og += idx[r] * got.stride(r);
      orf += idx[r] * ref.stride(r);
    }
    const double g = static_cast<double>(to_float_any(got.data_handle()[og]));
    const double e = static_cast<double>(to_float_any(ref.data_handle()[orf]));
    bool good;
    if (std::isnan(e) || std::isnan(g)) good = std::isnan(e) && std::isnan(g);
    else if (std::isinf(e) || std::isinf(g)) good = g == e;
    else {
      const double d = std::abs(g - e);
      c.max_abs = std::max(c.max_abs, d);
      if (e != 0) c.max_rel = std::max(c.max_rel, d / std::abs(e));
      good = d <= atol + rtol * std::abs(e);
    }
    if (!good) {
      if (c.mismatches < 5) {
        os << "  at [";
        for (std::size_t r = 0; r < R; ++r) os << (r ? "," : "") << idx[r];
        os << "] got " << g << " want " << e << "\n";
      }
      ++c.mismatches;
      c.ok = false;
    }
  }
  if (!c.ok) os << "  " << c.mismatches << " of " << n << " elements differ";
  os << "  (max |diff| " << c.max_abs << ", max rel " << c.max_rel << ", atol " << atol << ", rtol " << rtol << ")";
  c.report = os.str();
  return c;
}

/// CHECKs that `got` matches `ref` within atol + rtol·|ref|; prints the first mismatches otherwise.
#define SLIM_CHECK_CLOSE(got, ref, atol, rtol)                                                  \
  do {                                                                                           \
    const auto slim_cmp_ = ::slim::testing::compare(::slim::testing::as_const_view(got),         \
                                                    ::slim::testing::as_const_view(ref), (atol), (rtol)); \
    INFO(#got " vs " #ref ":\n" << slim_cmp_.report);                                            \
    CHECK(slim_cmp_.ok);                                                                         \
  } while (0)

template <class T, std::size_t R, class S>
tensor_view<const T, R, S> as_const_view(const tensor_view<T, R, S>& v) {
  return v;
}
template <class T, std::size_t R, class S>
tensor_view<const T, R, S> as_const_view(const tensor<T, R, S>& t) {
  return t.view();
}

/// Fills `t` with uniform values in [lo, hi) from Philox stream `seed`.
template <class T, std::size_t R>
void fill_uniform(tensor<T, R>& t, std::uint64_t seed, double lo = -1, double hi = 1) {
  philox_stream rng(seed);
  for (auto& x : t) x = static_cast<T>(lo + (hi - lo) * static_cast<double>(rng.uniform()));
}
/// Fills `t` with integers in [lo, hi] (exact in float: GEMM results can be compared for equality).
template <class T, std::size_t R>
void fill_integers(tensor<T, R>& t, std::uint64_t seed, int lo = -4, int hi = 4) {
  philox_stream rng(seed);
  for (auto& x : t) x = static_cast<T>(lo + static_cast<int>(rng.below(static_cast<std::uint32_t>(hi - lo + 1))));
}

/// Copies a tensor to another element type.
template <class To, class From, std::size_t R>
tensor<To, R> convert(const tensor<From, R>& t) {
  tensor<To, R> out(t.extents());
  for (index_t i = 0; i < t.size(); ++i) out.data()[i] = static_cast<To>(to_float_any(t.data()[i]));
  return out;
}

/// Central difference of `loss` with respect to each element of `x` (double precision); `x` is restored.
inline std::vector<double> numeric_gradient(double* x, index_t n, const std::function<double()>& loss,
                                            double h = 1e-6) {
  std::vector<double> g(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = loss();
    x[i] = keep - h;
    const double down = loss();
    x[i] = keep;
    g[static_cast<std::size_t>(i)] = (up - down) / (2 * h);
  }
  return g;
}

/// CHECKs analytic vs numeric gradients: |a − n| ≤ atol + rtol·|n| elementwise.
inline void check_gradient(const std::string& name, const double* analytic, const std::vector<double>& numeric,
                           double atol = 1e-7, double rtol = 1e-5) {
  tensor_view<const double, 1> a(analytic, {static_cast<index_t>(numeric.size())});
  tensor_view<const double, 1> n(numeric.data(), {static_cast<index_t>(numeric.size())});
  const auto c = compare(a, n, atol, rtol);
  INFO("gradient of " << name << " vs central differences:\n" << c.report);
  CHECK(c.ok);
}

}  // namespace slim::testing
