// slim — xsimd kernels: grouped-query attention (forward beside backward). Ops not defined here fall back to
// Base (scalar). Conventions (visibility, GQA, padding, empty rows) as in the scalar header.
//
// Forward (flash-style, no S×L matrix): a task owns the queries [i0, i0+QB) of every query head of one KV
// group (b, g). Its rows (head, query) are processed four at a time against key blocks of BK = 4·W keys;
// a block of K is packed transposed (Dh × BK) so scores are vectorised along keys (broadcast q[d], FMA with
// a row of Kᵀ), the running max / sum are updated per row (online softmax) and P·V is accumulated along
// the head dimension (padded to a multiple of W). Keys before kv_begin are never visited; key blocks no row
// of the task may see are skipped. A task of fewer than 8 rows (decoding: S = 1, few heads per group) takes
// its scores as dot products straight from the key rows instead, as the transposed copy would not pay.
// Backward: a task owns one (b, g): dk and dv of that KV head and dq of its query heads, so every gradient
// element is summed by one task in a fixed order (rows, then key blocks). Per key block it recomputes
// p = exp(s − lse) and dp = dout·vᵀ for four rows at a time, then dv += pᵀ·dout, dk += dsᵀ·(scale·q) in
// block accumulators and dq += ds·k in per-row accumulators.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>
#include <xsimd/xsimd.hpp>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "slim/backend/scalar/attention.hpp"
#include "slim/core/tensor.hpp"

namespace slim::backend::detail {

/// {Σ lanes of r[0], …, Σ lanes of r[W−1]} for W vectors r: xsimd's haddp, except on AVX-512, where xsimd 8.1's
/// haddp returns the sums in the wrong lanes; there each vector's halves are added and two 8 × 8 trees of
/// AVX hadds finish.
template <class Arch, class = void>
struct lane_sums {
  static xsimd::batch<float, Arch> run(const xsimd::batch<float, Arch>* r) noexcept { return xsimd::haddp(r); }
};
#if defined(__x86_64__) || defined(__i386__)
template <class Arch>
struct lane_sums<Arch, std::enable_if_t<std::is_base_of_v<xsimd::avx512f, Arch>>> {
  static xsimd::batch<float, Arch> run(const xsimd::batch<float, Arch>* r) noexcept {
    __m256 h[16];
    for (int l = 0; l < 16; ++l) {  // (zero-masked forms with a full mask: GCC 12 warns falsely on the others)
      const __m512d x = _mm512_castps_pd(r[l]);
      h[l] = _mm256_add_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, x, 0)),
                           _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, x, 1)));
    }
    const __m256d lo = _mm256_castps_pd(sums8(h)), hi = _mm256_castps_pd(sums8(h + 8));
    return _mm512_castpd_ps(_mm512_maskz_insertf64x4(0xff, _mm512_castpd256_pd512(lo), hi, 1));
  }
  /// Lane l of the result: the sum of r[l]'s eight lanes.
  static __m256 sums8(const __m256* r) noexcept {
    const __m256 t0 = _mm256_hadd_ps(r[0], r[1]), t1 = _mm256_hadd_ps(r[2], r[3]);
    const __m256 t2 = _mm256_hadd_ps(r[4], r[5]), t3 = _mm256_hadd_ps(r[6], r[7]);
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);  // per 128-bit half: r0..r3, r4..r7
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
  }
};
#endif

template <class Arch, class Base>
struct simd_attention : Base {
  using Base::attention_backward;
  using Base::attention_forward;

