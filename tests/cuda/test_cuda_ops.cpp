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

}  // namespace
}  // namespace slim::testing
