// slim — CUDA kernels: causal grouped-query attention, fused and tiled in the FlashAttention manner (forward
// beside backward). See docs/kernels.md for the contract; the scalar oracle is backend/scalar/attention.hpp.
//
// Forward: a block takes 16 query rows of one (batch, query head); its 4 warps own 4 rows each. Keys stream
// through shared memory 32 at a time (lane j scores key j of the tile), the softmax is kept online (running
// max and sum per row), and o accumulates in registers (lane c owns columns c, c+32, …), so the S×L score
// matrix never exists. lse = max + log(sum) is kept for backward.
// Backward: Dᵢ = doutᵢ·oᵢ first (one warp per row); then one kernel walks the key tiles for dq (owned by the
// query block, as in forward) and another walks the query tiles for dk and dv (a block owns 16 keys of one KV
// head and visits every query head of its group), so every gradient element has one writer: no atomics, the
// same result on every run. Probabilities are recomputed from lse.
// Head dimension up to 256; float or double; shared memory per block up to 99 KB (float) at Dh = 256.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/attention.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include <concepts>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "slim/backend/cuda/common.cuh"
#include "slim/backend/scalar/attention.hpp"

namespace slim::backend::cuda_detail {

/// A (B, N, H, Dh) view with unit inner stride; null pointer = absent.
template <class T>
struct heads4 {
  T* p;
  index_t s0, s1, s2;
  __device__ T* at(index_t b, index_t n, index_t h) const { return p + b * s0 + n * s1 + h * s2; }
};
template <class T>
heads4<T> heads4_of(const tensor_view<T, 4, device_space>& v) {
  return {v.empty() ? nullptr : v.data_handle(), v.stride(0), v.stride(1), v.stride(2)};
}
/// lse (B, Hq, S).
template <class T>
struct lse3 {
  T* p;
  index_t s0, s1, s2;
  __device__ T& operator()(index_t b, index_t h, index_t i) const { return p[b * s0 + h * s1 + i * s2]; }
};
template <class T>
lse3<T> lse3_of(const tensor_view<T, 3, device_space>& v) {
  return {v.data_handle(), v.stride(0), v.stride(1), v.stride(2)};
}

struct attn_shape {
  index_t batch, queries, keys, q_heads, kv_heads, head_dim, group;
  bool causal;
  const std::int32_t* kv_begin;  // null: no left padding
  index_t kv_begin_stride;
  __device__ index_t key_begin(index_t b) const { return kv_begin ? index_t{kv_begin[b * kv_begin_stride]} : 0; }
  /// One past the last key query i sees (before left padding); may be ≤ 0.
  __device__ index_t key_end(index_t i) const {
    if (!causal) return keys;
    const index_t e = i + (keys - queries) + 1;
    return e < keys ? e : keys;
  }
};

constexpr int attn_warps = 4, attn_rows = 4, attn_bq = attn_warps * attn_rows, attn_bk = 32;  // forward / dq
constexpr int attn_kv_keys = attn_warps * attn_rows, attn_kv_queries = 32;                   // dk, dv

template <class T>
__device__ inline T warp_max(T v) {
  for (int o = 16; o > 0; o >>= 1) {
    const T u = __shfl_xor_sync(0xffffffffu, v, o);
    v = (u > v || u != u) ? u : v;  // NaN wins from either side, so every lane ends with the same value
  }
  return v;
}
template <class T>
__device__ inline T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/// Loads rows [n0, n0 + count) of head h of `src` (rows past `limit` as zeros) into `dst` with row stride ld.
template <class T>
__device__ void load_rows(T* dst, index_t ld, heads4<const T> src, index_t b, index_t n0, int count, index_t limit,
                          index_t h, index_t dh) {
  for (index_t t = threadIdx.x; t < index_t{count} * dh; t += blockDim.x) {
    const index_t r = t / dh, c = t % dh, n = n0 + r;
    dst[r * ld + c] = n < limit ? src.at(b, n, h)[c] : T(0);
  }
}

template <class T, int C>
__global__ void attention_forward_kernel(attn_shape d, heads4<const T> q, heads4<const T> k, heads4<const T> v,
                                         T scale, heads4<T> o, lse3<T> lse) {
  extern __shared__ __align__(16) unsigned char attn_smem[];
  const index_t dh = d.head_dim, ldk = dh + 1;
  T* qs = reinterpret_cast<T*>(attn_smem);  // [bq][dh]
  T* ks = qs + attn_bq * dh;                // [bk][dh + 1]
  T* vs = ks + attn_bk * ldk;               // [bk][dh]
  const index_t b = blockIdx.z, h = blockIdx.y, i0 = index_t{blockIdx.x} * attn_bq, g = h / d.group;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const index_t lo = d.key_begin(b);
  const index_t last = (i0 + attn_bq < d.queries ? i0 + attn_bq : d.queries) - 1;
  const index_t block_hi = d.key_end(last);
  load_rows(qs, dh, q, b, i0, attn_bq, d.queries, h, dh);

  T m[attn_rows], l[attn_rows], acc[attn_rows][C];
#pragma unroll
  for (int r = 0; r < attn_rows; ++r) {
    m[r] = neg_inf;
    l[r] = T(0);
#pragma unroll
    for (int t = 0; t < C; ++t) acc[r][t] = T(0);
  }
  for (index_t j0 = lo; j0 < block_hi; j0 += attn_bk) {
    __syncthreads();  // the previous tile is no longer read (and the q rows are in place)
    load_rows(ks, ldk, k, b, j0, attn_bk, block_hi, g, dh);
    load_rows(vs, dh, v, b, j0, attn_bk, block_hi, g, dh);
    __syncthreads();
    const index_t j = j0 + lane;
#pragma unroll
    for (int r = 0; r < attn_rows; ++r) {
      const int row = warp * attn_rows + r;
      const index_t i = i0 + row;
      if (i >= d.queries) continue;
      const index_t hi = d.key_end(i);
      T s = neg_inf;
      if (j < hi) {
        T dot = T(0);
        for (index_t c = 0; c < dh; ++c) dot += qs[row * dh + c] * ks[lane * ldk + c];
        s = scale * dot;
      }
      const T tmax = warp_max(s);
      if (tmax == neg_inf) continue;  // nothing visible to this row in this tile
      const T m_new = m[r] > tmax ? m[r] : tmax;
      const T alpha = exp(m[r] - m_new);
      const T p = exp(s - m_new);
      l[r] = l[r] * alpha + warp_sum(p);
#pragma unroll
      for (int t = 0; t < C; ++t) acc[r][t] *= alpha;
      for (int jj = 0; jj < attn_bk; ++jj) {
        const T pj = __shfl_sync(0xffffffffu, p, jj);
        if (pj == T(0)) continue;  // a masked key: its v is never read (it may be anything, even inf)
#pragma unroll
        for (int t = 0; t < C; ++t) {
          const index_t c = lane + 32 * t;
          if (c < dh) acc[r][t] += pj * vs[jj * dh + c];
        }
      }
      m[r] = m_new;
    }
  }
#pragma unroll
  for (int r = 0; r < attn_rows; ++r) {
    const index_t i = i0 + warp * attn_rows + r;
    if (i >= d.queries) continue;
    T* out = o.at(b, i, h);
    const bool none = l[r] == T(0);
#pragma unroll
    for (int t = 0; t < C; ++t) {
      const index_t c = lane + 32 * t;
      if (c < dh) out[c] = none ? T(0) : acc[r][t] / l[r];
    }
    if (lane == 0) lse(b, h, i) = none ? neg_inf : m[r] + log(l[r]);
  }
}

/// D[b,h,i] = dout(b,i,h)·o(b,i,h), one warp per row, into a dense (B, Hq, S) scratch.
template <class T>
__global__ void attention_delta_kernel(attn_shape d, heads4<const T> o, heads4<const T> dout, T* delta) {
  const index_t rows = d.batch * d.q_heads * d.queries;
  const index_t warps = index_t{gridDim.x} * (blockDim.x / 32);
  const int lane = threadIdx.x & 31;
  for (index_t w = index_t{blockIdx.x} * (blockDim.x / 32) + (threadIdx.x >> 5); w < rows; w += warps) {
    const index_t i = w % d.queries, h = (w / d.queries) % d.q_heads, b = w / (d.queries * d.q_heads);
    const T* a = o.at(b, i, h);
    const T* g = dout.at(b, i, h);
    T s = T(0);
    for (index_t c = lane; c < d.head_dim; c += 32) s += a[c] * g[c];
    s = warp_sum(s);
    if (lane == 0) delta[w] = s;
  }
}

/// dq += scale·Σⱼ dsᵢⱼ kⱼ with dsᵢⱼ = pᵢⱼ(doutᵢ·vⱼ − Dᵢ), pᵢⱼ = exp(scale·qᵢ·kⱼ − lseᵢ): blocks as in forward.
template <class T, int C>
__global__ void attention_dq_kernel(attn_shape d, heads4<const T> q, heads4<const T> k, heads4<const T> v,
                                    heads4<const T> dout, lse3<const T> lse, const T* delta, T scale, heads4<T> dq) {
  extern __shared__ __align__(16) unsigned char attn_smem[];
  const index_t dh = d.head_dim, ld = dh + 1;
  T* qs = reinterpret_cast<T*>(attn_smem);  // [bq][dh]
  T* gs = qs + attn_bq * dh;                // dout rows [bq][dh]
  T* ks = gs + attn_bq * dh;                // [bk][dh + 1]
  T* vs = ks + attn_bk * ld;                // [bk][dh + 1]
  const index_t b = blockIdx.z, h = blockIdx.y, i0 = index_t{blockIdx.x} * attn_bq, g = h / d.group;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const index_t lo = d.key_begin(b);
  const index_t last = (i0 + attn_bq < d.queries ? i0 + attn_bq : d.queries) - 1;
  const index_t block_hi = d.key_end(last);
  load_rows(qs, dh, q, b, i0, attn_bq, d.queries, h, dh);
  load_rows(gs, dh, dout, b, i0, attn_bq, d.queries, h, dh);

  T lse_r[attn_rows], delta_r[attn_rows], acc[attn_rows][C];
#pragma unroll
  for (int r = 0; r < attn_rows; ++r) {
    const index_t i = i0 + warp * attn_rows + r;
    lse_r[r] = i < d.queries ? lse(b, h, i) : neg_inf;
    delta_r[r] = i < d.queries ? delta[(b * d.q_heads + h) * d.queries + i] : T(0);
#pragma unroll
    for (int t = 0; t < C; ++t) acc[r][t] = T(0);
  }
  for (index_t j0 = lo; j0 < block_hi; j0 += attn_bk) {
    __syncthreads();
    load_rows(ks, ld, k, b, j0, attn_bk, block_hi, g, dh);
    load_rows(vs, ld, v, b, j0, attn_bk, block_hi, g, dh);
    __syncthreads();
    const index_t j = j0 + lane;
#pragma unroll
    for (int r = 0; r < attn_rows; ++r) {
      const int row = warp * attn_rows + r;
      const index_t i = i0 + row;
      if (i >= d.queries || lse_r[r] == neg_inf) continue;
      T ds = T(0);
      if (j < d.key_end(i)) {
        T s = T(0), dp = T(0);
        for (index_t c = 0; c < dh; ++c) {
          s += qs[row * dh + c] * ks[lane * ld + c];
          dp += gs[row * dh + c] * vs[lane * ld + c];
        }
        const T p = exp(scale * s - lse_r[r]);
        ds = p * (dp - delta_r[r]);
      }
      for (int jj = 0; jj < attn_bk; ++jj) {
        const T dsj = __shfl_sync(0xffffffffu, ds, jj);
        if (dsj == T(0)) continue;  // a masked key
#pragma unroll
        for (int t = 0; t < C; ++t) {
          const index_t c = lane + 32 * t;
          if (c < dh) acc[r][t] += scale * dsj * ks[jj * ld + c];
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < attn_rows; ++r) {
    const index_t i = i0 + warp * attn_rows + r;
    if (i >= d.queries) continue;
    T* out = dq.at(b, i, h);
#pragma unroll
    for (int t = 0; t < C; ++t) {
      const index_t c = lane + 32 * t;
      if (c < dh) out[c] += acc[r][t];
    }
  }
}

/// dv += Σᵢ pᵢⱼ doutᵢ, dk += scale·Σᵢ dsᵢⱼ qᵢ over every query head of the KV head's group: a block owns 16
/// keys (4 per warp), the lanes of a warp take the 32 queries of a tile.
template <class T, int C>
__global__ void attention_dkdv_kernel(attn_shape d, heads4<const T> q, heads4<const T> k, heads4<const T> v,
                                      heads4<const T> dout, lse3<const T> lse, const T* delta, T scale, heads4<T> dk,
                                      heads4<T> dv) {
  extern __shared__ __align__(16) unsigned char attn_smem[];
  const index_t dh = d.head_dim, ld = dh + 1;
  T* ks = reinterpret_cast<T*>(attn_smem);  // [kv_keys][dh]
  T* vs = ks + attn_kv_keys * dh;           // [kv_keys][dh]
  T* qs = vs + attn_kv_keys * dh;           // [kv_queries][dh + 1]
  T* gs = qs + attn_kv_queries * ld;        // dout rows [kv_queries][dh + 1]
  T* ls = gs + attn_kv_queries * ld;        // lse of the tile's queries
  T* ds_ = ls + attn_kv_queries;            // D of the tile's queries
  const index_t b = blockIdx.z, g = blockIdx.y, j0 = index_t{blockIdx.x} * attn_kv_keys;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const index_t lo = d.key_begin(b);
  load_rows(ks, dh, k, b, j0, attn_kv_keys, d.keys, g, dh);
  load_rows(vs, dh, v, b, j0, attn_kv_keys, d.keys, g, dh);
  T dk_acc[attn_rows][C], dv_acc[attn_rows][C];
#pragma unroll
  for (int r = 0; r < attn_rows; ++r)
#pragma unroll
    for (int t = 0; t < C; ++t) dk_acc[r][t] = dv_acc[r][t] = T(0);
  // the first query that can see the block's first key (causal: j ≤ i + L − S)
  index_t i_first = 0;
  if (d.causal) {
    const index_t f = j0 - (d.keys - d.queries);
    i_first = f > 0 ? f : 0;
  }
  const index_t block_last_key = (j0 + attn_kv_keys < d.keys ? j0 + attn_kv_keys : d.keys) - 1;
  const bool any_key = block_last_key >= lo;  // a block wholly inside the left padding has nothing to do
  for (index_t hh = 0; any_key && hh < d.group; ++hh) {
    const index_t h = g * d.group + hh;
    for (index_t i0 = i_first; i0 < d.queries; i0 += attn_kv_queries) {
      __syncthreads();
      load_rows(qs, ld, q, b, i0, attn_kv_queries, d.queries, h, dh);
      load_rows(gs, ld, dout, b, i0, attn_kv_queries, d.queries, h, dh);
      for (index_t t = threadIdx.x; t < attn_kv_queries; t += blockDim.x) {
        const index_t i = i0 + t;
        ls[t] = i < d.queries ? lse(b, h, i) : neg_inf;
        ds_[t] = i < d.queries ? delta[(b * d.q_heads + h) * d.queries + i] : T(0);
      }
      __syncthreads();
      const index_t i = i0 + lane;
#pragma unroll
      for (int r = 0; r < attn_rows; ++r) {
        const int key = warp * attn_rows + r;
        const index_t j = j0 + key;
        if (j >= d.keys || j < lo) continue;
        T p = T(0), ds = T(0);
        if (i < d.queries && ls[lane] != neg_inf && j < d.key_end(i)) {
          T s = T(0), dp = T(0);
          for (index_t c = 0; c < dh; ++c) {
            s += qs[lane * ld + c] * ks[key * dh + c];
            dp += gs[lane * ld + c] * vs[key * dh + c];
          }
          p = exp(scale * s - ls[lane]);
          ds = p * (dp - ds_[lane]);
        }
        for (int ii = 0; ii < attn_kv_queries; ++ii) {
          const T pi = __shfl_sync(0xffffffffu, p, ii), dsi = __shfl_sync(0xffffffffu, ds, ii);
          if (pi == T(0) && dsi == T(0)) continue;  // a query that does not see this key
#pragma unroll
          for (int t = 0; t < C; ++t) {
            const index_t c = lane + 32 * t;
            if (c < dh) {
              dv_acc[r][t] += pi * gs[ii * ld + c];
              dk_acc[r][t] += scale * dsi * qs[ii * ld + c];
            }
          }
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < attn_rows; ++r) {
    const index_t j = j0 + warp * attn_rows + r;
    if (j >= d.keys) continue;
#pragma unroll
    for (int t = 0; t < C; ++t) {
      const index_t c = lane + 32 * t;
      if (c >= dh) continue;
      if (dk.p != nullptr) dk.at(b, j, g)[c] += dk_acc[r][t];
      if (dv.p != nullptr) dv.at(b, j, g)[c] += dv_acc[r][t];
    }
  }
}

/// Columns per lane for a head dimension: 1, 2, 4 or 8 (Dh ≤ 256).
inline int attention_columns(index_t head_dim) {
  return head_dim <= 32 ? 1 : head_dim <= 64 ? 2 : head_dim <= 128 ? 4 : 8;
}

/// Launches `kernel` with `bytes` of dynamic shared memory (raising the per-kernel limit above 48 KB).
template <class Kernel, class... Args>
void launch_attention(const backend::cuda& be, Kernel kernel, dim3 grid, std::size_t bytes, const char* name,
                      Args... args) {
  int device = 0, limit = 0;
  SLIM_CUDA_CHECK(cudaGetDevice(&device));
  SLIM_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  require(bytes <= static_cast<std::size_t>(limit), name, "needs ", bytes, " bytes of shared memory per block, the device ",
          "allows ", limit, ": use a smaller head dimension or float");
  if (bytes > 48 * 1024)
    SLIM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  kernel<<<grid, attn_warps * 32, bytes, stream_of(be)>>>(args...);
  check_launch(name, __FILE__, __LINE__);
}

/// What check_attention found: the CPU check's extents (for the output checks) and the launch shape.
struct attn_checked {
  detail::attention_dims dims;
  attn_shape shape;
};

/// Shapes through the CPU check (with kv_begin left out: it lives on the device), then kv_begin's shape and
/// values (on the device, one synchronisation).
template <class T>
attn_checked check_attention(const backend::cuda& be, const char* where, const tensor_view<const T, 4, device_space>& q,
                           const tensor_view<const T, 4, device_space>& k,
                           const tensor_view<const T, 4, device_space>& v, bool causal,
                           const vector_view<const std::int32_t, device_space>& kv_begin) {
  const detail::attention_dims d =
      detail::check_attention<T>(where, host_shape(q), host_shape(k), host_shape(v), causal, {});
  require(d.head_dim <= 256, where, "head dimension ", d.head_dim, " exceeds the CUDA kernels' 256");
  require(d.batch <= 65535 && d.q_heads <= 65535, where, "batch ", d.batch, " and heads ", d.q_heads,
          " must each be at most 65,535 (the grid's y and z limits)");
  require_valid(kv_begin, where, "kv_begin");
  if (!kv_begin.empty()) {
    require_shape(kv_begin, {d.batch}, where, "kv_begin");
    require(d.keys < std::numeric_limits<std::int32_t>::max(), where, "too many keys for int32 kv_begin");
    const auto r = check_int32(be, d.batch, kv_begin.data_handle(), kv_begin.stride(0),
                               in_range{static_cast<std::int32_t>(d.keys + 1)}, never{});
    if (r.any_bad) {
      const auto b = static_cast<index_t>(r.first_bad);
      throw error(where, "kv_begin[" + std::to_string(b) + "]",
                  std::to_string(read_int32(be, kv_begin.data_handle() + b * kv_begin.stride(0))) +
                      " lies outside [0, " + std::to_string(d.keys) + "]");
    }
  }
  return {d,
          {d.batch, d.queries, d.keys, d.q_heads, d.kv_heads, d.head_dim, d.group, causal,
           kv_begin.empty() ? nullptr : kv_begin.data_handle(), kv_begin.empty() ? 0 : kv_begin.stride(0)}};
}

template <class T, int C>
void attention_forward_launch(const backend::cuda& be, const attn_shape& d, heads4<const T> q, heads4<const T> k,
                              heads4<const T> v, T scale, heads4<T> o, lse3<T> lse) {
  const std::size_t bytes =
      sizeof(T) * static_cast<std::size_t>(attn_bq * d.head_dim + attn_bk * (d.head_dim + 1) + attn_bk * d.head_dim);
  const dim3 grid(static_cast<unsigned>((d.queries + attn_bq - 1) / attn_bq), static_cast<unsigned>(d.q_heads),
                  static_cast<unsigned>(d.batch));
  launch_attention(be, attention_forward_kernel<T, C>, grid, bytes, "attention_forward_kernel", d, q, k, v, scale, o,
                   lse);
}

template <class T, int C>
void attention_backward_launch(const backend::cuda& be, const attn_shape& d, heads4<const T> q, heads4<const T> k,
                               heads4<const T> v, heads4<const T> dout, lse3<const T> lse, const T* delta, T scale,
                               heads4<T> dq, heads4<T> dk, heads4<T> dv) {
  const index_t dh = d.head_dim;
  if (dq.p != nullptr) {
    const std::size_t bytes = sizeof(T) * static_cast<std::size_t>(2 * attn_bq * dh + 2 * attn_bk * (dh + 1));
    const dim3 grid(static_cast<unsigned>((d.queries + attn_bq - 1) / attn_bq), static_cast<unsigned>(d.q_heads),
                    static_cast<unsigned>(d.batch));
    launch_attention(be, attention_dq_kernel<T, C>, grid, bytes, "attention_dq_kernel", d, q, k, v, dout, lse, delta,
                     scale, dq);
  }
  if (dk.p != nullptr || dv.p != nullptr) {
    const std::size_t bytes = sizeof(T) * static_cast<std::size_t>(2 * attn_kv_keys * dh +
                                                                    2 * attn_kv_queries * (dh + 1) + 2 * attn_kv_queries);
    const dim3 grid(static_cast<unsigned>((d.keys + attn_kv_keys - 1) / attn_kv_keys),
                    static_cast<unsigned>(d.kv_heads), static_cast<unsigned>(d.batch));
    launch_attention(be, attention_dkdv_kernel<T, C>, grid, bytes, "attention_dkdv_kernel", d, q, k, v, dout, lse,
                     delta, scale, dk, dv);
  }
}

}  // namespace slim::backend::cuda_detail

namespace slim::backend::detail {

struct cuda_attention {
  template <class T>
  using dheads = tensor_view<T, 4, device_space>;

  /// o = softmax(scale·q·kᵀ + mask)·v per (batch, query head); lse = log Σ_visible exp(scale·q·kᵀ).
  /// q,o (B,S,Hq,Dh); k,v (B,L,Hkv,Dh); kv_begin (B) int32 or empty; lse (B,Hq,S); Dh ≤ 256.
  template <std::floating_point T>
  static void attention_forward(const backend::cuda& be, dheads<in_t<T>> q, dheads<in_t<T>> k, dheads<in_t<T>> v,
                                std::type_identity_t<T> scale, bool causal,
                                vector_view<const std::int32_t, device_space> kv_begin, dheads<T> o,
                                tensor_view<T, 3, device_space> lse) {
    using namespace cuda_detail;
    constexpr const char* where = "slim::kernels<cuda>::attention_forward";
    const auto checked = cuda_detail::check_attention<T>(be, where, q, k, v, causal, kv_begin);
    const detail::attention_dims& dims = checked.dims;
    const attn_shape& d = checked.shape;
    check_attention_rows(dims, host_shape(o), where, "o");
    require_shape(lse, {d.batch, d.q_heads, d.queries}, where, "lse");
    if (d.batch * d.queries * d.q_heads == 0) return;
    switch (attention_columns(d.head_dim)) {
      case 1: return attention_forward_launch<T, 1>(be, d, heads4_of(q), heads4_of(k), heads4_of(v), scale, heads4_of(o), lse3_of(lse));
      case 2: return attention_forward_launch<T, 2>(be, d, heads4_of(q), heads4_of(k), heads4_of(v), scale, heads4_of(o), lse3_of(lse));
      case 4: return attention_forward_launch<T, 4>(be, d, heads4_of(q), heads4_of(k), heads4_of(v), scale, heads4_of(o), lse3_of(lse));
      default: return attention_forward_launch<T, 8>(be, d, heads4_of(q), heads4_of(k), heads4_of(v), scale, heads4_of(o), lse3_of(lse));
    }
  }

  /// Gradients of the above, probabilities recomputed from lse; KV gradients summed over the query heads of
  /// their group. An empty dq, dk or dv is skipped.
  template <std::floating_point T>
  static void attention_backward(const backend::cuda& be, dheads<in_t<T>> q, dheads<in_t<T>> k, dheads<in_t<T>> v,
                                 dheads<in_t<T>> o, dheads<in_t<T>> dout, tensor_view<in_t<T>, 3, device_space> lse,
                                 std::type_identity_t<T> scale, bool causal,
                                 vector_view<const std::int32_t, device_space> kv_begin, dheads<T> dq, dheads<T> dk,
                                 dheads<T> dv) {
    using namespace cuda_detail;
    constexpr const char* where = "slim::kernels<cuda>::attention_backward";
    const auto checked = cuda_detail::check_attention<T>(be, where, q, k, v, causal, kv_begin);
    const detail::attention_dims& dims = checked.dims;
    const attn_shape& d = checked.shape;
    check_attention_rows(dims, host_shape(o), where, "o");
    check_attention_rows(dims, host_shape(dout), where, "dout");
    require_shape(lse, {d.batch, d.q_heads, d.queries}, where, "lse");
    if (!dq.empty()) check_attention_rows(dims, host_shape(dq), where, "dq");
    if (!dk.empty()) check_attention_keys(dims, host_shape(dk), where, "dk");
    if (!dv.empty()) check_attention_keys(dims, host_shape(dv), where, "dv");
    const index_t rows = d.batch * d.q_heads * d.queries;
    if (rows == 0 || d.keys == 0 || (dq.empty() && dk.empty() && dv.empty())) return;
    stream_buffer<T> delta(be, rows);
    constexpr int threads = 256;
    attention_delta_kernel<T><<<flat_blocks(rows, threads / 32), threads, 0, stream_of(be)>>>(
        d, heads4_of(o), heads4_of(dout), delta.get());
    check_launch("attention_delta_kernel", __FILE__, __LINE__);
    const auto args = [&](auto columns) {
      constexpr int C = decltype(columns)::value;
      attention_backward_launch<T, C>(be, d, heads4_of(q), heads4_of(k), heads4_of(v), heads4_of(dout), lse3_of(lse),
                                      delta.get(), scale, heads4_of(dq), heads4_of(dk), heads4_of(dv));
    };
    switch (attention_columns(d.head_dim)) {
      case 1: args(std::integral_constant<int, 1>{}); break;
      case 2: args(std::integral_constant<int, 2>{}); break;
      case 4: args(std::integral_constant<int, 4>{}); break;
      default: args(std::integral_constant<int, 8>{}); break;
    }
  }
};

}  // namespace slim::backend::detail
