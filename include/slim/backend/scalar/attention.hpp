// slim — scalar reference kernels: grouped-query attention (forward beside backward). See docs/kernels.md.
//
// Query head h reads KV head h / (Hq/Hkv). Key j is visible to query i of batch b iff j ≥ kv_begin[b] (left
// padding) and, when causal, j ≤ i + (L − S), so a KV-cache step (S = 1) sees the whole cache. A query row
// with no visible key gives o = 0, lse = −∞ and contributes no gradient.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "slim/backend/common.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::detail {

/// The extents of one attention call, checked once for every backend.
struct attention_dims {
  index_t batch = 0, queries = 0, keys = 0, q_heads = 0, kv_heads = 0, head_dim = 0;
  index_t group = 1;  // Hq / Hkv: query heads per KV head
  bool causal = false;

  /// First visible key of batch b (left padding).
  index_t key_begin(vector_view<const std::int32_t> kv_begin, index_t b) const noexcept {
    return kv_begin.empty() ? 0 : static_cast<index_t>(kv_begin(b));
  }
  /// One past the last key query i may see (before left padding is applied); may be ≤ 0.
  index_t key_end(index_t i) const noexcept { return causal ? std::min(keys, i + (keys - queries) + 1) : keys; }
};

/// Validates q (B,S,Hq,Dh), k,v (B,L,Hkv,Dh), kv_begin (B) or empty, and the forward outputs o (B,S,Hq,Dh),
/// lse (B,Hq,S); every streamed view needs a unit inner stride.
template <class T>
attention_dims check_attention(const char* where, tensor_view<const T, 4> q, tensor_view<const T, 4> k,
                               tensor_view<const T, 4> v, bool causal, vector_view<const std::int32_t> kv_begin) {
  require_valid(q, where, "q");
  require_valid(k, where, "k");
  attention_dims d;
  d.batch = q.extent(0);
  d.queries = q.extent(1);
  d.q_heads = q.extent(2);
  d.head_dim = q.extent(3);
  d.keys = k.extent(1);
  d.kv_heads = k.extent(2);
  d.causal = causal;
  require_shape(k, {d.batch, d.keys, d.kv_heads, d.head_dim}, where, "k");
  require_shape(v, {d.batch, d.keys, d.kv_heads, d.head_dim}, where, "v");
  if (d.q_heads > 0 || d.kv_heads > 0) {
    require(d.kv_heads > 0 && d.q_heads % d.kv_heads == 0, where, "q has ", d.q_heads,
            " heads, which is not a positive multiple of the ", d.kv_heads, " KV heads of k and v");
    d.group = d.q_heads / d.kv_heads;
  }
  require(q.has_unit_inner_stride() && k.has_unit_inner_stride() && v.has_unit_inner_stride(), where,
          "q, k and v need a unit stride in the head dimension");
  require_valid(kv_begin, where, "kv_begin");
  if (!kv_begin.empty()) {
    require_shape(kv_begin, {d.batch}, where, "kv_begin");
    for (index_t b = 0; b < d.batch; ++b)
      require(kv_begin(b) >= 0 && kv_begin(b) <= d.keys, where, "kv_begin[", b, "] = ", kv_begin(b),
              " lies outside [0, ", d.keys, "]");
  }
  return d;
}

/// Checks an output or gradient view of q's shape (B,S,Hq,Dh).
template <class T>
void check_attention_rows(const attention_dims& d, tensor_view<T, 4> x, const char* where, const char* name) {
  require_shape(x, {d.batch, d.queries, d.q_heads, d.head_dim}, where, name);
  require(x.has_unit_inner_stride(), where, name, " needs a unit stride in the head dimension");
}
/// Checks a gradient view of k's shape (B,L,Hkv,Dh).
template <class T>
void check_attention_keys(const attention_dims& d, tensor_view<T, 4> x, const char* where, const char* name) {
  require_shape(x, {d.batch, d.keys, d.kv_heads, d.head_dim}, where, name);
  require(x.has_unit_inner_stride(), where, name, " needs a unit stride in the head dimension");
}

