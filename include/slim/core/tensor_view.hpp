// slim — non-owning strided tensor views.
//
// Conventions (stated once, used by every layer):
//   * row-major: the last index is the fastest; a contiguous view has stride(Rank-1) == 1;
//   * strides are counted in elements, not bytes, and are signed (`index_t`);
//   * a view names its memory space (`host_space`, `device_space`) in its type, so a host view cannot be
//     handed to a device kernel by mistake: there is no overload for it;
//   * member names follow std::mdspan (extent, stride, data_handle, rank, size, is_exhaustive).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <limits>
#include <string>
#include <type_traits>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"

namespace slim {

namespace detail {
/// "(2,3,4)" from an extents or strides array.
template <std::size_t R>
std::string shape_string(const std::array<index_t, R>& a) {
  std::string s = "(";
  for (std::size_t r = 0; r < R; ++r) {
    if (r) s += ',';  // two appends, not `(r ? "," : "") + ...`: g++ 12 -O3 raises a false -Wrestrict there
    s += std::to_string(a[r]);
  }
  return s + ")";
}
}  // namespace detail

/// Memory the CPU may dereference.
struct host_space {
  static constexpr std::string_view name = "host";
};
/// CUDA global memory: views of it are handled only by `kernels<backend::cuda>`.
struct device_space {
  static constexpr std::string_view name = "device";
};

/// Non-owning view of `Rank`-dimensional data with arbitrary (signed) strides.
template <class T, std::size_t Rank, class Space = host_space>
class tensor_view {
 public:
  static_assert(Rank >= 1, "slim::tensor_view: Rank must be at least 1");
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using memory_space = Space;
  using shape_type = std::array<index_t, Rank>;

  static constexpr std::size_t rank() noexcept { return Rank; }

  constexpr tensor_view() = default;

  /// Contiguous row-major view of `shape`.
  constexpr tensor_view(T* data, shape_type shape) noexcept : data_{data}, shape_{shape} {
    index_t s = 1;
    for (std::size_t r = Rank; r-- > 0;) {
      stride_[r] = s;
      s *= shape_[r];
    }
  }
  /// View with explicit strides (in elements).
  constexpr tensor_view(T* data, shape_type shape, shape_type stride) noexcept
      : data_{data}, shape_{shape}, stride_{stride} {}

  /// T -> const T, like std::span.
  template <class U>
    requires(std::is_same_v<const U, T> && !std::is_same_v<U, T>)
  constexpr tensor_view(const tensor_view<U, Rank, Space>& other) noexcept
      : data_{other.data_handle()}, shape_{other.extents()}, stride_{other.strides()} {}

  template <std::integral... I>
    requires(sizeof...(I) == Rank)
  SLIM_HOST_DEVICE constexpr T& operator()(I... i) const noexcept {
    const index_t idx[] = {static_cast<index_t>(i)...};
    index_t off = 0;
    for (std::size_t r = 0; r < Rank; ++r) off += idx[r] * stride_[r];
    return data_[off];
  }

  SLIM_HOST_DEVICE constexpr T* data_handle() const noexcept { return data_; }
  SLIM_HOST_DEVICE constexpr index_t extent(std::size_t r) const noexcept { return shape_[r]; }
  SLIM_HOST_DEVICE constexpr index_t stride(std::size_t r) const noexcept { return stride_[r]; }
  constexpr const shape_type& extents() const noexcept { return shape_; }
  constexpr const shape_type& strides() const noexcept { return stride_; }
  /// Number of elements (product of extents).
  SLIM_HOST_DEVICE constexpr index_t size() const noexcept {
    index_t n = 1;
    for (std::size_t r = 0; r < Rank; ++r) n *= shape_[r];
    return n;
  }
  constexpr bool empty() const noexcept { return size() == 0; }

  /// True when the elements occupy one dense row-major block (mdspan's is_exhaustive + row-major order).
  constexpr bool is_contiguous() const noexcept {
    index_t s = 1;
    for (std::size_t r = Rank; r-- > 0;) {
      if (shape_[r] != 1 && stride_[r] != s) return false;
      s *= shape_[r];
    }
    return true;
  }
  /// True when the last dimension is dense (stride 1, or extent <= 1): rows can be streamed.
  constexpr bool has_unit_inner_stride() const noexcept { return shape_[Rank - 1] <= 1 || stride_[Rank - 1] == 1; }

  /// The sub-view with index `i` fixed in dimension 0.
  constexpr tensor_view<T, Rank - 1, Space> operator[](index_t i) const noexcept
    requires(Rank > 1)
  {
    typename tensor_view<T, Rank - 1, Space>::shape_type sh{}, st{};
    for (std::size_t r = 1; r < Rank; ++r) {
      sh[r - 1] = shape_[r];
      st[r - 1] = stride_[r];
    }
    return {data_ + i * stride_[0], sh, st};
  }

