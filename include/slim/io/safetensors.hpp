// slim — safetensors files: a memory-mapped, validate-everything-at-open reader and an atomic writer.
// Format (huggingface/safetensors): 8-byte little-endian header length N, N bytes of UTF-8 JSON, the data.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"
#include "slim/core/half.hpp"
#include "slim/core/tensor_view.hpp"
#include "slim/io/atomic_file.hpp"
#include "slim/io/json.hpp"

// Rules this reader enforces (docs/io.md; the same rules as the reference implementation, safetensors 0.4):
//   * the file holds at least 8 bytes; N <= 100,000,000 and 8 + N <= file size;
//   * the header is one JSON object; "__metadata__", if present and not null, maps strings to strings;
//     every other key is a tensor name, appearing once, whose value is an object with
//       "dtype"        one of F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL,
//       "shape"        an array of non-negative integers (empty: a scalar),
//       "data_offsets" [begin, end], integers with begin <= end, relative to the start of the data section;
//   * product(shape) * dtype size == end - begin, computed without overflow;
//   * the byte ranges, sorted by begin, tile the data section exactly: the first begins at 0, each begins
//     where the previous one ended (so none overlap and none lie past the end), and the last ends at the
//     end of the file.
// Every violation throws slim::error(path, "tensor <name>" or "header", message naming the field).
// Data is little-endian (static_assert below); the file must not change while it is mapped.

namespace slim::io {

static_assert(std::endian::native == std::endian::little, "slim::io::safetensors assumes a little-endian host");

/// Element types of safetensors files (F8 and unsigned types wider than a byte are not supported).
enum class dtype : std::uint8_t { f64, f32, f16, bf16, i64, i32, i16, i8, u8, boolean };

/// The safetensors spelling: "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL".
constexpr std::string_view dtype_name(dtype t) noexcept {
  switch (t) {
    case dtype::f64:
      return "F64";
    case dtype::f32:
      return "F32";
    case dtype::f16:
      return "F16";
    case dtype::bf16:
      return "BF16";
    case dtype::i64:
      return "I64";
    case dtype::i32:
      return "I32";
    case dtype::i16:
      return "I16";
    case dtype::i8:
      return "I8";
    case dtype::u8:
      return "U8";
    case dtype::boolean:
      return "BOOL";
  }
  return "?";
}

/// Bytes per element.
constexpr std::size_t dtype_size(dtype t) noexcept {
  switch (t) {
    case dtype::f64:
    case dtype::i64:
      return 8;
    case dtype::f32:
    case dtype::i32:
      return 4;
    case dtype::f16:
    case dtype::bf16:
    case dtype::i16:
      return 2;
    case dtype::i8:
    case dtype::u8:
    case dtype::boolean:
      return 1;
  }
  return 0;
}

/// True for F64, F32, F16 and BF16.
constexpr bool is_floating(dtype t) noexcept {
  return t == dtype::f64 || t == dtype::f32 || t == dtype::f16 || t == dtype::bf16;
}

/// The dtype whose name is `name` (exact, case-sensitive), or false.
constexpr bool parse_dtype(std::string_view name, dtype& out) noexcept {
  for (dtype t : {dtype::f64, dtype::f32, dtype::f16, dtype::bf16, dtype::i64, dtype::i32, dtype::i16, dtype::i8,
                  dtype::u8, dtype::boolean})
    if (dtype_name(t) == name) {
      out = t;
      return true;
    }
  return false;
}

/// True for the element types that have a safetensors dtype (see dtype_of).
template <class T>
inline constexpr bool has_dtype =
    std::is_same_v<std::remove_cv_t<T>, float> || std::is_same_v<std::remove_cv_t<T>, double> ||
    std::is_same_v<std::remove_cv_t<T>, bf16> || std::is_same_v<std::remove_cv_t<T>, f16> ||
    std::is_same_v<std::remove_cv_t<T>, bool> || std::is_same_v<std::remove_cv_t<T>, std::int64_t> ||
    std::is_same_v<std::remove_cv_t<T>, std::int32_t> || std::is_same_v<std::remove_cv_t<T>, std::int16_t> ||
    std::is_same_v<std::remove_cv_t<T>, std::int8_t> || std::is_same_v<std::remove_cv_t<T>, std::uint8_t>;

/// The stored dtype of a C++ element type: float F32, double F64, slim::bf16 BF16, slim::f16 F16,
/// std::int64_t I64, ..., std::uint8_t U8, bool BOOL.
template <class T>
constexpr dtype dtype_of() noexcept {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, float>)
    return dtype::f32;
  else if constexpr (std::is_same_v<U, double>)
    return dtype::f64;
  else if constexpr (std::is_same_v<U, bf16>)
    return dtype::bf16;
  else if constexpr (std::is_same_v<U, f16>)
    return dtype::f16;
  else if constexpr (std::is_same_v<U, bool>)
    return dtype::boolean;
  else if constexpr (std::is_same_v<U, std::int64_t>)
    return dtype::i64;
  else if constexpr (std::is_same_v<U, std::int32_t>)
    return dtype::i32;
  else if constexpr (std::is_same_v<U, std::int16_t>)
    return dtype::i16;
  else if constexpr (std::is_same_v<U, std::int8_t>)
    return dtype::i8;
  else if constexpr (std::is_same_v<U, std::uint8_t>)
    return dtype::u8;
  else
    static_assert(always_false<T>, "slim::io::dtype_of: no safetensors dtype for this element type");
}

