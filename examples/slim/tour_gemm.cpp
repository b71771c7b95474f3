// slim kernels tour: the gemm family (f32, a transposed operand, bf16 operands, batched, and the backwards).
#include "tour.hpp"

namespace slim::cli {
namespace {

// Float against the double oracle: each output is a K-term dot product of values in [-1, 1).
double gemm_atol(index_t k) { return 5e-7 * static_cast<double>(k); }
constexpr double gemm_rtol = 1e-5;

// O is the oracle's tag, a template parameter so that an op missing from the kernel set is detected by
// the `requires` checks below instead of breaking the build.
template <class O>
void gemm_family(tour& t) {
  using oracle = kernels<O>;
  const O ob{};
  const index_t m = t.pick(256, 64), k = m, n = m;
  const std::string shape = dims(m, k, n);
  auto a = t.uniform<float, 2>({m, k});   // (M,K)
  auto b = t.uniform<float, 2>({k, n});   // (K,N)
  auto bt = t.uniform<float, 2>({n, k});  // (N,K): B given transposed, as a linear layer's weight
  auto ad = widen(a), bd = widen(b), btd = widen(bt);
  const double flops = 2.0 * static_cast<double>(m * n * k);

  if constexpr (requires(tensor<double, 2> c) { oracle::gemm(ob, 1.0, ad.view(), bd.view(), 0.0, c.view()); }) {
    tensor<double, 2> ref({m, n}), ref_t({m, n});
    oracle::gemm(ob, 1.0, ad.view(), bd.view(), 0.0, ref.view());
    oracle::gemm(ob, 1.0, ad.view(), transpose(btd.view()), 0.0, ref_t.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> c({m, n});
      auto call = [&] { kernels<B>::gemm(be, 1.0f, a.view(), b.view(), 0.0f, c.view()); };
      call();
      agreement g;
      g.add(c, ref, gemm_atol(k), gemm_rtol);
      t.record("gemm C=A*B", label, shape, g, t.time(call), flops, unit::flop);
    });
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> c({m, n});
      auto call = [&] { kernels<B>::gemm(be, 1.0f, a.view(), transpose(bt.view()), 0.0f, c.view()); };
      call();
      agreement g;
      g.add(c, ref_t, gemm_atol(k), gemm_rtol);
      t.record("gemm C=A*B^T", label, shape, g, t.time(call), flops, unit::flop);
    });
  } else {
    t.missing("gemm");
  }

  // bf16 operands, f32 accumulation: the oracle multiplies the same (widened) bf16 values in double.
  tensor<bf16, 2> a16({m, k}), b16({k, n});
  for (index_t i = 0; i < a.size(); ++i) a16.data()[i] = bf16(a.data()[i]);
  for (index_t i = 0; i < b.size(); ++i) b16.data()[i] = bf16(b.data()[i]);
  if constexpr (requires(tensor<float, 2> c) { oracle::gemm(ob, 1.0f, a16.view(), b16.view(), 0.0f, c.view()); }) {
    tensor<double, 2> ref({m, n});
    oracle::gemm(ob, 1.0, widen(a16).view(), widen(b16).view(), 0.0, ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> c({m, n});
      auto call = [&] { kernels<B>::gemm(be, 1.0f, a16.view(), b16.view(), 0.0f, c.view()); };
      call();
      agreement g;
      g.add(c, ref, gemm_atol(k), gemm_rtol);
      t.record("gemm bf16 operands", label, shape, g, t.time(call), flops, unit::flop);
    });
  } else {
    t.missing("gemm (bf16 operands)");
  }

  // Batched: Bt independent products.
  const index_t bn = 8, bm = t.pick(64, 16);
  auto a3 = t.uniform<float, 3>({bn, bm, bm}), b3 = t.uniform<float, 3>({bn, bm, bm});
  auto a3d = widen(a3), b3d = widen(b3);
  if constexpr (requires(tensor<double, 3> c) {
                  oracle::gemm_batched(ob, 1.0, a3d.view(), b3d.view(), 0.0, c.view());
                }) {
    tensor<double, 3> ref({bn, bm, bm});
    oracle::gemm_batched(ob, 1.0, a3d.view(), b3d.view(), 0.0, ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 3> c({bn, bm, bm});
      auto call = [&] { kernels<B>::gemm_batched(be, 1.0f, a3.view(), b3.view(), 0.0f, c.view()); };
      call();
      agreement g;
      g.add(c, ref, gemm_atol(bm), gemm_rtol);
      t.record("gemm_batched", label, dims(bn, bm, bm, bm), g, t.time(call),
               2.0 * static_cast<double>(bn * bm * bm * bm), unit::flop);
    });
  } else {
    t.missing("gemm_batched");
  }

  auto dc3 = t.uniform<float, 3>({bn, bm, bm});
  auto dc3d = widen(dc3);
  if constexpr (requires(tensor<double, 3> da, tensor<double, 3> db) {
                  oracle::gemm_batched_backward(ob, 1.0, a3d.view(), b3d.view(), dc3d.view(), da.view(), db.view());
                }) {
    tensor<double, 3> da_ref({bn, bm, bm}), db_ref({bn, bm, bm});
    oracle::gemm_batched_backward(ob, 1.0, a3d.view(), b3d.view(), dc3d.view(), da_ref.view(), db_ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 3> da({bn, bm, bm}), db({bn, bm, bm});
      auto call = [&] {
        kernels<B>::gemm_batched_backward(be, 1.0f, a3.view(), b3.view(), dc3.view(), da.view(), db.view());
      };
      call();
      agreement g;
      g.add(da, da_ref, gemm_atol(bm), gemm_rtol);
      g.add(db, db_ref, gemm_atol(bm), gemm_rtol);
      t.record("gemm_batched_backward", label, dims(bn, bm, bm, bm), g, t.time(call),
               4.0 * static_cast<double>(bn * bm * bm * bm), unit::flop);
    });
  } else {
    t.missing("gemm_batched_backward");
  }

  // Backward: dA += dC·Bᵀ, dB += Aᵀ·dC.
  auto dc = t.uniform<float, 2>({m, n});
  auto dcd = widen(dc);
  if constexpr (requires(tensor<double, 2> da, tensor<double, 2> db) {
                  oracle::gemm_backward(ob, 1.0, ad.view(), bd.view(), dcd.view(), da.view(), db.view());
                }) {
    tensor<double, 2> da_ref({m, k}), db_ref({k, n});
    oracle::gemm_backward(ob, 1.0, ad.view(), bd.view(), dcd.view(), da_ref.view(), db_ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> da({m, k}), db({k, n});
      auto call = [&] { kernels<B>::gemm_backward(be, 1.0f, a.view(), b.view(), dc.view(), da.view(), db.view()); };
      call();
      agreement g;
      g.add(da, da_ref, gemm_atol(n), gemm_rtol);
      g.add(db, db_ref, gemm_atol(m), gemm_rtol);
      t.record("gemm_backward", label, shape, g, t.time(call), 2 * flops, unit::flop);
    });
  } else {
    t.missing("gemm_backward");
  }
}

}  // namespace

void tour_gemm(tour& t) { gemm_family<backend::scalar>(t); }

}  // namespace slim::cli
