// Must not compile: a rank-3 view passed where gemm wants a matrix (rank 2).
#include <slim/backend/scalar.hpp>
#include <slim/core/tensor.hpp>

void misuse() {
  slim::tensor<float, 3> a({2, 2, 3});          // (Bt,M,K): needs gemm_batched, not gemm
  slim::tensor<float, 2> b({3, 2}), c({2, 2});  // (K,N) (M,N)
  slim::kernels<slim::backend::scalar>::gemm(slim::backend::scalar{}, 1.0f, a.view(), b.view(), 0.0f, c.view());
}
