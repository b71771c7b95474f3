// The CUDA backend's host-side contract, which needs no GPU: device queries that report "none" instead of
// failing, errors that name the CUDA call and its position, and argument checks that throw slim::error
// before anything reaches the driver (so they run here against views of host memory labelled device_space:
// a check that let one through would fail on the missing driver or crash, not pass).
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <string>

#include "cuda/device_shim.hpp"

namespace gpu = slim::testing::gpu;
using slim::bf16;
using slim::device_space;
using slim::index_t;

namespace {

/// Storage that stands in for device memory in checks that must throw before touching it.
float fake_storage[4096];
bf16 fake_bf16[4096];

template <class T = float>
gpu::dmatrix<T> fake(index_t r, index_t c, index_t s0, index_t s1) {
  if constexpr (std::is_same_v<T, bf16>)
    return {fake_bf16, {r, c}, {s0, s1}};
  else
    return {fake_storage, {r, c}, {s0, s1}};
}
gpu::dmatrix<float> dense(index_t r, index_t c) { return fake(r, c, c, 1); }
gpu::dbatch<float> dense3(index_t b, index_t r, index_t c) { return {fake_storage, {b, r, c}}; }

/// A tag that has no stream and no cuBLAS handle: anything that reached CUDA with it would fail differently.
constexpr slim::backend::cuda no_context{};

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const slim::error& e) {
    return e.what();
  }
  return "(no slim::error thrown)";
}

}  // namespace

TEST_CASE("cuda_device_count returns 0 with a reason instead of failing when there is no device", "[cuda]") {
  std::string why;
  const int n = gpu::device_count(&why);
  CHECK(n >= 0);
  if (n == 0) CHECK_FALSE(why.empty());
  INFO("devices: " << n << (n == 0 ? " (" + why + ")" : ", first: " + gpu::device_summary(0)));
  SUCCEED();
}

TEST_CASE("cuda_context: throws slim::error naming the CUDA call and its position when it cannot start", "[cuda]") {
  std::string why;
  if (gpu::device_count(&why) > 0) {
    const gpu::context ctx;
    CHECK(ctx.backend().stream != nullptr);
    CHECK(ctx.backend().blas != nullptr);
    ctx.synchronize();
    return;
  }
  const std::string msg = error_of([] { gpu::context ctx; });
  INFO(msg);
  CHECK(contains(msg, "cuda"));                        // the call as written, e.g. cudaSetDevice(ordinal)
  CHECK(contains(msg, "runtime.cuh:"));                // file:line
  CHECK(contains(msg, "cudaError"));                   // the CUDA error name ...
  CHECK(contains(msg, why.substr(0, why.find(':'))));  // ... the same one cudaGetDeviceCount reported
}

TEST_CASE("SLIM_CUBLAS_CHECK: the error names the call, file:line and the cuBLAS status", "[cuda]") {
  const std::string msg = gpu::cublas_failure_message();
  INFO(msg);
  CHECK(contains(msg, "cublasSetStream(nullptr, nullptr)"));
  CHECK(contains(msg, "device_shim.cu:" + std::to_string(gpu::cublas_failure_line())));
  CHECK(contains(msg, "CUBLAS_STATUS_NOT_INITIALIZED"));
}

TEST_CASE("cuda gemm: shape mismatches throw before any CUDA call", "[cuda]") {
  // a (3,4) · b (5,2): the inner dimensions differ.
  CHECK(contains(error_of([] { gpu::gemm(no_context, 1, dense(3, 4), dense(5, 2), 0, dense(3, 2)); }),
                 "gemm: b: shape (5,2) does not chain with a (3,4)"));
  // c must be (3,2).
  CHECK(contains(error_of([] { gpu::gemm(no_context, 1, dense(3, 4), dense(4, 2), 0, dense(2, 3)); }),
                 "c: shape (2,3) where (3,2) is required"));
  // null data for a non-empty view.
  CHECK(contains(error_of([] {
                   gpu::gemm(no_context, 1, gpu::dmatrix<const float>(nullptr, {3, 4}), dense(4, 2), 0, dense(3, 2));
                 }),
                 "null data"));
  // gemm_backward: dA of the wrong shape is refused (before dB's product could be queued).
  CHECK(contains(error_of([] {
                   gpu::gemm_backward(no_context, 1, dense(3, 4), dense(4, 2), dense(3, 2), dense(4, 3), dense(4, 2));
                 }),
                 "gemm_backward: da: shape (4,3) where (3,4) is required"));
}

