// tensor_view (strided, non-owning), tensor (owning, aligned, zeroed) and slim::error.
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/core/tensor.hpp"
#include "slim/core/tensor_view.hpp"

using slim::index_t;
using slim::matrix_view;
using slim::tensor;
using slim::tensor_view;

// --- compile-time properties -------------------------------------------------------------------------------
// Mutable -> const converts implicitly (like std::span); const -> mutable must not compile.
static_assert(std::is_convertible_v<tensor_view<float, 2>, tensor_view<const float, 2>>);
static_assert(!std::is_convertible_v<tensor_view<const float, 2>, tensor_view<float, 2>>);
static_assert(!std::is_constructible_v<tensor_view<float, 2>, tensor_view<const float, 2>>);
// A view names its memory space: host and device views do not mix.
static_assert(
    !std::is_convertible_v<tensor_view<float, 1, slim::host_space>, tensor_view<float, 1, slim::device_space>>);
static_assert(
    !std::is_convertible_v<tensor_view<float, 1, slim::device_space>, tensor_view<float, 1, slim::host_space>>);
// Ranks and element types do not convert.
static_assert(!std::is_convertible_v<tensor_view<float, 2>, tensor_view<float, 3>>);
static_assert(!std::is_convertible_v<tensor_view<float, 2>, tensor_view<double, 2>>);
// A const tensor hands out const views only; a mutable one either.
static_assert(std::is_convertible_v<const tensor<float, 2>&, tensor_view<const float, 2>>);
static_assert(!std::is_convertible_v<const tensor<float, 2>&, tensor_view<float, 2>>);
static_assert(std::is_convertible_v<tensor<float, 2>&, tensor_view<float, 2>>);
static_assert(std::is_same_v<decltype(std::declval<const tensor<float, 2>&>().view()), tensor_view<const float, 2>>);
// tensor: movable, copyable on the host; elements must be trivially copyable.
static_assert(std::is_nothrow_move_constructible_v<tensor<float, 2>>);
static_assert(std::is_copy_constructible_v<tensor<float, 2>>);
// The index operator is constexpr and works through strides.
constexpr int constexpr_probe() {
  int data[6] = {0, 1, 2, 3, 4, 5};
  const tensor_view<int, 2> v(data, {2, 3});
  return v(1, 2) + transpose(matrix_view<int>(data, {2, 3}))(2, 0);
}
static_assert(constexpr_probe() == 5 + 2);

namespace {
std::vector<int> iota_vector(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}
}  // namespace

TEST_CASE("a contiguous view indexes row-major with derived strides", "[tensor_view]") {
  auto data = iota_vector(24);
  tensor_view<int, 3> v(data.data(), {2, 3, 4});
  CHECK(v.rank() == 3);
  CHECK(v.size() == 24);
  CHECK(v.extent(0) == 2);
  CHECK(v.extent(2) == 4);
  CHECK(v.stride(0) == 12);
  CHECK(v.stride(1) == 4);
  CHECK(v.stride(2) == 1);
  CHECK(v(0, 0, 0) == 0);
  CHECK(v(1, 2, 3) == 23);
  CHECK(v(1, 0, 2) == 14);
  CHECK(v.is_contiguous());
  CHECK(v.has_unit_inner_stride());
  CHECK_FALSE(v.empty());
  v(1, 1, 1) = -7;
  CHECK(data[17] == -7);
  CHECK(tensor_view<int, 1>().size() == 0);  // a default view is empty and null
  CHECK(tensor_view<int, 1>().data_handle() == nullptr);
}

