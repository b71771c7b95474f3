// slim — xsimd kernels: RMSNorm and LayerNorm (forward beside backward), float only; other element types
// fall back to Base (scalar). Rows are split over be.pool in chunks that depend on the shape only; each row's
// reductions run in a fixed order (4 vector accumulators over the row, then a horizontal sum), and the
// weight gradients are summed per fixed chunk of rows and the chunks combined in order, so the results do
// not depend on the thread count. They differ from the scalar oracle's (double, index order) by rounding.
// Memory: a row is read from memory once (later passes find it in cache, and the next row is prefetched
// meanwhile); an output of 32 MiB or more is written with streaming stores, which skip reading the
// destination before overwriting it. Neither changes a value.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "slim/backend/simd/row_io.hpp"

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "slim/backend/scalar/norm.hpp"
#include "slim/core/tensor.hpp"
#include "slim/core/thread_pool.hpp"

namespace slim::backend::detail {

template <class Arch, class Base>
struct simd_norm : Base {
  using Base::layernorm_backward;
  using Base::layernorm_forward;
  using Base::rmsnorm_backward;
  using Base::rmsnorm_forward;

  /// RMSNorm: rstd = 1/√(mean(x²)+ε), y = x·rstd·w.                  x,y (N,D), w (D), rstd (N) or absent
  static void rmsnorm_forward(const simd<Arch>& be, matrix_view<const float> x, vector_view<const float> w, float eps,
                              matrix_view<float> y, vector_view<float> rstd) {
    check_rmsnorm_forward<float>(x, w, eps, y, rstd);
    const index_t n = x.extent(0), d = x.extent(1);
    const bool save = !norm_absent(rstd);
    const bool stream = io::streams(y);
    const float* wp = w.data_handle();
    parallel_for(be.pool, n, rows_per_task(d), [&](index_t r0, index_t r1) {
      for (index_t r = r0; r < r1; ++r) {
        const float* xr = x.data_handle() + r * x.stride(0);
        float* yr = y.data_handle() + r * y.stride(0);
        const float* next = r + 1 < r1 ? xr + x.stride(0) : nullptr;  // fetched while this row is in cache
        const float ss = sum_products(xr, xr, d);
        const float rs = 1.0f / std::sqrt((d > 0 ? ss / static_cast<float>(d) : 0.0f) + eps);
        const batch vrs(rs);
        io::store_blocks(yr, d, stream, [&](index_t j, index_t m) {
          prefetch(next, j);
          return (io::load(xr + j, m) * vrs) * io::load(wp + j, m);
        });
        if (save) rstd(r) = rs;
      }
      if (stream) io::stream_fence();
    });
  }

  /// dx += rstd·(w⊙dy) − x·rstd³·mean(x⊙w⊙dy); dw += Σₙ dy⊙x·rstd.   shapes as forward; dx, dw may be absent
  static void rmsnorm_backward(const simd<Arch>& be, matrix_view<const float> x, vector_view<const float> w,
                               vector_view<const float> rstd, matrix_view<const float> dy, matrix_view<float> dx,
                               vector_view<float> dw) {
    check_rmsnorm_backward<float>(x, w, rstd, dy, dx, dw);
    const index_t n = x.extent(0), d = x.extent(1);
    const bool want_dx = !norm_absent(dx), want_dw = !norm_absent(dw);
    const float* wp = w.data_handle();
    row_chunks ch(n, d, want_dw ? 1 : 0);
    parallel_for(be.pool, n, ch.rows, [&](index_t r0, index_t r1) {
      float* part = ch.partial(0, r0);
      for (index_t r = r0; r < r1; ++r) {
        const float* xr = x.data_handle() + r * x.stride(0);
        const float* dyr = dy.data_handle() + r * dy.stride(0);
        const bool more = r + 1 < r1;  // the next row's x and dy are fetched while this row is in cache
        const float* next_x = more ? xr + x.stride(0) : nullptr;
        const float* next_dy = more ? dyr + dy.stride(0) : nullptr;
        const float rs = rstd(r);
        const batch vrs(rs);
        if (want_dx) {
          float* dxr = dx.data_handle() + r * dx.stride(0);
          const float dot = sum_products3(xr, wp, dyr, d);
          const batch c(d > 0 ? rs * rs * rs * dot / static_cast<float>(d) : 0.0f);
          for_each_block(d, [&](index_t j, index_t m) {
            prefetch(next_x, j);
            prefetch(next_dy, j);
            const batch xv = io::load(xr + j, m);
            const batch t = xsimd::fnma(c, xv, vrs * (io::load(wp + j, m) * io::load(dyr + j, m)));
            io::store(dxr + j, m, io::load(dxr + j, m) + t);
          });
        }
        if (want_dw)
          for_each_block(d, [&](index_t j, index_t m) {
            io::store(part + j, m, xsimd::fma(io::load(dyr + j, m) * io::load(xr + j, m), vrs, io::load(part + j, m)));
          });
      }
    });
    if (want_dw) ch.add_to(0, dw.data_handle());
  }

