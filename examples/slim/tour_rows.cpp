// slim kernels tour: the row-wise families (norm, rope, softmax, activation, dropout), forward and backward.
#include "tour.hpp"

namespace slim::cli {
namespace {

constexpr double f4 = sizeof(float);  // bytes per element

// O is the oracle's tag, a template parameter so that an op missing from the kernel set is detected by
// the `requires` checks instead of breaking the build.
template <class O>
void norm_family(tour& t) {
  using oracle = kernels<O>;
  const O ob{};
  const index_t n = t.pick(256, 32), d = t.pick(4096, 512);
  const std::string shape = dims(n, d);
  const double nd = static_cast<double>(n * d);
  auto x = t.uniform<float, 2>({n, d});          // (N,D)
  auto w = t.uniform<float, 1>({d}, 0.5, 1.5);   // (D)
  auto b = t.uniform<float, 1>({d}, -0.5, 0.5);  // (D)
  auto dy = t.uniform<float, 2>({n, d});         // (N,D)
  auto xd = widen(x), dyd = widen(dy);
  auto wd = widen(w), bd = widen(b);
  constexpr float eps = 1e-5f;

  if constexpr (requires(tensor<double, 2> y, tensor<double, 1> r) {
                  oracle::rmsnorm_forward(ob, xd.view(), wd.view(), 1e-5, y.view(), r.view());
                }) {
    tensor<double, 2> y_ref({n, d});
    tensor<double, 1> rstd_ref({n});
    oracle::rmsnorm_forward(ob, xd.view(), wd.view(), double{eps}, y_ref.view(), rstd_ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> y({n, d});
      tensor<float, 1> rstd({n});
      auto call = [&] { kernels<B>::rmsnorm_forward(be, x.view(), w.view(), eps, y.view(), rstd.view()); };
      call();
      agreement g;
      g.add(y, y_ref, 1e-5, 1e-5);
      g.add(rstd, rstd_ref, 1e-5, 1e-5);
      t.record("rmsnorm_forward", label, shape, g, t.time(call), f4 * (2 * nd + d + n), unit::byte);
    });
    // Backward from the oracle's rstd (rounded to float), so every backend sees the same inputs.
    const auto rstd = narrow(rstd_ref);
    const auto rstdd = widen(rstd);
    tensor<double, 2> dx_ref({n, d});
    tensor<double, 1> dw_ref({d});
    oracle::rmsnorm_backward(ob, xd.view(), wd.view(), rstdd.view(), dyd.view(), dx_ref.view(), dw_ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> dx({n, d});
      tensor<float, 1> dw({d});
      auto call = [&] {
        kernels<B>::rmsnorm_backward(be, x.view(), w.view(), rstd.view(), dy.view(), dx.view(), dw.view());
      };
      call();
      agreement g;
      g.add(dx, dx_ref, 1e-5, 1e-4);
      g.add(dw, dw_ref, 1e-4, 1e-4);
      t.record("rmsnorm_backward", label, shape, g, t.time(call), f4 * (4 * nd + 3.0 * d + n), unit::byte);
    });
  } else {
    t.missing("rmsnorm");
  }