  /// o = softmax(scale·q·kᵀ + mask)·v per (batch, query head); lse = log Σ_visible exp(scale·q·kᵀ).
  /// q,o (B,S,Hq,Dh); k,v (B,L,Hkv,Dh); kv_begin (B) int32 or empty; lse (B,Hq,S).
  static void attention_forward(const backend::simd<Arch>& be, tensor_view<const float, 4> q,
                                tensor_view<const float, 4> k, tensor_view<const float, 4> v, float scale, bool causal,
                                vector_view<const std::int32_t> kv_begin, tensor_view<float, 4> o,
                                tensor_view<float, 3> lse) {
    constexpr const char* where = "slim::attention_forward";
    const attention_dims d = check_attention<float>(where, q, k, v, causal, kv_begin);
    check_attention_rows(d, o, where, "o");
    require_shape(lse, {d.batch, d.q_heads, d.queries}, where, "lse");
    if (d.batch == 0 || d.q_heads == 0 || d.queries == 0) return;
    // Queries per task: about 256 rows (heads × queries), a multiple of 4, so that the transposed copy of each
    // key block serves many rows.
    const index_t qb = std::max<index_t>(quad, (256 / d.group) / quad * quad);
    const index_t blocks = (d.queries + qb - 1) / qb;
    parallel_for(be.pool, d.batch * d.kv_heads * blocks, 1, [&](index_t t0, index_t t1) {
      for (index_t t = t0; t < t1; ++t) {
        const index_t blk = t % blocks, g = (t / blocks) % d.kv_heads, b = t / blocks / d.kv_heads;
        const index_t i0 = blk * qb;
        forward_task(d, q, k, v, scale, kv_begin, o, lse, b, g, i0, std::min(qb, d.queries - i0));
      }
    });
  }

  /// With p = exp(scale·q·kᵀ − lse) and Dᵢ = doutᵢ·oᵢ: dv += pᵀ·dout; ds = p⊙(dout·vᵀ − D);
  /// dq += scale·ds·k; dk += scale·dsᵀ·q (KV gradients summed over the query heads of their group).
  /// Shapes as forward; an empty dq, dk or dv is skipped.
  static void attention_backward(const backend::simd<Arch>& be, tensor_view<const float, 4> q,
                                 tensor_view<const float, 4> k, tensor_view<const float, 4> v,
                                 tensor_view<const float, 4> o, tensor_view<const float, 4> dout,
                                 tensor_view<const float, 3> lse, float scale, bool causal,
                                 vector_view<const std::int32_t> kv_begin, tensor_view<float, 4> dq,
                                 tensor_view<float, 4> dk, tensor_view<float, 4> dv) {
    constexpr const char* where = "slim::attention_backward";
    const attention_dims d = check_attention<float>(where, q, k, v, causal, kv_begin);
    check_attention_rows(d, o, where, "o");
    check_attention_rows(d, dout, where, "dout");
    require_shape(lse, {d.batch, d.q_heads, d.queries}, where, "lse");
    if (!dq.empty()) check_attention_rows(d, dq, where, "dq");
    if (!dk.empty()) check_attention_keys(d, dk, where, "dk");
    if (!dv.empty()) check_attention_keys(d, dv, where, "dv");
    if (d.batch == 0 || d.q_heads == 0 || d.queries == 0 || d.keys == 0) return;
    parallel_for(be.pool, d.batch * d.kv_heads, 1, [&](index_t t0, index_t t1) {
      for (index_t t = t0; t < t1; ++t)
        backward_task(d, q, k, v, o, dout, lse, scale, kv_begin, dq, dk, dv, t / d.kv_heads, t % d.kv_heads);
    });
  }

 private:
  using batch = xsimd::batch<float, Arch>;
  using buffer = std::vector<float, aligned_allocator<float>>;
  static constexpr index_t width = static_cast<index_t>(batch::size);
  static constexpr index_t chunks = 4;              // vectors of keys per block
  static constexpr index_t block = chunks * width;  // BK: keys per block
  static constexpr index_t quad = 4;                // rows per micro-kernel call
  static constexpr float neg_inf = -std::numeric_limits<float>::infinity();

  static index_t round_up(index_t n, index_t m) { return (n + m - 1) / m * m; }
  static batch lane_index() {
    alignas(64) float idx[batch::size];
    for (std::size_t l = 0; l < batch::size; ++l) idx[l] = static_cast<float>(l);
    return batch::load_aligned(idx);
  }
  static float horizontal_max(const batch& x) {
    alignas(64) float lanes[batch::size];
    x.store_aligned(lanes);
    float m = lanes[0];
    for (std::size_t l = 1; l < batch::size; ++l) m = std::max(m, lanes[l]);
    return m;
  }
  /// Visible keys of the current block for each row: clamp(end − j0, 0, n).
  static void visible_counts(const index_t* rows, const index_t* row_end, index_t j0, index_t n, index_t* cnt) {
    for (index_t a = 0; a < quad; ++a) cnt[a] = std::clamp<index_t>(row_end[rows[a]] - j0, 0, n);
  }

