// slim — xsimd kernels: gemm (forward beside backward). Ops not defined here fall back to Base (scalar).
//
// The float GEMM is BLIS-style (gemm_kernel.hpp: micro-kernel and blocking; gemm_pack.hpp: packing). For
// each NC-column block of B and KC-deep slice of K, B is packed into NR-column panels; then for each block
// of about MC rows, A is packed into MR-row panels (they stay in L2) and the micro-kernel runs every A
// panel against each B panel (which stays in L1). A row-major float B that stays in cache is read in
// place instead of packed. With a thread pool, C is cut into one part per thread (row panels or column
// panels) and each part is that loop on its own thread. Every task walks K in the same order, so each
// output element is the same FMA chain at any thread count and results are bit-identical. bf16 operands
// are widened while packing (no AVX-512 BF16 is assumed; see gemm_pack.hpp).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "slim/backend/packed_matrix.hpp"
#include "slim/backend/scalar/gemm.hpp"
#include "slim/backend/simd/gemm_kernel.hpp"
#include "slim/backend/simd/gemm_pack.hpp"
#include "slim/core/tensor.hpp"
#include "slim/core/thread_pool.hpp"

namespace slim::backend::detail {

/// A per-thread scratch buffer that only grows (so repeated GEMMs do not page-fault fresh memory).
inline float* gemm_scratch(int which, std::size_t floats) {
  thread_local std::vector<float, aligned_allocator<float>> buffers[3];
  auto& v = buffers[which];
  if (v.size() < floats) v.resize(floats);
  return v.data();
}

/// The blocked SGEMM driver for one architecture: C (m,n) = α·A (m,k)·B (k,n) + β·C, all strided.
template <class Arch>
struct gemm_engine {
  using blk = gemm_blocking<Arch>;
  static constexpr index_t mr = blk::mr, nr = blk::nr;

  template <class TA, class TB>
  static void run(thread_pool* pool, index_t m, index_t n, index_t k, float alpha, gemm_operand<TA> a,
                  gemm_operand<TB> b, float beta, float* c, index_t rsc, index_t csc) {
    if (m <= 0 || n <= 0) return;
    if (alpha == 0.0f || k <= 0) {
      scale(m, n, beta, c, rsc, csc);
      return;
    }
    // C with contiguous columns but not rows: compute Cᵀ = Bᵀ·Aᵀ so the kernel writes contiguous vectors.
    if (csc != 1 && n > 1 && (rsc == 1 || m == 1)) {
      run<TB, TA>(pool, n, m, k, alpha, gemm_operand<TB>{b.data, b.cs, b.rs}, gemm_operand<TA>{a.data, a.cs, a.rs},
                  beta, c, csc, rsc);
      return;
    }
    // The operand every part needs (B for row parts, A for column parts) is packed once, by whichever part
    // needs a panel first, into a buffer the parts share (when it is at most shared_floats).
    const auto [by_rows, units, parts] = split(pool, m, n, k);
    if (parts <= 1) {
      serial(m, n, k, alpha, a, b, beta, c, rsc, csc, gemm_sharing{}, 0, 1);
      return;
    }
    const index_t n_pc = (k + blk::kc - 1) / blk::kc;
    gemm_sharing sh;
    std::unique_ptr<std::atomic<std::uint8_t>[]> state;
    if (by_rows && !reads_b_in_place(units / parts * mr, n, k, b)) {
      sh.b_panels = (n + nr - 1) / nr;
      sh.slots = n_pc * sh.b_panels;
      sh.slot_floats = nr * blk::kc;
    } else if (!by_rows) {
      sh.a_panels = (m + mr - 1) / mr;
      sh.slots = n_pc * sh.a_panels;
      sh.slot_floats = mr * blk::lda;
    }
    if (sh.slots > 0 && sh.slots * sh.slot_floats <= blk::shared_floats) {
      sh.data = gemm_scratch(2, static_cast<std::size_t>(sh.slots * sh.slot_floats));
      state.reset(new std::atomic<std::uint8_t>[static_cast<std::size_t>(sh.slots)]);
      for (index_t i = 0; i < sh.slots; ++i) state[static_cast<std::size_t>(i)].store(0, std::memory_order_relaxed);
      sh.state = state.get();
    } else {
      sh = gemm_sharing{};  // too large to share: each part packs its own copy
    }
    for_each_part(pool, by_rows, units, parts, m, n, [&](index_t t, index_t i0, index_t i1, index_t j0, index_t j1) {
      serial(i1 - i0, j1 - j0, k, alpha, gemm_operand<TA>{a.data + i0 * a.rs, a.rs, a.cs},
             gemm_operand<TB>{b.data + j0 * b.cs, b.rs, b.cs}, beta, c + i0 * rsc + j0 * csc, rsc, csc, sh, t, parts);
    });
  }