TEST_CASE("a strided view (row stride > row length) indexes through its strides", "[tensor_view]") {
  auto data = iota_vector(40);
  // A 3x4 window into rows of 10: element (i, j) at 10 i + j.
  matrix_view<int> v(data.data() + 2, {3, 4}, {10, 1});
  CHECK(v(0, 0) == 2);
  CHECK(v(2, 3) == 25);
  CHECK_FALSE(v.is_contiguous());
  CHECK(v.has_unit_inner_stride());
  // Column-strided: every other element.
  tensor_view<int, 1> every_other(data.data(), {5}, {2});
  CHECK(every_other(4) == 8);
  CHECK_FALSE(every_other.is_contiguous());
  CHECK_FALSE(every_other.has_unit_inner_stride());
  // Negative strides walk backwards.
  tensor_view<int, 1> reversed(data.data() + 9, {10}, {-1});
  CHECK(reversed(0) == 9);
  CHECK(reversed(9) == 0);
  // Extent-1 dimensions do not break contiguity, whatever their stride says.
  matrix_view<int> one_row(data.data(), {1, 5}, {999, 1});
  CHECK(one_row.is_contiguous());
}

TEST_CASE("transpose swaps extents and strides without moving data", "[tensor_view]") {
  auto data = iota_vector(6);
  matrix_view<int> a(data.data(), {2, 3});
  const matrix_view<int> t = slim::transpose(a);
  CHECK(t.extent(0) == 3);
  CHECK(t.extent(1) == 2);
  CHECK(t.stride(0) == 1);
  CHECK(t.stride(1) == 3);
  CHECK(t.data_handle() == a.data_handle());
  for (index_t i = 0; i < 2; ++i)
    for (index_t j = 0; j < 3; ++j) CHECK(t(j, i) == a(i, j));
  CHECK_FALSE(t.is_contiguous());
  const matrix_view<int> tt = slim::transpose(t);
  CHECK(tt.is_contiguous());
  CHECK(tt(1, 2) == 5);
}

TEST_CASE("subview selects a box and keeps the parent's strides", "[tensor_view]") {
  auto data = iota_vector(30);
  matrix_view<int> a(data.data(), {5, 6});
  const matrix_view<int> s = slim::subview(a, {1, 2}, {3, 3});
  CHECK(s.extent(0) == 3);
  CHECK(s.extent(1) == 3);
  CHECK(s.stride(0) == 6);
  CHECK(s(0, 0) == 8);
  CHECK(s(2, 2) == 22);
  CHECK_FALSE(s.is_contiguous());
  // Whole rows are contiguous; empty boxes at the edge are allowed.
  CHECK(slim::subview(a, {2, 0}, {2, 6}).is_contiguous());
  CHECK(slim::subview(a, {5, 6}, {0, 0}).empty());
  // A subview of a transpose follows the transposed strides.
  const matrix_view<int> ts = slim::subview(slim::transpose(a), {1, 0}, {2, 2});
  CHECK(ts(0, 1) == a(1, 1));
  CHECK(ts(1, 0) == a(0, 2));
}

TEST_CASE("operator[] fixes the first index", "[tensor_view]") {
  auto data = iota_vector(24);
  tensor_view<int, 3> v(data.data(), {2, 3, 4});
  const tensor_view<int, 2> row = v[1];
  CHECK(row.extent(0) == 3);
  CHECK(row.extent(1) == 4);
  CHECK(row(2, 1) == 12 + 8 + 1);
  CHECK(v[1][2](3) == 23);
  // Through a strided view.
  const matrix_view<int> t = slim::transpose(matrix_view<int>(data.data(), {4, 6}));
  const tensor_view<int, 1> column = t[2];  // column 2 of the original
  CHECK(column.extent(0) == 4);
  CHECK(column.stride(0) == 6);
  CHECK(column(3) == 20);
}

