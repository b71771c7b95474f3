// The CUDA backend as plain host functions, for the Catch2 test programs. Catch2 stays in g++-compiled .cpp
// files (nvcc is slow on catch.hpp and warns in it); device_shim.cu, compiled by nvcc, includes
// <slim/backend/cuda/kernels.cuh> and defines everything declared here by forwarding to it. Only plain C++
// types cross this boundary: views in `device_space`, the `backend::cuda` tag, strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "slim/backend/common.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/half.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::testing::gpu {

template <class T, std::size_t R>
using dview = tensor_view<T, R, device_space>;
template <class T>
using dmatrix = matrix_view<T, device_space>;
template <class T>
using dbatch = tensor_view<T, 3, device_space>;

// ---- runtime --------------------------------------------------------------------------------------------
/// backend::cuda_device_count: 0 with `reason` set when there is no device or no driver.
int device_count(std::string* reason);
/// "NVIDIA H200, sm_90, 132 SMs, 140 GiB".
std::string device_summary(int ordinal);

/// backend::cuda_context behind a firewall (its CUDA types stay in the .cu file).
class context {
 public:
  explicit context(int ordinal = 0);
  ~context();
  context(const context&) = delete;
  context& operator=(const context&) = delete;
  backend::cuda backend() const;
  void synchronize() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// `bytes` of device memory through space_allocator<device_space> (zeroed).
class device_buffer {
 public:
  explicit device_buffer(std::size_t bytes);
  ~device_buffer();
  device_buffer(device_buffer&& o) noexcept;
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  void* get() const noexcept { return p_; }