  /// LayerNorm: μ = mean(x), rstd = 1/√(var(x)+ε) (biased var), y = (x−μ)·rstd·w + b.
  ///                                                   x,y (N,D), w,b (D), mean,rstd (N) or absent
  static void layernorm_forward(const simd<Arch>& be, matrix_view<const float> x, vector_view<const float> w,
                                vector_view<const float> b, float eps, matrix_view<float> y, vector_view<float> mean,
                                vector_view<float> rstd) {
    check_layernorm_forward<float>(x, w, b, eps, y, mean, rstd);
    const index_t n = x.extent(0), d = x.extent(1);
    const bool save_mean = !norm_absent(mean), save_rstd = !norm_absent(rstd);
    const bool stream = io::streams(y);
    const float* wp = w.data_handle();
    const float* bp = b.data_handle();
    parallel_for(be.pool, n, rows_per_task(d), [&](index_t r0, index_t r1) {
      for (index_t r = r0; r < r1; ++r) {
        const float* xr = x.data_handle() + r * x.stride(0);
        float* yr = y.data_handle() + r * y.stride(0);
        const float* next = r + 1 < r1 ? xr + x.stride(0) : nullptr;  // fetched while this row is in cache
        const float mu = d > 0 ? sum(xr, d) / static_cast<float>(d) : 0.0f;
        const float ss = sum_squared_deviations(xr, mu, d);
        const float rs = 1.0f / std::sqrt((d > 0 ? ss / static_cast<float>(d) : 0.0f) + eps);
        const batch vmu(mu), vrs(rs);
        io::store_blocks(yr, d, stream, [&](index_t j, index_t m) {
          prefetch(next, j);
          return xsimd::fma((io::load(xr + j, m) - vmu) * vrs, io::load(wp + j, m), io::load(bp + j, m));
        });
        if (save_mean) mean(r) = mu;
        if (save_rstd) rstd(r) = rs;
      }
      if (stream) io::stream_fence();
    });
  }