TEST_CASE("reshape reinterprets a contiguous view and rejects what it cannot", "[tensor_view]") {
  auto data = iota_vector(24);
  tensor_view<int, 3> v(data.data(), {2, 3, 4});
  const matrix_view<int> m = slim::reshape<2>(v, {6, 4});
  CHECK(m(5, 3) == 23);
  CHECK(m(1, 0) == 4);
  const tensor_view<int, 1> flat = slim::reshape<1>(v, {24});
  CHECK(flat(13) == 13);

  SECTION("a non-contiguous view") {
    const matrix_view<int> strided(data.data(), {3, 4}, {8, 1});
    try {
      (void)slim::reshape<1>(strided, {12});
      FAIL("reshape of a strided view did not throw");
    } catch (const slim::error& e) {
      CHECK(e.where() == "slim::reshape");
      CHECK(e.place() == "view");
      CHECK_THAT(e.message(), Catch::Contains("not contiguous") && Catch::Contains("(8,1)"));
    }
  }
  SECTION("a different element count") {
    try {
      (void)slim::reshape<2>(v, {5, 5});
      FAIL("reshape to 25 elements did not throw");
    } catch (const slim::error& e) {
      CHECK(e.where() == "slim::reshape");
      CHECK(e.place() == "shape");
      CHECK_THAT(e.message(), Catch::Contains("(5,5)") && Catch::Contains("25") && Catch::Contains("(2,3,4)"));
    }
  }
  SECTION("negative extents whose product matches") {
    CHECK_THROWS_WITH(slim::reshape<2>(v, {-4, -6}), Catch::Contains("slim::reshape: shape: negative extent"));
  }
  SECTION("an element count that overflows") {
    const index_t big = index_t{1} << 40;
    CHECK_THROWS_WITH(slim::reshape<3>(v, {big, big, 0}), Catch::Contains("shape"));  // zero: no overflow, 0 != 24
    CHECK_THROWS_WITH(slim::reshape<2>(v, {big, big}), Catch::Contains("overflows"));
  }
}

TEST_CASE("subview errors name the function, the dimension and the box", "[tensor_view]") {
  auto data = iota_vector(30);
  matrix_view<int> a(data.data(), {5, 6});
  try {
    (void)slim::subview(a, {1, 4}, {2, 3});
    FAIL("box past the end did not throw");
  } catch (const slim::error& e) {
    CHECK(e.where() == "slim::subview");
    CHECK(e.place() == "dimension 1");
    CHECK_THAT(e.message(), Catch::Contains("exceeds extent 6"));
  }
  CHECK_THROWS_AS(slim::subview(a, {-1, 0}, {1, 1}), slim::error);
  CHECK_THROWS_AS(slim::subview(a, {0, 0}, {1, -1}), slim::error);
  CHECK_THROWS_AS(slim::subview(a, {6, 0}, {0, 1}), slim::error);
  // Huge arguments must not overflow into "fits".
  const index_t huge = std::numeric_limits<index_t>::max();
  CHECK_THROWS_AS(slim::subview(a, {huge, 0}, {huge, 1}), slim::error);
  CHECK_THROWS_AS(slim::subview(a, {1, 0}, {huge, 1}), slim::error);
}

TEST_CASE("require_shape and require_valid name the API and the argument", "[tensor_view]") {
  auto data = iota_vector(12);
  matrix_view<int> a(data.data(), {3, 4});
  CHECK_NOTHROW(slim::require_shape(a, {3, 4}, "slim::gemm", "a"));
  try {
    slim::require_shape(a, {4, 3}, "slim::gemm", "b");
    FAIL("wrong shape accepted");
  } catch (const slim::error& e) {
    CHECK(e.where() == "slim::gemm");
    CHECK(e.place() == "b");
    CHECK(e.message() == "shape (3,4) where (4,3) is required");
    CHECK(std::string(e.what()) == "slim::gemm: b: shape (3,4) where (4,3) is required");
  }
  try {
    slim::require_valid(matrix_view<int>(nullptr, {2, 2}), "slim::softmax", "x");
    FAIL("null data accepted");
  } catch (const slim::error& e) {
    CHECK(e.where() == "slim::softmax");
    CHECK(e.place() == "x");
    CHECK_THAT(e.message(), Catch::Contains("null data") && Catch::Contains("(2,2)"));
  }
  try {
    slim::require_valid(matrix_view<int>(data.data(), {2, -1}, {4, 1}), "slim::norm", "y");
    FAIL("negative extent accepted");
  } catch (const slim::error& e) {
    CHECK(e.place() == "y");
    CHECK_THAT(e.message(), Catch::Contains("negative extent"));
  }
  CHECK_NOTHROW(slim::require_valid(matrix_view<int>(nullptr, {0, 5}), "f", "empty"));  // empty and null: fine
  CHECK_THROWS_AS(slim::require_shape(matrix_view<int>(nullptr, {3, 4}), {3, 4}, "f", "x"), slim::error);
  CHECK(slim::shape_string(a) == "(3,4)");
  CHECK(slim::same_shape(a, matrix_view<const int>(data.data(), {3, 4})));
  CHECK_FALSE(slim::same_shape(a, slim::transpose(a)));
}

