// Model ops: attention, GRU cell, embedding, cross-entropy, Adam, top-k — slim's simd kernels (AVX-512 and
// AVX2) beside the scalar oracle, at 1 and 2 threads, on shapes the SLIM pipeline runs.
//
// Counters:
//   attention: FLOP/s. Forward 4·Dh per visible (query, key) pair (q·k and p·v), summed over batch and query
//     heads: 4·B·Hq·S·L·Dh without a mask, about half of it causal (the pairs counted exactly). Backward
//     10·Dh per visible pair (s recomputed, dp, dv, dk, dq), the usual 2.5× of the forward.
//   everything else: bytes/s, each array counted once per call at 4 bytes an element (reads and writes).
//   top-k also reports rows/s; its peer is std::partial_sort on a row with the same ranking.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "bench_common.hpp"

namespace {

using slim::index_t;
using slim::tensor;

void set_rate(benchmark::State& state, const char* name, double per_iteration) {
  state.counters[name] =
      benchmark::Counter(per_iteration, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
std::size_t threads_of(const benchmark::State& state, int arg) { return static_cast<std::size_t>(state.range(arg)); }

// ---- attention: args B, S, Hq, Hkv, Dh, causal, threads (L = S) ----

struct attention_data {
  index_t b, s, hq, hkv, dh;
  bool causal;
  float scale;
  tensor<float, 4> q, k, v, o, dout, dq, dk, dv;
  tensor<float, 3> lse;
  explicit attention_data(const benchmark::State& st)
      : b(st.range(0)),
        s(st.range(1)),
        hq(st.range(2)),
        hkv(st.range(3)),
        dh(st.range(4)),
        causal(st.range(5) != 0),
        scale(1.0f / std::sqrt(static_cast<float>(dh))),
        q({b, s, hq, dh}),
        k({b, s, hkv, dh}),
        v({b, s, hkv, dh}),
        o({b, s, hq, dh}),
        dout({b, s, hq, dh}),
        dq({b, s, hq, dh}),
        dk({b, s, hkv, dh}),
        dv({b, s, hkv, dh}),
        lse({b, hq, s}) {
    slim::bench::fill(q, 1);
    slim::bench::fill(k, 2);
    slim::bench::fill(v, 3);
    slim::bench::fill(dout, 4);
  }
  /// Visible (query, key) pairs over the whole call.
  double pairs() const {
    const double per_head = causal ? 0.5 * static_cast<double>(s) * static_cast<double>(s + 1)
                                   : static_cast<double>(s) * static_cast<double>(s);
    return per_head * static_cast<double>(b * hq);
  }
  template <class B>
  void forward(const B& be) {
    slim::kernels<B>::attention_forward(be, q.view(), k.view(), v.view(), scale, causal, {}, o.view(), lse.view());
  }
  template <class B>
  void backward(const B& be) {
    slim::kernels<B>::attention_backward(be, q.view(), k.view(), v.view(), o.view(), dout.view(), lse.view(), scale,
                                         causal, {}, dq.view(), dk.view(), dv.view());
  }
};

template <class Backend>
void bm_attention_forward(benchmark::State& state) {
  attention_data d(state);
  const auto be = slim::bench::make_backend<Backend>(threads_of(state, 6));
  for (auto _ : state) {
    d.forward(be);
    benchmark::DoNotOptimize(d.o.data());
    benchmark::ClobberMemory();
  }
  set_rate(state, "FLOP/s", 4.0 * static_cast<double>(d.dh) * d.pairs());
}

template <class Backend>
void bm_attention_backward(benchmark::State& state) {
  attention_data d(state);
  const auto be = slim::bench::make_backend<Backend>(threads_of(state, 6));
  d.forward(be);
  for (auto _ : state) {
    d.backward(be);  // accumulates; the values grow but stay finite over a benchmark's iterations
    benchmark::DoNotOptimize(d.dq.data());
    benchmark::ClobberMemory();
  }
  set_rate(state, "FLOP/s", 10.0 * static_cast<double>(d.dh) * d.pairs());
}

void attention_shapes(benchmark::internal::Benchmark* b, bool two_threads) {
  b->ArgNames({"B", "S", "Hq", "Hkv", "Dh", "causal", "threads"});
  for (const index_t threads : {index_t{1}, index_t{2}}) {
    if (threads == 2 && !two_threads) continue;
    b->Args({8, 256, 8, 8, 32, 1, threads});
    b->Args({8, 256, 8, 8, 32, 0, threads});
    b->Args({8, 256, 8, 2, 32, 1, threads});  // GQA 4:1
    b->Args({4, 1024, 8, 8, 64, 1, threads});
  }
  b->UseRealTime();
  b->Unit(benchmark::kMillisecond);
}
void attention_all(benchmark::internal::Benchmark* b) { attention_shapes(b, true); }
void attention_scalar(benchmark::internal::Benchmark* b) {
  b->ArgNames({"B", "S", "Hq", "Hkv", "Dh", "causal", "threads"});
  b->Args({8, 256, 8, 8, 32, 1, 1});
  b->UseRealTime();
  b->Unit(benchmark::kMillisecond);
}

// ---- GRU cell: args N, H, threads ----

template <class Backend>
void bm_gru(benchmark::State& state, bool backward) {
  const index_t n = state.range(0), h = state.range(1);
  tensor<float, 2> gx({n, 3 * h}), gh({n, 3 * h}), hin({n, h}), hout({n, h}), dgx({n, 3 * h}), dgh({n, 3 * h}),
      dh({n, h});
  slim::bench::fill(gx, 1, -3, 3);
  slim::bench::fill(gh, 2, -3, 3);
  slim::bench::fill(hin, 3);
  slim::bench::fill(hout, 4);
  const auto be = slim::bench::make_backend<Backend>(threads_of(state, 2));
  for (auto _ : state) {
    if (backward)
      slim::kernels<Backend>::gru_cell_backward(be, gx.view(), gh.view(), hin.view(), hout.view(), dgx.view(),
                                                dgh.view(), dh.view());
    else
      slim::kernels<Backend>::gru_cell_forward(be, gx.view(), gh.view(), hin.view(), hout.view());
    benchmark::ClobberMemory();
  }
  // forward: gx, gh (3H each) and h read, h' written (8H); backward: gx, gh, h, dh' read, dgx, dgh, dh read
  // and written (22H).
  set_rate(state, "bytes/s", 4.0 * (backward ? 22.0 : 8.0) * static_cast<double>(h * n));
}
template <class Backend>
void bm_gru_forward(benchmark::State& state) {
  bm_gru<Backend>(state, false);
}
template <class Backend>
void bm_gru_backward(benchmark::State& state) {
  bm_gru<Backend>(state, true);
}

// ---- embedding: args V, D, N, threads ----

template <class Backend>
void bm_embedding(benchmark::State& state, bool backward) {
  const index_t vocab = state.range(0), dim = state.range(1), n = state.range(2);
  tensor<float, 2> table({vocab, dim}), rows({n, dim});
  tensor<std::int32_t, 1> ids({n});
  slim::philox_stream rng(7);
  for (auto& id : ids) id = static_cast<std::int32_t>(rng.below(static_cast<std::uint32_t>(vocab)));
  slim::bench::fill(table, 1);
  slim::bench::fill(rows, 2);
  const auto be = slim::bench::make_backend<Backend>(threads_of(state, 3));
  for (auto _ : state) {
    if (backward)
      slim::kernels<Backend>::embedding_backward(be, ids.view(), rows.view(), table.view());
    else
      slim::kernels<Backend>::embedding_forward(be, table.view(), ids.view(), rows.view());
    benchmark::ClobberMemory();
  }
  // forward: a table row read and an output row written per id; backward: dout read, dtable row read+written.
  set_rate(state, "bytes/s", 4.0 * static_cast<double>(n * dim) * (backward ? 3.0 : 2.0));
}
template <class Backend>
void bm_embedding_forward(benchmark::State& state) {
  bm_embedding<Backend>(state, false);
}
template <class Backend>
void bm_embedding_backward(benchmark::State& state) {
  bm_embedding<Backend>(state, true);
}

// ---- cross-entropy: args N, V, threads ----

template <class Backend>
void bm_cross_entropy(benchmark::State& state, bool backward) {
  const index_t n = state.range(0), vocab = state.range(1);
  tensor<float, 2> logits({n, vocab}), dlogits({n, vocab});
  tensor<std::int32_t, 1> targets({n});
  tensor<float, 1> loss({n}), lse({n}), dloss({n});
  slim::bench::fill(logits, 1, -8, 8);
  slim::philox_stream rng(3);
  for (auto& t : targets) t = static_cast<std::int32_t>(rng.below(static_cast<std::uint32_t>(vocab)));
  for (auto& x : dloss) x = 1.0f / static_cast<float>(n);
  const auto be = slim::bench::make_backend<Backend>(threads_of(state, 2));
  slim::kernels<Backend>::cross_entropy_forward(be, logits.view(), targets.view(), -100, loss.view(), lse.view());
  for (auto _ : state) {
    if (backward)
      slim::kernels<Backend>::cross_entropy_backward(be, logits.view(), targets.view(), lse.view(), -100, dloss.view(),
                                                     dlogits.view());
    else
      benchmark::DoNotOptimize(slim::kernels<Backend>::cross_entropy_forward(be, logits.view(), targets.view(), -100,
                                                                             loss.view(), lse.view()));
    benchmark::ClobberMemory();
  }
  // forward reads the logits; backward reads them and reads+writes dlogits.
  set_rate(state, "bytes/s", 4.0 * static_cast<double>(n * vocab) * (backward ? 3.0 : 1.0));
}
template <class Backend>
void bm_cross_entropy_forward(benchmark::State& state) {
  bm_cross_entropy<Backend>(state, false);
}
template <class Backend>
void bm_cross_entropy_backward(benchmark::State& state) {
  bm_cross_entropy<Backend>(state, true);
}

// ---- Adam / AdamW: args P, threads ----

template <class Backend>
void bm_adam(benchmark::State& state, bool decoupled) {
  const index_t p = state.range(0);
  tensor<float, 1> param({p}), grad({p}), m({p}), v({p});
  slim::bench::fill(param, 1);
  slim::bench::fill(grad, 2);
  const auto be = slim::bench::make_backend<Backend>(threads_of(state, 1));
  const slim::backend::adam_config cfg{.lr = 1e-4f, .weight_decay = 0.01f};
  std::int64_t step = 0;
  for (auto _ : state) {
    if (decoupled)
      slim::kernels<Backend>::adamw_step(be, param.view(), grad.view(), m.view(), v.view(), cfg, ++step);
    else
      slim::kernels<Backend>::adam_step(be, param.view(), grad.view(), m.view(), v.view(), cfg, ++step);
    benchmark::ClobberMemory();
  }
  // param, m, v read and written; grad read.
  set_rate(state, "bytes/s", 4.0 * 7.0 * static_cast<double>(p));
}

template <class Backend>
void bm_adam_step(benchmark::State& state) {
  bm_adam<Backend>(state, false);
}
template <class Backend>
void bm_adamw_step(benchmark::State& state) {
  bm_adam<Backend>(state, true);
}

// ---- top-k: args N, L, k, threads ----

struct topk_data {
  index_t n, l, k;
  tensor<float, 2> x, values;
  tensor<std::int32_t, 2> indices;
  explicit topk_data(const benchmark::State& st)
      : n(st.range(0)), l(st.range(1)), k(st.range(2)), x({n, l}), values({n, k}), indices({n, k}) {
    slim::bench::fill(x, 5);
  }
  void set_counters(benchmark::State& state) const {
    set_rate(state, "bytes/s", 4.0 * static_cast<double>(n * l));
    set_rate(state, "rows/s", static_cast<double>(n));
  }
};

template <class Backend>
void bm_topk(benchmark::State& state) {
  topk_data d(state);
  const auto be = slim::bench::make_backend<Backend>(threads_of(state, 3));
  for (auto _ : state) {
    slim::kernels<Backend>::topk_forward(be, d.x.view(), d.k, d.values.view(), d.indices.view());
    benchmark::ClobberMemory();
  }
  d.set_counters(state);
}

/// Peer: std::partial_sort of each row's column indices under the same ranking (one thread).
void bm_topk_partial_sort(benchmark::State& state) {
  topk_data d(state);
  std::vector<index_t> order(static_cast<std::size_t>(d.l));
  for (auto _ : state) {
    for (index_t r = 0; r < d.n; ++r) {
      const float* row = d.x.data() + r * d.l;
      std::iota(order.begin(), order.end(), index_t{0});
      std::partial_sort(order.begin(), order.begin() + d.k, order.end(), [&](index_t a, index_t b) {
        return slim::backend::detail::topk_ranks_before(row[a], a, row[b], b);
      });
      for (index_t j = 0; j < d.k; ++j) {
        d.values(r, j) = row[order[static_cast<std::size_t>(j)]];
        d.indices(r, j) = static_cast<std::int32_t>(order[static_cast<std::size_t>(j)]);
      }
    }
    benchmark::ClobberMemory();
  }
  d.set_counters(state);
}

template <index_t... Shape>
void with_threads(benchmark::internal::Benchmark* b, const std::vector<std::string>& names, bool two_threads) {
  b->ArgNames(names);
  b->Args({Shape..., 1});
  if (two_threads) b->Args({Shape..., 2});
  b->UseRealTime();
  b->Unit(benchmark::kMicrosecond);
}
void gru_all(benchmark::internal::Benchmark* b) { with_threads<512, 256>(b, {"N", "H", "threads"}, true); }
void gru_one(benchmark::internal::Benchmark* b) { with_threads<512, 256>(b, {"N", "H", "threads"}, false); }
void emb_all(benchmark::internal::Benchmark* b) {
  with_threads<32000, 1024, 2048>(b, {"V", "D", "N", "threads"}, true);
}
void emb_one(benchmark::internal::Benchmark* b) {
  with_threads<32000, 1024, 2048>(b, {"V", "D", "N", "threads"}, false);
}
void ce_all(benchmark::internal::Benchmark* b) { with_threads<2048, 4096>(b, {"N", "V", "threads"}, true); }
void ce_one(benchmark::internal::Benchmark* b) { with_threads<2048, 4096>(b, {"N", "V", "threads"}, false); }
void adam_all(benchmark::internal::Benchmark* b) { with_threads<10000000>(b, {"P", "threads"}, true); }
void adam_one(benchmark::internal::Benchmark* b) { with_threads<10000000>(b, {"P", "threads"}, false); }
void topk_one(benchmark::internal::Benchmark* b) { with_threads<6040, 3416, 20>(b, {"N", "L", "k", "threads"}, false); }
void topk_wide(benchmark::internal::Benchmark* b) {
  with_threads<6040, 3416, 20>(b, {"N", "L", "k", "threads"}, true);
  b->Args({512, 3416, 1000, 1})->Args({512, 3416, 1000, 2});
}

}  // namespace

// Each op: simd AVX-512 and AVX2 (when this build enables them) on `shapes_simd`, the scalar oracle on
// `shapes_scalar` (one thread: it does not use the pool).
#if defined(SLIM_BENCH_AVX512)
#define SLIM_MODEL_OP_AVX512(fn, label, shapes) \
  BENCHMARK_TEMPLATE(fn, slim::bench::avx512)->Name(label "/slim_simd_avx512")->Apply(shapes);
#else
#define SLIM_MODEL_OP_AVX512(fn, label, shapes)
#endif
#if defined(SLIM_BENCH_AVX2)
#define SLIM_MODEL_OP_AVX2(fn, label, shapes) \
  BENCHMARK_TEMPLATE(fn, slim::bench::avx2)->Name(label "/slim_simd_avx2")->Apply(shapes);
#else
#define SLIM_MODEL_OP_AVX2(fn, label, shapes)
#endif
#define SLIM_MODEL_OP(fn, label, shapes_simd, shapes_scalar) \
  SLIM_MODEL_OP_AVX512(fn, label, shapes_simd)               \
  SLIM_MODEL_OP_AVX2(fn, label, shapes_simd)                 \
  BENCHMARK_TEMPLATE(fn, slim::backend::scalar)->Name(label "/slim_scalar")->Apply(shapes_scalar);

SLIM_MODEL_OP(bm_attention_forward, "attention_forward", attention_all, attention_scalar)
SLIM_MODEL_OP(bm_attention_backward, "attention_backward", attention_all, attention_scalar)
SLIM_MODEL_OP(bm_gru_forward, "gru_cell_forward", gru_all, gru_one)
SLIM_MODEL_OP(bm_gru_backward, "gru_cell_backward", gru_all, gru_one)
SLIM_MODEL_OP(bm_embedding_forward, "embedding_forward", emb_all, emb_one)
SLIM_MODEL_OP(bm_embedding_backward, "embedding_backward", emb_all, emb_one)
SLIM_MODEL_OP(bm_cross_entropy_forward, "cross_entropy_forward", ce_all, ce_one)
SLIM_MODEL_OP(bm_cross_entropy_backward, "cross_entropy_backward", ce_all, ce_one)
SLIM_MODEL_OP(bm_adam_step, "adam_step", adam_all, adam_one)
SLIM_MODEL_OP(bm_adamw_step, "adamw_step", adam_all, adam_one)
SLIM_MODEL_OP(bm_topk, "topk_forward", topk_wide, topk_one)
BENCHMARK(bm_topk_partial_sort)->Name("topk_forward/std_partial_sort")->Apply(topk_one);
