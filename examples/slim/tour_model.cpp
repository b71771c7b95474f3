// slim kernels tour: the model-level families (attention, GRU cell, embedding, cross-entropy, Adam/AdamW,
// top-k), forward and backward.
#include "tour.hpp"

namespace slim::cli {
namespace {

constexpr double f4 = sizeof(float);  // bytes per element

// O is the oracle's tag, a template parameter so that an op missing from the kernel set is detected by
// the `requires` checks instead of breaking the build.
template <class O>
void attention_family(tour& t) {
  using oracle = kernels<O>;
  const O ob{};
  const index_t b = 1, s = t.pick(256, 32), l = s, hq = 8, hkv = 2, dh = 64;
  const std::string shape = str("S=L=", s, " Hq", hq, "/", hkv);
  auto q = t.uniform<float, 4>({b, s, hq, dh});   // (B,S,Hq,Dh)
  auto k = t.uniform<float, 4>({b, l, hkv, dh});  // (B,L,Hkv,Dh)
  auto v = t.uniform<float, 4>({b, l, hkv, dh});
  auto dout = t.uniform<float, 4>({b, s, hq, dh});
  auto qd = widen(q), kd = widen(k), vd = widen(v), doutd = widen(dout);
  const float scale = 0.125f;  // 1/√Dh
  const vector_view<const std::int32_t> no_padding{};
  // q·kᵀ and p·v over the visible (causal) half of the S×L scores, per query head.
  const double flops = 2.0 * 2.0 * static_cast<double>(b * hq * dh) * static_cast<double>(s * (s + 1) / 2);

  if constexpr (requires(tensor<double, 4> o, tensor<double, 3> lse) {
                  oracle::attention_forward(ob, qd.view(), kd.view(), vd.view(), 0.125, true, no_padding, o.view(),
                                            lse.view());
                }) {
    tensor<double, 4> o_ref({b, s, hq, dh});
    tensor<double, 3> lse_ref({b, hq, s});
    oracle::attention_forward(ob, qd.view(), kd.view(), vd.view(), double{scale}, true, no_padding, o_ref.view(),
                              lse_ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 4> o({b, s, hq, dh});
      tensor<float, 3> lse({b, hq, s});
      auto call = [&] {
        kernels<B>::attention_forward(be, q.view(), k.view(), v.view(), scale, true, no_padding, o.view(), lse.view());
      };
      call();
      agreement g;
      g.add(o, o_ref, 1e-5, 1e-4);
      g.add(lse, lse_ref, 1e-5, 1e-5);
      t.record("attention_forward", label, shape, g, t.time(call), flops, unit::flop);
    });
    const auto o = narrow(o_ref);
    const auto lse = narrow(lse_ref);
    const auto od = widen(o);
    const auto lsed = widen(lse);
    tensor<double, 4> dq_ref({b, s, hq, dh}), dk_ref({b, l, hkv, dh}), dv_ref({b, l, hkv, dh});
    oracle::attention_backward(ob, qd.view(), kd.view(), vd.view(), od.view(), doutd.view(), lsed.view(), double{scale},
                               true, no_padding, dq_ref.view(), dk_ref.view(), dv_ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 4> dq({b, s, hq, dh}), dk({b, l, hkv, dh}), dv({b, l, hkv, dh});
      auto call = [&] {
        kernels<B>::attention_backward(be, q.view(), k.view(), v.view(), o.view(), dout.view(), lse.view(), scale, true,
                                       no_padding, dq.view(), dk.view(), dv.view());
      };
      call();
      agreement g;
      g.add(dq, dq_ref, 1e-5, 1e-4);
      g.add(dk, dk_ref, 1e-5, 1e-4);
      g.add(dv, dv_ref, 1e-5, 1e-4);
      t.record("attention_backward", label, shape, g, t.time(call), 2.5 * flops, unit::flop);
    });
  } else {
    t.missing("attention");
  }
}