/// One tensor's header entry. `begin`/`end` are byte offsets in the data section (after the header).
struct tensor_info {
  std::string name;
  io::dtype type = dtype::f32;
  std::vector<index_t> shape;
  std::size_t begin = 0, end = 0;

  /// Number of elements (1 for a scalar, shape ()).
  index_t numel() const {
    index_t n = 1;
    for (index_t e : shape) n *= e;  // validated at open: no overflow
    return n;
  }
};

namespace detail {

/// "(2,3,4)" for a runtime shape.
inline std::string shape_string(std::span<const index_t> shape) {
  std::string s = "(";
  for (std::size_t r = 0; r < shape.size(); ++r) {
    if (r) s += ',';
    s += std::to_string(shape[r]);
  }
  return s + ")";
}

inline std::string tensor_place(std::string_view name) { return "tensor " + std::string(name); }

/// Element `i` of a little-endian buffer of U, read without alignment requirements.
template <class U>
U load_le(const std::byte* p, std::size_t i) noexcept {
  U u;
  std::memcpy(&u, p + i * sizeof(U), sizeof(U));
  return u;
}

/// Calls f(linear index, T& element) over `out` in row-major order (strided views included).
template <class T, std::size_t R, class F>
void for_each_row_major(tensor_view<T, R> out, F&& f) {
  const index_t n = out.size();
  if (n == 0) return;
  if (out.is_contiguous()) {
    T* p = out.data_handle();
    for (index_t i = 0; i < n; ++i) f(i, p[i]);
    return;
  }
  std::array<index_t, R> idx{};
  index_t off = 0;
  for (index_t i = 0; i < n; ++i) {
    f(i, out.data_handle()[off]);
    for (std::size_t r = R; r-- > 0;) {  // odometer increment
      ++idx[r];
      off += out.stride(r);
      if (idx[r] < out.extent(r)) break;
      off -= idx[r] * out.stride(r);
      idx[r] = 0;
    }
  }
}

/// "F32", "I16", ... for element types with a dtype; "U32"-like labels for the other integer types.
template <class U>
std::string type_label() {
  if constexpr (has_dtype<U>)
    return std::string(dtype_name(dtype_of<U>()));
  else
    return std::string(std::is_signed_v<U> ? "I" : "U") + std::to_string(8 * sizeof(U));
}

/// Converts `count` stored elements of type `from` at `src` and hands element i as T to `put(i, T)`.
/// Floating T (float, double, bf16, f16) accepts the floating dtypes; integer T and bool accept the integer
/// dtypes and BOOL when every value fits (else slim::error). Anything else is a slim::error.
template <class T, class Put>
void convert_elements(const std::byte* src, dtype from, index_t count, Put&& put, const std::string& path,
                      std::string_view name) {
  using U = std::remove_cv_t<T>;
  constexpr bool floating_target = std::is_floating_point_v<U> || std::is_same_v<U, bf16> || std::is_same_v<U, f16>;
  const auto n = static_cast<std::size_t>(count);
  auto refuse = [&] {
    return error(path, tensor_place(name),
                 "cannot read a " + std::string(dtype_name(from)) + " tensor as " +
                     std::string(floating_target ? "a floating-point" : "an integer") + " type (" + type_label<U>() +
                     ")");
  };
  if constexpr (floating_target) {
    auto emit = [&](std::size_t i, auto v) {  // v: float or double
      if constexpr (std::is_floating_point_v<U>)
        put(i, static_cast<U>(v));
      else
        put(i, U(static_cast<float>(v)));
    };
    switch (from) {
      case dtype::f64:
        for (std::size_t i = 0; i < n; ++i) emit(i, load_le<double>(src, i));
        return;
      case dtype::f32:
        for (std::size_t i = 0; i < n; ++i) emit(i, load_le<float>(src, i));
        return;
      case dtype::f16:
        if constexpr (std::is_same_v<U, f16>) {
          for (std::size_t i = 0; i < n; ++i) put(i, f16::from_bits(load_le<std::uint16_t>(src, i)));
        } else {
          for (std::size_t i = 0; i < n; ++i) emit(i, f16::to_float(load_le<std::uint16_t>(src, i)));
        }
        return;
      case dtype::bf16:
        if constexpr (std::is_same_v<U, bf16>) {
          for (std::size_t i = 0; i < n; ++i) put(i, bf16::from_bits(load_le<std::uint16_t>(src, i)));
        } else {
          for (std::size_t i = 0; i < n; ++i)
            emit(i, std::bit_cast<float>(std::uint32_t{load_le<std::uint16_t>(src, i)} << 16));
        }
        return;
      default:
        throw refuse();
    }
  } else {
    static_assert(std::is_integral_v<U> && !std::is_same_v<U, char> && !std::is_same_v<U, char8_t> &&
                      !std::is_same_v<U, char16_t> && !std::is_same_v<U, char32_t> && !std::is_same_v<U, wchar_t>,
                  "slim::io: read into float, double, bf16, f16, a signed or unsigned integer type, or bool");
    auto emit = [&](std::size_t i, auto v) {
      if constexpr (std::is_same_v<U, bool>) {
        if (v != 0 && v != 1)
          throw error(path, tensor_place(name),
                      "element " + std::to_string(i) + " is " + std::to_string(v) + ", not 0 or 1 (reading as bool)");
        put(i, v != 0);
      } else {
        if (!std::in_range<U>(v))
          throw error(path, tensor_place(name),
                      "element " + std::to_string(i) + " = " + std::to_string(v) + " does not fit the " +
                          type_label<U>() + " it is read into");
        put(i, static_cast<U>(v));
      }
    };
    switch (from) {
      case dtype::i64:
        for (std::size_t i = 0; i < n; ++i) emit(i, load_le<std::int64_t>(src, i));
        return;
      case dtype::i32:
        for (std::size_t i = 0; i < n; ++i) emit(i, load_le<std::int32_t>(src, i));
        return;
      case dtype::i16:
        for (std::size_t i = 0; i < n; ++i) emit(i, load_le<std::int16_t>(src, i));
        return;
      case dtype::i8:
        for (std::size_t i = 0; i < n; ++i) emit(i, load_le<std::int8_t>(src, i));
        return;
      case dtype::u8:
      case dtype::boolean:
        for (std::size_t i = 0; i < n; ++i) emit(i, load_le<std::uint8_t>(src, i));
        return;
      default:
        throw refuse();
    }
  }
}

/// A read-only mapping of a whole file, unmapped on destruction; move-only.
struct mapping {
  void* address = nullptr;
  std::size_t size = 0;
  mapping() = default;
  mapping(void* a, std::size_t s) noexcept : address(a), size(s) {}
  mapping(const mapping&) = delete;
  mapping& operator=(const mapping&) = delete;
  mapping(mapping&& o) noexcept : address(std::exchange(o.address, nullptr)), size(std::exchange(o.size, 0)) {}
  mapping& operator=(mapping&& o) noexcept {
    if (this != &o) {
      reset();
      address = std::exchange(o.address, nullptr);
      size = std::exchange(o.size, 0);
    }
    return *this;
  }
  ~mapping() { reset(); }
  void reset() noexcept {
    if (address != nullptr) ::munmap(address, size);
    address = nullptr;
    size = 0;
  }
  const std::byte* data() const noexcept { return static_cast<const std::byte*>(address); }
};

/// Reads an unsigned JSON integer at `key` of `entry`; anything else throws naming the field.
inline std::uint64_t header_uint(const json& v, const std::string& path, std::string_view name, const char* field) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
    std::string got = v.is_number_integer() ? "negative integer " + v.dump() : v.type_name();
    if (v.is_number_float()) got = "non-integer number " + v.dump();
    throw error(path, tensor_place(name),
                std::string("field ") + field + ": expected a non-negative integer, got " + got);
  }
  return v.get<std::uint64_t>();
}

}  // namespace detail