  /// x̂ = (x−μ)·rstd, g = w⊙dy: dx += rstd·(g − mean(g) − x̂·mean(g⊙x̂)); dw += Σₙ dy⊙x̂; db += Σₙ dy.
  ///                                                   shapes as forward; dx, dw, db may be absent
  static void layernorm_backward(const simd<Arch>& be, matrix_view<const float> x, vector_view<const float> w,
                                 vector_view<const float> mean, vector_view<const float> rstd,
                                 matrix_view<const float> dy, matrix_view<float> dx, vector_view<float> dw,
                                 vector_view<float> db) {
    check_layernorm_backward<float>(x, w, mean, rstd, dy, dx, dw, db);
    const index_t n = x.extent(0), d = x.extent(1);
    const bool want_dx = !norm_absent(dx), want_dw = !norm_absent(dw), want_db = !norm_absent(db);
    const float* wp = w.data_handle();
    row_chunks chunks(n, d, (want_dw || want_db) ? 2 : 0);  // partial sums 0: dw, 1: db
    parallel_for(be.pool, n, chunks.rows, [&](index_t r0, index_t r1) {
      float* pw = chunks.partial(0, r0);
      float* pb = chunks.partial(1, r0);
      for (index_t r = r0; r < r1; ++r) {
        const float* xr = x.data_handle() + r * x.stride(0);
        const float* dyr = dy.data_handle() + r * dy.stride(0);
        const bool more = r + 1 < r1;  // the next row's x and dy are fetched while this row is in cache
        const float* next_x = more ? xr + x.stride(0) : nullptr;
        const float* next_dy = more ? dyr + dy.stride(0) : nullptr;
        const float mu = mean(r), rs = rstd(r);
        const batch vmu(mu), vrs(rs);
        if (want_dx) {
          float* dxr = dx.data_handle() + r * dx.stride(0);
          batch sg(0.0f), sgx(0.0f);
          for_each_block(d, [&](index_t j, index_t m) {  // padding lanes load 0: g = 0 adds nothing
            const batch g = io::load(wp + j, m) * io::load(dyr + j, m);
            sg += g;
            sgx = xsimd::fma(g, (io::load(xr + j, m) - vmu) * vrs, sgx);
          });
          const float inv_d = d > 0 ? 1.0f / static_cast<float>(d) : 0.0f;
          const batch mg(xsimd::hadd(sg) * inv_d), mgx(xsimd::hadd(sgx) * inv_d);
          for_each_block(d, [&](index_t j, index_t m) {
            prefetch(next_x, j);
            prefetch(next_dy, j);
            const batch xh = (io::load(xr + j, m) - vmu) * vrs;
            const batch g = io::load(wp + j, m) * io::load(dyr + j, m);
            io::store(dxr + j, m, xsimd::fma(vrs, xsimd::fnma(xh, mgx, g - mg), io::load(dxr + j, m)));
          });
        }
        if (want_dw || want_db)
          for_each_block(d, [&](index_t j, index_t m) {
            const batch dyv = io::load(dyr + j, m);
            if (want_dw) io::store(pw + j, m, xsimd::fma(dyv, (io::load(xr + j, m) - vmu) * vrs, io::load(pw + j, m)));
            if (want_db) io::store(pb + j, m, io::load(pb + j, m) + dyv);
          });
      }
    });
    if (want_dw) chunks.add_to(0, dw.data_handle());
    if (want_db) chunks.add_to(1, db.data_handle());
  }

 private:
  using batch = xsimd::batch<float, Arch>;
  using io = row_io<Arch>;
  static constexpr index_t width = static_cast<index_t>(batch::size);

  /// Rows per parallel task: about 32K elements, so small problems run inline and large ones split finely.
  static index_t rows_per_task(index_t d) noexcept {
    return std::max<index_t>(1, index_t{32768} / std::max<index_t>(d, 1));
  }

  /// Loads m ≤ width floats (the rest of the lanes 0).
  /// Stores the first m ≤ width lanes.
  /// Calls f(j, m) for consecutive blocks [j, j+m) of [0, d), m = width except for the last.
  template <class F>
  static void for_each_block(index_t d, F&& f) {
    index_t j = 0;
    for (; j + width <= d; j += width) f(j, width);
    if (j < d) f(j, d - j);
  }
  /// Prefetches the cache line of p + j (no-op for a null p).
  static void prefetch(const float* p, index_t j) noexcept {
    if (p) __builtin_prefetch(p + j);
  }

