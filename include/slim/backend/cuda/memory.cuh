// slim — device memory: `space_allocator<device_space>` (so `tensor<T, R, device_space>` owns CUDA global
// memory), copies between host and device views, and zero-filling of device views.
//
// Copy semantics: `copy(be, src, dst)` is queued on the backend's stream. When either side is host memory it
// returns only after the copy has finished (the host buffer may be reused or read at once); device-to-device
// copies stay asynchronous and are ordered with the stream's other work.
//
// Layouts a copy accepts: any view whose elements form equally spaced rows of equal length — contiguous
// views, views with padded rows (row stride > row length), and rank-1 views with any positive stride. Both
// sides must have the same extents; their layouts may differ. Anything else (negative or zero strides,
// rows that are not equally spaced) throws `slim::error`.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#if !defined(__CUDACC__)
#error "slim/backend/cuda/memory.cuh needs nvcc: include the CUDA backend only from .cu files"
#endif

#include <cuda_runtime.h>

#include <array>
#include <cstddef>
#include <type_traits>

#include "slim/backend/cuda/runtime.cuh"
#include "slim/core/tensor.hpp"

namespace slim {

/// CUDA global memory through cudaMalloc (256-byte aligned). Zeroing runs on the legacy default stream;
/// `cuda_context` streams are blocking, so later work on them sees the zeros.
template <>
struct space_allocator<device_space> {
  static void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    SLIM_CUDA_CHECK(cudaMalloc(&p, bytes));
    return p;
  }
  static void deallocate(void* p) noexcept {
    if (p) (void)cudaFree(p);  // cannot throw from a destructor; a failure here means the context is gone
  }
  static void zero(void* p, std::size_t bytes) {
    if (bytes) SLIM_CUDA_CHECK(cudaMemset(p, 0, bytes));
  }
};

}  // namespace slim