  /// C (m,n) = α·A (m,k)·B + β·C with B given as NR-column panels (packed_matrix<NR>: panel q at
  /// `panels + q·k·NR`, K×NR row-major). The same tiles, K slices and FMA chains as run(), so each element
  /// is bit-identical to run() on B itself. Threads split C into row parts or column parts (whole panels).
  template <class TA>
  static void run_packed(thread_pool* pool, index_t m, index_t n, index_t k, float alpha, gemm_operand<TA> a,
                         const float* panels, float beta, float* c, index_t rsc, index_t csc) {
    if (m <= 0 || n <= 0) return;
    if (alpha == 0.0f || k <= 0) {
      scale(m, n, beta, c, rsc, csc);
      return;
    }
    const gemm_operand<float> none{nullptr, 0, 1};
    const auto [by_rows, units, parts] = split(pool, m, n, k);
    for_each_part(pool, by_rows, units, parts, m, n, [&](index_t, index_t i0, index_t i1, index_t j0, index_t j1) {
      serial(i1 - i0, j1 - j0, k, alpha, gemm_operand<TA>{a.data + i0 * a.rs, a.rs, a.cs}, none, beta,
             c + i0 * rsc + j0 * csc, rsc, csc, gemm_sharing{.prepacked = panels + j0 / nr * k * nr}, 0, 1);
    });
  }

 private:
  static constexpr index_t round_up(index_t x, index_t to) noexcept { return (x + to - 1) / to * to; }

  struct split_plan {
    bool by_rows;
    index_t units, parts;
  };
  /// How a call is cut over the threads: C in one part per thread — row panels when A is the larger
  /// operand, column panels otherwise — each part the single-threaded loop (serial) on its own thread: one
  /// wake-up per call and no barrier (waking a sleeping worker costs tens of µs on a VM; a barrier per KC
  /// slice cost ~5%). Below ~4M multiply-adds (≈ 30 µs on one core) a wake-up costs more than it saves.
  static split_plan split(thread_pool* pool, index_t m, index_t n, index_t k) noexcept {
    const double work = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    const index_t threads = pool && work >= 4e6 ? static_cast<index_t>(pool->threads()) : 1;
    const bool by_rows = m >= n;
    const index_t units = by_rows ? (m + mr - 1) / mr : (n + nr - 1) / nr;
    return {by_rows, units, std::min(threads, units)};
  }
  /// Runs f(part, i0, i1, j0, j1) for the rows [i0, i1) × columns [j0, j1) of C of each part (all of C
  /// when there is one part), the parts over the pool: equal shares of the units, within one panel.
  template <class F>
  static void for_each_part(thread_pool* pool, bool by_rows, index_t units, index_t parts, index_t m, index_t n,
                            F&& f) {
    if (parts <= 1) {
      f(index_t{0}, index_t{0}, m, index_t{0}, n);
      return;
    }
    parallel_for(pool, parts, 1, [&](index_t t0, index_t t1) {
      for (index_t t = t0; t < t1; ++t) {
        const index_t u0 = t * units / parts, u1 = (t + 1) * units / parts;
        if (by_rows)
          f(t, u0 * mr, std::min(m, u1 * mr), index_t{0}, n);
        else
          f(t, index_t{0}, m, u0 * nr, std::min(n, u1 * nr));
      }
    });
  }