TEST_CASE("cuda gemm: layouts cuBLAS cannot express throw slim::error naming the operand", "[cuda]") {
  // No unit stride in either dimension.
  const std::string a = error_of([] { gpu::gemm(no_context, 1, fake(3, 4, 8, 2), dense(4, 2), 0, dense(3, 2)); });
  CHECK(contains(a, "gemm: a: strides (8,2)"));
  const std::string b = error_of([] { gpu::gemm(no_context, 1, dense(3, 4), fake(4, 2, 1, 0), 0, dense(3, 2)); });
  CHECK(contains(b, "gemm: b: strides (1,0)"));
  // A leading dimension shorter than the row: rows overlap (C would write elements twice).
  CHECK(contains(error_of([] { gpu::gemm(no_context, 1, dense(3, 4), dense(4, 5), 0, fake(3, 5, 4, 1)); }),
                 "gemm: c: strides (4,1)"));
  // A broadcast output (stride 0).
  CHECK(contains(error_of([] { gpu::gemm(no_context, 1, dense(3, 4), dense(4, 5), 0, fake(3, 5, 0, 1)); }), "gemm: c"));
  // bf16 operands are checked the same way.
  CHECK(contains(
      error_of([] { gpu::gemm(no_context, 1, fake<bf16>(3, 4, 8, 2), fake<bf16>(4, 2, 2, 1), 0, dense(3, 2)); }),
      "gemm: a"));
  // A bf16 operand beside an f32 one is widened into a dense copy, but the f32 one and C are still checked.
  CHECK(contains(error_of([] { gpu::gemm(no_context, 1, fake<bf16>(3, 4, 4, 1), fake(4, 2, 3, 3), 0, dense(3, 2)); }),
                 "gemm: b"));
  // A tag without a cuBLAS handle.
  CHECK(contains(error_of([] { gpu::gemm(no_context, 1, dense(3, 4), dense(4, 2), 0, dense(3, 2)); }),
                 "no cuBLAS handle"));
}

TEST_CASE("cuda gemm_batched: overlapping or negative batch strides throw", "[cuda]") {
  const gpu::dbatch<float> a = dense3(3, 4, 5), b = dense3(3, 5, 6);
  // C's batches 8 elements apart but each (4,6) matrix spans 24.
  const gpu::dbatch<float> c_overlap(fake_storage, {3, 4, 6}, {8, 6, 1});
  CHECK(
      contains(error_of([&] { gpu::gemm_batched(no_context, 1, a, b, 0, c_overlap); }), "batches of C would overlap"));
  const gpu::dbatch<float> c_broadcast(fake_storage, {3, 4, 6}, {0, 6, 1});
  CHECK(contains(error_of([&] { gpu::gemm_batched(no_context, 1, a, b, 0, c_broadcast); }), "gemm_batched: c"));
  const gpu::dbatch<float> a_negative(fake_storage + 100, {3, 4, 5}, {-20, 5, 1});
  CHECK(contains(error_of([&] { gpu::gemm_batched(no_context, 1, a_negative, b, 0, dense3(3, 4, 6)); }),
                 "negative batch stride"));
  // A batch count that does not match.
  CHECK(contains(error_of([&] { gpu::gemm_batched(no_context, 1, a, dense3(2, 5, 6), 0, dense3(3, 4, 6)); }),
                 "gemm_batched: b"));
}

TEST_CASE("cuda gemm: empty extents are no-ops that touch no memory", "[cuda]") {
  const gpu::dmatrix<float> none_a(nullptr, {0, 4}), none_c(nullptr, {0, 2});
  CHECK_NOTHROW(gpu::gemm(no_context, 1, none_a, dense(4, 2), 0, none_c));
  CHECK_NOTHROW(gpu::gemm(no_context, 1, dense(3, 4), gpu::dmatrix<const float>(nullptr, {4, 0}), 0,
                          gpu::dmatrix<float>(nullptr, {3, 0})));
  CHECK_NOTHROW(gpu::gemm_batched(no_context, 1, gpu::dbatch<const float>(nullptr, {0, 3, 4}),
                                  gpu::dbatch<const float>(nullptr, {0, 4, 2}), 0,
                                  gpu::dbatch<float>(nullptr, {0, 3, 2})));
  // Empty dA and dB: nothing to do.
  CHECK_NOTHROW(gpu::gemm_backward(no_context, 1, dense(3, 4), dense(4, 2), dense(3, 2), {}, {}));
}