TEST_CASE("const conversion shares the data; in_t deduces from outputs only", "[tensor_view]") {
  auto data = iota_vector(6);
  matrix_view<int> a(data.data(), {2, 3}, {3, 1});
  const matrix_view<const int> c = a;
  CHECK(c.data_handle() == a.data_handle());
  CHECK(c.extents() == a.extents());
  CHECK(c.strides() == a.strides());
  CHECK(c(1, 2) == 5);
  // A function with an in_t<T> input takes a mutable view where a const one is declared.
  auto sum = []<class T>(tensor_view<slim::in_t<T>, 2> x, tensor_view<T, 1> out) {
    out(0) = 0;
    for (index_t i = 0; i < x.extent(0); ++i)
      for (index_t j = 0; j < x.extent(1); ++j) out(0) += x(i, j);
  };
  int result = 0;
  sum.operator()<int>(a, tensor_view<int, 1>(&result, {1}));
  CHECK(result == 15);
}

TEST_CASE("tensor storage is zeroed and 64-byte aligned", "[tensor]") {
  for (const index_t n : {index_t{1}, index_t{3}, index_t{16}, index_t{17}, index_t{1000}, index_t{4099}}) {
    tensor<float, 2> t({n, 3});
    INFO("n " << n);
    CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % slim::host_alignment == 0);
    CHECK(t.size() == 3 * n);
    bool zero = true;
    for (float x : t) zero = zero && x == 0.0f;
    CHECK(zero);
    tensor<std::uint8_t, 1> bytes({n});
    CHECK(reinterpret_cast<std::uintptr_t>(bytes.data()) % 64 == 0);
  }
  CHECK(slim::host_alignment == 64);
  tensor<double, 3> empty({4, 0, 2});
  CHECK(empty.size() == 0);
  CHECK(empty.data() == nullptr);
  CHECK(empty.view().empty());
  tensor<int, 1> def;
  CHECK(def.size() == 0);
  CHECK(def.data() == nullptr);
  // std::vector with the aligned allocator.
  std::vector<float, slim::aligned_allocator<float>> v(37);
  CHECK(reinterpret_cast<std::uintptr_t>(v.data()) % 64 == 0);
}

TEST_CASE("an uninitialized tensor has the same shape, alignment and checks, and is writable", "[tensor]") {
  tensor<float, 2> t({1000, 3}, slim::uninitialized);
  CHECK(t.size() == 3000);
  CHECK(t.extents() == std::array<index_t, 2>{1000, 3});
  CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % slim::host_alignment == 0);
  for (index_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<float>(i);
  CHECK(t(999, 2) == 2999.0f);
  const tensor<float, 2> copy = t;  // copies are whole values, as for a zero-initialised tensor
  CHECK(copy(999, 2) == 2999.0f);
  tensor<int, 1> empty({0}, slim::uninitialized);
  CHECK(empty.data() == nullptr);
  CHECK_THROWS_WITH((tensor<float, 1>({-2}, slim::uninitialized)), Catch::Contains("negative extent"));
  CHECK_THROWS_WITH((tensor<float, 1>({index_t{1} << 62}, slim::uninitialized)), Catch::Contains("overflows"));
}

TEST_CASE("tensor indexes like its view and converts to views", "[tensor]") {
  tensor<int, 2> t({3, 4});
  for (index_t i = 0; i < 3; ++i)
    for (index_t j = 0; j < 4; ++j) t(i, j) = static_cast<int>(10 * i + j);
  CHECK(t.data()[6] == 12);
  CHECK(t.extent(0) == 3);
  CHECK(t.extents() == std::array<index_t, 2>{3, 4});
  CHECK(t.rank() == 2);
  const tensor_view<int, 2> v = t;
  CHECK(v(2, 3) == 23);
  CHECK(v.is_contiguous());
  const tensor<int, 2>& ct = t;
  CHECK(ct(1, 1) == 11);
  const tensor_view<const int, 2> cv = ct;
  CHECK(cv.data_handle() == t.data());
}