  /// Packed panels shared by the parts of one call: slot s (one panel) at data + s·slot_floats; its state
  /// is 0 (empty), 1 (being packed by a running part) or 2 (ready). A part that finds a panel being packed
  /// waits for it — the packer is running and waits for nothing, so this cannot deadlock, and a part that
  /// runs alone simply packs every panel itself.
  struct gemm_sharing {
    float* data = nullptr;
    std::atomic<std::uint8_t>* state = nullptr;
    index_t slots = 0, slot_floats = 0;
    index_t b_panels = 0;  // B shared: slot = KC-slice · b_panels + global B panel
    index_t a_panels = 0;  // A shared: slot = KC-slice · a_panels + A panel
    const float* prepacked = nullptr;  // B given packed (run_packed): panel q at prepacked + q·K·NR

    template <class Pack>
    const float* get(index_t slot, Pack&& pack) const noexcept {
      float* d = data + slot * slot_floats;
      std::atomic<std::uint8_t>& st = state[slot];
      std::uint8_t seen = st.load(std::memory_order_acquire);
      if (seen == 0 && st.compare_exchange_strong(seen, 1, std::memory_order_acq_rel)) {
        pack(d);
        st.store(2, std::memory_order_release);
        return d;
      }
      while (st.load(std::memory_order_acquire) != 2) std::this_thread::yield();
      return d;
    }
  };

  /// B read in place (rows contiguous, float) when it stays in cache: small, or used by one row panel of A
  /// only and no bigger than L3 — from DRAM, the row-by-row copy of packing streams better than the
  /// kernel's short reads of many rows. Only a partial last panel is packed then.
  template <class TB>
  static bool reads_b_in_place(index_t m, index_t n, index_t k, const gemm_operand<TB>& b) noexcept {
    if constexpr (std::is_same_v<TB, float>)
      return b.cs == 1 && (k * n <= blk::direct_b_floats || (m <= mr && k * n <= 64 * blk::direct_b_floats));
    else
      return false;
  }

