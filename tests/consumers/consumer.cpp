// A user program: C = A·B on kernels<scalar> and kernels<simd<sse2>> (the SSE2 arch needs no -m flags on
// x86-64). Integer-valued inputs make every product exact, so both results must equal the hand-computed C.
#include <cstdio>
#include <slim/backend/scalar.hpp>
#include <slim/backend/simd.hpp>
#include <slim/core/tensor.hpp>
#include <string_view>
#include <xsimd/xsimd.hpp>

namespace {

template <class Backend>
bool product_is_exact(const Backend& be, const char* label) {
  slim::tensor<float, 2> a({2, 3}), b({3, 2}), c({2, 2});  // (M,K) (K,N) (M,N)
  const float av[] = {1, 2, 3, 4, 5, 6}, bv[] = {7, 8, 9, 10, 11, 12}, want[] = {58, 64, 139, 154};
  for (int i = 0; i < 6; ++i) a.data()[i] = av[i], b.data()[i] = bv[i];
  slim::kernels<Backend>::gemm(be, 1.0f, a.view(), b.view(), 0.0f, c.view());
  for (int i = 0; i < 4; ++i)
    if (c.data()[i] != want[i]) {
      std::printf("%s: c[%d] = %g, want %g\n", label, i, static_cast<double>(c.data()[i]),
                  static_cast<double>(want[i]));
      return false;
    }
  return true;
}

}  // namespace

int main() {
#ifdef SLIM_CONSUMER_EXPECTED_VERSION
  if (slim::version_string != std::string_view(SLIM_CONSUMER_EXPECTED_VERSION)) {
    std::printf("header version %s, package version %s\n", slim::version_string.data(), SLIM_CONSUMER_EXPECTED_VERSION);
    return 1;
  }
#endif
  slim::thread_pool pool(2);
  slim::backend::simd<xsimd::sse2> sse2;
  sse2.pool = &pool;
  if (!product_is_exact(slim::backend::scalar{}, "scalar") || !product_is_exact(sse2, "simd<sse2>")) return 1;
  std::printf("slim consumer: ok (slim %s)\n", slim::version_string.data());
  return 0;
}