  if constexpr (requires(tensor<double, 2> y, tensor<double, 1> r) {
                  oracle::layernorm_forward(ob, xd.view(), wd.view(), bd.view(), 1e-5, y.view(), r.view(), r.view());
                }) {
    tensor<double, 2> y_ref({n, d});
    tensor<double, 1> mean_ref({n}), rstd_ref({n});
    oracle::layernorm_forward(ob, xd.view(), wd.view(), bd.view(), double{eps}, y_ref.view(), mean_ref.view(),
                              rstd_ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> y({n, d});
      tensor<float, 1> mean({n}), rstd({n});
      auto call = [&] {
        kernels<B>::layernorm_forward(be, x.view(), w.view(), b.view(), eps, y.view(), mean.view(), rstd.view());
      };
      call();
      agreement g;
      g.add(y, y_ref, 1e-5, 1e-5);
      g.add(mean, mean_ref, 1e-6, 1e-5);
      g.add(rstd, rstd_ref, 1e-5, 1e-5);
      t.record("layernorm_forward", label, shape, g, t.time(call), f4 * (2 * nd + 2.0 * d + 2.0 * n), unit::byte);
    });
    const auto mean = narrow(mean_ref);
    const auto rstd = narrow(rstd_ref);
    const auto meand = widen(mean);
    const auto rstdd = widen(rstd);
    tensor<double, 2> dx_ref({n, d});
    tensor<double, 1> dw_ref({d}), db_ref({d});
    oracle::layernorm_backward(ob, xd.view(), wd.view(), meand.view(), rstdd.view(), dyd.view(), dx_ref.view(),
                               dw_ref.view(), db_ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> dx({n, d});
      tensor<float, 1> dw({d}), db({d});
      auto call = [&] {
        kernels<B>::layernorm_backward(be, x.view(), w.view(), mean.view(), rstd.view(), dy.view(), dx.view(),
                                       dw.view(), db.view());
      };
      call();
      agreement g;
      g.add(dx, dx_ref, 1e-5, 1e-4);
      g.add(dw, dw_ref, 1e-4, 1e-4);
      g.add(db, db_ref, 1e-4, 1e-4);
      t.record("layernorm_backward", label, shape, g, t.time(call), f4 * (4 * nd + 5.0 * d + 2.0 * n), unit::byte);
    });
  } else {
    t.missing("layernorm");
  }
}

template <class O>
void rope_family(tour& t) {
  using oracle = kernels<O>;
  const O ob{};
  const index_t n = t.pick(256, 32), h = 8, dh = 64;
  const std::string shape = dims(n, h, dh);
  const double size = static_cast<double>(n * h * dh);
  auto x = t.uniform<float, 3>({n, h, dh});  // (N,H,Dh)
  tensor<std::int32_t, 1> pos({n});          // positions after a 100-token KV cache
  for (index_t i = 0; i < n; ++i) pos(i) = static_cast<std::int32_t>(100 + i);
  tensor<float, 1> inv_freq({dh / 2});
  tensor<double, 1> inv_freqd({dh / 2});
  backend::rope_inverse_frequencies(static_cast<int>(dh), 10000.0, inv_freq.data());
  backend::rope_inverse_frequencies(static_cast<int>(dh), 10000.0, inv_freqd.data());
  auto xd = widen(x);

  if constexpr (requires(tensor<double, 3> y) {
                  oracle::rope_forward(ob, xd.view(), pos.view(), inv_freqd.view(), y.view());
                }) {
    tensor<double, 3> y_ref({n, h, dh}), dx_ref({n, h, dh});
    oracle::rope_forward(ob, xd.view(), pos.view(), inv_freqd.view(), y_ref.view());
    oracle::rope_backward(ob, xd.view(), pos.view(), inv_freqd.view(), dx_ref.view());  // x plays dy
    // Float angles pos·inv_freq (up to ~350 rad) carry ~1e-5 rad of rounding: a tolerance of 1e-4.
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 3> y({n, h, dh});
      auto call = [&] { kernels<B>::rope_forward(be, x.view(), pos.view(), inv_freq.view(), y.view()); };
      call();
      agreement g;
      g.add(y, y_ref, 1e-4, 1e-4);
      t.record("rope_forward", label, shape, g, t.time(call), f4 * 2 * size, unit::byte);
    });
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 3> dx({n, h, dh});
      auto call = [&] { kernels<B>::rope_backward(be, x.view(), pos.view(), inv_freq.view(), dx.view()); };
      call();
      agreement g;
      g.add(dx, dx_ref, 1e-4, 1e-4);
      t.record("rope_backward", label, shape, g, t.time(call), f4 * 3 * size, unit::byte);
    });
  } else {
    t.missing("rope");
  }
}

