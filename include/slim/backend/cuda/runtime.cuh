// slim — CUDA runtime support: checked calls, checked kernel launches, device queries, and `cuda_context`,
// the RAII owner of the stream and cuBLAS handle that a `backend::cuda` tag object carries.
//
// Every CUDA runtime call, every cuBLAS call and every kernel launch in slim goes through one of the
// SLIM_CUDA_* macros below; a failure throws `slim::error` whose `where` is the call as written, whose
// `place` is file:line and whose message is the CUDA error name and string. (Macros, because only the
// preprocessor can spell the call and its position.)
//
// Stream semantics: `cuda_context` creates a *blocking* stream, so work on it is ordered after work on the
// legacy default stream (where `tensor<T, R, device_space>` zeroes its storage) and vice versa.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/runtime.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>
#include <utility>

#include "slim/backend/tags.hpp"
#include "slim/core/error.hpp"

namespace slim::backend::cuda_detail {

/// "file:line" for error messages.
inline std::string position(const char* file, int line) { return std::string(file) + ":" + std::to_string(line); }

/// Throws `slim::error(call, file:line, "<cudaErrorName>: <description>")` unless `status` is cudaSuccess.
inline void check(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess) [[unlikely]]
    throw error(call, position(file, line), std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status));
}

/// Throws `slim::error(call, file:line, "<CUBLAS_STATUS_...>: <description>")` unless CUBLAS_STATUS_SUCCESS.
inline void check(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) [[unlikely]]
    throw error(call, position(file, line),
                std::string(cublasGetStatusName(status)) + ": " + cublasGetStatusString(status));
}

/// After a launch: a launch-configuration error (cudaGetLastError, which also clears it) or a sticky
/// error from earlier asynchronous work becomes a `slim::error` naming the kernel.
inline void check_launch(const char* kernel, const char* file, int line) {
  check(cudaGetLastError(), (std::string("launch of ") + kernel).c_str(), file, line);
}

inline cudaStream_t stream_of(const backend::cuda& be) noexcept { return static_cast<cudaStream_t>(be.stream); }
inline cublasHandle_t blas_of(const backend::cuda& be) noexcept { return static_cast<cublasHandle_t>(be.blas); }

}  // namespace slim::backend::cuda_detail

