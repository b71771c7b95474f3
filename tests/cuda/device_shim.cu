// Definitions of device_shim.hpp: every function forwards to the CUDA backend (nvcc only).
#include <cstddef>
#include <stdexcept>
#include <utility>

#include "cuda/device_shim.hpp"
#include "slim/backend/cuda/kernels.cuh"

namespace slim::testing::gpu {

using K = kernels<backend::cuda>;

int device_count(std::string* reason) { return backend::cuda_device_count(reason); }

std::string device_summary(int ordinal) {
  const backend::cuda_device_info d = backend::cuda_device_properties(ordinal);
  return d.name + ", sm_" + std::to_string(d.major) + std::to_string(d.minor) + ", " +
         std::to_string(d.multiprocessors) + " SMs, " + std::to_string(d.global_memory_bytes >> 30) + " GiB";
}

struct context::impl {
  backend::cuda_context ctx;
};
context::context(int ordinal) : impl_{new impl{backend::cuda_context(ordinal)}} {}
context::~context() = default;
backend::cuda context::backend() const { return impl_->ctx.backend(); }
void context::synchronize() const { impl_->ctx.synchronize(); }

device_buffer::device_buffer(std::size_t bytes) : p_{space_allocator<device_space>::allocate(bytes)} {
  try {
    space_allocator<device_space>::zero(p_, bytes);
  } catch (...) {
    space_allocator<device_space>::deallocate(p_);
    throw;
  }
}
device_buffer::~device_buffer() { space_allocator<device_space>::deallocate(p_); }
device_buffer::device_buffer(device_buffer&& o) noexcept : p_{std::exchange(o.p_, nullptr)} {}

template <class T, std::size_t R, class SrcSpace, class DstSpace>
void copy(const backend::cuda& be, tensor_view<const T, R, SrcSpace> src, tensor_view<T, R, DstSpace> dst) {
  backend::copy(be, src, dst);
}
template <class T, std::size_t R>
void fill_zero(const backend::cuda& be, dview<T, R> v) {
  backend::fill_zero(be, v);
}

#define SLIM_SHIM_COPY(T, R)                                                                                        \
  template void copy<T, R, host_space, device_space>(const backend::cuda&, tensor_view<const T, R, host_space>,     \
                                                     tensor_view<T, R, device_space>);                              \
  template void copy<T, R, device_space, host_space>(const backend::cuda&, tensor_view<const T, R, device_space>,   \
                                                     tensor_view<T, R, host_space>);                                \
  template void copy<T, R, device_space, device_space>(const backend::cuda&, tensor_view<const T, R, device_space>, \
                                                       tensor_view<T, R, device_space>);
SLIM_SHIM_COPY(float, 1)
SLIM_SHIM_COPY(float, 2)
SLIM_SHIM_COPY(float, 3)
SLIM_SHIM_COPY(bf16, 1)
SLIM_SHIM_COPY(bf16, 2)
SLIM_SHIM_COPY(bf16, 3)
SLIM_SHIM_COPY(double, 1)
SLIM_SHIM_COPY(std::byte, 1)
SLIM_SHIM_COPY(std::int32_t, 1)
SLIM_SHIM_COPY(std::int32_t, 2)
#undef SLIM_SHIM_COPY
template void fill_zero<float, 1>(const backend::cuda&, dview<float, 1>);
template void fill_zero<float, 2>(const backend::cuda&, dview<float, 2>);
template void fill_zero<float, 3>(const backend::cuda&, dview<float, 3>);

std::vector<float> fresh_device_tensor(const backend::cuda& be, index_t n, index_t d) {
  tensor<float, 2, device_space> t({n, d});
  tensor<float, 2, device_space> moved(std::move(t));
  tensor<float, 2, device_space> assigned;
  assigned = std::move(moved);
  if (t.data() != nullptr || moved.data() != nullptr) throw std::logic_error("moved-from device tensor kept its data");
  const tensor<float, 2> host = backend::to_host(be, assigned.view());
  return std::vector<float>(host.begin(), host.end());
}

void gemm(const backend::cuda& be, float alpha, dmatrix<const float> a, dmatrix<const float> b, float beta,
          dmatrix<float> c) {
  K::gemm(be, alpha, a, b, beta, c);
}
void gemm(const backend::cuda& be, float alpha, dmatrix<const bf16> a, dmatrix<const bf16> b, float beta,
          dmatrix<float> c) {
  K::gemm(be, alpha, a, b, beta, c);
}
void gemm(const backend::cuda& be, float alpha, dmatrix<const bf16> a, dmatrix<const float> b, float beta,
          dmatrix<float> c) {
  K::gemm(be, alpha, a, b, beta, c);
}
void gemm(const backend::cuda& be, float alpha, dmatrix<const float> a, dmatrix<const bf16> b, float beta,
          dmatrix<float> c) {
  K::gemm(be, alpha, a, b, beta, c);
}
void gemm_batched(const backend::cuda& be, float alpha, dbatch<const float> a, dbatch<const float> b, float beta,
                  dbatch<float> c) {
  K::gemm_batched(be, alpha, a, b, beta, c);
}
void gemm_batched(const backend::cuda& be, float alpha, dbatch<const bf16> a, dbatch<const bf16> b, float beta,
                  dbatch<float> c) {
  K::gemm_batched(be, alpha, a, b, beta, c);
}
void gemm_batched(const backend::cuda& be, float alpha, dbatch<const float> a, dbatch<const bf16> b, float beta,
                  dbatch<float> c) {
  K::gemm_batched(be, alpha, a, b, beta, c);
}
void gemm_backward(const backend::cuda& be, float alpha, dmatrix<const float> a, dmatrix<const float> b,
                   dmatrix<const float> dc, dmatrix<float> da, dmatrix<float> db) {
  K::gemm_backward(be, alpha, a, b, dc, da, db);
}
void gemm_backward(const backend::cuda& be, float alpha, dmatrix<const bf16> a, dmatrix<const bf16> b,
                   dmatrix<const float> dc, dmatrix<float> da, dmatrix<float> db) {
  K::gemm_backward(be, alpha, a, b, dc, da, db);
}
void gemm_batched_backward(const backend::cuda& be, float alpha, dbatch<const float> a, dbatch<const float> b,
                           dbatch<const float> dc, dbatch<float> da, dbatch<float> db) {
  K::gemm_batched_backward(be, alpha, a, b, dc, da, db);
}

void silu_forward(const backend::cuda& be, dmatrix<const float> x, dmatrix<float> y) { K::silu_forward(be, x, y); }
void silu_backward(const backend::cuda& be, dmatrix<const float> x, dmatrix<const float> dy, dmatrix<float> dx) {
  K::silu_backward(be, x, dy, dx);
}
void swiglu_forward(const backend::cuda& be, dmatrix<const float> gate, dmatrix<const float> up, dmatrix<float> y) {
  K::swiglu_forward(be, gate, up, y);
}
void swiglu_backward(const backend::cuda& be, dmatrix<const float> gate, dmatrix<const float> up,
                     dmatrix<const float> dy, dmatrix<float> dgate, dmatrix<float> dup) {
  K::swiglu_backward(be, gate, up, dy, dgate, dup);
}

void attention_forward(const backend::cuda& be, dheads<const float> q, dheads<const float> k, dheads<const float> v,
                       float scale, bool causal, dvector<const std::int32_t> kv_begin, dheads<float> o,
                       dbatch<float> lse) {
  K::attention_forward<float>(be, q, k, v, scale, causal, kv_begin, o, lse);
}
void attention_backward(const backend::cuda& be, dheads<const float> q, dheads<const float> k, dheads<const float> v,
                        dheads<const float> o, dheads<const float> dout, dbatch<const float> lse, float scale,
                        bool causal, dvector<const std::int32_t> kv_begin, dheads<float> dq, dheads<float> dk,
                        dheads<float> dv) {
  K::attention_backward<float>(be, q, k, v, o, dout, lse, scale, causal, kv_begin, dq, dk, dv);
}
void attention_forward(const backend::cuda& be, dheads<const double> q, dheads<const double> k,
                       dheads<const double> v, double scale, bool causal, dvector<const std::int32_t> kv_begin,
                       dheads<double> o, dbatch<double> lse) {
  K::attention_forward<double>(be, q, k, v, scale, causal, kv_begin, o, lse);
}
void attention_backward(const backend::cuda& be, dheads<const double> q, dheads<const double> k,
                        dheads<const double> v, dheads<const double> o, dheads<const double> dout,
                        dbatch<const double> lse, double scale, bool causal, dvector<const std::int32_t> kv_begin,
                        dheads<double> dq, dheads<double> dk, dheads<double> dv) {
  K::attention_backward<double>(be, q, k, v, o, dout, lse, scale, causal, kv_begin, dq, dk, dv);
}
void rmsnorm_forward(const backend::cuda& be, dmatrix<const float> x, dvector<const float> w, float eps,
                     dmatrix<float> y, dvector<float> rstd) {
  K::rmsnorm_forward<float>(be, x, w, eps, y, rstd);
}
void rmsnorm_backward(const backend::cuda& be, dmatrix<const float> x, dvector<const float> w,
                      dvector<const float> rstd, dmatrix<const float> dy, dmatrix<float> dx, dvector<float> dw) {
  K::rmsnorm_backward<float>(be, x, w, rstd, dy, dx, dw);
}
void layernorm_forward(const backend::cuda& be, dmatrix<const float> x, dvector<const float> w, dvector<const float> b,
                       float eps, dmatrix<float> y, dvector<float> mean, dvector<float> rstd) {
  K::layernorm_forward<float>(be, x, w, b, eps, y, mean, rstd);
}
void layernorm_backward(const backend::cuda& be, dmatrix<const float> x, dvector<const float> w,
                        dvector<const float> mean, dvector<const float> rstd, dmatrix<const float> dy,
                        dmatrix<float> dx, dvector<float> dw, dvector<float> db) {
  K::layernorm_backward<float>(be, x, w, mean, rstd, dy, dx, dw, db);
}
void rope_forward(const backend::cuda& be, dbatch<const float> x, dvector<const std::int32_t> pos,
                  dvector<const float> inv_freq, dbatch<float> y) {
  K::rope_forward<float>(be, x, pos, inv_freq, y);
}
void rope_backward(const backend::cuda& be, dbatch<const float> dy, dvector<const std::int32_t> pos,
                   dvector<const float> inv_freq, dbatch<float> dx) {
  K::rope_backward<float>(be, dy, pos, inv_freq, dx);
}
void softmax_forward(const backend::cuda& be, dbatch<const float> x, float scale, bool causal, dbatch<float> y) {
  K::softmax_forward<float>(be, x, scale, causal, y);
}
void softmax_backward(const backend::cuda& be, dbatch<const float> y, dbatch<const float> dy, float scale,
                      dbatch<float> dx) {
  K::softmax_backward<float>(be, y, dy, scale, dx);
}
void gelu_forward(const backend::cuda& be, dmatrix<const float> x, backend::gelu_approximation approx,
                  dmatrix<float> y) {
  K::gelu_forward<float>(be, x, approx, y);
}
void gelu_backward(const backend::cuda& be, dmatrix<const float> x, dmatrix<const float> dy,
                   backend::gelu_approximation approx, dmatrix<float> dx) {
  K::gelu_backward<float>(be, x, dy, approx, dx);
}
void dropout_forward(const backend::cuda& be, dmatrix<const float> x, float p, std::uint64_t seed,
                     std::uint64_t offset, dmatrix<float> y) {
  K::dropout_forward<float>(be, x, p, seed, offset, y);
}
void dropout_backward(const backend::cuda& be, dmatrix<const float> dy, float p, std::uint64_t seed,
                      std::uint64_t offset, dmatrix<float> dx) {
  K::dropout_backward<float>(be, dy, p, seed, offset, dx);
}
void gru_cell_forward(const backend::cuda& be, dmatrix<const float> gx, dmatrix<const float> gh,
                      dmatrix<const float> h, dmatrix<float> h_out) {
  K::gru_cell_forward<float>(be, gx, gh, h, h_out);
}
void gru_cell_backward(const backend::cuda& be, dmatrix<const float> gx, dmatrix<const float> gh,
                       dmatrix<const float> h, dmatrix<const float> dh_out, dmatrix<float> dgx, dmatrix<float> dgh,
                       dmatrix<float> dh) {
  K::gru_cell_backward<float>(be, gx, gh, h, dh_out, dgx, dgh, dh);
}
void embedding_forward(const backend::cuda& be, dmatrix<const float> table, dvector<const std::int32_t> ids,
                       dmatrix<float> out) {
  K::embedding_forward<float>(be, table, ids, out);
}
void embedding_backward(const backend::cuda& be, dvector<const std::int32_t> ids, dmatrix<const float> dout,
                        dmatrix<float> dtable) {
  K::embedding_backward<float>(be, ids, dout, dtable);
}
index_t cross_entropy_forward(const backend::cuda& be, dmatrix<const float> logits, dvector<const std::int32_t> targets,
                              std::int32_t ignore_index, dvector<float> loss, dvector<float> lse) {
  return K::cross_entropy_forward<float>(be, logits, targets, ignore_index, loss, lse);
}
void cross_entropy_backward(const backend::cuda& be, dmatrix<const float> logits, dvector<const std::int32_t> targets,
                            dvector<const float> lse, std::int32_t ignore_index, dvector<const float> dloss,
                            dmatrix<float> dlogits) {
  K::cross_entropy_backward<float>(be, logits, targets, lse, ignore_index, dloss, dlogits);
}
void adam_step(const backend::cuda& be, dvector<float> param, dvector<const float> grad, dvector<float> m,
               dvector<float> v, const backend::adam_config& cfg, std::int64_t step) {
  K::adam_step<float>(be, param, grad, m, v, cfg, step);
}
void adamw_step(const backend::cuda& be, dvector<float> param, dvector<const float> grad, dvector<float> m,
                dvector<float> v, const backend::adam_config& cfg, std::int64_t step) {
  K::adamw_step<float>(be, param, grad, m, v, cfg, step);
}
void topk_forward(const backend::cuda& be, dmatrix<const float> x, index_t k, dmatrix<float> values,
                  dmatrix<std::int32_t> indices) {
  K::topk_forward<float>(be, x, k, values, indices);
}
void topk_backward(const backend::cuda& be, dmatrix<const std::int32_t> indices, dmatrix<const float> dvalues,
                   dmatrix<float> dx) {
  K::topk_backward<float>(be, indices, dvalues, dx);
}

namespace {
constexpr int failure_line = __LINE__ + 3;
std::string failing_cublas_call() {
  try {
    SLIM_CUBLAS_CHECK(cublasSetStream(nullptr, nullptr));
  } catch (const error& e) {
    return e.what();
  }
  return "";
}
}  // namespace
std::string cublas_failure_message() { return failing_cublas_call(); }
int cublas_failure_line() { return failure_line; }

}  // namespace slim::testing::gpu