  /// Σ a·b over [0, d): four accumulators over blocks of 4·width, then one per remaining block, then hadd.
  static float sum_products(const float* a, const float* b, index_t d) noexcept {
    batch s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
    index_t j = 0;
    for (; j + 4 * width <= d; j += 4 * width) {
      s0 = xsimd::fma(batch::load_unaligned(a + j), batch::load_unaligned(b + j), s0);
      s1 = xsimd::fma(batch::load_unaligned(a + j + width), batch::load_unaligned(b + j + width), s1);
      s2 = xsimd::fma(batch::load_unaligned(a + j + 2 * width), batch::load_unaligned(b + j + 2 * width), s2);
      s3 = xsimd::fma(batch::load_unaligned(a + j + 3 * width), batch::load_unaligned(b + j + 3 * width), s3);
    }
    for (; j < d; j += width) {
      const index_t m = std::min(width, d - j);
      s0 = xsimd::fma(io::load(a + j, m), io::load(b + j, m), s0);
    }
    return xsimd::hadd((s0 + s1) + (s2 + s3));
  }
  /// Σ a·b·c over [0, d), same order as sum_products.
  static float sum_products3(const float* a, const float* b, const float* c, index_t d) noexcept {
    batch s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
    index_t j = 0;
    auto at = [&](index_t k) { return batch::load_unaligned(a + k) * batch::load_unaligned(b + k); };
    for (; j + 4 * width <= d; j += 4 * width) {
      s0 = xsimd::fma(at(j), batch::load_unaligned(c + j), s0);
      s1 = xsimd::fma(at(j + width), batch::load_unaligned(c + j + width), s1);
      s2 = xsimd::fma(at(j + 2 * width), batch::load_unaligned(c + j + 2 * width), s2);
      s3 = xsimd::fma(at(j + 3 * width), batch::load_unaligned(c + j + 3 * width), s3);
    }
    for (; j < d; j += width) {
      const index_t m = std::min(width, d - j);
      s0 = xsimd::fma(io::load(a + j, m) * io::load(b + j, m), io::load(c + j, m), s0);
    }
    return xsimd::hadd((s0 + s1) + (s2 + s3));
  }
  /// Σ a over [0, d).
  static float sum(const float* a, index_t d) noexcept {
    batch s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
    index_t j = 0;
    for (; j + 4 * width <= d; j += 4 * width) {
      s0 += batch::load_unaligned(a + j);
      s1 += batch::load_unaligned(a + j + width);
      s2 += batch::load_unaligned(a + j + 2 * width);
      s3 += batch::load_unaligned(a + j + 3 * width);
    }
    for (; j < d; j += width) s0 += io::load(a + j, std::min(width, d - j));
    return xsimd::hadd((s0 + s1) + (s2 + s3));
  }
  /// Σ (a − μ)² over [0, d) (padding lanes contribute 0).
  static float sum_squared_deviations(const float* a, float mu, index_t d) noexcept {
    const batch vmu(mu);
    batch s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
    index_t j = 0;
    auto dev = [&](index_t k) { return batch::load_unaligned(a + k) - vmu; };
    for (; j + 4 * width <= d; j += 4 * width) {
      const batch c0 = dev(j), c1 = dev(j + width), c2 = dev(j + 2 * width), c3 = dev(j + 3 * width);
      s0 = xsimd::fma(c0, c0, s0);
      s1 = xsimd::fma(c1, c1, s1);
      s2 = xsimd::fma(c2, c2, s2);
      s3 = xsimd::fma(c3, c3, s3);
    }
    for (; j < d; j += width) {
      const index_t m = std::min(width, d - j);
      const batch c = xsimd::select(xsimd::batch_bool<float, Arch>(lane_below(m)), io::load(a + j, m) - vmu, batch(0.0f));
      s0 = xsimd::fma(c, c, s0);
    }
    return xsimd::hadd((s0 + s1) + (s2 + s3));
  }
  /// Lane mask: lane k is set iff k < m.
  static xsimd::batch_bool<float, Arch> lane_below(index_t m) noexcept {
    alignas(64) float idx[batch::size];
    for (std::size_t k = 0; k < batch::size; ++k) idx[k] = static_cast<float>(k);
    return batch::load_aligned(idx) < batch(static_cast<float>(m));
  }

  /// Fixed chunks of rows for the weight gradients: `rows` per chunk (a function of N and D only, at most
  /// 64 chunks), each with its own zeroed partial sums; add_to folds them into the gradient in chunk order.
  struct row_chunks {
    index_t rows = 1, count = 0, d = 0;
    std::vector<float, aligned_allocator<float>> sums;  // (sets, count, d)
    row_chunks(index_t n, index_t d_, int sets) : d{d_} {
      rows = std::max(rows_per_task(d), (n + 63) / 64);
      count = chunk_count(n, rows);
      sums.assign(static_cast<std::size_t>(sets * count * d), 0.0f);
    }
    /// The partial sums of set `s` for the chunk that starts at row r0 (nullptr when sets were not allocated).
    float* partial(int s, index_t r0) noexcept {
      if (sums.empty()) return nullptr;
      return sums.data() + (static_cast<index_t>(s) * count + r0 / rows) * d;
    }
    void add_to(int s, float* out) const noexcept {
      for_each_block(d, [&](index_t j, index_t m) {
        batch acc(0.0f);
        for (index_t c = 0; c < count; ++c) acc += io::load(sums.data() + (static_cast<index_t>(s) * count + c) * d + j, m);
        io::store(out + j, m, io::load(out + j, m) + acc);
      });
    }
  };
};

}  // namespace slim::backend::detail