  /// The single-threaded blocked GEMM on the calling thread (its own scratch buffers): part `part` of
  /// `parts` of a call whose shared panels (if any) are `sh`.
  template <class TA, class TB>
  static void serial(index_t m, index_t n, index_t k, float alpha, const gemm_operand<TA>& a, const gemm_operand<TB>& b,
                     float beta, float* c, index_t rsc, index_t csc, const gemm_sharing& sh, index_t part,
                     index_t parts) {
    const index_t n_ap = (m + mr - 1) / mr;  // A panels
    const bool pre_b = sh.prepacked != nullptr;
    if (pre_b && n_ap == 1) {  // decoding's weights against a few rows
      stream_prepacked(m, n, k, alpha, a, beta, c, rsc, csc, sh.prepacked);
      return;
    }
    const index_t per_block = blk::mc / mr;
    const index_t n_ic = (n_ap + per_block - 1) / per_block;  // blocks of A panels, sizes within 1 panel
    const index_t nc_max = std::min(round_up(n, nr), blk::nc);
    const index_t kc_max = std::min(k, blk::kc);
    const bool share_b = !pre_b && sh.state && sh.b_panels > 0, share_a = sh.state && sh.a_panels > 0;
    const bool b_direct = !pre_b && !share_b && reads_b_in_place(m, n, k, b);
    float* bpack = share_b || pre_b ? nullptr : gemm_scratch(0, static_cast<std::size_t>(kc_max * nc_max));
    float* apack =
        share_a ? nullptr : gemm_scratch(1, static_cast<std::size_t>((n_ap + n_ic - 1) / n_ic * mr * blk::lda));
    const float* ap[blk::mc / mr + 1];  // the A panels of the current block

    for (index_t jc = 0; jc < n; jc += blk::nc) {
      const index_t nc = std::min(blk::nc, n - jc);
      const index_t n_bp = (nc + nr - 1) / nr;          // B panels
      const index_t q_packed = b_direct ? nc / nr : 0;  // panels from here on are packed
      // Parts sharing panels start at different ones, so they pack different panels at first.
      const index_t q_rot = share_b ? part * n_bp / parts : 0;
      for (index_t pc = 0; pc < k; pc += blk::kc) {
        const index_t kc = std::min(blk::kc, k - pc), slice = pc / blk::kc;
        const float beta_k = pc == 0 ? beta : 1.0f;
        if (!share_b && !pre_b) gemm_pack_b_panels<Arch, nr>(b, pc, kc, jc, nc, q_packed, n_bp, bpack);
        for (index_t ibi = 0; ibi < n_ic; ++ibi) {
          const index_t ib = share_a ? (ibi + part * n_ic / parts) % n_ic : ibi;
          const index_t p0 = ib * n_ap / n_ic, p1 = (ib + 1) * n_ap / n_ic;
          for (index_t p = p0; p < p1; ++p) {
            const auto pack = [&](float* d) {
              gemm_pack_a_panel<Arch, blk::lda>(a, p * mr, std::min(mr, m - p * mr), pc, kc, d);
            };
            if (share_a) {
              ap[p - p0] = sh.get(slice * sh.a_panels + p, pack);
            } else {
              pack(apack + (p - p0) * mr * blk::lda);
              ap[p - p0] = apack + (p - p0) * mr * blk::lda;
            }
          }
          for (index_t qi = 0; qi < n_bp; ++qi) {
            const index_t q = (qi + q_rot) % n_bp;
            const index_t j = jc + q * nr, cols = std::min(nr, nc - q * nr);
            const bool packed = q >= q_packed;
            const float* bp = nullptr;
            if (pre_b)
              bp = sh.prepacked + (jc / nr + q) * k * nr + pc * nr;
            else if (share_b)
              bp = sh.get(slice * sh.b_panels + jc / nr + q,
                          [&](float* d) { gemm_pack_b_panels<Arch, nr>(b, pc, kc, j, nc - q * nr, 0, 1, d); });
            else
              bp = bpack + q * nr * kc;
            if constexpr (std::is_same_v<TB, float>)
              if (!packed) bp = b.data + pc * b.rs + j;
            for (index_t p = p0; p < p1; ++p)
              tile(std::min(mr, m - p * mr), cols, kc, ap[p - p0], bp, packed ? nr : b.rs, alpha, beta_k,
                   c + p * mr * rsc + j * csc, rsc, csc, false);
          }
        }
      }
    }
  }

  /// One panel of A (m ≤ MR rows) against prepacked B, whose every panel is then read once, from memory: each
  /// B panel is taken whole (all of K, a KC slice at a time, into the same tile of C) before the next, so B
  /// streams in address order from its first byte to its last — what the hardware prefetcher and the kernel's
  /// own prefetch (StreamB) follow. (The blocked order, a KC slice of every panel in turn, jumps to another
  /// panel every KC rows and prefetches past each slice's end into rows read only later.)
  template <class TA>
  static void stream_prepacked(index_t m, index_t n, index_t k, float alpha, const gemm_operand<TA>& a, float beta,
                               float* c, index_t rsc, index_t csc, const float* prepacked) {
    const index_t slices = (k + blk::kc - 1) / blk::kc;
    float* apack = gemm_scratch(1, static_cast<std::size_t>(slices * mr * blk::lda));
    for (index_t s = 0; s < slices; ++s) {
      const index_t pc = s * blk::kc;
      gemm_pack_a_panel<Arch, blk::lda>(a, 0, m, pc, std::min(blk::kc, k - pc), apack + s * mr * blk::lda);
    }
    for (index_t j = 0; j < n; j += nr) {
      const float* panel = prepacked + (j / nr) * k * nr;
      for (index_t s = 0; s < slices; ++s) {
        const index_t pc = s * blk::kc;
        tile(m, std::min(nr, n - j), std::min(blk::kc, k - pc), apack + s * mr * blk::lda, panel + pc * nr, nr,
             alpha, pc == 0 ? beta : 1.0f, c + j * csc, rsc, csc, true);
      }
    }
  }

