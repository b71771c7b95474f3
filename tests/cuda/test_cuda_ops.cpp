// The op-case table on kernels<backend::cuda> against kernels<backend::scalar> on the host (ggml
// test-backend-ops style): odd tails, size 1, transposed and strided views, batch broadcast, empty extents,
// one large case. Needs a GPU: without one the program exits with 77 (ctest: skipped) before any case runs.
//
// Every case keeps the whole storage of each output, padding included, and compares all of it: the padding
// must come back unchanged, so a kernel that writes outside its view fails. GEMM inputs are integers (exact
// in f32 and bf16, and every partial sum is exact), so results must be equal bit for bit; one case of
// uniform values checks against the rounding bound 2·K·u·(|A|·|B|).
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/device_shim.hpp"
#include "slim/backend/scalar.hpp"
#include "support/check.hpp"

namespace {

const bool slim_gpu_present = [] {
  std::string why;
  if (slim::testing::gpu::device_count(&why) == 0) {
    std::fprintf(stderr, "no CUDA device (%s): skipping the GPU op table (exit 77)\n", why.c_str());
    std::_Exit(slim::testing::skip_return_code);
  }
  return true;
}();

}  // namespace

namespace slim::testing {
namespace {

using oracle_kernels = kernels<backend::scalar>;
constexpr backend::scalar oracle{};

gpu::context& gpu_context() {
  // Never destroyed: at static destruction the CUDA runtime may already be unloading.
  static gpu::context& ctx = *new gpu::context;
  static const bool announced = [] {
    std::fprintf(stderr, "GPU: %s\n", gpu::device_summary(0).c_str());
    return true;
  }();
  (void)announced;
  return ctx;
}
backend::cuda be() { return gpu_context().backend(); }

/// A host storage tensor mirrored on the device; `on_device(v)` maps a view into the host storage to the
/// view with the same offset and strides into the device copy.
template <class T, std::size_t R>
class mirrored {
 public:
  explicit mirrored(const tensor<T, R>& host)
      : n_{host.size()}, buffer_{static_cast<std::size_t>(host.size()) * sizeof(T)}, host_base_{host.data()} {
    gpu::copy(be(), vector_view<const T>(host.data(), {n_}), vector_view<T, device_space>(device_base(), {n_}));
  }
  template <std::size_t RV>
  tensor_view<T, RV, device_space> on_device(const tensor_view<T, RV>& v) const {
    return {device_base() + (v.data_handle() - host_base_), v.extents(), v.strides()};
  }
  /// Copies the whole device storage back into `host` (same size).
  void read_back(tensor<T, R>& host) const {
    gpu::copy(be(), vector_view<const T, device_space>(device_base(), {n_}), vector_view<T>(host.data(), {n_}));
  }