/// A safetensors file, memory-mapped read-only and validated in full when opened (see the rules above).
/// Movable, not copyable; the mapping is released on destruction. Views and spans it hands out live as
/// long as the object (moving it keeps them valid: the mapping does not move).
class safetensors_file {
 public:
  /// Largest header accepted (the reference implementation's limit).
  static constexpr std::uint64_t max_header_bytes = 100'000'000;

  /// Opens and validates `path`; any problem throws slim::error naming the path, and the tensor and field.
  explicit safetensors_file(std::string path) : path_(std::move(path)) {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw detail::system_error(path_, "cannot open for reading", errno);
    struct closer {
      int fd;
      ~closer() { detail::close_fd(fd); }
    } close_on_exit{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw detail::system_error(path_, "fstat failed", errno);
    if (!S_ISREG(st.st_mode)) throw error(path_, "", "not a regular file");
    const auto file_size = static_cast<std::uint64_t>(st.st_size);
    if (file_size < 8)
      throw error(path_, "header",
                  "file is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length: truncated");
    void* address = ::mmap(nullptr, static_cast<std::size_t>(file_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (address == MAP_FAILED) throw detail::system_error(path_, "mmap failed", errno);
    map_ = detail::mapping(address, static_cast<std::size_t>(file_size));
    parse(file_size);
  }

  safetensors_file(const safetensors_file&) = delete;
  safetensors_file& operator=(const safetensors_file&) = delete;
  safetensors_file(safetensors_file&&) noexcept = default;
  safetensors_file& operator=(safetensors_file&&) noexcept = default;
  ~safetensors_file() = default;

  const std::string& path() const noexcept { return path_; }
  /// Number of tensors.
  std::size_t size() const noexcept { return tensors_.size(); }
  bool contains(std::string_view name) const noexcept { return tensors_.find(name) != tensors_.end(); }

  /// The header entry of `name`; a missing tensor throws slim::error naming the file and the tensor.
  const tensor_info& info(std::string_view name) const {
    const auto it = tensors_.find(name);
    if (it == tensors_.end()) throw error(path_, detail::tensor_place(name), "no such tensor in the file");
    return it->second;
  }

  /// Tensor names, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& [k, v] : tensors_) out.push_back(k);
    return out;
  }

  /// The "__metadata__" map (empty when absent).
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

  /// The stored bytes of `name` (little-endian, row-major).
  std::span<const std::byte> bytes(std::string_view name) const {
    const tensor_info& t = info(name);
    return {data_ + t.begin, t.end - t.begin};
  }

  /// Copies `name` into `out`, converting the element type: float/double/bf16/f16 from F64, F32, F16, BF16
  /// (rounding to nearest even when narrowing); integer types and bool from I64..U8 and BOOL when every
  /// value fits. `out`'s extents must equal the stored shape exactly (rank and every extent); `out` may be
  /// strided. Otherwise slim::error naming the file, the tensor, and the stored and expected shapes.
  template <class T, std::size_t R>
  void read(std::string_view name, tensor_view<T, R> out) const {
    static_assert(!std::is_const_v<T>, "slim::io::safetensors_file::read: the output view must be mutable");
    const tensor_info& t = info(name);
    bool same = t.shape.size() == R;
    for (std::size_t r = 0; same && r < R; ++r) same = t.shape[r] == out.extent(r);
    if (!same)
      throw error(path_, detail::tensor_place(name),
                  "stored shape " + detail::shape_string(t.shape) + " (" + std::string(dtype_name(t.type)) +
                      ") differs from the expected shape " + slim::detail::shape_string(out.extents()));
    if (out.is_contiguous()) {
      copy_into<T>(t, out.data_handle());
    } else {  // convert into a dense buffer, then scatter in row-major order
      std::unique_ptr<T[]> dense(new T[static_cast<std::size_t>(out.size())]);
      const T* p = dense.get();
      copy_into<T>(t, dense.get());
      detail::for_each_row_major(out, [p](index_t i, T& e) { e = p[i]; });
    }
  }

  /// Copies all elements of `name` in row-major order into `out`, whose size must equal the element count
  /// (any rank). Conversions as in read.
  template <class T>
  void read_flat(std::string_view name, std::span<T> out) const {
    static_assert(!std::is_const_v<T>, "slim::io::safetensors_file::read_flat: the output must be mutable");
    const tensor_info& t = info(name);
    if (static_cast<index_t>(out.size()) != t.numel())
      throw error(path_, detail::tensor_place(name),
                  "stored shape " + detail::shape_string(t.shape) + " has " + std::to_string(t.numel()) +
                      " elements, the output has " + std::to_string(out.size()));
    copy_into<T>(t, out.data());
  }

  /// All elements of `name` in row-major order, converted to T (as in read).
  template <class T>
  std::vector<T> to_vector(std::string_view name) const {
    std::vector<T> out(static_cast<std::size_t>(info(name).numel()));
    if constexpr (std::is_same_v<T, bool>) {  // std::vector<bool> has no data()
      std::unique_ptr<bool[]> tmp(new bool[out.size()]);
      read_flat(name, std::span<bool>(tmp.get(), out.size()));
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = tmp[i];
    } else {
      read_flat(name, std::span<T>(out));
    }
    return out;
  }

  /// A zero-copy view of `name`'s stored data: the stored dtype must be dtype_of<T>(), the stored rank R,
  /// and the data aligned for T; otherwise slim::error (callers then fall back to read).
  template <class T, std::size_t R>
  tensor_view<const T, R> view(std::string_view name) const {
    using U = std::remove_cv_t<T>;
    const tensor_info& t = info(name);
    if (t.type != dtype_of<U>())
      throw error(path_, detail::tensor_place(name),
                  "stored dtype " + std::string(dtype_name(t.type)) + " is not " +
                      std::string(dtype_name(dtype_of<U>())) + ": no zero-copy view (use read to convert)");
    if (t.shape.size() != R)
      throw error(path_, detail::tensor_place(name),
                  "stored shape " + detail::shape_string(t.shape) + " has rank " + std::to_string(t.shape.size()) +
                      ", the view rank " + std::to_string(R));
    const std::byte* p = data_ + t.begin;
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(U) != 0)
      throw error(path_, detail::tensor_place(name),
                  "data at offset " + std::to_string(t.begin) + " of the data section is not aligned for " +
                      std::string(dtype_name(t.type)) + ": no zero-copy view (use read to copy)");
    std::array<index_t, R> shape{};
    for (std::size_t r = 0; r < R; ++r) shape[r] = t.shape[r];
    return {reinterpret_cast<const U*>(p), shape};
  }

  /// Offset of the data section in the file (8 + header length).
  std::size_t data_offset() const noexcept { return static_cast<std::size_t>(data_ - map_.data()); }

 private:
  /// Writes all elements of `t`, converted to T, to the dense array `dst` (row-major).
  template <class T>
  void copy_into(const tensor_info& t, T* dst) const {
    using U = std::remove_cv_t<T>;
    const std::byte* src = data_ + t.begin;
    if constexpr (has_dtype<U> && !std::is_same_v<U, bool>) {
      if (t.type == dtype_of<U>()) {  // same type: one copy (a bool byte other than 0/1 must not be copied)
        if (t.end > t.begin) std::memcpy(dst, src, t.end - t.begin);
        return;
      }
    }
    detail::convert_elements<U>(
        src, t.type, t.numel(), [dst](std::size_t i, U v) { dst[i] = v; }, path_, t.name);
  }

  void parse(std::uint64_t file_size) {
    const std::byte* base = map_.data();
    std::uint64_t n = 0;
    std::memcpy(&n, base, 8);
    if (n > max_header_bytes)
      throw error(path_, "header",
                  "header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(max_header_bytes) +
                      " bytes");
    if (n > file_size - 8)
      throw error(path_, "header",
                  "header length " + std::to_string(n) + " runs past the end of the file (" +
                      std::to_string(file_size) + " bytes): truncated or not a safetensors file");
    const std::string_view text(reinterpret_cast<const char*>(base + 8), static_cast<std::size_t>(n));
    data_ = base + 8 + n;
    const std::uint64_t data_size = file_size - 8 - n;

    // nlohmann-json stops at a NUL byte as if the input ended there: refuse one explicitly.
    if (const auto nul = text.find('\0'); nul != std::string_view::npos)
      throw error(path_, "header",
                  "NUL byte at offset " + std::to_string(8 + nul) + " (the header must be JSON, padded with spaces)");
    // Duplicate tensor names would be collapsed silently by the DOM: catch them while parsing.
    std::set<std::string, std::less<>> seen;
    std::string duplicate;
    const json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& parsed) {
      if (depth == 1 && event == json::parse_event_t::key && duplicate.empty()) {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!seen.insert(key).second) duplicate = key;
      }
      return true;
    };
    json header;
    try {
      header = json::parse(text.begin(), text.end(), on_event);
    } catch (const json::parse_error& e) {
      throw error(path_, "header", "not valid JSON at byte " + std::to_string(e.byte) + ": " + detail::json_message(e));
    } catch (const json::exception& e) {
      throw error(path_, "header", "not valid JSON: " + detail::json_message(e));
    }
    if (!header.is_object())
      throw error(path_, "header", std::string("is a JSON ") + header.type_name() + ", not an object");
    if (!duplicate.empty()) throw error(path_, detail::tensor_place(duplicate), "appears more than once in the header");