template <class O>
void softmax_family(tour& t) {
  using oracle = kernels<O>;
  const O ob{};
  const index_t bt = 8, s = t.pick(256, 32), l = s;
  const std::string shape = dims(bt, s, l) + " causal";
  const double size = static_cast<double>(bt * s * l);
  auto x = t.uniform<float, 3>({bt, s, l}, -4, 4);  // (Bt,S,L)
  auto dy = t.uniform<float, 3>({bt, s, l});
  auto xd = widen(x), dyd = widen(dy);
  const float scale = 0.125f;

  if constexpr (requires(tensor<double, 3> y) { oracle::softmax_forward(ob, xd.view(), 0.125, true, y.view()); }) {
    tensor<double, 3> y_ref({bt, s, l});
    oracle::softmax_forward(ob, xd.view(), double{scale}, true, y_ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 3> y({bt, s, l});
      auto call = [&] { kernels<B>::softmax_forward(be, x.view(), scale, true, y.view()); };
      call();
      agreement g;
      g.add(y, y_ref, 1e-6, 1e-5);
      t.record("softmax_forward", label, shape, g, t.time(call), f4 * 2 * size, unit::byte);
    });
    const auto y = narrow(y_ref);
    const auto yd = widen(y);
    tensor<double, 3> dx_ref({bt, s, l});
    oracle::softmax_backward(ob, yd.view(), dyd.view(), double{scale}, dx_ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 3> dx({bt, s, l});
      auto call = [&] { kernels<B>::softmax_backward(be, y.view(), dy.view(), scale, dx.view()); };
      call();
      agreement g;
      g.add(dx, dx_ref, 1e-6, 1e-5);
      t.record("softmax_backward", label, shape, g, t.time(call), f4 * 4 * size, unit::byte);
    });
  } else {
    t.missing("softmax");
  }
}

template <class O>
void activation_family(tour& t) {
  using oracle = kernels<O>;
  const O ob{};
  const index_t n = t.pick(256, 32), d = t.pick(4096, 512);
  const std::string shape = dims(n, d);
  const double nd = static_cast<double>(n * d);
  auto x = t.uniform<float, 2>({n, d}, -6, 6);  // (N,D): covers both tails of the curves
  auto up = t.uniform<float, 2>({n, d});
  auto dy = t.uniform<float, 2>({n, d});
  auto xd = widen(x), upd = widen(up), dyd = widen(dy);
  constexpr double atol = 1e-6, rtol = 1e-5;

  // A unary forward y = f(x) and its backward dx += f'(x)·dy, on every backend.
  auto unary = [&](const char* fwd_name, const char* bwd_name, auto fwd, auto bwd) {
    tensor<double, 2> y_ref({n, d}), dx_ref({n, d});
    fwd(ob, xd, y_ref);
    bwd(ob, xd, dyd, dx_ref);
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> y({n, d});
      auto call = [&] { fwd(be, x, y); };
      call();
      agreement g;
      g.add(y, y_ref, atol, rtol);
      t.record(fwd_name, label, shape, g, t.time(call), f4 * 2 * nd, unit::byte);
    });
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> dx({n, d});
      auto call = [&] { bwd(be, x, dy, dx); };
      call();
      agreement g;
      g.add(dx, dx_ref, atol, rtol);
      t.record(bwd_name, label, shape, g, t.time(call), f4 * 3 * nd, unit::byte);
    });
  };

  if constexpr (requires(tensor<double, 2> y) { oracle::silu_forward(ob, xd.view(), y.view()); }) {
    unary(
        "silu_forward", "silu_backward",
        []<class B, class T>(const B& be, tensor<T, 2>& in, tensor<T, 2>& out) {
          kernels<B>::silu_forward(be, in.view(), out.view());
        },
        []<class B, class T>(const B& be, tensor<T, 2>& in, tensor<T, 2>& g, tensor<T, 2>& out) {
          kernels<B>::silu_backward(be, in.view(), g.view(), out.view());
        });
  } else {
    t.missing("silu");
  }

  if constexpr (requires(tensor<double, 2> y) {
                  oracle::gelu_forward(ob, xd.view(), backend::gelu_approximation::tanh, y.view());
                }) {
    for (const auto approx : {backend::gelu_approximation::tanh, backend::gelu_approximation::erf}) {
      const bool tanh = approx == backend::gelu_approximation::tanh;
      unary(
          tanh ? "gelu_forward tanh" : "gelu_forward erf", tanh ? "gelu_backward tanh" : "gelu_backward erf",
          [approx]<class B, class T>(const B& be, tensor<T, 2>& in, tensor<T, 2>& out) {
            kernels<B>::gelu_forward(be, in.view(), approx, out.view());
          },
          [approx]<class B, class T>(const B& be, tensor<T, 2>& in, tensor<T, 2>& g, tensor<T, 2>& out) {
            kernels<B>::gelu_backward(be, in.view(), g.view(), approx, out.view());
          });
    }
  } else {
    t.missing("gelu");
  }

  if constexpr (requires(tensor<double, 2> y) { oracle::swiglu_forward(ob, xd.view(), upd.view(), y.view()); }) {
    tensor<double, 2> y_ref({n, d}), dgate_ref({n, d}), dup_ref({n, d});
    oracle::swiglu_forward(ob, xd.view(), upd.view(), y_ref.view());
    oracle::swiglu_backward(ob, xd.view(), upd.view(), dyd.view(), dgate_ref.view(), dup_ref.view());
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> y({n, d});
      auto call = [&] { kernels<B>::swiglu_forward(be, x.view(), up.view(), y.view()); };
      call();
      agreement g;
      g.add(y, y_ref, atol, rtol);
      t.record("swiglu_forward", label, shape, g, t.time(call), f4 * 3 * nd, unit::byte);
    });
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> dgate({n, d}), dup({n, d});
      auto call = [&] { kernels<B>::swiglu_backward(be, x.view(), up.view(), dy.view(), dgate.view(), dup.view()); };
      call();
      agreement g;
      g.add(dgate, dgate_ref, atol, rtol);
      g.add(dup, dup_ref, atol, rtol);
      t.record("swiglu_backward", label, shape, g, t.time(call), f4 * 5 * nd, unit::byte);
    });
  } else {
    t.missing("swiglu");
  }
}