template <class O>
void gru_family(tour& t) {
  using oracle = kernels<O>;
  const O ob{};
  const index_t n = t.pick(256, 32), h = t.pick(512, 64);
  const std::string shape = str("N=", n, " H=", h);
  const double nh = static_cast<double>(n * h);
  auto gx = t.uniform<float, 2>({n, 3 * h}, -2, 2);  // (N,3H) = x·W_ihᵀ + b_ih
  auto gh = t.uniform<float, 2>({n, 3 * h}, -2, 2);  // (N,3H) = h·W_hhᵀ + b_hh
  auto hp = t.uniform<float, 2>({n, h});             // (N,H)
  auto dh_out = t.uniform<float, 2>({n, h});
  auto gxd = widen(gx), ghd = widen(gh), hpd = widen(hp), dh_outd = widen(dh_out);

  if constexpr (requires(tensor<double, 2> h_out) {
                  oracle::gru_cell_forward(ob, gxd.view(), ghd.view(), hpd.view(), h_out.view());
                }) {
    tensor<double, 2> h_ref({n, h}), dgx_ref({n, 3 * h}), dgh_ref({n, 3 * h}), dh_ref({n, h});
    oracle::gru_cell_forward(ob, gxd.view(), ghd.view(), hpd.view(), h_ref.view());
    oracle::gru_cell_backward(ob, gxd.view(), ghd.view(), hpd.view(), dh_outd.view(), dgx_ref.view(), dgh_ref.view(),
                              dh_ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> h_out({n, h});
      auto call = [&] { kernels<B>::gru_cell_forward(be, gx.view(), gh.view(), hp.view(), h_out.view()); };
      call();
      agreement g;
      g.add(h_out, h_ref, 1e-6, 1e-5);
      t.record("gru_cell_forward", label, shape, g, t.time(call), f4 * 8 * nh, unit::byte);
    });
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> dgx({n, 3 * h}), dgh({n, 3 * h}), dh({n, h});
      auto call = [&] {
        kernels<B>::gru_cell_backward(be, gx.view(), gh.view(), hp.view(), dh_out.view(), dgx.view(), dgh.view(),
                                      dh.view());
      };
      call();
      agreement g;
      g.add(dgx, dgx_ref, 1e-6, 1e-5);
      g.add(dgh, dgh_ref, 1e-6, 1e-5);
      g.add(dh, dh_ref, 1e-6, 1e-5);
      t.record("gru_cell_backward", label, shape, g, t.time(call), f4 * 16 * nh, unit::byte);
    });
  } else {
    t.missing("gru_cell");
  }
}

template <class O>
void embedding_family(tour& t) {
  using oracle = kernels<O>;
  const O ob{};
  const index_t vocab = t.pick(8192, 512), d = t.pick(512, 64), n = t.pick(2048, 128);
  const std::string shape = str("V=", vocab, " D=", d, " N=", n);
  auto table = t.uniform<float, 2>({vocab, d});                      // (V,D)
  auto ids = t.integers<1>({n}, static_cast<std::uint32_t>(vocab));  // (N)
  auto dout = t.uniform<float, 2>({n, d});                           // (N,D)
  auto tabled = widen(table), doutd = widen(dout);
  const double rows = static_cast<double>(n * d);

  if constexpr (requires(tensor<double, 2> out) {
                  oracle::embedding_forward(ob, tabled.view(), ids.view(), out.view());
                }) {
    tensor<double, 2> out_ref({n, d}), dtable_ref({vocab, d});
    oracle::embedding_forward(ob, tabled.view(), ids.view(), out_ref.view());
    oracle::embedding_backward(ob, ids.view(), doutd.view(), dtable_ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> out({n, d});
      auto call = [&] { kernels<B>::embedding_forward(be, table.view(), ids.view(), out.view()); };
      call();
      agreement g;
      g.add(out, out_ref, 0, 0);  // a copy: exact
      t.record("embedding_forward", label, shape, g, t.time(call), f4 * 2 * rows, unit::byte);
    });
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> dtable({vocab, d});
      auto call = [&] { kernels<B>::embedding_backward(be, ids.view(), dout.view(), dtable.view()); };
      call();
      agreement g;
      g.add(dtable, dtable_ref, 1e-6, 1e-6);  // a few rows collect several adds
      t.record("embedding_backward", label, shape, g, t.time(call), f4 * 3 * rows, unit::byte);
    });
  } else {
    t.missing("embedding");
  }
}

template <class O>
void cross_entropy_family(tour& t) {
  using oracle = kernels<O>;
  const O ob{};
  const index_t n = t.pick(64, 16), vocab = t.pick(32000, 4096);
  const std::string shape = dims(n, vocab);
  constexpr std::int32_t ignore = -100;
  auto logits = t.uniform<float, 2>({n, vocab}, -8, 8);  // (N,V)
  auto targets = t.integers<1>({n}, static_cast<std::uint32_t>(vocab));
  targets(0) = ignore;  // one padded row
  auto logitsd = widen(logits);
  const double nv = static_cast<double>(n * vocab);

  if constexpr (requires(tensor<double, 1> loss) {
                  oracle::cross_entropy_forward(ob, logitsd.view(), targets.view(), ignore, loss.view(), loss.view());
                }) {
    tensor<double, 1> loss_ref({n}), lse_ref({n});
    const index_t counted =
        oracle::cross_entropy_forward(ob, logitsd.view(), targets.view(), ignore, loss_ref.view(), lse_ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 1> loss({n}), lse({n});
      index_t got = 0;
      auto call = [&] {
        got = kernels<B>::cross_entropy_forward(be, logits.view(), targets.view(), ignore, loss.view(), lse.view());
      };
      call();
      agreement g;
      g.add(loss, loss_ref, 1e-5, 1e-5);
      g.add(lse, lse_ref, 1e-5, 1e-5);
      g.add_value(static_cast<double>(got), static_cast<double>(counted), 0, 0);
      t.record("cross_entropy_forward", label, shape, g, t.time(call), f4 * nv, unit::byte);
    });
    // Backward of the mean loss: dloss = 1/counted on every row.
    const auto lse = narrow(lse_ref);
    const auto lsed = widen(lse);
    tensor<float, 1> dloss({n});
    for (auto& x : dloss) x = 1.0f / static_cast<float>(counted);
    const auto dlossd = widen(dloss);
    tensor<double, 2> dlogits_ref({n, vocab});
    oracle::cross_entropy_backward(ob, logitsd.view(), targets.view(), lsed.view(), ignore, dlossd.view(),
                                   dlogits_ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> dlogits({n, vocab});
      auto call = [&] {
        kernels<B>::cross_entropy_backward(be, logits.view(), targets.view(), lse.view(), ignore, dloss.view(),
                                           dlogits.view());
      };
      call();
      agreement g;
      g.add(dlogits, dlogits_ref, 1e-7, 1e-5);
      t.record("cross_entropy_backward", label, shape, g, t.time(call), f4 * 2 * nv, unit::byte);
    });
  } else {
    t.missing("cross_entropy");
  }
}