    std::vector<const tensor_info*> by_offset;
    for (const auto& [key, value] : header.items()) {
      if (key == "__metadata__") {
        read_metadata(value);
        continue;
      }
      tensor_info t = parse_entry(key, value, data_size);
      tensors_.emplace(key, std::move(t));
    }
    for (const auto& [k, t] : tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(), [](const tensor_info* a, const tensor_info* b) {
      return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    std::size_t expected = 0;
    const tensor_info* previous = nullptr;
    for (const tensor_info* t : by_offset) {
      if (t->begin < expected)
        throw error(path_, detail::tensor_place(t->name),
                    "field data_offsets: [" + std::to_string(t->begin) + ", " + std::to_string(t->end) +
                        ") overlaps tensor " + previous->name + " [" + std::to_string(previous->begin) + ", " +
                        std::to_string(previous->end) + ")");
      if (t->begin > expected)
        throw error(path_, detail::tensor_place(t->name),
                    "field data_offsets: begins at " + std::to_string(t->begin) + ", leaving bytes [" +
                        std::to_string(expected) + ", " + std::to_string(t->begin) +
                        ") of the data section unused (ranges must tile the data section)");
      expected = t->end;
      previous = t;
    }
    if (expected != data_size)
      throw error(path_, previous ? detail::tensor_place(previous->name) : std::string("header"),
                  "the tensors end at byte " + std::to_string(expected) + " of the data section, which has " +
                      std::to_string(data_size) + " bytes (" + std::to_string(data_size - expected) +
                      " trailing bytes belong to no tensor)");
  }

  void read_metadata(const json& value) {
    if (value.is_null()) return;
    if (!value.is_object())
      throw error(path_, "field __metadata__", std::string("expected an object of strings, got ") + value.type_name());
    for (const auto& [k, v] : value.items()) {
      if (!v.is_string())
        throw error(path_, "field __metadata__/" + k, std::string("expected a string, got ") + v.type_name());
      metadata_.emplace(k, v.get<std::string>());
    }
  }

  tensor_info parse_entry(const std::string& name, const json& value, std::uint64_t data_size) const {
    const std::string place = detail::tensor_place(name);
    if (!value.is_object())
      throw error(path_, place,
                  std::string("expected an object with dtype, shape and data_offsets, got ") + value.type_name());
    auto field = [&](const char* key) -> const json& {
      const auto it = value.find(key);
      if (it == value.end()) throw error(path_, place, std::string("field ") + key + ": missing");
      return *it;
    };
    tensor_info t;
    t.name = name;
    const json& d = field("dtype");
    if (!d.is_string()) throw error(path_, place, std::string("field dtype: expected a string, got ") + d.type_name());
    if (!parse_dtype(d.get_ref<const std::string&>(), t.type))
      throw error(path_, place,
                  "field dtype: unknown or unsupported dtype " + d.dump() +
                      " (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
    const json& s = field("shape");
    if (!s.is_array()) throw error(path_, place, std::string("field shape: expected an array, got ") + s.type_name());
    std::uint64_t count = 1;
    bool overflow = false;
    for (const json& e : s) {
      const std::uint64_t x = detail::header_uint(e, path_, name, "shape");
      if (x > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()))
        throw error(path_, place, "field shape: extent " + std::to_string(x) + " is too large");
      t.shape.push_back(static_cast<index_t>(x));
      if (x != 0 && count > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()) / x)
        overflow = true;
      else
        count *= x;
    }
    bool has_zero = std::find(t.shape.begin(), t.shape.end(), index_t{0}) != t.shape.end();
    if (has_zero) count = 0, overflow = false;
    if (overflow)
      throw error(path_, place, "field shape: element count of " + detail::shape_string(t.shape) + " overflows");
    const json& o = field("data_offsets");
    if (!o.is_array() || o.size() != 2)
      throw error(path_, place, "field data_offsets: expected [begin, end], got " + o.dump());
    const std::uint64_t b = detail::header_uint(o[0], path_, name, "data_offsets");
    const std::uint64_t e = detail::header_uint(o[1], path_, name, "data_offsets");
    if (b > e)
      throw error(path_, place,
                  "field data_offsets: begin " + std::to_string(b) + " is after end " + std::to_string(e));
    if (e > data_size)
      throw error(path_, place,
                  "field data_offsets: end " + std::to_string(e) + " is past the end of the data section (" +
                      std::to_string(data_size) + " bytes)");
    const std::uint64_t size = dtype_size(t.type);
    if (count > std::numeric_limits<std::uint64_t>::max() / size || count * size != e - b)
      throw error(
          path_, place,
          "shape " + detail::shape_string(t.shape) + " of " + std::string(dtype_name(t.type)) + " needs " +
              (count > std::numeric_limits<std::uint64_t>::max() / size ? std::string("more bytes than fit in 64 bits")
                                                                        : std::to_string(count * size) + " bytes") +
              ", but data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + ") hold " +
              std::to_string(e - b));
    t.begin = static_cast<std::size_t>(b);
    t.end = static_cast<std::size_t>(e);
    return t;
  }

  std::string path_;
  detail::mapping map_;
  const std::byte* data_ = nullptr;
  std::map<std::string, tensor_info, std::less<>> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// A tensor to write: `data` holds the little-endian bytes (row-major), product(shape) * dtype_size(type)