namespace slim::backend {

namespace cuda_detail {

/// A view's elements as `height` rows of `width` elements, rows `pitch` elements apart (cudaMemcpy2D's
/// model). `ok` is false when the view does not fit it.
struct row_layout {
  bool ok = false;
  index_t height = 0, width = 0, pitch = 0;
};

/// The row layout of a view with extent-1 dimensions dropped (`keep` marks the remaining dimensions, the
/// same for every view of the same shape); `inner_rows`: the last remaining dimension forms the rows
/// (width = its extent, stride 1 required) rather than being one more row dimension of width 1.
template <std::size_t R>
row_layout layout_of(const std::array<index_t, R>& shape, const std::array<index_t, R>& stride, bool inner_rows) {
  row_layout l;
  index_t dims[R], strides[R];
  std::size_t n = 0;
  for (std::size_t r = 0; r < R; ++r)
    if (shape[r] != 1) {
      dims[n] = shape[r];
      strides[n] = stride[r];
      ++n;
    }
  l.width = 1;
  if (inner_rows && n > 0) {
    if (strides[n - 1] != 1) return l;
    l.width = dims[n - 1];
    --n;
  }
  l.height = 1;
  l.pitch = l.width;
  if (n > 0) {
    // The remaining dimensions must fold into one: each stride equals the next one times its extent.
    for (std::size_t i = 0; i + 1 < n; ++i)
      if (strides[i] != strides[i + 1] * dims[i + 1]) return l;
    for (std::size_t i = 0; i < n; ++i) l.height *= dims[i];
    l.pitch = strides[n - 1];
    if (l.pitch < l.width) return l;  // zero, negative or overlapping rows
  }
  l.ok = true;
  return l;
}

template <class Space>
constexpr bool is_device = std::is_same_v<Space, device_space>;

template <class SrcSpace, class DstSpace>
constexpr cudaMemcpyKind copy_kind() {
  if constexpr (is_device<SrcSpace> && is_device<DstSpace>)
    return cudaMemcpyDeviceToDevice;
  else if constexpr (is_device<SrcSpace>)
    return cudaMemcpyDeviceToHost;
  else if constexpr (is_device<DstSpace>)
    return cudaMemcpyHostToDevice;
  else
    return cudaMemcpyHostToHost;
}

}  // namespace cuda_detail

/// Copies `src` into `dst` (same extents) on the backend's stream; see the header comment for which
/// layouts are accepted and when the call returns. Either side may be host or device memory.
template <class T, std::size_t R, class SrcSpace, class DstSpace>
requires std::is_trivially_copyable_v<T>
void copy(const backend::cuda& be, tensor_view<const T, R, SrcSpace> src, tensor_view<T, R, DstSpace> dst) {
  constexpr const char* where = "slim::backend::copy (cuda)";
  require_valid(src, where, "src");
  require_shape(dst, src.extents(), where, "dst");
  if (src.size() == 0) return;
  // Rows of the innermost dimension when both sides stream it; single elements otherwise.
  bool inner = true;
  auto s = cuda_detail::layout_of(src.extents(), src.strides(), inner);
  auto d = cuda_detail::layout_of(dst.extents(), dst.strides(), inner);
  if (!s.ok || !d.ok) {
    inner = false;
    s = cuda_detail::layout_of(src.extents(), src.strides(), inner);
    d = cuda_detail::layout_of(dst.extents(), dst.strides(), inner);
  }
  if (!s.ok) throw error(where, "src", "layout of shape " + shape_string(src) + " is not equally spaced rows");
  if (!d.ok) throw error(where, "dst", "layout of shape " + shape_string(dst) + " is not equally spaced rows");
  const cudaStream_t stream = cuda_detail::stream_of(be);
  constexpr cudaMemcpyKind kind = cuda_detail::copy_kind<SrcSpace, DstSpace>();
  const std::size_t e = sizeof(T);
  if (s.height == 1 || (s.pitch == s.width && d.pitch == d.width)) {
    SLIM_CUDA_CHECK(
        cudaMemcpyAsync(dst.data_handle(), src.data_handle(), static_cast<std::size_t>(src.size()) * e, kind, stream));
  } else {
    SLIM_CUDA_CHECK(cudaMemcpy2DAsync(dst.data_handle(), static_cast<std::size_t>(d.pitch) * e, src.data_handle(),
                                      static_cast<std::size_t>(s.pitch) * e, static_cast<std::size_t>(s.width) * e,
                                      static_cast<std::size_t>(s.height), kind, stream));
  }
  if constexpr (!cuda_detail::is_device<SrcSpace> || !cuda_detail::is_device<DstSpace>)
    SLIM_CUDA_CHECK(cudaStreamSynchronize(stream));
}

/// Mutable source views convert to the const view `copy` takes.
template <class T, std::size_t R, class SrcSpace, class DstSpace>
requires(!std::is_const_v<T>) void copy(const backend::cuda& be, tensor_view<T, R, SrcSpace> src,
                                        tensor_view<T, R, DstSpace> dst) {
  copy(be, tensor_view<const T, R, SrcSpace>(src), dst);
}

/// Sets every element of the device view `v` to all-zero bytes (0 for floats and integers), on the stream.
template <class T, std::size_t R>
void fill_zero(const backend::cuda& be, tensor_view<T, R, device_space> v) {
  constexpr const char* where = "slim::backend::fill_zero (cuda)";
  require_valid(v, where, "v");
  if (v.size() == 0) return;
  auto l = cuda_detail::layout_of(v.extents(), v.strides(), true);
  if (!l.ok) l = cuda_detail::layout_of(v.extents(), v.strides(), false);
  if (!l.ok) throw error(where, "v", "layout of shape " + shape_string(v) + " is not equally spaced rows");
  const std::size_t e = sizeof(T);
  SLIM_CUDA_CHECK(cudaMemset2DAsync(v.data_handle(), static_cast<std::size_t>(l.pitch) * e, 0,
                                    static_cast<std::size_t>(l.width) * e, static_cast<std::size_t>(l.height),
                                    cuda_detail::stream_of(be)));
}

/// A device tensor holding a copy of the host view `src` (any layout `copy` accepts).
template <class T, std::size_t R>
tensor<std::remove_const_t<T>, R, device_space> to_device(const backend::cuda& be, tensor_view<T, R, host_space> src) {
  tensor<std::remove_const_t<T>, R, device_space> out(src.extents());
  copy(be, tensor_view<const std::remove_const_t<T>, R, host_space>(src), out.view());
  return out;
}

/// A host tensor holding a copy of the device view `src`; returns after the copy has finished.
template <class T, std::size_t R>
tensor<std::remove_const_t<T>, R> to_host(const backend::cuda& be, tensor_view<T, R, device_space> src) {
  tensor<std::remove_const_t<T>, R> out(src.extents());
  copy(be, tensor_view<const std::remove_const_t<T>, R, device_space>(src), out.view());
  return out;
}

}  // namespace slim::backend
