// Must not compile: kernels<backend::cuda> used in a .cpp that did not include the CUDA header
// <slim/backend/cuda/kernels.cuh> (which only nvcc may compile).
#include <slim/backend/scalar.hpp>
#include <slim/core/tensor.hpp>

void misuse(slim::matrix_view<const float, slim::device_space> a, slim::matrix_view<const float, slim::device_space> b,
            slim::matrix_view<float, slim::device_space> c) {
  slim::kernels<slim::backend::cuda>::gemm(slim::backend::cuda{}, 1.0f, a, b, 0.0f, c);
}