  /// One rows×cols tile of C; tiles narrower than NR or with strided columns go through a local tile.
  static void tile(index_t rows, index_t cols, index_t kc, const float* ap, const float* bp, index_t ldb, float alpha,
                   float beta, float* c, index_t rsc, index_t csc, bool stream_b) noexcept {
    if (cols == nr && csc == 1) {
      gemm_micro_dispatch<Arch>(rows, kc, ap, bp, ldb, alpha, beta, c, rsc, stream_b);
      return;
    }
    alignas(64) float local[mr * nr];
    if (beta != 0.0f) {  // the kernel reads all nr columns of C: the ones past `cols` are 0
      std::fill(local, local + rows * nr, 0.0f);
      for (index_t r = 0; r < rows; ++r)
        for (index_t j = 0; j < cols; ++j) local[r * nr + j] = c[r * rsc + j * csc];
    }
    gemm_micro_dispatch<Arch>(rows, kc, ap, bp, ldb, alpha, beta, local, nr, stream_b);
    for (index_t r = 0; r < rows; ++r)
      for (index_t j = 0; j < cols; ++j) c[r * rsc + j * csc] = local[r * nr + j];
  }

  /// C = β·C (β = 0 writes zeros without reading C).
  static void scale(index_t m, index_t n, float beta, float* c, index_t rsc, index_t csc) noexcept {
    if (beta == 1.0f) return;
    for (index_t i = 0; i < m; ++i)
      for (index_t j = 0; j < n; ++j) {
        float& x = c[i * rsc + j * csc];
        x = beta == 0.0f ? 0.0f : beta * x;
      }
  }
};

template <class Arch, class Base>
struct simd_gemm : Base {
  using Base::gemm;
  using Base::gemm_backward;
  using Base::gemm_batched;
  using Base::gemm_batched_backward;
  using be_t = backend::simd<Arch>;

  // ---- forward -------------------------------------------------------------------------------------
  /// C = α·A·B + β·C.  A (M,K), B (K,N), C (M,N); any strides.
  static void gemm(const be_t& be, float alpha, matrix_view<const float> a, matrix_view<const float> b, float beta,
                   matrix_view<float> c) {
    forward(be.pool, alpha, a, b, beta, c, "slim::gemm");
  }
  /// bf16 operands (widened to float while packing), float accumulation.  As above.
  static void gemm(const be_t& be, float alpha, matrix_view<const bf16> a, matrix_view<const bf16> b, float beta,
                   matrix_view<float> c) {
    forward(be.pool, alpha, a, b, beta, c, "slim::gemm");
  }
  static void gemm(const be_t& be, float alpha, matrix_view<const bf16> a, matrix_view<const float> b, float beta,
                   matrix_view<float> c) {
    forward(be.pool, alpha, a, b, beta, c, "slim::gemm");
  }
  static void gemm(const be_t& be, float alpha, matrix_view<const float> a, matrix_view<const bf16> b, float beta,
                   matrix_view<float> c) {
    forward(be.pool, alpha, a, b, beta, c, "slim::gemm");
  }

  /// C[i] = α·A[i]·B[i] + β·C[i]; a batch stride of 0 broadcasts.  A (Bt,M,K), B (Bt,K,N), C (Bt,M,N).
  /// When the batches share out evenly over the threads (or are small), each runs whole on one thread;
  /// otherwise each GEMM is split over the threads. Either way every element is computed the same way.
  static void gemm_batched(const be_t& be, float alpha, tensor_view<const float, 3> a, tensor_view<const float, 3> b,
                           float beta, tensor_view<float, 3> c) {
    constexpr const char* where = "slim::gemm_batched";
    gemm_require(a, b, c, where);
    require_shape(a, {c.extent(0), a.extent(1), a.extent(2)}, where, "a");
    require_shape(b, {c.extent(0), b.extent(1), b.extent(2)}, where, "b");
    const index_t bt = c.extent(0);
    const index_t threads = be.pool ? static_cast<index_t>(be.pool->threads()) : 1;
    const double work =
        static_cast<double>(c.extent(1)) * static_cast<double>(c.extent(2)) * static_cast<double>(a.extent(2));
    // Whole GEMMs per thread when they share out evenly (or are too small to split); else split each one.
    if (threads > 1 && bt > 1 && (bt % threads == 0 || bt >= 4 * threads || work < 2e6)) {
      parallel_for(be.pool, bt, 1, [&](index_t i0, index_t i1) {
        for (index_t i = i0; i < i1; ++i) launch(nullptr, alpha, a[i], b[i], beta, c[i]);
      });
    } else {
      for (index_t i = 0; i < bt; ++i) launch(be.pool, alpha, a[i], b[i], beta, c[i]);
    }
  }