  /// s[a][·] = Σ_c x[rows[a]][c]·kt[c][·] for the four rows (x rows of stride ld, kt of stride `block`).
  static void scores(const float* x, index_t ld, const index_t* rows, const float* kt, index_t dim,
                     batch (&s)[quad][chunks]) {
    for (index_t a = 0; a < quad; ++a)
      for (index_t c = 0; c < chunks; ++c) s[a][c] = batch(0.0f);
    const float* xr[quad];
    for (index_t a = 0; a < quad; ++a) xr[a] = x + rows[a] * ld;
    for (index_t e = 0; e < dim; ++e) {
      const float* kr = kt + e * block;
      const batch k0 = batch::load_aligned(kr), k1 = batch::load_aligned(kr + width);
      const batch k2 = batch::load_aligned(kr + 2 * width), k3 = batch::load_aligned(kr + 3 * width);
      for (index_t a = 0; a < quad; ++a) {
        const batch xa(xr[a][e]);
        s[a][0] = xsimd::fma(xa, k0, s[a][0]);
        s[a][1] = xsimd::fma(xa, k1, s[a][1]);
        s[a][2] = xsimd::fma(xa, k2, s[a][2]);
        s[a][3] = xsimd::fma(xa, k3, s[a][3]);
      }
    }
  }

  /// acc[rows[a]][·] += Σ_{j<n} w[a][j]·m[j][·] along a padded row length `ld` for the first `live` (1..4) of
  /// the four rows (the rest are the zero dummy that pads the last quad: skipped). The rows' weights w are
  /// `block` apart; m rows are `ldm` apart (≥ ld: V read in place, or its padded copy).
  static void accumulate_rows(float* acc, index_t ld, const index_t* rows, index_t live, const float* w,
                              const float* m, index_t ldm, index_t n) {
    switch (live) {
      case 1: accumulate_rows_n<1>(acc, ld, rows, w, m, ldm, n); break;
      case 2: accumulate_rows_n<2>(acc, ld, rows, w, m, ldm, n); break;
      case 3: accumulate_rows_n<3>(acc, ld, rows, w, m, ldm, n); break;
      default: accumulate_rows_n<quad>(acc, ld, rows, w, m, ldm, n); break;
    }
  }
  /// Eight independent FMA chains hide the FMA latency when Q = 4: two column vectors at a time, or, for a last
  /// single vector, even and odd j in separate accumulators (summed at the end; a fixed order either way). The
  /// sums of a row do not depend on Q.
  template <index_t Q>
  static void accumulate_rows_n(float* acc, index_t ld, const index_t* rows, const float* w, const float* m,
                                index_t ldm, index_t n) {
    index_t c = 0;
    for (; c + 2 * width <= ld; c += 2 * width) {
      batch o0[Q], o1[Q];
      for (index_t a = 0; a < Q; ++a) {
        o0[a] = batch::load_aligned(acc + rows[a] * ld + c);
        o1[a] = batch::load_aligned(acc + rows[a] * ld + c + width);
      }
      for (index_t j = 0; j < n; ++j) {
        const batch m0 = batch::load_unaligned(m + j * ldm + c), m1 = batch::load_unaligned(m + j * ldm + c + width);
        for (index_t a = 0; a < Q; ++a) {
          const batch wa(w[a * block + j]);
          o0[a] = xsimd::fma(wa, m0, o0[a]);
          o1[a] = xsimd::fma(wa, m1, o1[a]);
        }
      }
      for (index_t a = 0; a < Q; ++a) {
        o0[a].store_aligned(acc + rows[a] * ld + c);
        o1[a].store_aligned(acc + rows[a] * ld + c + width);
      }
    }
    if (c == ld) return;
    batch even[Q], odd[Q];
    for (index_t a = 0; a < Q; ++a) {
      even[a] = batch::load_aligned(acc + rows[a] * ld + c);
      odd[a] = batch(0.0f);
    }
    index_t j = 0;
    for (; j + 2 <= n; j += 2) {
      const batch m0 = batch::load_unaligned(m + j * ldm + c), m1 = batch::load_unaligned(m + (j + 1) * ldm + c);
      for (index_t a = 0; a < Q; ++a) {
        even[a] = xsimd::fma(batch(w[a * block + j]), m0, even[a]);
        odd[a] = xsimd::fma(batch(w[a * block + j + 1]), m1, odd[a]);
      }
    }
    if (j < n) {
      const batch m0 = batch::load_unaligned(m + j * ldm + c);
      for (index_t a = 0; a < Q; ++a) even[a] = xsimd::fma(batch(w[a * block + j]), m0, even[a]);
    }
    for (index_t a = 0; a < Q; ++a) (even[a] + odd[a]).store_aligned(acc + rows[a] * ld + c);
  }