/// of them. `data` must stay valid until write_safetensors returns; `storage`, when set, owns it (entries
/// made by f32_entry with a conversion, or by entry_of for a strided view).
struct tensor_entry {
  std::string name;
  io::dtype type = dtype::f32;
  std::vector<index_t> shape;
  std::span<const std::byte> data;
  std::shared_ptr<const std::vector<std::byte>> storage = {};
};

/// An entry for float data stored as F32 (no copy: `data` must outlive the write), or converted to BF16 or
/// F16 (round to nearest even; the entry owns the converted bytes) when `as` says so.
inline tensor_entry f32_entry(std::string name, std::vector<index_t> shape, std::span<const float> data,
                              dtype as = dtype::f32) {
  tensor_entry e{std::move(name), as, std::move(shape), {}, {}};
  switch (as) {
    case dtype::f32:
      e.data = std::as_bytes(data);
      return e;
    case dtype::bf16:
    case dtype::f16: {
      auto bytes = std::make_shared<std::vector<std::byte>>(data.size() * 2);
      for (std::size_t i = 0; i < data.size(); ++i) {
        const std::uint16_t b = as == dtype::bf16 ? bf16::from_float(data[i]) : f16::from_float(data[i]);
        std::memcpy(bytes->data() + 2 * i, &b, 2);
      }
      e.data = std::span<const std::byte>(*bytes);
      e.storage = std::move(bytes);
      return e;
    }
    default:
      throw error("slim::io::f32_entry", detail::tensor_place(e.name),
                  "cannot store float data as " + std::string(dtype_name(as)) + " (F32, BF16 or F16 only)");
  }
}

