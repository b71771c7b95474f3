// Row-wise and elementwise ops (norm, rope, softmax, activation, dropout), forward and backward, on slim's
// scalar oracle and simd backends (AVX-512 and AVX2) at 1 and 2 threads, with Eigen as a peer where it has
// the same op (1 thread). Every operand is 16M floats (64 MB, above the last-level cache), so these ops
// stream from memory: read each figure (bytes/s) against probe_mem/copy and probe_mem/triad (bench_probes.cpp)
// of the same run. bytes/s counts each array read and each array written once per call (STREAM's
// convention; write-allocate traffic is not counted); an accumulated gradient counts as read and written.
//
// Shapes: (N,D) = (4096,4096) rows; rope (N,H,Dh) = (16384,8,128); softmax (Bt,S,L) = (1,4096,4096), not
// causal; dropout p = 0.1.
#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_common.hpp"

namespace {

using slim::index_t;
using slim::tensor;
using slim::backend::gelu_approximation;

constexpr index_t rows = 4096, cols = 4096, elems = rows * cols;
constexpr index_t rope_heads = 8, rope_dim = 128, rope_rows = elems / (rope_heads * rope_dim);

/// The operands, allocated and filled once for the whole program (64 MB each).
struct operands {
  tensor<float, 2> x{{rows, cols}}, dy{{rows, cols}}, up{{rows, cols}}, out{{rows, cols}}, out2{{rows, cols}};
  tensor<float, 1> w{{cols}}, b{{cols}}, mean{{rows}}, rstd{{rows}}, dw{{cols}}, db{{cols}};
  tensor<float, 1> inv_freq{{rope_dim / 2}};
  std::vector<std::int32_t> pos;
  operands() {
    slim::bench::fill(x, 1, -3, 3);
    slim::bench::fill(dy, 2);
    slim::bench::fill(up, 3);
    slim::bench::fill(w, 4, 0.5f, 1.5f);
    slim::bench::fill(b, 5);
    slim::backend::rope_inverse_frequencies(static_cast<int>(rope_dim), 10000.0, inv_freq.data());
    for (index_t i = 0; i < rope_rows; ++i) pos.push_back(static_cast<std::int32_t>(i % 8192));
  }
  slim::tensor_view<float, 3> as_heads(tensor<float, 2>& t) { return {t.data(), {rope_rows, rope_heads, rope_dim}}; }
  slim::tensor_view<float, 3> as_scores(tensor<float, 2>& t) { return {t.data(), {1, rows, cols}}; }
  slim::vector_view<const std::int32_t> positions() const { return {pos.data(), {rope_rows}}; }
};
operands& data() {
  static operands d;
  return d;
}

/// Runs `op` as the timed body; `arrays` is the number of 64 MB arrays it reads plus those it writes.
template <class Op>
void run(benchmark::State& state, double arrays, Op&& op) {
  for (auto _ : state) {
    op();
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(arrays * static_cast<double>(elems) * sizeof(float)));
}

template <class B>
void register_backend(const std::string& label, std::vector<std::size_t> thread_counts) {
  using K = slim::kernels<B>;
  for (const std::size_t threads : thread_counts) {
    const std::string suffix = "/" + label + "/threads:" + std::to_string(threads);
    auto add = [&](const std::string& op, auto&& body) {
      benchmark::RegisterBenchmark(("rows/" + op + suffix).c_str(),
                                   [threads, body](benchmark::State& state) {
                                     const B be = slim::bench::make_backend<B>(threads);
                                     body(state, be, data());
                                   })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    };
    add("rmsnorm_forward", [](benchmark::State& s, const B& be, operands& d) {
      run(s, 2, [&] { K::rmsnorm_forward(be, d.x.view(), d.w.view(), 1e-5f, d.out.view(), d.rstd.view()); });
    });
    add("rmsnorm_backward", [](benchmark::State& s, const B& be, operands& d) {
      K::rmsnorm_forward(be, d.x.view(), d.w.view(), 1e-5f, d.out.view(), d.rstd.view());
      run(s, 4, [&] {
        K::rmsnorm_backward(be, d.x.view(), d.w.view(), d.rstd.view(), d.dy.view(), d.out2.view(), d.dw.view());
      });
    });
    add("layernorm_forward", [](benchmark::State& s, const B& be, operands& d) {
      run(s, 2, [&] {
        K::layernorm_forward(be, d.x.view(), d.w.view(), d.b.view(), 1e-5f, d.out.view(), d.mean.view(), d.rstd.view());
      });
    });
    add("layernorm_backward", [](benchmark::State& s, const B& be, operands& d) {
      K::layernorm_forward(be, d.x.view(), d.w.view(), d.b.view(), 1e-5f, d.out.view(), d.mean.view(), d.rstd.view());
      run(s, 4, [&] {
        K::layernorm_backward(be, d.x.view(), d.w.view(), d.mean.view(), d.rstd.view(), d.dy.view(), d.out2.view(),
                              d.dw.view(), d.db.view());
      });
    });
    add("rope_forward", [](benchmark::State& s, const B& be, operands& d) {
      run(s, 2, [&] { K::rope_forward(be, d.as_heads(d.x), d.positions(), d.inv_freq.view(), d.as_heads(d.out)); });
    });
    add("rope_backward", [](benchmark::State& s, const B& be, operands& d) {
      run(s, 3, [&] { K::rope_backward(be, d.as_heads(d.dy), d.positions(), d.inv_freq.view(), d.as_heads(d.out2)); });
    });
    add("softmax_forward", [](benchmark::State& s, const B& be, operands& d) {
      run(s, 2, [&] { K::softmax_forward(be, d.as_scores(d.x), 0.125f, false, d.as_scores(d.out)); });
    });
    add("softmax_backward", [](benchmark::State& s, const B& be, operands& d) {
      K::softmax_forward(be, d.as_scores(d.x), 0.125f, false, d.as_scores(d.out));
      run(s, 4, [&] { K::softmax_backward(be, d.as_scores(d.out), d.as_scores(d.dy), 0.125f, d.as_scores(d.out2)); });
    });
    add("silu_forward", [](benchmark::State& s, const B& be, operands& d) {
      run(s, 2, [&] { K::silu_forward(be, d.x.view(), d.out.view()); });
    });
    add("silu_backward", [](benchmark::State& s, const B& be, operands& d) {
      run(s, 4, [&] { K::silu_backward(be, d.x.view(), d.dy.view(), d.out2.view()); });
    });
    for (const auto a : {gelu_approximation::tanh, gelu_approximation::erf}) {
      const std::string form = a == gelu_approximation::tanh ? "tanh" : "erf";
      add("gelu_" + form + "_forward", [a](benchmark::State& s, const B& be, operands& d) {
        run(s, 2, [&] { K::gelu_forward(be, d.x.view(), a, d.out.view()); });
      });
      add("gelu_" + form + "_backward", [a](benchmark::State& s, const B& be, operands& d) {
        run(s, 4, [&] { K::gelu_backward(be, d.x.view(), d.dy.view(), a, d.out2.view()); });
      });
    }
    add("swiglu_forward", [](benchmark::State& s, const B& be, operands& d) {
      run(s, 3, [&] { K::swiglu_forward(be, d.x.view(), d.up.view(), d.out.view()); });
    });
    add("swiglu_backward", [](benchmark::State& s, const B& be, operands& d) {
      run(s, 7, [&] { K::swiglu_backward(be, d.x.view(), d.up.view(), d.dy.view(), d.out.view(), d.out2.view()); });
    });
    add("dropout_forward", [](benchmark::State& s, const B& be, operands& d) {
      run(s, 2, [&] { K::dropout_forward(be, d.x.view(), 0.1f, 42, 0, d.out.view()); });
    });
    add("dropout_backward", [](benchmark::State& s, const B& be, operands& d) {
      run(s, 3, [&] { K::dropout_backward(be, d.dy.view(), 0.1f, 42, 0, d.out2.view()); });
    });
  }
}

// Eigen peers (1 thread): the same formulas as whole-array expressions.
using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
void register_eigen() {
  auto add = [](const std::string& op, double arrays, auto&& body) {
    benchmark::RegisterBenchmark(("rows/" + op + "/eigen/threads:1").c_str(),
                                 [arrays, body](benchmark::State& state) {
                                   operands& d = data();
                                   Eigen::Map<const row_major> x(d.x.data(), rows, cols);
                                   Eigen::Map<row_major> y(d.out.data(), rows, cols);
                                   run(state, arrays, [&] { body(d, x, y); });
                                 })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  };
  add("rmsnorm_forward", 2, [](operands& d, const Eigen::Map<const row_major>& x, Eigen::Map<row_major>& y) {
    Eigen::Map<const Eigen::RowVectorXf> w(d.w.data(), cols);
    const Eigen::VectorXf rstd = (x.rowwise().squaredNorm().array() / static_cast<float>(cols) + 1e-5f).rsqrt();
    y.noalias() = rstd.asDiagonal() * x * w.asDiagonal();
  });
  add("softmax_forward", 2, [](operands&, const Eigen::Map<const row_major>& x, Eigen::Map<row_major>& y) {
    const Eigen::VectorXf m = x.rowwise().maxCoeff() * 0.125f;
    y = ((x.array() * 0.125f).colwise() - m.array()).exp();
    const Eigen::VectorXf inv = y.rowwise().sum().cwiseInverse();
    y = inv.asDiagonal() * y;
  });
  add("silu_forward", 2, [](operands&, const Eigen::Map<const row_major>& x, Eigen::Map<row_major>& y) {
    y = x.array() / (1.0f + (-x.array()).exp());
  });
}

const bool registered = [] {
  register_backend<slim::backend::scalar>("scalar", {1});
#if defined(SLIM_BENCH_AVX512)
  register_backend<slim::bench::avx512>("avx512", {1, 2});
#endif
#if defined(SLIM_BENCH_AVX2)
  register_backend<slim::bench::avx2>("avx2", {1, 2});
#endif
  register_eigen();
  return true;
}();

}  // namespace