  /// acc[j][·] += Σ_a w[a][j]·x[rows[a]][·] for j < n (acc and x rows `ld` apart, w rows `block` apart).
  static void accumulate_keys(float* acc, index_t ld, const index_t* rows, const float* w, const float* x, index_t n) {
    for (index_t c = 0; c < ld; c += width) {
      batch xa[quad];
      for (index_t a = 0; a < quad; ++a) xa[a] = batch::load_aligned(x + rows[a] * ld + c);
      for (index_t j = 0; j < n; ++j) {
        float* p = acc + j * ld + c;
        batch s = batch::load_aligned(p);
        for (index_t a = 0; a < quad; ++a) s = xsimd::fma(batch(w[a * block + j]), xa[a], s);
        s.store_aligned(p);
      }
    }
  }

  /// Packs keys [j0, j0+n) of (b, g): transposed into t (Dh × block, zero beyond n) and, when `rows` is
  /// non-null, row-major into rows (block × ld, zero-padded).
  static void pack_keys(tensor_view<const float, 4> x, index_t b, index_t g, index_t j0, index_t n, index_t dim,
                        index_t ld, float* t, float* rows) {
    std::fill(t, t + dim * block, 0.0f);
    for (index_t j = 0; j < n; ++j) {
      const float* src = &x(b, j0 + j, g, 0);
      for (index_t e = 0; e < dim; ++e) t[e * block + j] = src[e];
    }
    if (rows == nullptr) return;
    std::fill(rows, rows + block * ld, 0.0f);
    for (index_t j = 0; j < n; ++j) std::copy(&x(b, j0 + j, g, 0), &x(b, j0 + j, g, 0) + dim, rows + j * ld);
  }

  /// s[a][j] = x[rows[a]]·k[j0 + j] by dot products straight from the key rows (no packing), for rows with a
  /// visible key; other entries are 0, and entries of keys j ≥ n are left for the caller to mask. For tasks with
  /// too few rows to pay for a transposed copy of K. The W keys of a vector of scores are summed side by side (W
  /// independent FMA chains, W loads in flight) and reduced together by one horizontal-add tree.
  static void dot_scores(const float* x, index_t ld, const index_t* rows, const index_t* cnt, const float* k0,
                         index_t key_stride, index_t n, index_t dim, batch (&s)[quad][chunks]) {
    const index_t full = dim / width * width;
    for (index_t a = 0; a < quad; ++a) {
      for (index_t c = 0; c < chunks; ++c) s[a][c] = batch(0.0f);
      if (cnt[a] == 0) continue;
      const float* xr = x + rows[a] * ld;
      for (index_t c = 0; c * width < n; ++c) {
        const index_t j0 = c * width, last = std::min(width, n - j0) - 1;
        const float* kr[width];  // keys past n re-read the last one (their scores are masked)
        for (index_t l = 0; l < width; ++l) kr[l] = k0 + (j0 + std::min(l, last)) * key_stride;
        batch acc[width];
        dot_keys(xr, kr, full, acc, std::make_integer_sequence<index_t, width>{});
        s[a][c] = lane_sums<Arch>::run(acc);
        if (full < dim) {
          alignas(64) float tail[width] = {};
          for (index_t l = 0; l < width; ++l)
            for (index_t e = full; e < dim; ++e) tail[l] += xr[e] * kr[l][e];
          s[a][c] += batch::load_aligned(tail);
        }
      }
    }
  }
  template <index_t... L>
  [[gnu::always_inline]] static inline void dot_keys(const float* xr, const float* const* kr, index_t full,
                                                     batch* acc, std::integer_sequence<index_t, L...>) {
    ((acc[L] = batch(0.0f)), ...);
    for (index_t e = 0; e < full; e += width) {
      const batch xe = batch::load_aligned(xr + e);
      ((acc[L] = xsimd::fma(xe, batch::load_unaligned(kr[L] + e), acc[L])), ...);
    }
  }