/// An entry for a view of T stored as dtype_of<T>() with the view's shape. Contiguous views are not copied
/// (the data must outlive the write); strided ones are gathered into storage the entry owns.
template <class T, std::size_t R>
tensor_entry entry_of(std::string name, tensor_view<const T, R> v) {
  tensor_entry e{std::move(name), dtype_of<T>(), std::vector<index_t>(v.extents().begin(), v.extents().end()), {}, {}};
  if (v.is_contiguous()) {
    e.data = std::as_bytes(std::span<const T>(v.data_handle(), static_cast<std::size_t>(v.size())));
    return e;
  }
  auto bytes = std::make_shared<std::vector<std::byte>>(static_cast<std::size_t>(v.size()) * sizeof(T));
  std::byte* dst = bytes->data();
  detail::for_each_row_major(v, [&](index_t i, const T& x) { std::memcpy(dst + i * sizeof(T), &x, sizeof(T)); });
  e.data = std::span<const std::byte>(*bytes);
  e.storage = std::move(bytes);
  return e;
}

/// The bytes of a safetensors file holding `tensors` and `metadata`. Header: a JSON object with keys in
/// sorted order, padded with spaces to a multiple of 8 bytes. Data: ordered by element size (largest first)
/// then name, so every tensor starts at a multiple of its element size. `where` names the target in errors:
/// an empty or duplicate name, "__metadata__" as a tensor name, or data whose size is not
/// product(shape) * dtype size.
inline std::string safetensors_bytes(std::span<const tensor_entry> tensors,
                                     const std::map<std::string, std::string>& metadata = {},
                                     const std::string& where = "slim::io::safetensors_bytes") {
  std::vector<const tensor_entry*> order;
  order.reserve(tensors.size());
  std::set<std::string_view> names;
  for (const tensor_entry& t : tensors) {
    const std::string place = detail::tensor_place(t.name);
    if (t.name.empty()) throw error(where, "tensor \"\"", "empty tensor name");
    if (t.name == "__metadata__") throw error(where, place, "\"__metadata__\" is reserved for the metadata map");
    if (!names.insert(t.name).second) throw error(where, place, "appears more than once");
    std::uint64_t count = 1;
    for (index_t x : t.shape) {
      if (x < 0) throw error(where, place, "negative extent in shape " + detail::shape_string(t.shape));
      if (x != 0 &&
          count > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()) / static_cast<std::uint64_t>(x))
        throw error(where, place, "element count of " + detail::shape_string(t.shape) + " overflows");
      count *= static_cast<std::uint64_t>(x);
    }
    if (count > std::numeric_limits<std::uint64_t>::max() / dtype_size(t.type) ||
        count * dtype_size(t.type) != t.data.size())
      throw error(where, place,
                  "shape " + detail::shape_string(t.shape) + " of " + std::string(dtype_name(t.type)) + " needs " +
                      std::to_string(count * dtype_size(t.type)) + " bytes, the data has " +
                      std::to_string(t.data.size()));
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](const tensor_entry* a, const tensor_entry* b) {
    const std::size_t sa = dtype_size(a->type), sb = dtype_size(b->type);
    return sa != sb ? sa > sb : a->name < b->name;
  });
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::size_t offset = 0;
  for (const tensor_entry* t : order) {
    header[t->name] = {
        {"dtype", dtype_name(t->type)}, {"shape", t->shape}, {"data_offsets", {offset, offset + t->data.size()}}};
    offset += t->data.size();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {  // invalid UTF-8 in a name or in the metadata
    throw error(where, "header", "cannot serialise: " + detail::json_message(e));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + text.size() + offset);
  const std::uint64_t n = text.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += text;
  for (const tensor_entry* t : order) out.append(reinterpret_cast<const char*>(t->data.data()), t->data.size());
  return out;
}

/// Writes a safetensors file atomically (io::write_file_atomic): readers see the old file or the new one.
/// Layout as in safetensors_bytes; errors name `path` and the tensor.
inline void write_safetensors(const std::string& path, std::span<const tensor_entry> tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  write_file_atomic(path, safetensors_bytes(tensors, metadata, path));
}

}  // namespace slim::io
