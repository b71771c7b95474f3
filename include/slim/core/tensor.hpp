// slim — owning tensors with 64-byte-aligned host storage. Device storage is provided by the CUDA
// backend (`slim/backend/cuda/memory.cuh`): naming `tensor<T, R, device_space>` without it fails with
// one readable static_assert.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "slim/core/tensor_view.hpp"

namespace slim {

/// Alignment of every host allocation slim makes (a cache line; also the widest SIMD register).
inline constexpr std::size_t host_alignment = 64;

/// Allocation policy of a memory space. `host_space` is defined here; `device_space` by the CUDA backend.
template <class Space>
struct space_allocator {
  static_assert(always_false<Space>,
                "slim: no allocator for this memory space in this translation unit "
                "(device_space: include <slim/backend/cuda/memory.cuh> from a .cu file compiled by nvcc)");
};

template <>
struct space_allocator<host_space> {
  static void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    if (bytes > std::numeric_limits<std::size_t>::max() - host_alignment) throw std::bad_alloc();
    const std::size_t rounded = (bytes + host_alignment - 1) / host_alignment * host_alignment;
    void* p = ::operator new(rounded, std::align_val_t{host_alignment});
    return p;
  }
  static void deallocate(void* p) noexcept {
    if (p) ::operator delete(p, std::align_val_t{host_alignment});
  }
  static void zero(void* p, std::size_t bytes) noexcept {
    if (bytes) std::memset(p, 0, bytes);
  }
};

/// STL allocator handing out `host_alignment`-aligned memory (for std::vector scratch buffers).
template <class T>
struct aligned_allocator {
  using value_type = T;
  aligned_allocator() noexcept = default;
  template <class U>
  aligned_allocator(const aligned_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(space_allocator<host_space>::allocate(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t) noexcept { space_allocator<host_space>::deallocate(p); }
  template <class U>
  bool operator==(const aligned_allocator<U>&) const noexcept {
    return true;
  }
};

/// Tag for `tensor(shape, uninitialized)`: storage whose elements are not written on construction.
struct uninitialized_t {
  explicit uninitialized_t() = default;
};
inline constexpr uninitialized_t uninitialized{};

/// Owning, contiguous, row-major tensor. Elements are zero-initialised on construction, unless constructed with
/// the `uninitialized` tag (then their values are unspecified until written, and pages not yet written cost
/// address space, not resident memory). Trivially copyable element types only (floats, integers, bf16/f16).
template <class T, std::size_t Rank, class Space = host_space>
class tensor {
  static_assert(std::is_trivially_copyable_v<T>, "slim::tensor holds trivially copyable elements only");

 public:
  using value_type = T;
  using memory_space = Space;
  using shape_type = std::array<index_t, Rank>;

  tensor() = default;
  explicit tensor(shape_type shape) : tensor(shape, uninitialized) {
    // the delegated constructor has finished, so a throwing (device) memset frees the storage through ~tensor
    space_allocator<Space>::zero(data_, static_cast<std::size_t>(size_) * sizeof(T));
  }
  tensor(shape_type shape, uninitialized_t) : shape_{shape} {
    const index_t n = checked_size(shape_, "slim::tensor", "shape");
    if (static_cast<std::size_t>(n) > std::numeric_limits<std::size_t>::max() / sizeof(T))
      throw error("slim::tensor", "shape", "byte size of shape " + detail::shape_string(shape_) + " overflows");
    size_ = n;
    data_ = static_cast<T*>(space_allocator<Space>::allocate(static_cast<std::size_t>(n) * sizeof(T)));
  }
  tensor(const tensor& o)
    requires std::is_same_v<Space, host_space>
      : tensor(o.shape_) {
    if (size_) std::memcpy(data_, o.data_, static_cast<std::size_t>(size_) * sizeof(T));
  }
  tensor& operator=(const tensor& o)
    requires std::is_same_v<Space, host_space>
  {
    if (this != &o) {
      tensor t(o);
      swap(t);
    }
    return *this;
  }
  tensor(tensor&& o) noexcept { swap(o); }
  tensor& operator=(tensor&& o) noexcept {
    tensor t(std::move(o));
    swap(t);
    return *this;
  }
  ~tensor() { space_allocator<Space>::deallocate(data_); }

  void swap(tensor& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(shape_, o.shape_);
    std::swap(size_, o.size_);
  }

  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  index_t size() const noexcept { return size_; }
  index_t extent(std::size_t r) const noexcept { return shape_[r]; }
  const shape_type& extents() const noexcept { return shape_; }
  static constexpr std::size_t rank() noexcept { return Rank; }

  tensor_view<T, Rank, Space> view() noexcept { return {data_, shape_}; }
  tensor_view<const T, Rank, Space> view() const noexcept { return {data_, shape_}; }
  operator tensor_view<T, Rank, Space>() noexcept { return view(); }
  operator tensor_view<const T, Rank, Space>() const noexcept { return view(); }

  template <std::integral... I>
    requires(sizeof...(I) == Rank && std::is_same_v<Space, host_space>)
  T& operator()(I... i) noexcept {
    return view()(i...);
  }
  template <std::integral... I>
    requires(sizeof...(I) == Rank && std::is_same_v<Space, host_space>)
  const T& operator()(I... i) const noexcept {
    return view()(i...);
  }

  T* begin() noexcept
    requires std::is_same_v<Space, host_space>
  {
    return data_;
  }
  T* end() noexcept
    requires std::is_same_v<Space, host_space>
  {
    return data_ + size_;
  }
  const T* begin() const noexcept
    requires std::is_same_v<Space, host_space>
  {
    return data_;
  }
  const T* end() const noexcept
    requires std::is_same_v<Space, host_space>
  {
    return data_ + size_;
  }

 private:
  T* data_ = nullptr;
  shape_type shape_{};
  index_t size_ = 0;
};

}  // namespace slim