  static void forward_task(const attention_dims& d, tensor_view<const float, 4> q, tensor_view<const float, 4> k,
                           tensor_view<const float, 4> v, float scale, vector_view<const std::int32_t> kv_begin,
                           tensor_view<float, 4> o, tensor_view<float, 3> lse, index_t b, index_t g, index_t i0,
                           index_t nq) {
    const index_t dim = d.head_dim, ld = round_up(dim, width), rows = d.group * nq;
    // Fewer than two quads of rows do not pay for a transposed copy of each key block: dot products instead.
    const bool transpose = rows >= 2 * quad;
    // Row r = (head g·G + r / nq, query i0 + r % nq); row `rows` is a zero dummy padding the last quad.
    buffer qs(static_cast<std::size_t>((rows + 1) * ld), 0.0f), acc(qs.size(), 0.0f);
    buffer kt(transpose ? static_cast<std::size_t>(std::max<index_t>(dim, 1) * block) : 0);
    const bool v_in_place = ld == dim && v.stride(3) == 1;
    const index_t v_ld = v_in_place ? v.stride(1) : ld;
    buffer vb(v_in_place ? 0 : static_cast<std::size_t>(block * ld)), p(static_cast<std::size_t>(quad * block));
    std::vector<float> mx(static_cast<std::size_t>(rows + 1), neg_inf), sum(mx.size(), 0.0f);
    std::vector<index_t> row_end(mx.size(), -1);
    for (index_t r = 0; r < rows; ++r) {
      const index_t h = g * d.group + r / nq, i = i0 + r % nq;
      const float* src = &q(b, i, h, 0);
      float* dst = &qs[static_cast<std::size_t>(r * ld)];
      for (index_t e = 0; e < dim; ++e) dst[e] = scale * src[e];
      row_end[static_cast<std::size_t>(r)] = d.key_end(i);
    }
    const index_t lo = d.key_begin(kv_begin, b), hi = d.key_end(i0 + nq - 1);
    const batch iota = lane_index();
    for (index_t j0 = lo; j0 < hi; j0 += block) {
      const index_t n = std::min(block, hi - j0);
      if (transpose) pack_keys(k, b, g, j0, n, dim, ld, kt.data(), nullptr);
      // V rows need a padded copy only when Dh is not a whole number of vectors (decoding's per-token tasks
      // would otherwise spend as long copying a block of V as using it)
      const float* vrows = v_in_place ? &v(b, j0, g, 0) : vb.data();
      if (!v_in_place) {
        std::fill(vb.begin(), vb.end(), 0.0f);
        for (index_t j = 0; j < n; ++j) {
          const float* src = &v(b, j0 + j, g, 0);
          std::copy(src, src + dim, &vb[static_cast<std::size_t>(j * ld)]);
        }
      }
      for (index_t r0 = 0; r0 < rows; r0 += quad) {
        index_t rq[quad], cnt[quad];
        for (index_t a = 0; a < quad; ++a) rq[a] = std::min(r0 + a, rows);
        visible_counts(rq, row_end.data(), j0, n, cnt);
        const index_t jmax = *std::max_element(cnt, cnt + quad);
        if (jmax == 0) continue;
        batch s[quad][chunks];
        if (transpose)
          scores(qs.data(), ld, rq, kt.data(), dim, s);
        else
          dot_scores(qs.data(), ld, rq, cnt, &k(b, j0, g, 0), k.stride(1), n, dim, s);
        for (index_t a = 0; a < quad; ++a) {
          float* pa = &p[static_cast<std::size_t>(a * block)];
          if (cnt[a] == 0) {
            std::fill(pa, pa + block, 0.0f);
            continue;
          }
          batch bm(neg_inf);
          for (index_t c = 0; c < chunks; ++c) {
            if (cnt[a] < block)
              s[a][c] = xsimd::select(iota + batch(static_cast<float>(c * width)) < batch(static_cast<float>(cnt[a])),
                                      s[a][c], batch(neg_inf));
            bm = xsimd::max(bm, s[a][c]);
          }
          const auto ra = static_cast<std::size_t>(rq[a]);
          const float m_new = std::max(mx[ra], horizontal_max(bm));
          const float corr = std::exp(mx[ra] - m_new);
          batch ps(0.0f);
          for (index_t c = 0; c < chunks; ++c) {
            const batch e = xsimd::exp(s[a][c] - batch(m_new));
            e.store_aligned(pa + c * width);
            ps += e;
          }
          sum[ra] = sum[ra] * corr + xsimd::hadd(ps);
          mx[ra] = m_new;
          if (corr != 1.0f) {
            float* ar = &acc[ra * static_cast<std::size_t>(ld)];
            for (index_t c = 0; c < ld; c += width) (batch::load_aligned(ar + c) * batch(corr)).store_aligned(ar + c);
          }
        }
        accumulate_rows(acc.data(), ld, rq, std::min(quad, rows - r0), p.data(), vrows, v_ld, jmax);
      }
    }
    for (index_t r = 0; r < rows; ++r) {
      const index_t h = g * d.group + r / nq, i = i0 + r % nq;
      const auto ru = static_cast<std::size_t>(r);
      float* out = &o(b, i, h, 0);
      if (sum[ru] == 0.0f) {  // no visible key
        std::fill(out, out + dim, 0.0f);
        lse(b, h, i) = neg_inf;
        continue;
      }
      const float inv = 1.0f / sum[ru];
      const float* src = &acc[ru * static_cast<std::size_t>(ld)];
      for (index_t e = 0; e < dim; ++e) out[e] = src[e] * inv;
      lse(b, h, i) = mx[ru] + std::log(sum[ru]);
    }
  }