 private:
  void* p_ = nullptr;
};

/// backend::copy, instantiated in device_shim.cu for T ∈ {float, bf16} with R ∈ {1, 2, 3}, std::byte with R = 1
/// and std::int32_t with R ∈ {1, 2}, between every pair of spaces.
template <class T, std::size_t R, class SrcSpace, class DstSpace>
void copy(const backend::cuda& be, tensor_view<const T, R, SrcSpace> src, tensor_view<T, R, DstSpace> dst);
/// backend::fill_zero for float views of rank 1, 2, 3.
template <class T, std::size_t R>
void fill_zero(const backend::cuda& be, dview<T, R> v);
/// Reads back a freshly constructed tensor<float, 2, device_space> of shape (n, d): all zeros when the
/// device allocator zeroes as tensor promises. Moves it twice on the way (move construction, assignment).
std::vector<float> fresh_device_tensor(const backend::cuda& be, index_t n, index_t d);

// ---- kernels<backend::cuda> ------------------------------------------------------------------------------
void gemm(const backend::cuda& be, float alpha, dmatrix<const float> a, dmatrix<const float> b, float beta,
          dmatrix<float> c);
void gemm(const backend::cuda& be, float alpha, dmatrix<const bf16> a, dmatrix<const bf16> b, float beta,
          dmatrix<float> c);
void gemm(const backend::cuda& be, float alpha, dmatrix<const bf16> a, dmatrix<const float> b, float beta,
          dmatrix<float> c);
void gemm(const backend::cuda& be, float alpha, dmatrix<const float> a, dmatrix<const bf16> b, float beta,
          dmatrix<float> c);
void gemm_batched(const backend::cuda& be, float alpha, dbatch<const float> a, dbatch<const float> b, float beta,
                  dbatch<float> c);
void gemm_batched(const backend::cuda& be, float alpha, dbatch<const bf16> a, dbatch<const bf16> b, float beta,
                  dbatch<float> c);
void gemm_batched(const backend::cuda& be, float alpha, dbatch<const float> a, dbatch<const bf16> b, float beta,
                  dbatch<float> c);
void gemm_backward(const backend::cuda& be, float alpha, dmatrix<const float> a, dmatrix<const float> b,
                   dmatrix<const float> dc, dmatrix<float> da, dmatrix<float> db);
void gemm_backward(const backend::cuda& be, float alpha, dmatrix<const bf16> a, dmatrix<const bf16> b,
                   dmatrix<const float> dc, dmatrix<float> da, dmatrix<float> db);
void gemm_batched_backward(const backend::cuda& be, float alpha, dbatch<const float> a, dbatch<const float> b,
                           dbatch<const float> dc, dbatch<float> da, dbatch<float> db);

void silu_forward(const backend::cuda& be, dmatrix<const float> x, dmatrix<float> y);
void silu_backward(const backend::cuda& be, dmatrix<const float> x, dmatrix<const float> dy, dmatrix<float> dx);
void swiglu_forward(const backend::cuda& be, dmatrix<const float> gate, dmatrix<const float> up, dmatrix<float> y);
void swiglu_backward(const backend::cuda& be, dmatrix<const float> gate, dmatrix<const float> up,
                     dmatrix<const float> dy, dmatrix<float> dgate, dmatrix<float> dup);

// ---- kernels<backend::cuda>: the hand-written op families (float) --------------------------------------
template <class T>
using dvector = dview<T, 1>;

template <class T>
using dheads = dview<T, 4>;
void attention_forward(const backend::cuda& be, dheads<const float> q, dheads<const float> k, dheads<const float> v,
                       float scale, bool causal, dvector<const std::int32_t> kv_begin, dheads<float> o,
                       dbatch<float> lse);
void attention_backward(const backend::cuda& be, dheads<const float> q, dheads<const float> k, dheads<const float> v,
                        dheads<const float> o, dheads<const float> dout, dbatch<const float> lse, float scale,
                        bool causal, dvector<const std::int32_t> kv_begin, dheads<float> dq, dheads<float> dk,
                        dheads<float> dv);
// attention in double too: its blocks need the opt-in shared memory past 48 KB already at small head dimensions
void attention_forward(const backend::cuda& be, dheads<const double> q, dheads<const double> k,
                       dheads<const double> v, double scale, bool causal, dvector<const std::int32_t> kv_begin,
                       dheads<double> o, dbatch<double> lse);
void attention_backward(const backend::cuda& be, dheads<const double> q, dheads<const double> k,
                        dheads<const double> v, dheads<const double> o, dheads<const double> dout,
                        dbatch<const double> lse, double scale, bool causal, dvector<const std::int32_t> kv_begin,
                        dheads<double> dq, dheads<double> dk, dheads<double> dv);
void rmsnorm_forward(const backend::cuda& be, dmatrix<const float> x, dvector<const float> w, float eps,
                     dmatrix<float> y, dvector<float> rstd);
void rmsnorm_backward(const backend::cuda& be, dmatrix<const float> x, dvector<const float> w,
                      dvector<const float> rstd, dmatrix<const float> dy, dmatrix<float> dx, dvector<float> dw);
void layernorm_forward(const backend::cuda& be, dmatrix<const float> x, dvector<const float> w, dvector<const float> b,
                       float eps, dmatrix<float> y, dvector<float> mean, dvector<float> rstd);
void layernorm_backward(const backend::cuda& be, dmatrix<const float> x, dvector<const float> w,
                        dvector<const float> mean, dvector<const float> rstd, dmatrix<const float> dy,
                        dmatrix<float> dx, dvector<float> dw, dvector<float> db);
void rope_forward(const backend::cuda& be, dbatch<const float> x, dvector<const std::int32_t> pos,
                  dvector<const float> inv_freq, dbatch<float> y);
void rope_backward(const backend::cuda& be, dbatch<const float> dy, dvector<const std::int32_t> pos,
                   dvector<const float> inv_freq, dbatch<float> dx);
void softmax_forward(const backend::cuda& be, dbatch<const float> x, float scale, bool causal, dbatch<float> y);
void softmax_backward(const backend::cuda& be, dbatch<const float> y, dbatch<const float> dy, float scale,
                      dbatch<float> dx);
void gelu_forward(const backend::cuda& be, dmatrix<const float> x, backend::gelu_approximation approx,
                  dmatrix<float> y);
void gelu_backward(const backend::cuda& be, dmatrix<const float> x, dmatrix<const float> dy,
                   backend::gelu_approximation approx, dmatrix<float> dx);
void dropout_forward(const backend::cuda& be, dmatrix<const float> x, float p, std::uint64_t seed,
                     std::uint64_t offset, dmatrix<float> y);
void dropout_backward(const backend::cuda& be, dmatrix<const float> dy, float p, std::uint64_t seed,
                      std::uint64_t offset, dmatrix<float> dx);
void gru_cell_forward(const backend::cuda& be, dmatrix<const float> gx, dmatrix<const float> gh,
                      dmatrix<const float> h, dmatrix<float> h_out);
void gru_cell_backward(const backend::cuda& be, dmatrix<const float> gx, dmatrix<const float> gh,
                       dmatrix<const float> h, dmatrix<const float> dh_out, dmatrix<float> dgx, dmatrix<float> dgh,
                       dmatrix<float> dh);
void embedding_forward(const backend::cuda& be, dmatrix<const float> table, dvector<const std::int32_t> ids,
                       dmatrix<float> out);
void embedding_backward(const backend::cuda& be, dvector<const std::int32_t> ids, dmatrix<const float> dout,
                        dmatrix<float> dtable);
index_t cross_entropy_forward(const backend::cuda& be, dmatrix<const float> logits, dvector<const std::int32_t> targets,
                              std::int32_t ignore_index, dvector<float> loss, dvector<float> lse);
void cross_entropy_backward(const backend::cuda& be, dmatrix<const float> logits, dvector<const std::int32_t> targets,
                            dvector<const float> lse, std::int32_t ignore_index, dvector<const float> dloss,
                            dmatrix<float> dlogits);
void adam_step(const backend::cuda& be, dvector<float> param, dvector<const float> grad, dvector<float> m,
               dvector<float> v, const backend::adam_config& cfg, std::int64_t step);
void adamw_step(const backend::cuda& be, dvector<float> param, dvector<const float> grad, dvector<float> m,
                dvector<float> v, const backend::adam_config& cfg, std::int64_t step);
void topk_forward(const backend::cuda& be, dmatrix<const float> x, index_t k, dmatrix<float> values,
                  dmatrix<std::int32_t> indices);
void topk_backward(const backend::cuda& be, dmatrix<const std::int32_t> indices, dmatrix<const float> dvalues,
                   dmatrix<float> dx);

// ---- error reporting -------------------------------------------------------------------------------------
/// What SLIM_CUBLAS_CHECK throws for cublasSetStream on a null handle (fails with or without a device).
std::string cublas_failure_message();
/// The source line of that SLIM_CUBLAS_CHECK in device_shim.cu, to find "device_shim.cu:<line>" in it.
int cublas_failure_line();

}  // namespace slim::testing::gpu