TEST_CASE("tensor copies deeply and moves by stealing", "[tensor]") {
  tensor<float, 1> a({5});
  for (index_t i = 0; i < 5; ++i) a(i) = static_cast<float>(i) + 0.5f;
  tensor<float, 1> b(a);
  CHECK(b.data() != a.data());
  CHECK(b(4) == 4.5f);
  b(0) = 100;
  CHECK(a(0) == 0.5f);  // deep copy

  tensor<float, 1> c({2});
  c = a;
  CHECK(c.size() == 5);
  CHECK(c(3) == 3.5f);
  CHECK(reinterpret_cast<std::uintptr_t>(c.data()) % 64 == 0);
  const tensor<float, 1>& alias = c;
  c = alias;  // self-assignment keeps the content
  CHECK(c(3) == 3.5f);

  const float* storage = a.data();
  tensor<float, 1> d(std::move(a));
  CHECK(d.data() == storage);
  CHECK(d.size() == 5);
  CHECK(a.data() == nullptr);  // NOLINT(bugprone-use-after-move): the moved-from state is specified: empty
  CHECK(a.size() == 0);

  tensor<float, 1> e({7});
  e = std::move(d);
  CHECK(e.data() == storage);
  CHECK(e.size() == 5);
  CHECK(e(2) == 2.5f);
  CHECK(d.size() == 0);  // NOLINT(bugprone-use-after-move)
}

TEST_CASE("tensor rejects negative and overflowing shapes with slim::error", "[tensor]") {
  try {
    tensor<float, 2> t({3, -1});
    FAIL("negative extent accepted");
  } catch (const slim::error& e) {
    CHECK(e.where() == "slim::tensor");
    CHECK(e.place() == "shape");
    CHECK_THAT(e.message(), Catch::Contains("negative extent") && Catch::Contains("(3,-1)"));
  }
  const index_t big = index_t{1} << 40;
  CHECK_THROWS_WITH((tensor<float, 2>({big, big})), Catch::Contains("overflows"));
  CHECK_THROWS_WITH((tensor<float, 1>({index_t{1} << 62})), Catch::Contains("overflows"));  // 2^64 bytes
}

TEST_CASE("slim::error composes what() from where, place and message", "[error]") {
  const slim::error full("model.safetensors", "offset 4096", "tensor data out of bounds");
  CHECK(std::string(full.what()) == "model.safetensors: offset 4096: tensor data out of bounds");
  CHECK(full.where() == "model.safetensors");
  CHECK(full.place() == "offset 4096");
  CHECK(full.message() == "tensor data out of bounds");

  CHECK(std::string(slim::error("f.json", "", "bad").what()) == "f.json: bad");
  CHECK(std::string(slim::error("", "line 3", "bad").what()) == "line 3: bad");
  CHECK(std::string(slim::error("", "", "bad").what()) == "bad");

  const slim::error plain("just a message");
  CHECK(std::string(plain.what()) == "just a message");
  CHECK(plain.where().empty());
  CHECK(plain.place().empty());
  CHECK(plain.message() == "just a message");

  // It is a std::runtime_error, so generic handlers catch it.
  CHECK_THROWS_AS(throw slim::error("w", "p", "m"), std::runtime_error);

  // require(): throws with the API name and the concatenated message, only when the condition fails.
  CHECK_NOTHROW(slim::require(true, "slim::f", "never"));
  try {
    slim::require(false, "slim::topk", "k = ", 7, " exceeds n = ", 5);
    FAIL("require(false) did not throw");
  } catch (const slim::error& e) {
    CHECK(e.where() == "slim::topk");
    CHECK(e.place().empty());
    CHECK(e.message() == "k = 7 exceeds n = 5");
    CHECK(std::string(e.what()) == "slim::topk: k = 7 exceeds n = 5");
  }
}