  static void backward_task(const attention_dims& d, tensor_view<const float, 4> q, tensor_view<const float, 4> k,
                            tensor_view<const float, 4> v, tensor_view<const float, 4> o,
                            tensor_view<const float, 4> dout, tensor_view<const float, 3> lse, float scale,
                            vector_view<const std::int32_t> kv_begin, tensor_view<float, 4> dq,
                            tensor_view<float, 4> dk, tensor_view<float, 4> dv, index_t b, index_t g) {
    const index_t dim = d.head_dim, ld = round_up(dim, width), nq = d.queries, rows = d.group * nq;
    const bool want_dq = !dq.empty(), want_dk = !dk.empty(), want_dv = !dv.empty();
    const auto padded_rows = static_cast<std::size_t>((rows + 1) * ld);
    // Row r = (head g·G + r / S, query r % S); row `rows` is a zero dummy padding the last quad.
    buffer qs(padded_rows, 0.0f), dos(padded_rows, 0.0f), dqa(want_dq ? padded_rows : 0, 0.0f);
    std::vector<float> delta(static_cast<std::size_t>(rows + 1), 0.0f), row_lse(delta.size(), 0.0f);
    std::vector<index_t> row_end(delta.size(), -1);
    const auto kt_size = static_cast<std::size_t>(std::max<index_t>(dim, 1) * block);
    buffer kt(kt_size), vt(kt_size), kb(static_cast<std::size_t>(block * ld));
    buffer dka(static_cast<std::size_t>(block * ld)), dva(dka.size());
    buffer p(static_cast<std::size_t>(quad * block)), ds(p.size());
    for (index_t r = 0; r < rows; ++r) {
      const index_t h = g * d.group + r / nq, i = r % nq;
      const auto ru = static_cast<std::size_t>(r);
      const float *qr = &q(b, i, h, 0), *dr = &dout(b, i, h, 0), *orow = &o(b, i, h, 0);
      float di = 0.0f;
      for (index_t e = 0; e < dim; ++e) {
        qs[ru * ld + static_cast<std::size_t>(e)] = scale * qr[e];
        dos[ru * ld + static_cast<std::size_t>(e)] = dr[e];
        di += dr[e] * orow[e];
      }
      delta[ru] = di;
      row_lse[ru] = lse(b, h, i);
      row_end[ru] = d.key_end(i);
    }
    const index_t lo = d.key_begin(kv_begin, b), hi = d.key_end(nq - 1);
    const batch iota = lane_index();
    for (index_t j0 = lo; j0 < hi; j0 += block) {
      const index_t n = std::min(block, hi - j0);
      pack_keys(k, b, g, j0, n, dim, ld, kt.data(), kb.data());
      pack_keys(v, b, g, j0, n, dim, ld, vt.data(), nullptr);
      std::fill(dka.begin(), dka.end(), 0.0f);
      std::fill(dva.begin(), dva.end(), 0.0f);
      for (index_t r0 = 0; r0 < rows; r0 += quad) {
        index_t rq[quad], cnt[quad];
        for (index_t a = 0; a < quad; ++a) rq[a] = std::min(r0 + a, rows);
        visible_counts(rq, row_end.data(), j0, n, cnt);
        const index_t jmax = *std::max_element(cnt, cnt + quad);
        if (jmax == 0) continue;
        batch s[quad][chunks], dp[quad][chunks];
        scores(qs.data(), ld, rq, kt.data(), dim, s);
        scores(dos.data(), ld, rq, vt.data(), dim, dp);
        for (index_t a = 0; a < quad; ++a) {
          const auto ra = static_cast<std::size_t>(rq[a]);
          const batch l(row_lse[ra]), di(delta[ra]), limit(static_cast<float>(cnt[a]));
          for (index_t c = 0; c < chunks; ++c) {
            const auto visible = iota + batch(static_cast<float>(c * width)) < limit;
            const batch pv = xsimd::select(visible, xsimd::exp(s[a][c] - l), batch(0.0f));
            pv.store_aligned(&p[static_cast<std::size_t>(a * block + c * width)]);
            (pv * (dp[a][c] - di)).store_aligned(&ds[static_cast<std::size_t>(a * block + c * width)]);
          }
        }
        if (want_dv) accumulate_keys(dva.data(), ld, rq, p.data(), dos.data(), jmax);
        if (want_dk) accumulate_keys(dka.data(), ld, rq, ds.data(), qs.data(), jmax);
        if (want_dq) accumulate_rows(dqa.data(), ld, rq, std::min(quad, rows - r0), ds.data(), kb.data(), ld, jmax);
      }
      for (index_t j = 0; j < n; ++j) {
        const auto off = static_cast<std::size_t>(j * ld);
        if (want_dk) {
          float* dst = &dk(b, j0 + j, g, 0);
          for (index_t e = 0; e < dim; ++e) dst[e] += dka[off + static_cast<std::size_t>(e)];
        }
        if (want_dv) {
          float* dst = &dv(b, j0 + j, g, 0);
          for (index_t e = 0; e < dim; ++e) dst[e] += dva[off + static_cast<std::size_t>(e)];
        }
      }
    }
    if (!want_dq) return;
    for (index_t r = 0; r < rows; ++r) {
      const index_t h = g * d.group + r / nq, i = r % nq;
      float* dst = &dq(b, i, h, 0);
      const float* src = &dqa[static_cast<std::size_t>(r * ld)];
      for (index_t e = 0; e < dim; ++e) dst[e] += scale * src[e];
    }
  }
};

}  // namespace slim::backend::detail