template <class O>
void optimizer_family(tour& t) {
  using oracle = kernels<O>;
  const O ob{};
  const index_t p = t.pick(1 << 20, 1 << 14);
  const std::string shape = str("P=", p);
  auto param = t.uniform<float, 1>({p});
  auto grad = t.uniform<float, 1>({p});
  auto m = t.uniform<float, 1>({p}, -0.1, 0.1);
  auto v = t.uniform<float, 1>({p}, 0, 0.01);
  const backend::adam_config cfg{.lr = 1e-3f, .weight_decay = 0.01f};
  constexpr std::int64_t step = 3;

  if constexpr (requires(tensor<double, 1> x) {
                  oracle::adam_step(ob, x.view(), x.view(), x.view(), x.view(), cfg, step);
                }) {
    for (const bool decoupled : {false, true}) {
      auto param_ref = widen(param), m_ref = widen(m), v_ref = widen(v);
      const auto gradd = widen(grad);
      if (decoupled)
        oracle::adamw_step(ob, param_ref.view(), gradd.view(), m_ref.view(), v_ref.view(), cfg, step);
      else
        oracle::adam_step(ob, param_ref.view(), gradd.view(), m_ref.view(), v_ref.view(), cfg, step);
      t.each_backend([&]<class B>(const B& be, std::string_view label) {
        auto param1 = param, m1 = m, v1 = v;
        auto call = [&] {
          if (decoupled)
            kernels<B>::adamw_step(be, param1.view(), grad.view(), m1.view(), v1.view(), cfg, step);
          else
            kernels<B>::adam_step(be, param1.view(), grad.view(), m1.view(), v1.view(), cfg, step);
        };
        call();
        agreement g;
        g.add(param1, param_ref, 1e-6, 1e-6);
        g.add(m1, m_ref, 1e-7, 1e-6);
        g.add(v1, v_ref, 1e-8, 1e-6);
        t.record(decoupled ? "adamw_step" : "adam_step", label, shape, g, t.time(call), f4 * 7 * static_cast<double>(p),
                 unit::byte);
      });
    }
  } else {
    t.missing("adam_step/adamw_step");
  }
}

template <class O>
void topk_family(tour& t) {
  using oracle = kernels<O>;
  const O ob{};
  const index_t n = t.pick(64, 16), l = t.pick(32000, 4096), k = 50;
  const std::string shape = dims(n, l) + " k=50";
  auto x = t.uniform<float, 2>({n, l});  // (N,L): distinct values, so the order is unique
  auto dvalues = t.uniform<float, 2>({n, k});
  auto xd = widen(x), dvaluesd = widen(dvalues);

  if constexpr (requires(tensor<double, 2> values, tensor<std::int32_t, 2> indices) {
                  oracle::topk_forward(ob, xd.view(), k, values.view(), indices.view());
                }) {
    tensor<double, 2> values_ref({n, k}), dx_ref({n, l});
    tensor<std::int32_t, 2> indices_ref({n, k});
    oracle::topk_forward(ob, xd.view(), k, values_ref.view(), indices_ref.view());
    oracle::topk_backward(ob, indices_ref.view(), dvaluesd.view(), dx_ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> values({n, k});
      tensor<std::int32_t, 2> indices({n, k});
      auto call = [&] { kernels<B>::topk_forward(be, x.view(), k, values.view(), indices.view()); };
      call();
      agreement g;
      g.add(values, values_ref, 0, 0);  // selected, not computed: exact
      g.add_exact(indices, indices_ref);
      t.record("topk_forward", label, shape, g, t.time(call), f4 * static_cast<double>(n * l), unit::byte);
    });
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> dx({n, l});
      auto call = [&] { kernels<B>::topk_backward(be, indices_ref.view(), dvalues.view(), dx.view()); };
      call();
      agreement g;
      g.add(dx, dx_ref, 0, 0);  // scattered, not computed: exact
      t.record("topk_backward", label, shape, g, t.time(call), f4 * 3 * static_cast<double>(n * k), unit::byte);
    });
  } else {
    t.missing("topk");
  }
}

}  // namespace

void tour_model(tour& t) {
  attention_family<backend::scalar>(t);
  gru_family<backend::scalar>(t);
  embedding_family<backend::scalar>(t);
  cross_entropy_family<backend::scalar>(t);
  optimizer_family<backend::scalar>(t);
  topk_family<backend::scalar>(t);
}

}  // namespace slim::cli