 private:
  T* device_base() const { return static_cast<T*>(buffer_.get()); }
  index_t n_;
  gpu::device_buffer buffer_;
  const T* host_base_;
};

template <class T, std::size_t R>
void check_storage_equal(const tensor<T, R>& got, const tensor<T, R>& want, double atol, double rtol) {
  const vector_view<const T> g(got.data(), {got.size()}), w(want.data(), {want.size()});
  SLIM_CHECK_CLOSE(g, w, atol, rtol);
}

// ---- operands -------------------------------------------------------------------------------------------

/// A (rows, cols) matrix view into its own storage: row-major with `pad` extra elements per stored row, or
/// (transposed) the transpose of a (cols, rows + pad) row-major storage.
template <class T>
struct host_matrix {
  tensor<T, 2> storage;
  matrix_view<T> view;
  host_matrix(index_t rows, index_t cols, bool transposed, index_t pad)
      : storage(transposed ? std::array<index_t, 2>{cols, rows + pad} : std::array<index_t, 2>{rows, cols + pad}) {
    view = transposed ? transpose(matrix_view<T>(storage.data(), {cols, rows}, {rows + pad, 1}))
                      : matrix_view<T>(storage.data(), {rows, cols}, {cols + pad, 1});
  }
};

/// A (bt, rows, cols) batch view as above; `broadcast` stores one matrix and gives the view batch stride 0.
template <class T>
struct host_batch {
  tensor<T, 3> storage;
  tensor_view<T, 3> view;
  host_batch(index_t bt, index_t rows, index_t cols, bool transposed, bool broadcast, index_t pad)
      : storage(transposed ? std::array<index_t, 3>{broadcast ? 1 : bt, cols, rows + pad}
                           : std::array<index_t, 3>{broadcast ? 1 : bt, rows, cols + pad}) {
    const index_t plane = storage.extent(1) * storage.extent(2);
    const index_t sb = broadcast ? 0 : plane;
    view = transposed ? tensor_view<T, 3>(storage.data(), {bt, rows, cols}, {sb, 1, rows + pad})
                      : tensor_view<T, 3>(storage.data(), {bt, rows, cols}, {sb, cols + pad, 1});
  }
};

// ---- gemm -----------------------------------------------------------------------------------------------

struct gemm_case {
  const char* name;
  index_t m, k, n;
  bool trans_a = false, trans_b = false;  // the operand is a transposed view
  bool col_major_c = false;               // C is a transposed view (cuBLAS's native layout)
  index_t pad = 0;                        // extra elements per stored row of A, B and C
  float alpha = 1, beta = 0;
  bool nan_c = false;  // C starts as NaN (β = 0 must ignore it)
};

const std::vector<gemm_case>& gemm_cases() {
  static const std::vector<gemm_case> cases = {
      {"1x1x1", 1, 1, 1},
      {"odd tails", 7, 13, 5},
      {"size-1 inner dimension (outer product)", 5, 1, 3},
      {"row vector times matrix", 1, 37, 19},
      {"matrix times column vector", 23, 17, 1},
      {"transposed A", 19, 33, 17, true, false},
      {"transposed B", 19, 33, 17, false, true},
      {"both transposed", 19, 33, 17, true, true},
      {"column-major C", 19, 33, 17, false, false, true},
      {"all transposed, column-major C", 19, 33, 17, true, true, true},
      {"strided leading dimension", 21, 35, 27, false, false, false, 5},
      {"strided and transposed", 21, 35, 27, true, true, true, 3},
      {"alpha and beta", 8, 16, 8, false, false, false, 0, 0.5f, -1.0f},
      {"beta 0 ignores NaN in C", 6, 7, 8, false, true, false, 1, 1.0f, 0.0f, true},
      {"alpha 0 scales C by beta", 6, 7, 8, false, false, false, 2, 0.0f, 2.0f},
      {"K = 0 scales C by beta", 6, 0, 8, false, false, true, 1, 1.0f, 3.0f},
      {"K = 0, beta 0 ignores NaN", 6, 0, 8, false, false, false, 0, 1.0f, 0.0f, true},
      {"empty M", 0, 5, 4},
      {"empty N", 4, 5, 0},
      {"large", 320, 1024, 288, false, true, false, 0, 1.0f, 1.0f},
  };
  return cases;
}

template <class TA, class TB>
void run_gemm_case(const gemm_case& g, std::uint64_t seed) {
  host_matrix<TA> a(g.m, g.k, g.trans_a, g.pad);
  host_matrix<TB> b(g.k, g.n, g.trans_b, g.pad);
  host_matrix<float> c(g.m, g.n, g.col_major_c, g.pad);
  fill_integers(a.storage, seed);
  fill_integers(b.storage, seed + 1);
  fill_integers(c.storage, seed + 2);
  if (g.nan_c)
    for (index_t i = 0; i < g.m; ++i)
      for (index_t j = 0; j < g.n; ++j) c.view(i, j) = std::numeric_limits<float>::quiet_NaN();

  tensor<float, 2> want = c.storage;
  const matrix_view<float> want_view(want.data() + (c.view.data_handle() - c.storage.data()), c.view.extents(),
                                     c.view.strides());
  oracle_kernels::gemm(oracle, g.alpha, a.view, b.view, g.beta, want_view);

  const mirrored<TA, 2> da(a.storage);
  const mirrored<TB, 2> db(b.storage);
  const mirrored<float, 2> dc(c.storage);
  gpu::gemm(be(), g.alpha, da.on_device(a.view), db.on_device(b.view), g.beta, dc.on_device(c.view));
  tensor<float, 2> got(c.storage.extents());
  dc.read_back(got);
  check_storage_equal(got, want, 0, 0);
}

TEST_CASE("cuda gemm f32: the case table matches scalar exactly on integer inputs", "[gpu][gemm]") {
  for (const gemm_case& g : gemm_cases()) {
    SECTION(g.name) { run_gemm_case<float, float>(g, 100); }
  }
}

TEST_CASE("cuda gemm bf16 operands (f32 accumulation): the case table matches scalar exactly", "[gpu][gemm]") {
  for (const gemm_case& g : gemm_cases()) {
    SECTION(g.name) { run_gemm_case<bf16, bf16>(g, 200); }
  }
}

TEST_CASE("cuda gemm with one bf16 and one f32 operand matches scalar exactly", "[gpu][gemm]") {
  for (const gemm_case& g : gemm_cases()) {
    SECTION(std::string("bf16 x f32: ") + g.name) { run_gemm_case<bf16, float>(g, 300); }
    SECTION(std::string("f32 x bf16: ") + g.name) { run_gemm_case<float, bf16>(g, 400); }
  }
}

template <class T>
void run_gemm_rounding_case(index_t m, index_t k, index_t n, std::uint64_t seed) {
  tensor<T, 2> a({m, k}), b({k, n});
  tensor<float, 2> c({m, n});
  {
    tensor<float, 2> af({m, k}), bf({k, n});
    fill_uniform(af, seed);
    fill_uniform(bf, seed + 1);
    a = convert<T>(af);
    b = convert<T>(bf);
  }
  fill_uniform(c, seed + 2);
  tensor<float, 2> want = c;
  oracle_kernels::gemm(oracle, 1.0f, a.view(), b.view(), 1.0f, want.view());
  // Bound: each of the two results is within K·u·(|A|·|B| + |C|) of the exact value (u = 2^-24).
  tensor<double, 2> abs_a({m, k}), abs_b({k, n}), bound({m, n});
  for (index_t i = 0; i < a.size(); ++i) abs_a.data()[i] = std::abs(to_float_any(a.data()[i]));
  for (index_t i = 0; i < b.size(); ++i) abs_b.data()[i] = std::abs(to_float_any(b.data()[i]));
  oracle_kernels::gemm(oracle, 1.0, abs_a.view(), abs_b.view(), 0.0, bound.view());

  const mirrored<T, 2> da(a), db(b);
  const mirrored<float, 2> dc(c);
  gpu::gemm(be(), 1.0f, da.on_device(a.view()), db.on_device(b.view()), 1.0f, dc.on_device(c.view()));
  tensor<float, 2> got({m, n});
  dc.read_back(got);
  const double u = std::ldexp(1.0, -24);
  index_t bad = 0;
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      const double tol = 2.0 * static_cast<double>(k + 1) * u * (bound(i, j) + std::abs(c(i, j)));
      const double diff = std::abs(static_cast<double>(got(i, j)) - want(i, j));
      if (!(diff <= tol)) {
        if (bad < 5) UNSCOPED_INFO("at [" << i << "," << j << "] got " << got(i, j) << " want " << want(i, j));
        ++bad;
      }
    }
  CHECK(bad == 0);
}

TEST_CASE("cuda gemm on uniform values stays within the f32 rounding bound of scalar", "[gpu][gemm]") {
  SECTION("f32") { run_gemm_rounding_case<float>(133, 517, 71, 500); }
  SECTION("bf16") { run_gemm_rounding_case<bf16>(133, 517, 71, 600); }
}

// ---- gemm_batched ---------------------------------------------------------------------------------------

struct batched_case {
  const char* name;
  index_t bt, m, k, n;
  bool broadcast_a = false, broadcast_b = false;
  bool trans_a = false, trans_b = false;
  index_t pad = 0;
  float alpha = 1, beta = 0;
};

const std::vector<batched_case>& batched_cases() {
  static const std::vector<batched_case> cases = {
      {"batch of 1", 1, 7, 9, 5},
      {"odd batch, odd tails", 5, 7, 9, 5},
      {"A broadcast over the batch", 4, 6, 8, 10, true, false},
      {"B broadcast over the batch", 4, 6, 8, 10, false, true},
      {"both broadcast", 3, 6, 8, 10, true, true},
      {"transposed operands with padding", 3, 9, 11, 7, false, false, true, true, 2, 2.0f, 1.0f},
      {"broadcast transposed B, strided", 4, 5, 12, 3, false, true, false, true, 3, 1.0f, -1.0f},
      {"size-1 matrices", 6, 1, 1, 1},
      {"empty batch", 0, 3, 4, 5},
      {"K = 0", 3, 4, 0, 5, false, false, false, false, 0, 1.0f, 2.0f},
      {"many small matrices", 64, 33, 64, 17},
  };
  return cases;
}

template <class TA, class TB>
void run_batched_case(const batched_case& g, std::uint64_t seed) {
  host_batch<TA> a(g.bt, g.m, g.k, g.trans_a, g.broadcast_a, g.pad);
  host_batch<TB> b(g.bt, g.k, g.n, g.trans_b, g.broadcast_b, g.pad);
  host_batch<float> c(g.bt, g.m, g.n, false, false, g.pad);
  fill_integers(a.storage, seed);
  fill_integers(b.storage, seed + 1);
  fill_integers(c.storage, seed + 2);
  tensor<float, 3> want = c.storage;
  const tensor_view<float, 3> want_view(want.data(), c.view.extents(), c.view.strides());
  for (index_t i = 0; i < g.bt; ++i)  // the definition: one gemm per batch index
    oracle_kernels::gemm(oracle, g.alpha, a.view[i], b.view[i], g.beta, want_view[i]);

  const mirrored<TA, 3> da(a.storage);
  const mirrored<TB, 3> db(b.storage);
  const mirrored<float, 3> dc(c.storage);
  gpu::gemm_batched(be(), g.alpha, da.on_device(a.view), db.on_device(b.view), g.beta, dc.on_device(c.view));
  tensor<float, 3> got(c.storage.extents());
  dc.read_back(got);
  check_storage_equal(got, want, 0, 0);
}

TEST_CASE("cuda gemm_batched: strided batches, broadcast (batch stride 0), f32 and bf16", "[gpu][gemm]") {
  for (const batched_case& g : batched_cases()) {
    SECTION(std::string("f32: ") + g.name) { run_batched_case<float, float>(g, 700); }
    SECTION(std::string("bf16: ") + g.name) { run_batched_case<bf16, bf16>(g, 800); }
    SECTION(std::string("f32 x bf16: ") + g.name) { run_batched_case<float, bf16>(g, 900); }
  }
}

// ---- gemm backward --------------------------------------------------------------------------------------

template <class T>
void run_gemm_backward_case(const gemm_case& g, bool want_da, bool want_db, std::uint64_t seed) {
  host_matrix<T> a(g.m, g.k, g.trans_a, g.pad), b(g.k, g.n, g.trans_b, g.pad);
  host_matrix<float> dc(g.m, g.n, g.col_major_c, g.pad);
  host_matrix<float> da(g.m, g.k, false, g.pad), db(g.k, g.n, true, g.pad);
  fill_integers(a.storage, seed);
  fill_integers(b.storage, seed + 1);
  fill_integers(dc.storage, seed + 2);
  fill_integers(da.storage, seed + 3);  // backward accumulates into what is there
  fill_integers(db.storage, seed + 4);
  tensor<float, 2> want_a = da.storage, want_b = db.storage;
  const matrix_view<float> wa(want_a.data(), da.view.extents(), da.view.strides());
  const matrix_view<float> wb(want_b.data(), db.view.extents(), db.view.strides());
  if constexpr (std::is_same_v<T, float>) {
    oracle_kernels::gemm_backward(oracle, g.alpha, a.view, b.view, dc.view, want_da ? wa : matrix_view<float>{},
                                  want_db ? wb : matrix_view<float>{});
  } else {  // the contract, spelt out with the mixed-type gemm: dA += α·dC·Bᵀ, dB += α·Aᵀ·dC
    if (want_da) oracle_kernels::gemm(oracle, g.alpha, dc.view, transpose(b.view), 1.0f, wa);
    if (want_db) oracle_kernels::gemm(oracle, g.alpha, transpose(a.view), dc.view, 1.0f, wb);
  }

  const mirrored<T, 2> d_a(a.storage), d_b(b.storage);
  const mirrored<float, 2> d_dc(dc.storage), d_da(da.storage), d_db(db.storage);
  gpu::gemm_backward(be(), g.alpha, d_a.on_device(a.view), d_b.on_device(b.view), d_dc.on_device(dc.view),
                     want_da ? d_da.on_device(da.view) : gpu::dmatrix<float>{},
                     want_db ? d_db.on_device(db.view) : gpu::dmatrix<float>{});
  tensor<float, 2> got_a(da.storage.extents()), got_b(db.storage.extents());
  d_da.read_back(got_a);
  d_db.read_back(got_b);
  check_storage_equal(got_a, want_a, 0, 0);
  check_storage_equal(got_b, want_b, 0, 0);
}

TEST_CASE("cuda gemm_backward accumulates dA and dB like scalar; an empty gradient is skipped", "[gpu][gemm]") {
  const std::vector<gemm_case> cases = {
      {"odd tails", 7, 13, 5},
      {"transposed operands, column-major dC", 9, 11, 6, true, true, true, 0, 2.0f},
      {"strided", 10, 7, 12, false, false, false, 3, -1.0f},
      {"size 1", 1, 1, 1},
      {"large", 192, 256, 160},
  };
  for (const gemm_case& g : cases) {
    SECTION(std::string("f32: ") + g.name) { run_gemm_backward_case<float>(g, true, true, 1000); }
    SECTION(std::string("bf16: ") + g.name) { run_gemm_backward_case<bf16>(g, true, true, 1100); }
    SECTION(std::string("dA only: ") + g.name) { run_gemm_backward_case<float>(g, true, false, 1200); }
    SECTION(std::string("dB only: ") + g.name) { run_gemm_backward_case<float>(g, false, true, 1300); }
  }
}

TEST_CASE("cuda gemm_batched_backward: a broadcast operand's gradient sums the batch", "[gpu][gemm]") {
  for (const batched_case& g : batched_cases()) {
    SECTION(g.name) {
      host_batch<float> a(g.bt, g.m, g.k, g.trans_a, g.broadcast_a, g.pad);
      host_batch<float> b(g.bt, g.k, g.n, g.trans_b, g.broadcast_b, g.pad);
      host_batch<float> dc(g.bt, g.m, g.n, false, false, g.pad);
      host_batch<float> da(g.bt, g.m, g.k, false, g.broadcast_a, g.pad);  // same broadcast as its operand
      host_batch<float> db(g.bt, g.k, g.n, true, g.broadcast_b, g.pad);
      fill_integers(a.storage, 1400);
      fill_integers(b.storage, 1401);
      fill_integers(dc.storage, 1402);
      fill_integers(da.storage, 1403);
      fill_integers(db.storage, 1404);
      tensor<float, 3> want_a = da.storage, want_b = db.storage;
      oracle_kernels::gemm_batched_backward(oracle, g.alpha, a.view, b.view, dc.view,
                                            tensor_view<float, 3>(want_a.data(), da.view.extents(), da.view.strides()),
                                            tensor_view<float, 3>(want_b.data(), db.view.extents(), db.view.strides()));
      const mirrored<float, 3> d_a(a.storage), d_b(b.storage), d_dc(dc.storage), d_da(da.storage), d_db(db.storage);
      gpu::gemm_batched_backward(be(), g.alpha, d_a.on_device(a.view), d_b.on_device(b.view), d_dc.on_device(dc.view),
                                 d_da.on_device(da.view), d_db.on_device(db.view));
      tensor<float, 3> got_a(da.storage.extents()), got_b(db.storage.extents());
      d_da.read_back(got_a);
      d_db.read_back(got_b);
      check_storage_equal(got_a, want_a, 0, 0);
      check_storage_equal(got_b, want_b, 0, 0);
    }
  }
}

// ---- activations ----------------------------------------------------------------------------------------

struct row_case {
  const char* name;
  index_t n, d, pad;
};
const std::vector<row_case>& row_cases() {
  static const std::vector<row_case> cases = {
      {"1x1", 1, 1, 0},
      {"one row, odd tail", 1, 37, 0},
      {"odd tail", 3, 19, 0},
      {"strided rows", 5, 33, 7},
      {"size-1 columns", 9, 1, 3},
      {"exact block width", 4, 256, 0},
      {"wide rows", 2, 4099, 0},
      {"more rows than one grid holds (strided)", 70000, 3, 1},
      {"more rows than one grid holds (contiguous)", 70000, 3, 0},
      {"large", 64, 4096, 0},
      {"empty", 0, 5, 0},
  };
  return cases;
}

/// (n, d) view with rows d + pad apart; storage filled with uniform values in [-8, 8), and, where there is
/// room, saturating values (σ = 0 or 1 exactly in f32) in the first row.
struct act_matrix : host_matrix<float> {
  act_matrix(const row_case& r, std::uint64_t seed) : host_matrix<float>(r.n, r.d, false, r.pad) {
    fill_uniform(storage, seed, -8, 8);
    if (r.n > 0 && r.d >= 2) {
      view(0, 0) = 90.0f;
      view(0, 1) = -90.0f;
    }
  }
  matrix_view<float> in(tensor<float, 2>& other) const { return {other.data(), view.extents(), view.strides()}; }
};

// Both sides compute in f32 with the same formulas; they differ by the last bits of exp (CUDA's expf is
// within 2 ulp) and by FMA contraction on the device. Inputs lie in [-8, 8), so terms reach ~70 and a few
// ulp of that, where σ-derivative terms cancel near x ≈ −1.28, stay below 1e-5.
constexpr double act_atol = 1e-5, act_rtol = 1e-5;

TEST_CASE("cuda silu forward and backward match scalar", "[gpu][activation]") {
  for (const row_case& r : row_cases()) {
    SECTION(r.name) {
      act_matrix x(r, 1), dy(r, 2), y(r, 3), dx(r, 4);
      tensor<float, 2> want_y = y.storage, want_dx = dx.storage;
      oracle_kernels::silu_forward(oracle, x.view, y.in(want_y));
      oracle_kernels::silu_backward(oracle, x.view, dy.view, dx.in(want_dx));

      const mirrored<float, 2> d_x(x.storage), d_dy(dy.storage), d_y(y.storage), d_dx(dx.storage);
      gpu::silu_forward(be(), d_x.on_device(x.view), d_y.on_device(y.view));
      gpu::silu_backward(be(), d_x.on_device(x.view), d_dy.on_device(dy.view), d_dx.on_device(dx.view));
      tensor<float, 2> got_y(y.storage.extents()), got_dx(dx.storage.extents());
      d_y.read_back(got_y);
      d_dx.read_back(got_dx);
      check_storage_equal(got_y, want_y, act_atol, act_rtol);
      check_storage_equal(got_dx, want_dx, act_atol, act_rtol);
    }
  }
}

TEST_CASE("cuda swiglu forward and backward match scalar", "[gpu][activation]") {
  for (const row_case& r : row_cases()) {
    SECTION(r.name) {
      act_matrix gate(r, 11), up(r, 12), dy(r, 13), y(r, 14), dgate(r, 15), dup(r, 16);
      tensor<float, 2> want_y = y.storage, want_dgate = dgate.storage, want_dup = dup.storage;
      oracle_kernels::swiglu_forward(oracle, gate.view, up.view, y.in(want_y));
      oracle_kernels::swiglu_backward(oracle, gate.view, up.view, dy.view, dgate.in(want_dgate), dup.in(want_dup));

      const mirrored<float, 2> d_gate(gate.storage), d_up(up.storage), d_dy(dy.storage), d_y(y.storage),
          d_dgate(dgate.storage), d_dup(dup.storage);
      gpu::swiglu_forward(be(), d_gate.on_device(gate.view), d_up.on_device(up.view), d_y.on_device(y.view));
      gpu::swiglu_backward(be(), d_gate.on_device(gate.view), d_up.on_device(up.view), d_dy.on_device(dy.view),
                           d_dgate.on_device(dgate.view), d_dup.on_device(dup.view));
      tensor<float, 2> got_y(y.storage.extents()), got_dgate(dgate.storage.extents()), got_dup(dup.storage.extents());
      d_y.read_back(got_y);
      d_dgate.read_back(got_dgate);
      d_dup.read_back(got_dup);
      check_storage_equal(got_y, want_y, act_atol, act_rtol);
      check_storage_equal(got_dgate, want_dgate, act_atol, act_rtol);
      check_storage_equal(got_dup, want_dup, act_atol, act_rtol);
    }
  }
}

TEST_CASE("cuda activations may write in place (y aliasing x)", "[gpu][activation]") {
  const row_case r{"strided", 7, 45, 3};
  act_matrix x(r, 21);
  tensor<float, 2> want = x.storage;
  oracle_kernels::silu_forward(oracle, x.view, x.in(want));
  const mirrored<float, 2> d_x(x.storage);
  gpu::silu_forward(be(), d_x.on_device(x.view), d_x.on_device(x.view));
  tensor<float, 2> got(x.storage.extents());
  d_x.read_back(got);
  check_storage_equal(got, want, act_atol, act_rtol);
}

// ---- memory: copies, zeroing, device tensors ------------------------------------------------------------

/// A device allocation viewed as a (possibly padded) tensor, plus raw access to all of its storage.
template <class T, std::size_t R>
struct device_storage {
  index_t n;
  gpu::device_buffer buffer;
  explicit device_storage(index_t count) : n{count}, buffer{static_cast<std::size_t>(count) * sizeof(T)} {}
  T* data() const { return static_cast<T*>(buffer.get()); }
  tensor_view<T, R, device_space> view(std::array<index_t, R> shape, std::array<index_t, R> strides) const {
    return {data(), shape, strides};
  }
  void write_raw(const tensor<T, 2>& host) const {
    gpu::copy(be(), vector_view<const T>(host.data(), {n}), vector_view<T, device_space>(data(), {n}));
  }
  tensor<T, 2> read_raw(std::array<index_t, 2> shape) const {
    tensor<T, 2> host(shape);
    gpu::copy(be(), vector_view<const T, device_space>(data(), {n}), vector_view<T>(host.data(), {n}));
    return host;
  }
};

TEST_CASE("cuda copy: padded host rows to a dense device view and back into other padding", "[gpu][memory]") {
  host_matrix<float> src(37, 29, false, 6), dst(37, 29, false, 2);
  fill_uniform(src.storage, 31);
  fill_uniform(dst.storage, 32);
  tensor<float, 2> want = dst.storage;
  for (index_t i = 0; i < 37; ++i)
    for (index_t j = 0; j < 29; ++j) want(i, j) = src.view(i, j);
  const device_storage<float, 2> dense(37 * 29);
  gpu::copy(be(), matrix_view<const float>(src.view), dense.view({37, 29}, {29, 1}));
  gpu::copy(be(), matrix_view<const float, device_space>(dense.view({37, 29}, {29, 1})), dst.view);
  check_storage_equal(dst.storage, want, 0, 0);
}

TEST_CASE("cuda copy: into a padded device view leaves the device padding alone", "[gpu][memory]") {
  tensor<float, 2> src({23, 17}), pattern({23, 21});
  fill_uniform(src, 41);
  fill_uniform(pattern, 42);
  const device_storage<float, 2> padded(23 * 21);
  padded.write_raw(pattern);
  gpu::copy(be(), matrix_view<const float>(src.view()), padded.view({23, 17}, {21, 1}));
  tensor<float, 2> want = pattern;
  for (index_t i = 0; i < 23; ++i)
    for (index_t j = 0; j < 17; ++j) want(i, j) = src(i, j);
  check_storage_equal(padded.read_raw({23, 21}), want, 0, 0);
}

TEST_CASE("cuda copy: strided vectors, folded rank-3 rows, device to device", "[gpu][memory]") {
  SECTION("rank 1, stride 3 on the host, stride 2 on the device") {
    tensor<float, 2> host({1, 3 * 50}), back({1, 3 * 50}), pattern({1, 100});
    fill_uniform(host, 51);
    fill_uniform(pattern, 52);
    const device_storage<float, 1> dev(100);
    dev.write_raw(pattern);
    gpu::copy(be(), vector_view<const float>(host.data(), {50}, {3}), dev.view({50}, {2}));
    tensor<float, 2> want = pattern;
    for (index_t i = 0; i < 50; ++i) want.data()[2 * i] = host.data()[3 * i];
    check_storage_equal(dev.read_raw({1, 100}), want, 0, 0);
    gpu::copy(be(), vector_view<const float, device_space>(dev.view({50}, {2})),
              vector_view<float>(back.data(), {50}, {3}));
    for (index_t i = 0; i < 50; ++i) CHECK(back.data()[3 * i] == host.data()[3 * i]);
  }
  SECTION("rank 3 with padded rows: (4,5,6) in rows of 9") {
    tensor<float, 2> host({20, 9});
    fill_uniform(host, 53);
    const tensor_view<const float, 3> src(host.data(), {4, 5, 6}, {45, 9, 1});
    const device_storage<float, 3> dev(4 * 5 * 6);
    gpu::copy(be(), src, dev.view({4, 5, 6}, {30, 6, 1}));
    const tensor<float, 2> got = dev.read_raw({20, 6});
    tensor<float, 2> want({20, 6});
    for (index_t r = 0; r < 20; ++r)
      for (index_t j = 0; j < 6; ++j) want(r, j) = host(r, j);
    check_storage_equal(got, want, 0, 0);
  }
  SECTION("device to device, dense into padded") {
    tensor<float, 2> src({11, 13}), pattern({11, 16});
    fill_uniform(src, 54);
    fill_uniform(pattern, 55);
    const device_storage<float, 2> a(11 * 13), b(11 * 16);
    a.write_raw(src);
    b.write_raw(pattern);
    gpu::copy(be(), matrix_view<const float, device_space>(a.view({11, 13}, {13, 1})), b.view({11, 13}, {16, 1}));
    tensor<float, 2> want = pattern;
    for (index_t i = 0; i < 11; ++i)
      for (index_t j = 0; j < 13; ++j) want(i, j) = src(i, j);
    check_storage_equal(b.read_raw({11, 16}), want, 0, 0);
  }
}

TEST_CASE("cuda copy: bf16 round trip keeps every bit pattern", "[gpu][memory]") {
  tensor<bf16, 2> host({256, 256}), back({256, 256});
  for (index_t i = 0; i < host.size(); ++i) host.data()[i] = bf16::from_bits(static_cast<std::uint16_t>(i));
  const device_storage<bf16, 2> dev(host.size());
  gpu::copy(be(), matrix_view<const bf16>(host.view()), dev.view({256, 256}, {256, 1}));
  gpu::copy(be(), matrix_view<const bf16, device_space>(dev.view({256, 256}, {256, 1})), back.view());
  index_t differ = 0;
  for (index_t i = 0; i < host.size(); ++i) differ += host.data()[i].bits() != back.data()[i].bits();
  CHECK(differ == 0);
}

TEST_CASE("cuda fill_zero zeros the view and nothing else", "[gpu][memory]") {
  tensor<float, 2> pattern({9, 13});
  fill_uniform(pattern, 61, 1, 2);  // no zeros in the pattern
  SECTION("padded rows") {
    const device_storage<float, 2> dev(9 * 13);
    dev.write_raw(pattern);
    gpu::fill_zero(be(), dev.view({9, 10}, {13, 1}));
    tensor<float, 2> want = pattern;
    for (index_t i = 0; i < 9; ++i)
      for (index_t j = 0; j < 10; ++j) want(i, j) = 0;
    check_storage_equal(dev.read_raw({9, 13}), want, 0, 0);
  }
  SECTION("a vector with stride 2") {
    const device_storage<float, 1> dev(9 * 13);
    dev.write_raw(pattern);
    gpu::fill_zero(be(), dev.view({58}, {2}));
    tensor<float, 2> want = pattern;
    for (index_t i = 0; i < 58; ++i) want.data()[2 * i] = 0;
    check_storage_equal(dev.read_raw({9, 13}), want, 0, 0);
  }
}

TEST_CASE("cuda tensor<float, 2, device_space> starts zeroed and moves its storage", "[gpu][memory]") {
  const std::vector<float> v = gpu::fresh_device_tensor(be(), 33, 17);
  REQUIRE(v.size() == 33u * 17u);
  index_t nonzero = 0;
  for (float x : v) nonzero += x != 0.0f;
  CHECK(nonzero == 0);
}


// ---- the hand-written op families: norm, rope, softmax, gelu, dropout, GRU, embedding, cross-entropy,
// Adam/AdamW, top-k. Each output's whole storage (padding included) is compared against scalar. ------------

/// A vector view of n elements `stride` apart in its own storage (padding between them).
template <class T>
struct host_vector {
  tensor<T, 1> storage;
  vector_view<T> view;
  host_vector(index_t n, index_t stride = 1)
      : storage(std::array<index_t, 1>{n == 0 ? 0 : (n - 1) * stride + 1}),
        view(storage.data(), {n}, {stride}) {}
};

/// (n, h, dh) view with `pad` extra elements after each head and each row.
struct host_heads {
  tensor<float, 1> storage;
  tensor_view<float, 3> view;
  host_heads(index_t n, index_t h, index_t dh, index_t pad)
      : storage(std::array<index_t, 1>{n * (h * (dh + pad) + pad)}),
        view(storage.data(), {n, h, dh}, {h * (dh + pad) + pad, dh + pad, 1}) {}
};

template <class T, std::size_t R, std::size_t RV>
tensor_view<T, RV> same_place(tensor<T, R>& copy, const tensor<T, R>& storage, const tensor_view<T, RV>& v) {
  return {copy.data() + (v.data_handle() - storage.data()), v.extents(), v.strides()};
}

template <class T, std::size_t R>
tensor<T, R> read(const mirrored<T, R>& m, const tensor<T, R>& like) {
  tensor<T, R> out(like.extents());
  m.read_back(out);
  return out;
}

// Row reductions: the oracle accumulates in double, the device in float over a tree. Worst case D·u relative to
// Σ|terms| (D ≤ 4,099: 2.4e-4), typically √D·u; the values here are O(1), so 1e-4 relative and 2e-5 absolute.
constexpr double red_atol = 2e-5, red_rtol = 1e-4;

struct norm_case {
  const char* name;
  index_t n, d, pad;
  bool stats_strided = false;  // rstd / mean / dw / db as stride-3 vectors
  bool weight_grads = true;    // dw / db present
};
const std::vector<norm_case>& norm_cases() {
  static const std::vector<norm_case> cases = {
      {"1x1", 1, 1, 0},
      {"odd tail", 3, 19, 0},
      {"strided rows and statistics", 5, 33, 7, true},
      {"exact block width", 4, 256, 0},
      {"wide rows", 2, 4099, 0},
      {"many rows", 4096, 24, 0},
      {"more rows than one grid holds (no weight gradients)", 70000, 3, 1, false, false},
      {"large", 64, 4096, 0},
      {"empty", 0, 5, 0},
  };
  return cases;
}

TEST_CASE("cuda rmsnorm forward and backward match scalar; absent outputs are skipped", "[gpu][norm]") {
  for (const norm_case& c : norm_cases()) {
    SECTION(c.name) {
      const index_t vs = c.stats_strided ? 3 : 1;
      host_matrix<float> x(c.n, c.d, false, c.pad), y(c.n, c.d, false, c.pad), dy(c.n, c.d, false, c.pad),
          dx(c.n, c.d, false, c.pad);
      host_vector<float> w(c.d), rstd(c.n, vs), dw(c.d, vs);
      fill_uniform(x.storage, 1, -2, 2);
      fill_uniform(w.storage, 2, 0.5, 1.5);
      fill_uniform(y.storage, 3);
      fill_uniform(dy.storage, 4);
      fill_uniform(dx.storage, 5);  // backward accumulates
      fill_uniform(rstd.storage, 6);
      fill_uniform(dw.storage, 7);
      tensor<float, 2> want_y = y.storage, want_dx = dx.storage;
      tensor<float, 1> want_rstd = rstd.storage, want_dw = dw.storage;
      const auto w_rstd = same_place(want_rstd, rstd.storage, rstd.view);
      oracle_kernels::rmsnorm_forward(oracle, x.view, w.view, 1e-5f, same_place(want_y, y.storage, y.view), w_rstd);
      oracle_kernels::rmsnorm_backward(oracle, x.view, w.view, vector_view<const float>(w_rstd), dy.view,
                                       same_place(want_dx, dx.storage, dx.view),
                                       c.weight_grads ? same_place(want_dw, dw.storage, dw.view) : vector_view<float>{});

      const mirrored<float, 2> d_x(x.storage), d_y(y.storage), d_dy(dy.storage), d_dx(dx.storage);
      const mirrored<float, 1> d_w(w.storage), d_rstd(rstd.storage), d_dw(dw.storage);
      gpu::rmsnorm_forward(be(), d_x.on_device(x.view), d_w.on_device(w.view), 1e-5f, d_y.on_device(y.view),
                           d_rstd.on_device(rstd.view));
      gpu::rmsnorm_backward(be(), d_x.on_device(x.view), d_w.on_device(w.view), d_rstd.on_device(rstd.view),
                            d_dy.on_device(dy.view), d_dx.on_device(dx.view),
                            c.weight_grads ? d_dw.on_device(dw.view) : gpu::dvector<float>{});
      check_storage_equal(read(d_y, y.storage), want_y, red_atol, red_rtol);
      check_storage_equal(read(d_rstd, rstd.storage), want_rstd, red_atol, red_rtol);
      check_storage_equal(read(d_dx, dx.storage), want_dx, red_atol, red_rtol);
      check_storage_equal(read(d_dw, dw.storage), want_dw, red_atol * 10, red_rtol);
    }
  }
}

TEST_CASE("cuda layernorm forward and backward match scalar; absent outputs are skipped", "[gpu][norm]") {
  for (const norm_case& c : norm_cases()) {
    SECTION(c.name) {
      const index_t vs = c.stats_strided ? 3 : 1;
      host_matrix<float> x(c.n, c.d, false, c.pad), y(c.n, c.d, false, c.pad), dy(c.n, c.d, false, c.pad),
          dx(c.n, c.d, false, c.pad);
      host_vector<float> w(c.d), b(c.d), mean(c.n, vs), rstd(c.n, vs), dw(c.d, vs), db(c.d, vs);
      fill_uniform(x.storage, 11, -2, 3);
      fill_uniform(w.storage, 12, 0.5, 1.5);
      fill_uniform(b.storage, 13);
      fill_uniform(y.storage, 14);
      fill_uniform(dy.storage, 15);
      fill_uniform(dx.storage, 16);
      fill_uniform(mean.storage, 17);
      fill_uniform(rstd.storage, 18);
      fill_uniform(dw.storage, 19);
      fill_uniform(db.storage, 20);
      tensor<float, 2> want_y = y.storage, want_dx = dx.storage;
      tensor<float, 1> want_mean = mean.storage, want_rstd = rstd.storage, want_dw = dw.storage, want_db = db.storage;
      const auto w_mean = same_place(want_mean, mean.storage, mean.view);
      const auto w_rstd = same_place(want_rstd, rstd.storage, rstd.view);
      oracle_kernels::layernorm_forward(oracle, x.view, w.view, b.view, 1e-5f, same_place(want_y, y.storage, y.view),
                                        w_mean, w_rstd);
      oracle_kernels::layernorm_backward(
          oracle, x.view, w.view, vector_view<const float>(w_mean), vector_view<const float>(w_rstd), dy.view,
          same_place(want_dx, dx.storage, dx.view),
          c.weight_grads ? same_place(want_dw, dw.storage, dw.view) : vector_view<float>{},
          c.weight_grads ? same_place(want_db, db.storage, db.view) : vector_view<float>{});

      const mirrored<float, 2> d_x(x.storage), d_y(y.storage), d_dy(dy.storage), d_dx(dx.storage);
      const mirrored<float, 1> d_w(w.storage), d_b(b.storage), d_mean(mean.storage), d_rstd(rstd.storage),
          d_dw(dw.storage), d_db(db.storage);
      gpu::layernorm_forward(be(), d_x.on_device(x.view), d_w.on_device(w.view), d_b.on_device(b.view), 1e-5f,
                             d_y.on_device(y.view), d_mean.on_device(mean.view), d_rstd.on_device(rstd.view));
      gpu::layernorm_backward(be(), d_x.on_device(x.view), d_w.on_device(w.view), d_mean.on_device(mean.view),
                              d_rstd.on_device(rstd.view), d_dy.on_device(dy.view), d_dx.on_device(dx.view),
                              c.weight_grads ? d_dw.on_device(dw.view) : gpu::dvector<float>{},
                              c.weight_grads ? d_db.on_device(db.view) : gpu::dvector<float>{});
      check_storage_equal(read(d_y, y.storage), want_y, red_atol, red_rtol);
      check_storage_equal(read(d_mean, mean.storage), want_mean, red_atol, red_rtol);
      check_storage_equal(read(d_rstd, rstd.storage), want_rstd, red_atol, red_rtol);
      check_storage_equal(read(d_dx, dx.storage), want_dx, red_atol, red_rtol);
      check_storage_equal(read(d_dw, dw.storage), want_dw, red_atol * 10, red_rtol);
      check_storage_equal(read(d_db, db.storage), want_db, red_atol * 10, red_rtol);
    }
  }
}

TEST_CASE("cuda norms: y may be x, and statistics may be left out", "[gpu][norm]") {
  host_matrix<float> x(9, 70, false, 2);
  host_vector<float> w(70);
  fill_uniform(x.storage, 21, -2, 2);
  fill_uniform(w.storage, 22);
  tensor<float, 2> want = x.storage;
  oracle_kernels::rmsnorm_forward(oracle, x.view, w.view, 1e-6f, same_place(want, x.storage, x.view),
                                  vector_view<float>{});
  const mirrored<float, 2> d_x(x.storage);
  const mirrored<float, 1> d_w(w.storage);
  gpu::rmsnorm_forward(be(), d_x.on_device(x.view), d_w.on_device(w.view), 1e-6f, d_x.on_device(x.view),
                       gpu::dvector<float>{});
  check_storage_equal(read(d_x, x.storage), want, red_atol, red_rtol);
}

// Rope: cos/sin of the same float θ (CUDA's are within 2 ulp over the full range), one product and one sum.
constexpr double rope_atol = 1e-5, rope_rtol = 1e-5;

TEST_CASE("cuda rope forward and backward match scalar, positions up to 65,535", "[gpu][rope]") {
  struct rope_case {
    const char* name;
    index_t n, h, dh, pad;
  };
  const std::vector<rope_case> cases = {{"1 row, 1 head, 2 dims", 1, 1, 2, 0},
                                        {"odd rows and heads", 5, 3, 8, 0},
                                        {"padded heads and rows", 7, 4, 64, 3},
                                        {"large", 300, 8, 128, 0},
                                        {"empty", 0, 2, 4, 0}};
  for (const rope_case& c : cases) {
    SECTION(c.name) {
      host_heads x(c.n, c.h, c.dh, c.pad), y(c.n, c.h, c.dh, c.pad), dy(c.n, c.h, c.dh, c.pad),
          dx(c.n, c.h, c.dh, c.pad);
      fill_uniform(x.storage, 31, -3, 3);
      fill_uniform(y.storage, 32);
      fill_uniform(dy.storage, 33);
      fill_uniform(dx.storage, 34);
      host_vector<std::int32_t> pos(c.n, 2);
      for (index_t r = 0; r < c.n; ++r) pos.view(r) = static_cast<std::int32_t>((r * 7919) % 65536);
      host_vector<float> inv(c.dh / 2);
      backend::rope_inverse_frequencies(static_cast<int>(c.dh), 10000.0, inv.storage.data());
      tensor<float, 1> want_y = y.storage, want_dx = dx.storage;
      oracle_kernels::rope_forward(oracle, x.view, pos.view, inv.view, same_place(want_y, y.storage, y.view));
      oracle_kernels::rope_backward(oracle, dy.view, pos.view, inv.view, same_place(want_dx, dx.storage, dx.view));
      const mirrored<float, 1> d_x(x.storage), d_y(y.storage), d_dy(dy.storage), d_dx(dx.storage), d_inv(inv.storage);
      const mirrored<std::int32_t, 1> d_pos(pos.storage);
      gpu::rope_forward(be(), d_x.on_device(x.view), d_pos.on_device(pos.view), d_inv.on_device(inv.view),
                        d_y.on_device(y.view));
      gpu::rope_backward(be(), d_dy.on_device(dy.view), d_pos.on_device(pos.view), d_inv.on_device(inv.view),
                         d_dx.on_device(dx.view));
      check_storage_equal(read(d_y, y.storage), want_y, rope_atol, rope_rtol);
      check_storage_equal(read(d_dx, dx.storage), want_dx, rope_atol, rope_rtol);
    }
  }
}

TEST_CASE("cuda softmax forward and backward match scalar: causal offsets, empty and -inf rows", "[gpu][softmax]") {
  struct sm_case {
    const char* name;
    index_t bt, s, l, pad;
    bool causal;
    float scale;
  };
  const std::vector<sm_case> cases = {
      {"1x1x1", 1, 1, 1, 0, false, 1.0f},
      {"odd, scaled", 3, 5, 19, 0, false, 0.125f},
      {"causal square", 2, 17, 17, 0, true, 0.25f},
      {"causal with a KV prefix (L > S)", 2, 5, 40, 3, true, 1.0f},
      {"causal with rows that see nothing (S > L)", 2, 9, 4, 1, true, 1.0f},
      {"long rows", 2, 3, 5000, 0, false, 0.5f},
      {"negative scale", 1, 4, 33, 0, false, -2.0f},
      {"empty batch", 0, 3, 3, 0, false, 1.0f},
  };
  for (const sm_case& c : cases) {
    SECTION(c.name) {
      host_batch<float> x(c.bt, c.s, c.l, false, false, c.pad), y(c.bt, c.s, c.l, false, false, c.pad),
          dy(c.bt, c.s, c.l, false, false, c.pad), dx(c.bt, c.s, c.l, false, false, c.pad);
      fill_uniform(x.storage, 41, -6, 6);
      fill_uniform(y.storage, 42);
      fill_uniform(dy.storage, 43);
      fill_uniform(dx.storage, 44);
      if (c.bt > 0 && c.s > 1)  // a row of −∞ only: all 0
        for (index_t j = 0; j < c.l; ++j) x.view(0, 1, j) = -std::numeric_limits<float>::infinity();
      tensor<float, 3> want_y = y.storage, want_dx = dx.storage;
      oracle_kernels::softmax_forward(oracle, x.view, c.scale, c.causal, same_place(want_y, y.storage, y.view));
      // backward from the oracle's probabilities, so both sides start from the same y
      const mirrored<float, 3> d_x(x.storage), d_y(y.storage), d_dy(dy.storage), d_dx(dx.storage);
      gpu::softmax_forward(be(), d_x.on_device(x.view), c.scale, c.causal, d_y.on_device(y.view));
      check_storage_equal(read(d_y, y.storage), want_y, 1e-6, 1e-5);
      const mirrored<float, 3> d_want_y(want_y);
      oracle_kernels::softmax_backward(oracle, same_place(want_y, y.storage, y.view), dy.view, c.scale,
                                       same_place(want_dx, dx.storage, dx.view));
      gpu::softmax_backward(be(), d_want_y.on_device(same_place(want_y, y.storage, y.view)),
                            d_dy.on_device(dy.view), c.scale, d_dx.on_device(dx.view));
      check_storage_equal(read(d_dx, dx.storage), want_dx, red_atol, red_rtol);
    }
  }
}

TEST_CASE("cuda gelu (tanh and erf forms) forward and backward match scalar", "[gpu][activation]") {
  for (const auto approx : {backend::gelu_approximation::tanh, backend::gelu_approximation::erf}) {
    for (const row_case& r : row_cases()) {
      SECTION(std::string(approx == backend::gelu_approximation::tanh ? "tanh: " : "erf: ") + r.name) {
        act_matrix x(r, 51), dy(r, 52), y(r, 53), dx(r, 54);
        tensor<float, 2> want_y = y.storage, want_dx = dx.storage;
        oracle_kernels::gelu_forward(oracle, x.view, approx, y.in(want_y));
        oracle_kernels::gelu_backward(oracle, x.view, dy.view, approx, dx.in(want_dx));
        const mirrored<float, 2> d_x(x.storage), d_dy(dy.storage), d_y(y.storage), d_dx(dx.storage);
        gpu::gelu_forward(be(), d_x.on_device(x.view), approx, d_y.on_device(y.view));
        gpu::gelu_backward(be(), d_x.on_device(x.view), d_dy.on_device(dy.view), approx, d_dx.on_device(dx.view));
        check_storage_equal(read(d_y, y.storage), want_y, act_atol, act_rtol);
        check_storage_equal(read(d_dx, dx.storage), want_dx, act_atol, act_rtol);
      }
    }
  }
}

TEST_CASE("cuda dropout draws the CPU's Philox mask bit for bit, forward and backward", "[gpu][dropout]") {
  for (const float p : {0.0f, 0.1f, 0.5f, 0.9f}) {
    for (const row_case& r : row_cases()) {
      SECTION("p " + std::to_string(p) + ": " + r.name) {
        act_matrix x(r, 61), y(r, 62), dx(r, 63);
        const std::uint64_t seed = 0x5eed0000ull + static_cast<std::uint64_t>(p * 10), offset = (1ull << 40) + 3;
        tensor<float, 2> want_y = y.storage, want_dx = dx.storage;
        oracle_kernels::dropout_forward(oracle, x.view, p, seed, offset, y.in(want_y));
        oracle_kernels::dropout_backward(oracle, x.view, p, seed, offset, dx.in(want_dx));
        const mirrored<float, 2> d_x(x.storage), d_y(y.storage), d_dx(dx.storage);
        gpu::dropout_forward(be(), d_x.on_device(x.view), p, seed, offset, d_y.on_device(y.view));
        gpu::dropout_backward(be(), d_x.on_device(x.view), p, seed, offset, d_dx.on_device(dx.view));
        check_storage_equal(read(d_y, y.storage), want_y, 0, 0);
        check_storage_equal(read(d_dx, dx.storage), want_dx, 0, 0);
      }
    }
  }
}

TEST_CASE("cuda GRU cell forward and backward match scalar; empty gradients are skipped", "[gpu][gru]") {
  struct gru_case {
    const char* name;
    index_t n, hidden, pad;
  };
  const std::vector<gru_case> cases = {
      {"1x1", 1, 1, 0}, {"odd", 7, 13, 0}, {"padded", 5, 32, 3}, {"large", 512, 256, 0}, {"empty", 0, 4, 0}};
  for (const gru_case& c : cases) {
    for (const bool all_grads : {true, false}) {
      SECTION(std::string(c.name) + (all_grads ? "" : ", dgx and dh only")) {
        host_matrix<float> gx(c.n, 3 * c.hidden, false, c.pad), gh(c.n, 3 * c.hidden, false, c.pad),
            h(c.n, c.hidden, false, c.pad), h_out(c.n, c.hidden, false, c.pad), dh_out(c.n, c.hidden, false, c.pad),
            dgx(c.n, 3 * c.hidden, false, c.pad), dgh(c.n, 3 * c.hidden, false, c.pad),
            dh(c.n, c.hidden, false, c.pad);
        fill_uniform(gx.storage, 71, -3, 3);
        fill_uniform(gh.storage, 72, -3, 3);
        fill_uniform(h.storage, 73);
        fill_uniform(h_out.storage, 74);
        fill_uniform(dh_out.storage, 75);
        fill_uniform(dgx.storage, 76);
        fill_uniform(dgh.storage, 77);
        fill_uniform(dh.storage, 78);
        tensor<float, 2> want_out = h_out.storage, want_dgx = dgx.storage, want_dgh = dgh.storage,
                         want_dh = dh.storage;
        oracle_kernels::gru_cell_forward(oracle, gx.view, gh.view, h.view, same_place(want_out, h_out.storage, h_out.view));
        oracle_kernels::gru_cell_backward(
            oracle, gx.view, gh.view, h.view, dh_out.view, same_place(want_dgx, dgx.storage, dgx.view),
            all_grads ? same_place(want_dgh, dgh.storage, dgh.view) : matrix_view<float>{},
            same_place(want_dh, dh.storage, dh.view));
        const mirrored<float, 2> d_gx(gx.storage), d_gh(gh.storage), d_h(h.storage), d_out(h_out.storage),
            d_dout(dh_out.storage), d_dgx(dgx.storage), d_dgh(dgh.storage), d_dh(dh.storage);
        gpu::gru_cell_forward(be(), d_gx.on_device(gx.view), d_gh.on_device(gh.view), d_h.on_device(h.view),
                              d_out.on_device(h_out.view));
        gpu::gru_cell_backward(be(), d_gx.on_device(gx.view), d_gh.on_device(gh.view), d_h.on_device(h.view),
                               d_dout.on_device(dh_out.view), d_dgx.on_device(dgx.view),
                               all_grads ? d_dgh.on_device(dgh.view) : gpu::dmatrix<float>{},
                               d_dh.on_device(dh.view));
        check_storage_equal(read(d_out, h_out.storage), want_out, act_atol, act_rtol);
        check_storage_equal(read(d_dgx, dgx.storage), want_dgx, act_atol, act_rtol);
        check_storage_equal(read(d_dgh, dgh.storage), want_dgh, act_atol, act_rtol);
        check_storage_equal(read(d_dh, dh.storage), want_dh, act_atol, act_rtol);
      }
    }
  }
}

TEST_CASE("cuda embedding: gather exactly, scatter-add repeated ids in order, bad ids throw untouched", "[gpu][embedding]") {
  const index_t vocab = 37, d = 70, n = 500;
  host_matrix<float> table(vocab, d, false, 2), out(n, d, false, 1), dout(n, d, false, 3), dtable(vocab, d, false, 2);
  fill_uniform(table.storage, 81);
  fill_uniform(out.storage, 82);
  fill_integers(dout.storage, 83);  // integers: every order of the sums is exact
  fill_integers(dtable.storage, 84);
  host_vector<std::int32_t> ids(n, 2);
  for (index_t i = 0; i < n; ++i) ids.view(i) = static_cast<std::int32_t>((i * i + 3 * i) % vocab);  // repeats
  tensor<float, 2> want_out = out.storage, want_dtable = dtable.storage;
  oracle_kernels::embedding_forward(oracle, table.view, ids.view, same_place(want_out, out.storage, out.view));
  oracle_kernels::embedding_backward(oracle, ids.view, dout.view, same_place(want_dtable, dtable.storage, dtable.view));
  const mirrored<float, 2> d_table(table.storage), d_out(out.storage), d_dout(dout.storage), d_dtable(dtable.storage);
  SECTION("forward and backward") {
    const mirrored<std::int32_t, 1> d_ids(ids.storage);
    gpu::embedding_forward(be(), d_table.on_device(table.view), d_ids.on_device(ids.view), d_out.on_device(out.view));
    gpu::embedding_backward(be(), d_ids.on_device(ids.view), d_dout.on_device(dout.view),
                            d_dtable.on_device(dtable.view));
    check_storage_equal(read(d_out, out.storage), want_out, 0, 0);
    check_storage_equal(read(d_dtable, dtable.storage), want_dtable, 0, 0);
  }
  SECTION("an id outside [0, V) throws naming its position, before anything is written") {
    ids.view(123) = vocab;
    ids.view(321) = -1;
    const mirrored<std::int32_t, 1> d_ids(ids.storage);
    for (const bool backward : {false, true}) {
      std::string what;
      try {
        if (backward)
          gpu::embedding_backward(be(), d_ids.on_device(ids.view), d_dout.on_device(dout.view),
                                  d_dtable.on_device(dtable.view));
        else
          gpu::embedding_forward(be(), d_table.on_device(table.view), d_ids.on_device(ids.view),
                                 d_out.on_device(out.view));
      } catch (const slim::error& e) {
        what = e.what();
      }
      INFO(what);
      CHECK(what.find("ids[123]") != std::string::npos);
      CHECK(what.find("id 37") != std::string::npos);
    }
    check_storage_equal(read(d_out, out.storage), out.storage, 0, 0);
    check_storage_equal(read(d_dtable, dtable.storage), dtable.storage, 0, 0);
  }
}

TEST_CASE("cuda cross-entropy forward and backward match scalar; ignored rows; bad targets throw", "[gpu][cross_entropy]") {
  struct ce_case {
    const char* name;
    index_t n, vocab, pad;
  };
  const std::vector<ce_case> cases = {{"1x1", 1, 1, 0},      {"odd", 7, 19, 0},          {"padded", 9, 300, 5},
                                      {"LLaMA vocabulary", 6, 32000, 0}, {"many rows", 3000, 64, 0}, {"empty", 0, 5, 0}};
  constexpr std::int32_t ignore = -100;
  for (const ce_case& c : cases) {
    SECTION(c.name) {
      host_matrix<float> logits(c.n, c.vocab, false, c.pad), dlogits(c.n, c.vocab, false, c.pad);
      host_vector<float> loss(c.n, 2), lse(c.n), dloss(c.n);
      host_vector<std::int32_t> targets(c.n);
      fill_uniform(logits.storage, 91, -8, 8);
      fill_uniform(dlogits.storage, 92);
      fill_uniform(loss.storage, 93);
      fill_uniform(dloss.storage, 94);
      for (index_t i = 0; i < c.n; ++i)
        targets.view(i) = i % 3 == 1 ? ignore : static_cast<std::int32_t>((i * 7919) % c.vocab);
      tensor<float, 1> want_loss = loss.storage, want_lse = lse.storage;
      tensor<float, 2> want_dl = dlogits.storage;
      const index_t want_counted =
          oracle_kernels::cross_entropy_forward(oracle, logits.view, targets.view, ignore,
                                                same_place(want_loss, loss.storage, loss.view), want_lse.view());
      oracle_kernels::cross_entropy_backward(oracle, logits.view, targets.view, vector_view<const float>(want_lse.view()),
                                             ignore, dloss.view, same_place(want_dl, dlogits.storage, dlogits.view));
      const mirrored<float, 2> d_logits(logits.storage), d_dl(dlogits.storage);
      const mirrored<float, 1> d_loss(loss.storage), d_lse(lse.storage), d_dloss(dloss.storage);
      const mirrored<std::int32_t, 1> d_t(targets.storage);
      const index_t counted = gpu::cross_entropy_forward(be(), d_logits.on_device(logits.view), d_t.on_device(targets.view),
                                                         ignore, d_loss.on_device(loss.view), d_lse.on_device(lse.view));
      CHECK(counted == want_counted);
      check_storage_equal(read(d_loss, loss.storage), want_loss, red_atol, red_rtol);
      check_storage_equal(read(d_lse, lse.storage), want_lse, red_atol, red_rtol);
      gpu::cross_entropy_backward(be(), d_logits.on_device(logits.view), d_t.on_device(targets.view),
                                  d_lse.on_device(lse.view), ignore, d_dloss.on_device(dloss.view),
                                  d_dl.on_device(dlogits.view));
      check_storage_equal(read(d_dl, dlogits.storage), want_dl, red_atol, red_rtol);
    }
  }
  SECTION("a target outside [0, V) that is not ignore_index throws naming its position") {
    host_matrix<float> logits(4, 10, false, 0);
    host_vector<float> loss(4), lse(4);
    host_vector<std::int32_t> targets(4);
    fill_uniform(logits.storage, 95);
    fill_uniform(loss.storage, 96);
    targets.view(0) = 1;
    targets.view(1) = ignore;
    targets.view(2) = 10;
    targets.view(3) = 2;
    const mirrored<float, 2> d_logits(logits.storage);
    const mirrored<float, 1> d_loss(loss.storage), d_lse(lse.storage);
    const mirrored<std::int32_t, 1> d_t(targets.storage);
    std::string what;
    try {
      gpu::cross_entropy_forward(be(), d_logits.on_device(logits.view), d_t.on_device(targets.view), ignore,
                                 d_loss.on_device(loss.view), d_lse.on_device(lse.view));
    } catch (const slim::error& e) {
      what = e.what();
    }
    INFO(what);
    CHECK(what.find("targets[2]") != std::string::npos);
    check_storage_equal(read(d_loss, loss.storage), loss.storage, 0, 0);
  }
}

TEST_CASE("cuda adam and adamw steps match scalar over several steps", "[gpu][optimizer]") {
  for (const bool decoupled : {false, true}) {
    for (const float wd : {0.0f, 0.01f}) {
      SECTION(std::string(decoupled ? "adamw" : "adam") + ", weight decay " + std::to_string(wd)) {
        const index_t n = 100003;
        tensor<float, 1> p({n}), g({n}), m({n}), v({n});
        fill_uniform(p, 101);
        fill_uniform(m, 102, -0.01, 0.01);
        fill_uniform(v, 103, 0, 0.01);
        backend::adam_config cfg;
        cfg.lr = 3e-3f;
        cfg.weight_decay = wd;
        tensor<float, 1> wp = p, wm = m, wv = v;
        const mirrored<float, 1> dp(p), dm(m), dv(v);
        for (std::int64_t step = 1; step <= 3; ++step) {
          fill_uniform(g, 110 + static_cast<std::uint64_t>(step));
          const mirrored<float, 1> dg(g);
          if (decoupled) {
            oracle_kernels::adamw_step(oracle, wp.view(), g.view(), wm.view(), wv.view(), cfg, step);
            gpu::adamw_step(be(), dp.on_device(p.view()), dg.on_device(g.view()), dm.on_device(m.view()),
                            dv.on_device(v.view()), cfg, step);
          } else {
            oracle_kernels::adam_step(oracle, wp.view(), g.view(), wm.view(), wv.view(), cfg, step);
            gpu::adam_step(be(), dp.on_device(p.view()), dg.on_device(g.view()), dm.on_device(m.view()),
                           dv.on_device(v.view()), cfg, step);
          }
        }
        // the same float formula on both sides; FMA contraction on the device moves the last bits
        check_storage_equal(read(dp, p), wp, 1e-6, 1e-5);
        check_storage_equal(read(dm, m), wm, 1e-7, 1e-5);
        check_storage_equal(read(dv, v), wv, 1e-9, 1e-5);
      }
    }
  }
}

TEST_CASE("cuda topk matches scalar exactly: ties by column, NaN last, k from 1 to 1000", "[gpu][topk]") {
  struct topk_case {
    const char* name;
    index_t n, l, k, pad;
    bool ties, nans;
  };
  const std::vector<topk_case> cases = {
      {"1x1, k 1", 1, 1, 1, 0, false, false},  {"k = L", 3, 17, 17, 0, false, false},
      {"ties", 5, 64, 10, 2, true, false},     {"NaN and infinities", 4, 50, 50, 0, false, true},
      {"vocabulary, k 50", 3, 32000, 50, 0, false, false},
      {"k 1000 of 1500", 2, 1500, 1000, 0, true, false},
      {"many rows", 3000, 40, 5, 1, true, false},
      {"empty", 0, 7, 3, 0, false, false},
  };
  for (const topk_case& c : cases) {
    SECTION(c.name) {
      host_matrix<float> x(c.n, c.l, false, c.pad), values(c.n, c.k, false, c.pad), dx(c.n, c.l, false, c.pad);
      host_matrix<std::int32_t> indices(c.n, c.k, false, c.pad);
      if (c.ties)
        fill_integers(x.storage, 121, -3, 3);
      else
        fill_uniform(x.storage, 121);
      if (c.nans && c.n > 0)
        for (index_t r = 0; r < c.n; ++r) {
          x.view(r, (r * 3) % c.l) = std::numeric_limits<float>::quiet_NaN();
          x.view(r, (r * 5 + 1) % c.l) = std::numeric_limits<float>::infinity();
          x.view(r, (r * 7 + 2) % c.l) = -std::numeric_limits<float>::infinity();
          x.view(r, (r * 11 + 4) % c.l) = std::numeric_limits<float>::quiet_NaN();
        }
      fill_uniform(values.storage, 122);
      for (auto& v : indices.storage) v = -7;
      fill_integers(dx.storage, 123);
      tensor<float, 2> want_v = values.storage, want_dx = dx.storage;
      tensor<std::int32_t, 2> want_i = indices.storage;
      oracle_kernels::topk_forward(oracle, x.view, c.k, same_place(want_v, values.storage, values.view),
                                   same_place(want_i, indices.storage, indices.view));
      const mirrored<float, 2> d_x(x.storage), d_v(values.storage), d_dx(dx.storage);
      const mirrored<std::int32_t, 2> d_i(indices.storage);
      gpu::topk_forward(be(), d_x.on_device(x.view), c.k, d_v.on_device(values.view), d_i.on_device(indices.view));
      check_storage_equal(read(d_v, values.storage), want_v, 0, 0);
      check_storage_equal(read(d_i, indices.storage), want_i, 0, 0);
      // backward through the oracle's indices, with integer gradients (exact in any order)
      host_matrix<float> dv(c.n, c.k, false, c.pad);
      fill_integers(dv.storage, 124);
      const auto oracle_idx = same_place(want_i, indices.storage, indices.view);
      oracle_kernels::topk_backward(oracle, matrix_view<const std::int32_t>(oracle_idx), dv.view,
                                    same_place(want_dx, dx.storage, dx.view));
      const mirrored<float, 2> d_dv(dv.storage);
      const mirrored<std::int32_t, 2> d_oi(want_i);
      gpu::topk_backward(be(), d_oi.on_device(oracle_idx), d_dv.on_device(dv.view),
                         d_dx.on_device(dx.view));
      check_storage_equal(read(d_dx, dx.storage), want_dx, 0, 0);
    }
  }
  SECTION("backward: repeated indices add up; an index outside [0, L) throws before anything is written") {
    host_matrix<std::int32_t> idx(2, 3, false, 0);
    host_matrix<float> dv(2, 3, false, 0), dx(2, 4, false, 0);
    fill_integers(dv.storage, 125);
    fill_integers(dx.storage, 126);
    const std::int32_t good[6] = {1, 1, 3, 0, 2, 2};
    for (index_t i = 0; i < 6; ++i) idx.storage.data()[i] = good[i];
    tensor<float, 2> want = dx.storage;
    oracle_kernels::topk_backward(oracle, matrix_view<const std::int32_t>(idx.view), dv.view, want.view());
    const mirrored<float, 2> d_dv(dv.storage), d_dx(dx.storage);
    {
      const mirrored<std::int32_t, 2> d_idx(idx.storage);
      gpu::topk_backward(be(), d_idx.on_device(idx.view), d_dv.on_device(dv.view),
                         d_dx.on_device(dx.view));
      check_storage_equal(read(d_dx, dx.storage), want, 0, 0);
    }
    idx.view(1, 1) = 4;
    const mirrored<std::int32_t, 2> d_bad(idx.storage);
    std::string what;
    try {
      gpu::topk_backward(be(), d_bad.on_device(idx.view), d_dv.on_device(dv.view),
                         d_dx.on_device(dx.view));
    } catch (const slim::error& e) {
      what = e.what();
    }
    INFO(what);
    CHECK(what.find("indices[1,1]") != std::string::npos);
    check_storage_equal(read(d_dx, dx.storage), want, 0, 0);
  }
}


// ---- attention ------------------------------------------------------------------------------------------

/// (B, N, H, Dh) view with `pad` elements after each head row, in its own storage.
template <class T>
struct basic_heads4 {
  tensor<T, 1> storage;
  tensor_view<T, 4> view;
  basic_heads4(index_t b, index_t n, index_t h, index_t dh, index_t pad)
      : storage(std::array<index_t, 1>{b * n * h * (dh + pad)}),
        view(storage.data(), {b, n, h, dh}, {n * h * (dh + pad), h * (dh + pad), dh + pad, 1}) {}
};
using host_heads4 = basic_heads4<float>;

/// One attention case: its shapes, and what it exercises beyond them.
struct attn_case {
  const char* name;
  index_t b, s, l, hq, hkv, dh, pad;
  bool causal;
  std::vector<std::int32_t> kv_begin;  // empty: none
  bool nan_key = false;                // k(0, 2, 0, 0) is NaN: the rows that see it come out NaN, as on the CPU
  bool strided_kv_begin = false;       // kv_begin read with a stride of 2 (the odd entries are out of range)
};
enum class attn_grads { all, no_dk, no_dq };

/// Forward against the oracle, then backward from the oracle's o and lse (so both sides start from the same
/// forward state) into gradients that already hold values (backward accumulates), the absent one left out.
template <class T>
void check_attention_case(const attn_case& c, attn_grads g, double atol, double rtol, double grad_atol,
                          double grad_rtol) {
  const T scale = T(1) / std::sqrt(static_cast<T>(c.dh));
  basic_heads4<T> q(c.b, c.s, c.hq, c.dh, c.pad), k(c.b, c.l, c.hkv, c.dh, c.pad), v(c.b, c.l, c.hkv, c.dh, c.pad),
      o(c.b, c.s, c.hq, c.dh, c.pad), dout(c.b, c.s, c.hq, c.dh, c.pad), dq(c.b, c.s, c.hq, c.dh, c.pad),
      dk(c.b, c.l, c.hkv, c.dh, c.pad), dv(c.b, c.l, c.hkv, c.dh, c.pad);
  fill_uniform(q.storage, 131, -2, 2);
  fill_uniform(k.storage, 132, -2, 2);
  if (c.nan_key) k.view(0, 2, 0, 0) = std::numeric_limits<T>::quiet_NaN();
  fill_uniform(v.storage, 133);
  fill_uniform(o.storage, 134);
  fill_uniform(dout.storage, 135);
  fill_uniform(dq.storage, 136);
  fill_uniform(dk.storage, 137);
  fill_uniform(dv.storage, 138);
  tensor<T, 3> lse({c.b, c.hq, c.s});
  fill_uniform(lse, 139);
  const index_t kvb_stride = c.strided_kv_begin ? 2 : 1;
  tensor<std::int32_t, 1> kvb({static_cast<index_t>(c.kv_begin.size()) * kvb_stride});
  for (index_t i = 0; i < kvb.size(); ++i) kvb.data()[i] = c.l + 1 + static_cast<std::int32_t>(i);  // invalid
  for (std::size_t i = 0; i < c.kv_begin.size(); ++i) kvb.data()[static_cast<index_t>(i) * kvb_stride] = c.kv_begin[i];
  const vector_view<std::int32_t> kvb_entries(kvb.data(), {static_cast<index_t>(c.kv_begin.size())}, {kvb_stride});
  const vector_view<const std::int32_t> kvb_view =
      c.kv_begin.empty() ? vector_view<const std::int32_t>{} : vector_view<const std::int32_t>(kvb_entries);
  const bool with_dq = g != attn_grads::no_dq, with_dk = g != attn_grads::no_dk;

  tensor<T, 1> want_o = o.storage, want_dq = dq.storage, want_dk = dk.storage, want_dv = dv.storage;
  tensor<T, 3> want_lse = lse;
  const auto wo = same_place(want_o, o.storage, o.view);
  oracle_kernels::attention_forward(oracle, q.view, k.view, v.view, scale, c.causal, kvb_view, wo, want_lse.view());
  oracle_kernels::attention_backward(oracle, q.view, k.view, v.view, tensor_view<const T, 4>(wo), dout.view,
                                     tensor_view<const T, 3>(want_lse.view()), scale, c.causal, kvb_view,
                                     with_dq ? same_place(want_dq, dq.storage, dq.view) : tensor_view<T, 4>{},
                                     with_dk ? same_place(want_dk, dk.storage, dk.view) : tensor_view<T, 4>{},
                                     same_place(want_dv, dv.storage, dv.view));

  const mirrored<T, 1> d_q(q.storage), d_k(k.storage), d_v(v.storage), d_o(o.storage), d_dout(dout.storage),
      d_dq(dq.storage), d_dk(dk.storage), d_dv(dv.storage);
  const mirrored<T, 3> d_lse(lse);
  const mirrored<std::int32_t, 1> d_kvb(kvb);
  const gpu::dvector<const std::int32_t> d_kvb_view =
      c.kv_begin.empty() ? gpu::dvector<const std::int32_t>{} : d_kvb.on_device(kvb_entries);
  gpu::attention_forward(be(), d_q.on_device(q.view), d_k.on_device(k.view), d_v.on_device(v.view), scale, c.causal,
                         d_kvb_view, d_o.on_device(o.view), d_lse.on_device(lse.view()));
  check_storage_equal(read(d_o, o.storage), want_o, atol, rtol);
  check_storage_equal(read(d_lse, lse), want_lse, atol, rtol);

  const mirrored<T, 1> d_want_o(want_o);
  const mirrored<T, 3> d_want_lse(want_lse);
  gpu::attention_backward(be(), d_q.on_device(q.view), d_k.on_device(k.view), d_v.on_device(v.view),
                          d_want_o.on_device(wo), d_dout.on_device(dout.view), d_want_lse.on_device(want_lse.view()),
                          scale, c.causal, d_kvb_view, with_dq ? d_dq.on_device(dq.view) : gpu::dheads<T>{},
                          with_dk ? d_dk.on_device(dk.view) : gpu::dheads<T>{}, d_dv.on_device(dv.view));
  check_storage_equal(read(d_dq, dq.storage), want_dq, grad_atol, grad_rtol);
  check_storage_equal(read(d_dk, dk.storage), want_dk, grad_atol, grad_rtol);
  check_storage_equal(read(d_dv, dv.storage), want_dv, grad_atol, grad_rtol);
}

// Forward: o sums ≤ 100 products per element and lse one log-sum-exp, in float on the device against
// float-with-float on the oracle, in other orders: 2e-5 absolute / 1e-4 relative. Backward sums over every
// query of a key's group (≤ 400 terms): 1e-4 absolute / 1e-4 relative.
constexpr double attn_atol = 2e-5, attn_rtol = 1e-4, attn_grad_atol = 1e-4, attn_grad_rtol = 1e-4;

TEST_CASE("cuda attention forward and backward match scalar: GQA, causal offsets, left padding, Dh up to 256",
          "[gpu][attention]") {
  const std::vector<attn_case> cases = {
      {"1x1x1", 1, 1, 1, 1, 1, 1, 0, false, {}},
      {"causal, grouped heads", 2, 5, 5, 4, 2, 16, 0, true, {}},
      {"KV-cache offset (L > S), left padding", 2, 7, 19, 4, 1, 32, 0, true, {3, 0}},
      {"one decoding step over a cache", 1, 1, 40, 8, 8, 64, 0, true, {5}},
      {"rows that see nothing (S > L)", 2, 9, 4, 2, 2, 8, 0, true, {}},
      {"padded heads, Dh 128", 1, 70, 70, 2, 2, 128, 3, true, {}},
      {"not causal, Dh 256, one KV head", 1, 33, 33, 2, 1, 256, 0, false, {}},
      {"Dh 40, every key padded away", 1, 3, 3, 1, 1, 40, 0, false, {3}},
      {"large", 2, 100, 100, 4, 4, 64, 0, true, {}},
      {"a NaN key", 1, 6, 6, 2, 1, 8, 0, true, {}, true},
      {"grouped heads, rows that see nothing (S > L)", 2, 9, 4, 4, 2, 8, 0, true, {}},
      {"strided kv_begin, grouped heads", 3, 4, 11, 6, 2, 16, 1, true, {2, 0, 7}, false, true},
  };
  for (const attn_case& c : cases)
    for (const attn_grads g : {attn_grads::all, attn_grads::no_dk, attn_grads::no_dq}) {
      SECTION(std::string(c.name) +
              (g == attn_grads::all ? "" : g == attn_grads::no_dk ? ", dq and dv only" : ", dk and dv only")) {
        check_attention_case<float>(c, g, attn_atol, attn_rtol, attn_grad_atol, attn_grad_rtol);
      }
    }
  SECTION("kv_begin outside [0, L] throws naming the batch, before anything is written") {
    host_heads4 q(2, 3, 1, 8, 0), k(2, 4, 1, 8, 0), o(2, 3, 1, 8, 0);
    fill_uniform(q.storage, 141);
    fill_uniform(k.storage, 142);
    fill_uniform(o.storage, 143);
    tensor<float, 3> lse({2, 1, 3});
    tensor<std::int32_t, 1> kvb({2});
    kvb.data()[0] = 0;
    kvb.data()[1] = 5;
    const mirrored<float, 1> d_q(q.storage), d_k(k.storage), d_o(o.storage);
    const mirrored<float, 3> d_lse(lse);
    const mirrored<std::int32_t, 1> d_kvb(kvb);
    std::string what;
    try {
      gpu::attention_forward(be(), d_q.on_device(q.view), d_k.on_device(k.view), d_k.on_device(k.view), 1.0f, true,
                             d_kvb.on_device(kvb.view()), d_o.on_device(o.view), d_lse.on_device(lse.view()));
    } catch (const slim::error& e) {
      what = e.what();
    }
    INFO(what);
    CHECK(what.find("kv_begin[1]") != std::string::npos);
    check_storage_equal(read(d_o, o.storage), o.storage, 0, 0);
  }
}

TEST_CASE("cuda attention in double matches scalar: blocks past 48 KB of shared memory, Dh up to 256",
          "[gpu][attention]") {
  // a forward block holds (16 + 2·32)·Dh + 32 values, a backward block (2·16 + 2·32)·Dh + 64 or more: in double
  // past 48 KB from Dh 64 backward and Dh 128 forward, ≈ 197 KB at Dh 256 (the H200 allows 227 KB)
  const std::vector<attn_case> cases = {
      {"Dh 64, grouped heads, causal", 2, 40, 40, 4, 2, 64, 0, true, {}},
      {"Dh 128, KV-cache offset, left padding", 2, 9, 30, 2, 1, 128, 0, true, {4, 0}},
      {"Dh 256, not causal", 1, 20, 20, 2, 2, 256, 0, false, {}},
  };
  // double on both sides, summed in other orders: far inside 1e-10
  constexpr double tol = 1e-10;
  for (const attn_case& c : cases) {
    SECTION(c.name) { check_attention_case<double>(c, attn_grads::all, tol, tol, tol, tol); }
  }
}

}  // namespace
}  // namespace slim::testing