 private:
  T* data_ = nullptr;
  shape_type shape_{};
  shape_type stride_{};
};

template <class T, class S = host_space>
using vector_view = tensor_view<T, 1, S>;
template <class T, class S = host_space>
using matrix_view = tensor_view<T, 2, S>;

/// Input element type: `in_t<T>` blocks deduction, so T is deduced from output views only and a
/// mutable view converts to the const view an input parameter wants.
template <class T>
using in_t = const std::type_identity_t<T>;

/// The transpose of a matrix view (swaps extents and strides; no data moves).
template <class T, class S>
constexpr matrix_view<T, S> transpose(const matrix_view<T, S>& m) noexcept {
  return {m.data_handle(), {m.extent(1), m.extent(0)}, {m.stride(1), m.stride(0)}};
}

/// A view of the `rank(v)`-dimensional box starting at `first` with extents `count`.
template <class T, std::size_t R, class S>
constexpr tensor_view<T, R, S> subview(const tensor_view<T, R, S>& v, std::array<index_t, R> first,
                                       std::array<index_t, R> count) {
  index_t off = 0;
  for (std::size_t r = 0; r < R; ++r) {
    // `count > extent - first` rather than `first + count > extent`: no signed overflow for huge arguments.
    if (first[r] < 0 || count[r] < 0 || first[r] > v.extent(r) || count[r] > v.extent(r) - first[r])
      throw error("slim::subview", "dimension " + std::to_string(r),
                  "box [" + std::to_string(first[r]) + ", +" + std::to_string(count[r]) + ") exceeds extent " +
                      std::to_string(v.extent(r)));
    off += first[r] * v.stride(r);
  }
  return {v.data_handle() + off, count, v.strides()};
}

/// The number of elements of `shape`. Throws `slim::error(where, name, ...)` for a negative extent or a
/// product that overflows index_t.
template <std::size_t R>
index_t checked_size(const std::array<index_t, R>& shape, const char* where, const char* name) {
  index_t n = 1;
  for (index_t e : shape) {
    if (e < 0) throw error(where, name, "negative extent in shape " + detail::shape_string(shape));
    if (e != 0 && n > std::numeric_limits<index_t>::max() / e)
      throw error(where, name, "element count of shape " + detail::shape_string(shape) + " overflows");
    n *= e;
  }
  return n;
}

/// Reinterprets a view as another rank when it is contiguous (e.g. (B,T,C) as (B*T,C)).
template <std::size_t R2, class T, std::size_t R, class S>
tensor_view<T, R2, S> reshape(const tensor_view<T, R, S>& v, std::array<index_t, R2> shape) {
  const index_t n = checked_size(shape, "slim::reshape", "shape");
  if (!v.is_contiguous())
    throw error("slim::reshape", "view",
                "view of shape " + detail::shape_string(v.extents()) + " and strides " +
                    detail::shape_string(v.strides()) + " is not contiguous");
  if (n != v.size())
    throw error("slim::reshape", "shape",
                "shape " + detail::shape_string(shape) + " has " + std::to_string(n) + " elements, the view " +
                    detail::shape_string(v.extents()) + " has " + std::to_string(v.size()));
  return {v.data_handle(), shape};
}

/// "(2,3,4)" — for error messages.
template <class T, std::size_t R, class S>
std::string shape_string(const tensor_view<T, R, S>& v) {
  return detail::shape_string(v.extents());
}

/// True when both views have the same extents.
template <class T, class U, std::size_t R, class S>
constexpr bool same_shape(const tensor_view<T, R, S>& a, const tensor_view<U, R, S>& b) noexcept {
  for (std::size_t r = 0; r < R; ++r)
    if (a.extent(r) != b.extent(r)) return false;
  return true;
}

/// Throws `slim::error` naming `where` and the argument unless `v` has a non-null pointer (or is empty)
/// and non-negative extents.
template <class T, std::size_t R, class S>
void require_valid(const tensor_view<T, R, S>& v, const char* where, const char* name) {
  for (std::size_t r = 0; r < R; ++r)
    if (v.extent(r) < 0) throw error(where, name, "negative extent in shape " + shape_string(v));
  if (v.data_handle() == nullptr && v.size() != 0) throw error(where, name, "null data for shape " + shape_string(v));
}

/// Throws unless `v` has exactly the extents `shape`.
template <class T, std::size_t R, class S>
void require_shape(const tensor_view<T, R, S>& v, std::array<index_t, R> shape, const char* where, const char* name) {
  require_valid(v, where, name);
  for (std::size_t r = 0; r < R; ++r)
    if (v.extent(r) != shape[r])
      throw error(where, name, "shape " + shape_string(v) + " where " + detail::shape_string(shape) + " is required");
}

}  // namespace slim