  /// B packed once for many products (backend/packed_matrix.hpp) in the micro-kernel's NR-column panels.
  using packed_b = packed_matrix<gemm_blocking<Arch>::nr>;
  /// Copies B (K,N), any strides, into a packed_b.
  static packed_b pack_b(const be_t&, matrix_view<const float> b) { return packed_b(b, "slim::pack_b"); }
  /// C = α·A·B[:, col0 : col0+N] + β·C with B packed (col0 a multiple of packed_b::panel_width): no packing
  /// of B in the call, and each element bit-identical to gemm on B itself.  A (M,K), C (M,N).
  static void gemm(const be_t& be, float alpha, matrix_view<const float> a, const packed_b& b, index_t col0,
                   float beta, matrix_view<float> c) {
    gemm_require_packed(a, b, col0, c, "slim::gemm");
    gemm_engine<Arch>::run_packed(be.pool, c.extent(0), c.extent(1), a.extent(1), alpha,
                                  gemm_operand<float>{a.data_handle(), a.stride(0), a.stride(1)},
                                  b.empty() ? nullptr : b.panel(col0 / packed_b::panel_width), beta, c.data_handle(),
                                  c.stride(0), c.stride(1));
  }

  // ---- backward ------------------------------------------------------------------------------------
  /// dA += α·dC·Bᵀ, dB += α·Aᵀ·dC through the simd gemm.  A (M,K), B (K,N), dC (M,N); empty dA/dB skipped.
  static void gemm_backward(const be_t& be, float alpha, matrix_view<const float> a, matrix_view<const float> b,
                            matrix_view<const float> dc, matrix_view<float> da, matrix_view<float> db) {
    gemm_backward_via<simd_gemm>(be, alpha, a, b, dc, da, db, "slim::gemm_backward");
  }
  /// Backward of gemm_batched through the simd gemm; a gradient with batch stride 0 sums the batch.
  static void gemm_batched_backward(const be_t& be, float alpha, tensor_view<const float, 3> a,
                                    tensor_view<const float, 3> b, tensor_view<const float, 3> dc,
                                    tensor_view<float, 3> da, tensor_view<float, 3> db) {
    gemm_batched_backward_via<simd_gemm>(be, alpha, a, b, dc, da, db);
  }

 private:
  template <class TA, class TB>
  static void forward(thread_pool* pool, float alpha, const matrix_view<const TA>& a, const matrix_view<const TB>& b,
                      float beta, const matrix_view<float>& c, const char* where) {
    gemm_require(a, b, c, where);
    launch(pool, alpha, a, b, beta, c);
  }
  template <class TA, class TB>
  static void launch(thread_pool* pool, float alpha, const matrix_view<const TA>& a, const matrix_view<const TB>& b,
                     float beta, const matrix_view<float>& c) {
    gemm_engine<Arch>::run(
        pool, c.extent(0), c.extent(1), a.extent(1), alpha, gemm_operand<TA>{a.data_handle(), a.stride(0), a.stride(1)},
        gemm_operand<TB>{b.data_handle(), b.stride(0), b.stride(1)}, beta, c.data_handle(), c.stride(0), c.stride(1));
  }
};

}  // namespace slim::backend::detail