struct scalar_attention {
  /// o = softmax(scale·q·kᵀ + mask)·v per (batch, query head); lse = log Σ_visible exp(scale·q·kᵀ).
  /// q,o (B,S,Hq,Dh); k,v (B,L,Hkv,Dh); kv_begin (B) int32 or empty; lse (B,Hq,S).
  template <class T>
  static void attention_forward(const backend::scalar&, tensor_view<in_t<T>, 4> q, tensor_view<in_t<T>, 4> k,
                                tensor_view<in_t<T>, 4> v, std::type_identity_t<T> scale, bool causal,
                                vector_view<const std::int32_t> kv_begin, tensor_view<T, 4> o, tensor_view<T, 3> lse) {
    constexpr const char* where = "slim::attention_forward";
    const attention_dims d = check_attention<T>(where, q, k, v, causal, kv_begin);
    check_attention_rows(d, o, where, "o");
    require_shape(lse, {d.batch, d.q_heads, d.queries}, where, "lse");
    std::vector<T> p(static_cast<std::size_t>(d.keys));
    for (index_t b = 0; b < d.batch; ++b)
      for (index_t h = 0; h < d.q_heads; ++h)
        for (index_t i = 0; i < d.queries; ++i) {
          const index_t g = h / d.group, lo = d.key_begin(kv_begin, b), hi = d.key_end(i);
          if (hi <= lo) {  // no visible key
            for (index_t c = 0; c < d.head_dim; ++c) o(b, i, h, c) = T(0);
            lse(b, h, i) = -std::numeric_limits<T>::infinity();
            continue;
          }
          T mx = -std::numeric_limits<T>::infinity();
          for (index_t j = lo; j < hi; ++j) {
            T s = T(0);
            for (index_t c = 0; c < d.head_dim; ++c) s += q(b, i, h, c) * k(b, j, g, c);
            p[j] = scale * s;
            mx = std::max(mx, p[j]);
          }
          T sum = T(0);
          for (index_t j = lo; j < hi; ++j) {
            p[j] = std::exp(p[j] - mx);
            sum += p[j];
          }
          for (index_t c = 0; c < d.head_dim; ++c) {
            T acc = T(0);
            for (index_t j = lo; j < hi; ++j) acc += p[j] * v(b, j, g, c);
            o(b, i, h, c) = acc / sum;
          }
          lse(b, h, i) = mx + std::log(sum);
        }
  }

  /// With p = exp(scale·q·kᵀ − lse) and Dᵢ = doutᵢ·oᵢ: dv += pᵀ·dout; ds = p⊙(dout·vᵀ − D);
  /// dq += scale·ds·k; dk += scale·dsᵀ·q (KV gradients summed over the query heads of their group).
  /// Shapes as forward; an empty dq, dk or dv is skipped.
  template <class T>
  static void attention_backward(const backend::scalar&, tensor_view<in_t<T>, 4> q, tensor_view<in_t<T>, 4> k,
                                 tensor_view<in_t<T>, 4> v, tensor_view<in_t<T>, 4> o, tensor_view<in_t<T>, 4> dout,
                                 tensor_view<in_t<T>, 3> lse, std::type_identity_t<T> scale, bool causal,
                                 vector_view<const std::int32_t> kv_begin, tensor_view<T, 4> dq, tensor_view<T, 4> dk,
                                 tensor_view<T, 4> dv) {
    constexpr const char* where = "slim::attention_backward";
    const attention_dims d = check_attention<T>(where, q, k, v, causal, kv_begin);
    check_attention_rows(d, o, where, "o");
    check_attention_rows(d, dout, where, "dout");
    require_shape(lse, {d.batch, d.q_heads, d.queries}, where, "lse");
    const bool want_dq = !dq.empty(), want_dk = !dk.empty(), want_dv = !dv.empty();
    if (want_dq) check_attention_rows(d, dq, where, "dq");
    if (want_dk) check_attention_keys(d, dk, where, "dk");
    if (want_dv) check_attention_keys(d, dv, where, "dv");
    for (index_t b = 0; b < d.batch; ++b)
      for (index_t h = 0; h < d.q_heads; ++h)
        for (index_t i = 0; i < d.queries; ++i) {
          const index_t g = h / d.group, lo = d.key_begin(kv_begin, b), hi = d.key_end(i);
          if (hi <= lo) continue;
          T di = T(0);
          for (index_t c = 0; c < d.head_dim; ++c) di += dout(b, i, h, c) * o(b, i, h, c);
          for (index_t j = lo; j < hi; ++j) {
            T s = T(0), dp = T(0);
            for (index_t c = 0; c < d.head_dim; ++c) {
              s += q(b, i, h, c) * k(b, j, g, c);
              dp += dout(b, i, h, c) * v(b, j, g, c);
            }
            const T p = std::exp(scale * s - lse(b, h, i));
            const T ds = p * (dp - di);
            for (index_t c = 0; c < d.head_dim; ++c) {
              if (want_dv) dv(b, j, g, c) += p * dout(b, i, h, c);
              if (want_dq) dq(b, i, h, c) += scale * ds * k(b, j, g, c);
              if (want_dk) dk(b, j, g, c) += scale * ds * q(b, i, h, c);
            }
          }
        }
  }
};

}  // namespace slim::backend::detail