template <class O>
void dropout_family(tour& t) {
  using oracle = kernels<O>;
  const O ob{};
  const index_t n = t.pick(256, 32), d = t.pick(4096, 512);
  const std::string shape = dims(n, d) + " p=0.1";
  const double nd = static_cast<double>(n * d);
  auto x = t.uniform<float, 2>({n, d});
  auto xd = widen(x);
  constexpr float p = 0.1f;
  constexpr std::uint64_t seed = 42, offset = 1000;

  if constexpr (requires(tensor<double, 2> y) { oracle::dropout_forward(ob, xd.view(), p, seed, offset, y.view()); }) {
    tensor<double, 2> y_ref({n, d}), dx_ref({n, d});
    oracle::dropout_forward(ob, xd.view(), p, seed, offset, y_ref.view());
    oracle::dropout_backward(ob, xd.view(), p, seed, offset, dx_ref.view());  // x plays dy
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> y({n, d});
      auto call = [&] { kernels<B>::dropout_forward(be, x.view(), p, seed, offset, y.view()); };
      call();
      agreement g;
      g.add(y, y_ref, 1e-7, 1e-6);
      t.record("dropout_forward", label, shape, g, t.time(call), f4 * 2 * nd, unit::byte);
    });
    t.each_backend([&]<class B>(const B& be, std::string_view label) {
      tensor<float, 2> dx({n, d});
      auto call = [&] { kernels<B>::dropout_backward(be, x.view(), p, seed, offset, dx.view()); };
      call();
      agreement g;
      g.add(dx, dx_ref, 1e-7, 1e-6);
      t.record("dropout_backward", label, shape, g, t.time(call), f4 * 3 * nd, unit::byte);
    });
  } else {
    t.missing("dropout");
  }
}

}  // namespace

void tour_rows(tour& t) {
  norm_family<backend::scalar>(t);
  rope_family<backend::scalar>(t);
  softmax_family<backend::scalar>(t);
  activation_family<backend::scalar>(t);
  dropout_family<backend::scalar>(t);
}

}  // namespace slim::cli