TEST_CASE("cuda activations: shape and stride misuse throws before any CUDA call", "[cuda]") {
  CHECK(contains(error_of([] { gpu::silu_forward(no_context, dense(3, 4), dense(3, 5)); }),
                 "silu_forward: y: shape (3,5) where (3,4) is required"));
  CHECK(contains(error_of([] { gpu::silu_forward(no_context, fake(3, 4, 8, 2), dense(3, 4)); }),
                 "silu_forward: x: innermost stride 2"));
  CHECK(contains(error_of([] { gpu::silu_backward(no_context, dense(3, 4), dense(3, 4), fake(3, 4, 2, 1)); }),
                 "silu_backward: dx: row stride 2 < row length 4"));
  CHECK(contains(error_of([] { gpu::swiglu_forward(no_context, dense(2, 4), dense(2, 3), dense(2, 4)); }),
                 "swiglu_forward: up"));
  CHECK(contains(error_of([] {
                   gpu::swiglu_backward(no_context, dense(2, 4), dense(2, 4), dense(2, 4), dense(2, 4), dense(4, 2));
                 }),
                 "swiglu_backward: dup"));
  CHECK_NOTHROW(
      gpu::silu_forward(no_context, gpu::dmatrix<const float>(nullptr, {0, 7}), gpu::dmatrix<float>(nullptr, {0, 7})));
}

TEST_CASE("cuda copy: layouts that are not equally spaced rows throw, empty copies do nothing", "[cuda]") {
  static float host[256];
  // A transposed view: neither rows nor single elements are equally spaced in row-major order.
  const slim::matrix_view<const float> transposed(host, {4, 3}, {1, 4});
  CHECK(contains(error_of([&] { gpu::copy(no_context, transposed, dense(4, 3)); }),
                 "copy (cuda): src: layout of shape (4,3)"));
  // A box of a 3-d tensor padded in two dimensions.
  const slim::tensor_view<float, 3, device_space> box(fake_storage, {2, 3, 4}, {40, 8, 1});
  CHECK(contains(error_of([&] {
                   gpu::copy(no_context, slim::tensor_view<const float, 3>(host, {2, 3, 4}), box);
                 }),
                 "copy (cuda): dst"));
  // A negative stride.
  const slim::vector_view<float, device_space> backwards(fake_storage + 10, {5}, {-1});
  CHECK(contains(error_of([&] { gpu::copy(no_context, slim::vector_view<const float>(host, {5}), backwards); }),
                 "copy (cuda): dst"));
  // Different extents.
  CHECK(contains(error_of([&] {
                   gpu::copy(no_context, slim::matrix_view<const float>(host, {4, 3}), dense(3, 4));
                 }),
                 "copy (cuda): dst: shape (3,4) where (4,3) is required"));
  CHECK_NOTHROW(
      gpu::copy(no_context, slim::matrix_view<const float>(nullptr, {0, 3}), gpu::dmatrix<float>(nullptr, {0, 3})));
}

namespace {
gpu::dvector<float> dvec(index_t n, index_t s = 1) { return {fake_storage, {n}, {s}}; }
std::int32_t fake_ids[64];
gpu::dvector<const std::int32_t> ids(index_t n) { return {fake_ids, {n}}; }
}  // namespace

