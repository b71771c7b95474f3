// Control for the compile-failure cases: the correct use of what they misuse compiles.
#include <slim/backend/scalar.hpp>
#include <slim/core/tensor.hpp>

void control() {
  slim::tensor<float, 2> a({2, 3}), b({3, 2}), c({2, 2});  // (M,K) (K,N) (M,N)
  slim::kernels<slim::backend::scalar>::gemm(slim::backend::scalar{}, 1.0f, a.view(), b.view(), 0.0f, c.view());
  slim::tensor<float, 2, slim::host_space> host({2, 3});
}