/// Checks a CUDA runtime call (an expression of type cudaError_t).
#define SLIM_CUDA_CHECK(call) ::slim::backend::cuda_detail::check((call), #call, __FILE__, __LINE__)
/// Checks a cuBLAS call (an expression of type cublasStatus_t).
#define SLIM_CUBLAS_CHECK(call) ::slim::backend::cuda_detail::check((call), #call, __FILE__, __LINE__)
/// Launches `kernel<<<grid, block, shared_bytes, stream>>>(args...)` and checks the launch. A kernel name with
/// a comma in its template arguments cannot pass through a macro: launch it directly and call check_launch.
#define SLIM_CUDA_LAUNCH(kernel, grid, block, shared_bytes, stream, ...)     \
  do {                                                                       \
    kernel<<<(grid), (block), (shared_bytes), (stream)>>>(__VA_ARGS__);      \
    ::slim::backend::cuda_detail::check_launch(#kernel, __FILE__, __LINE__); \
  } while (0)

namespace slim::backend {

/// Number of CUDA devices visible to this process; 0 (never an error) when there is no device or no
/// driver, so a caller can skip GPU work. `reason`, when given, receives the CUDA status in that case.
inline int cuda_device_count(std::string* reason = nullptr) {
  int n = 0;
  const cudaError_t status = cudaGetDeviceCount(&n);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();  // the status is not sticky, but leave no trace for the next check
    if (reason) *reason = std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
    return 0;
  }
  if (n == 0 && reason) *reason = "no CUDA device";
  return n;
}

/// What slim needs to know about a device.
struct cuda_device_info {
  int ordinal = 0;
  std::string name;
  int major = 0, minor = 0;  // compute capability
  int multiprocessors = 0;
  std::size_t global_memory_bytes = 0;
  bool has_bf16_tensor_cores() const noexcept { return major >= 8; }
};

/// Properties of device `ordinal`; throws `slim::error` when it does not exist.
inline cuda_device_info cuda_device_properties(int ordinal) {
  cudaDeviceProp p{};
  SLIM_CUDA_CHECK(cudaGetDeviceProperties(&p, ordinal));
  return {ordinal, p.name, p.major, p.minor, p.multiProcessorCount, p.totalGlobalMem};
}

/// Waits for all work queued on the backend's stream and reports any asynchronous error.
inline void synchronize(const backend::cuda& be) { SLIM_CUDA_CHECK(cudaStreamSynchronize(cuda_detail::stream_of(be))); }

/// Owns a device selection, a blocking stream and a cuBLAS handle bound to that stream, and hands out the
/// `backend::cuda` tag object that carries them into `kernels<backend::cuda>`. Move-only. Destroying it
/// waits for the stream. Tag objects it handed out must not outlive it.
class cuda_context {
 public:
  /// Selects device `ordinal` for the calling thread and creates the stream and cuBLAS handle.
  explicit cuda_context(int ordinal = 0) : device_{ordinal} {
    SLIM_CUDA_CHECK(cudaSetDevice(ordinal));
    cudaStream_t stream = nullptr;
    SLIM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamDefault));
    stream_ = stream;
    cublasHandle_t blas = nullptr;
    try {
      SLIM_CUBLAS_CHECK(cublasCreate(&blas));
      blas_ = blas;
      SLIM_CUBLAS_CHECK(cublasSetStream(blas, stream));
      // Exact f32 (no TF32 unless the user opts in on the handle), scalars passed from the host.
      SLIM_CUBLAS_CHECK(cublasSetMathMode(blas, CUBLAS_DEFAULT_MATH));
      SLIM_CUBLAS_CHECK(cublasSetPointerMode(blas, CUBLAS_POINTER_MODE_HOST));
    } catch (...) {
      release();
      throw;
    }
  }
  cuda_context(const cuda_context&) = delete;
  cuda_context& operator=(const cuda_context&) = delete;
  cuda_context(cuda_context&& o) noexcept
      : device_{o.device_}, stream_{std::exchange(o.stream_, nullptr)}, blas_{std::exchange(o.blas_, nullptr)} {}
  cuda_context& operator=(cuda_context&& o) noexcept {
    if (this != &o) {
      release();
      device_ = o.device_;
      stream_ = std::exchange(o.stream_, nullptr);
      blas_ = std::exchange(o.blas_, nullptr);
    }
    return *this;
  }
  ~cuda_context() { release(); }

  /// The tag object to pass as the first argument of every `kernels<backend::cuda>` op.
  backend::cuda backend() const noexcept { return {stream_, blas_}; }
  cudaStream_t stream() const noexcept { return stream_; }
  cublasHandle_t blas() const noexcept { return blas_; }
  int device() const noexcept { return device_; }
  /// Waits for the stream; throws on an asynchronous error.
  void synchronize() const { backend::synchronize(backend()); }
  /// Lets f32 GEMMs on this context's handle round their inputs to TF32 on the tensor cores (10-bit mantissa;
  /// off by default, so f32 GEMM is exact f32 unless asked).
  void allow_tf32(bool on) {
    SLIM_CUBLAS_CHECK(cublasSetMathMode(blas_, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  }

 private:
  void release() noexcept {
    // Destructors cannot throw: errors here (a device already lost) are dropped.
    if (stream_) (void)cudaStreamSynchronize(stream_);
    if (blas_) (void)cublasDestroy(blas_);
    if (stream_) (void)cudaStreamDestroy(stream_);
    blas_ = nullptr;
    stream_ = nullptr;
  }
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
};

}  // namespace slim::backend