TEST_CASE("cuda norm, rope, softmax, dropout, gru, optimizer, topk: misuse throws before any CUDA call", "[cuda]") {
  using slim::backend::gelu_approximation;
  // norms: the CPU backends' checks, with their messages
  CHECK(contains(error_of([] { gpu::rmsnorm_forward(no_context, dense(3, 4), dvec(5), 1e-5f, dense(3, 4), {}); }),
                 "rmsnorm_forward: w"));
  CHECK(contains(error_of([] { gpu::rmsnorm_forward(no_context, dense(3, 4), dvec(4), -1.0f, dense(3, 4), {}); }),
                 "eps"));
  CHECK(contains(error_of([] { gpu::rmsnorm_forward(no_context, dense(3, 4), dvec(4), 1e-5f, fake(3, 4, 2, 1), {}); }),
                 "overlap"));
  CHECK(contains(error_of([] {
                   gpu::layernorm_backward(no_context, dense(3, 4), dvec(4), dvec(3), dvec(2), dense(3, 4), dense(3, 4),
                                           {}, {});
                 }),
                 "layernorm_backward: rstd"));
  // rope: odd head dimension
  CHECK(contains(error_of([] {
                   const gpu::dbatch<float> x{fake_storage, {2, 2, 3}};
                   gpu::rope_forward(no_context, x, ids(2), dvec(1), x);
                 }),
                 "must be even"));
  // softmax: a non-finite scale
  CHECK(contains(error_of([] {
                   gpu::softmax_forward(no_context, dense3(1, 2, 3), std::numeric_limits<float>::infinity(), false,
                                        dense3(1, 2, 3));
                 }),
                 "scale"));
  // gelu: not an approximation value
  CHECK(contains(error_of([] {
                   gpu::gelu_forward(no_context, dense(2, 2), static_cast<gelu_approximation>(7), dense(2, 2));
                 }),
                 "gelu_approximation"));
  // dropout: p outside [0, 1)
  CHECK(contains(error_of([] { gpu::dropout_forward(no_context, dense(2, 3), 1.0f, 1, 0, dense(2, 3)); }), "[0, 1)"));
  // gru: gh not (N, 3H)
  CHECK(contains(error_of([] { gpu::gru_cell_forward(no_context, dense(2, 6), dense(2, 5), dense(2, 2), dense(2, 2)); }),
                 "gh"));
  // embedding / cross-entropy: shapes are checked before the ids are read on the device
  CHECK(contains(error_of([] { gpu::embedding_forward(no_context, dense(10, 4), ids(3), dense(3, 5)); }), "out"));
  CHECK(contains(error_of([] {
                   gpu::cross_entropy_forward(no_context, dense(3, 4), ids(2), -100, dvec(3), dvec(3));
                 }),
                 "targets"));
  // optimizer: step 0, betas out of range
  slim::backend::adam_config cfg;
  CHECK(contains(error_of([&] { gpu::adam_step(no_context, dvec(8), dvec(8), dvec(8), dvec(8), cfg, 0); }), "step"));
  cfg.beta1 = 1.0f;
  CHECK(contains(error_of([&] { gpu::adamw_step(no_context, dvec(8), dvec(8), dvec(8), dvec(8), cfg, 1); }),
                 "betas"));
  // topk: k outside [1, min(L, 1000)]
  CHECK(contains(error_of([] {
                   gpu::topk_forward(no_context, dense(2, 5), 6, dense(2, 6), {reinterpret_cast<std::int32_t*>(fake_ids), {2, 6}});
                 }),
                 "k = 6"));
}

TEST_CASE("cuda attention: shape misuse and head dimensions over 256 throw before any CUDA call", "[cuda]") {
  static float big[2 * 3 * 2 * 300];
  const gpu::dheads<float> q{fake_storage, {1, 2, 4, 8}}, k{fake_storage, {1, 3, 3, 8}};
  const gpu::dbatch<float> lse{fake_storage, {1, 4, 2}};
  CHECK(contains(error_of([&] { gpu::attention_forward(no_context, q, k, k, 1.0f, true, {}, q, lse); }),
                 "not a positive multiple"));
  const gpu::dheads<float> k2{fake_storage, {1, 3, 2, 8}}, v_bad{fake_storage, {1, 4, 2, 8}};
  CHECK(contains(error_of([&] { gpu::attention_forward(no_context, q, k2, v_bad, 1.0f, true, {}, q, lse); }),
                 "attention_forward: v"));
  const gpu::dheads<float> wide{big, {1, 2, 2, 300}};
  const gpu::dbatch<float> lse2{fake_storage, {1, 2, 2}};
  CHECK(contains(error_of([&] { gpu::attention_forward(no_context, wide, wide, wide, 1.0f, false, {}, wide, lse2); }),
                 "exceeds the CUDA kernels' 256"));
  CHECK(contains(error_of([&] {
                   gpu::attention_backward(no_context, q, k2, k2, q, q, lse, 1.0f, true, {}, {}, v_bad, {});
                 }),
                 "attention_backward: dk"));
}
