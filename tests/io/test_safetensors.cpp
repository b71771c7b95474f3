// io: safetensors reader and writer, HF checkpoint folders. Files written by the reference implementation
// are read back, files slim writes round-trip, and every malformed input is refused with a slim::error that
// names the file, the tensor and the field.
//
// Fixture tests/data/io/python_small.safetensors (496 bytes) was written by PyPI safetensors 0.4.5 with
// numpy 2.x, through safetensors.serialize_file (raw bytes, so BF16 needs no torch):
//   t = {"a.f32":    float32 (2,3)  [0.5, -1.25, 3.0, 0.001, 1e30, -0.0],
//        "b.f16":    float16 (4)    [1.5, -65504, 2^-14, 2^-24],
//        "c.bf16":   bfloat16 (2,2) [1.0, -3.140625, 2^-100, 3*2^100]   (bytes: upper halves of the float32s),
//        "d.i32":    int32 (4)      [5, -17, 250, 2147483647],
//        "e.scalar": float64 ()     2.5,
//        "z.empty":  float32 (0,3)}
//   serialize_file(t, path, metadata={"format": "pt", "note": "slim fixture"})
// Every value is exact in its dtype, so the expected values below are those literals.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

#include "slim/io/hf_checkpoint.hpp"
#include "slim/io/safetensors.hpp"

#ifndef SLIM_IO_FIXTURE_DIR
#error "SLIM_IO_FIXTURE_DIR must name tests/data/io (tests/io/CMakeLists.txt sets it)"
#endif

namespace io = slim::io;
using Catch::Matchers::Contains;
using slim::index_t;

namespace {

/// A fresh directory under /tmp (mkdtemp), removed with its content at scope exit.
class temp_dir {
 public:
  temp_dir() {
    char name[] = "/tmp/slim_test_safetensors_XXXXXX";
    if (::mkdtemp(name) == nullptr) FAIL("mkdtemp failed: " << std::strerror(errno));
    path_ = name;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// Writes `bytes` with plain POSIX calls (not the code under test).
void write_raw(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

std::string read_raw(const std::string& path) {
  std::string s;
  const int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) s.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return s;
}

std::string le64(std::uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return s;
}

/// A safetensors file by hand: the 8-byte length (that of `header` unless given), the header, the data.
std::string craft(const std::string& header, const std::string& data, std::uint64_t length = UINT64_MAX) {
  return le64(length == UINT64_MAX ? header.size() : length) + header + data;
}

std::string fixture() { return std::string(SLIM_IO_FIXTURE_DIR) + "/python_small.safetensors"; }

/// Runs `f`, which must throw slim::error whose what() contains every one of `parts`.
template <class F>
void require_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
  } catch (const slim::error& e) {
    INFO("message: " << e.what());
    for (const std::string& p : parts) CHECK_THAT(e.what(), Contains(p));
    return;
  }
  FAIL("no slim::error thrown; expected one containing " << *parts.begin());
}

}  // namespace

TEST_CASE("a file written by the reference safetensors (Python) reads back exactly", "[io][safetensors]") {
  const io::safetensors_file f(fixture());
  CHECK(f.path() == fixture());
  CHECK(f.names() == std::vector<std::string>{"a.f32", "b.f16", "c.bf16", "d.i32", "e.scalar", "z.empty"});
  CHECK(f.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"note", "slim fixture"}});
  CHECK(f.contains("a.f32"));
  CHECK_FALSE(f.contains("a.f3"));

  const io::tensor_info& a = f.info("a.f32");
  CHECK(a.type == io::dtype::f32);
  CHECK(a.shape == std::vector<index_t>{2, 3});
  CHECK(a.numel() == 6);
  CHECK(a.end - a.begin == 24);

  std::array<float, 6> av{};
  f.read("a.f32", slim::tensor_view<float, 2>(av.data(), {2, 3}));
  CHECK(av == std::array<float, 6>{0.5f, -1.25f, 3.0f, 0.001f, 1e30f, -0.0f});
  CHECK(std::signbit(av[5]));

  const auto b = f.to_vector<float>("b.f16");
  CHECK(b == std::vector<float>{1.5f, -65504.0f, std::ldexp(1.0f, -14), std::ldexp(1.0f, -24)});
  const auto bd = f.to_vector<double>("b.f16");
  CHECK(bd == std::vector<double>{1.5, -65504.0, std::ldexp(1.0, -14), std::ldexp(1.0, -24)});

  std::array<float, 4> c{};
  f.read("c.bf16", slim::tensor_view<float, 2>(c.data(), {2, 2}));
  CHECK(c == std::array<float, 4>{1.0f, -3.140625f, std::ldexp(1.0f, -100), 3.0f * std::ldexp(1.0f, 100)});
  const auto cb = f.bytes("c.bf16");
  REQUIRE(cb.size() == 8);
  CHECK(std::to_integer<int>(cb[0]) == 0x80);  // 1.0 = 0x3F80, little-endian
  CHECK(std::to_integer<int>(cb[1]) == 0x3F);

  CHECK(f.to_vector<std::int32_t>("d.i32") == std::vector<std::int32_t>{5, -17, 250, 2147483647});
  CHECK(f.to_vector<std::int64_t>("d.i32") == std::vector<std::int64_t>{5, -17, 250, 2147483647});

  double e = 0;  // shape (): tensor_view has rank >= 1, so scalars are read with read_flat or to_vector
  f.read_flat("e.scalar", std::span<double>(&e, 1));
  CHECK(e == 2.5);
  CHECK(f.info("e.scalar").shape.empty());
  CHECK(f.info("e.scalar").numel() == 1);

  CHECK(f.info("z.empty").numel() == 0);
  CHECK(f.bytes("z.empty").empty());
  f.read("z.empty", slim::tensor_view<float, 2>(nullptr, {0, 3}));

  // The reference writer aligns the data section to 8 and orders data by element size: a zero-copy view.
  const auto v = f.view<float, 2>("a.f32");
  CHECK(v.extent(0) == 2);
  CHECK(v.extent(1) == 3);
  CHECK(v(1, 0) == 0.001f);
  CHECK(reinterpret_cast<const std::byte*>(v.data_handle()) == f.bytes("a.f32").data());
}

TEST_CASE("write_safetensors round-trips F32, BF16, F16, integer and strided data", "[io][safetensors]") {
  temp_dir dir;
  const std::string path = dir / "out.safetensors";
  const std::vector<float> w = {0.1f, -2.5f, 3.0f, 1e-3f, 65504.0f, -0.0f};
  const std::vector<std::int32_t> ids = {7, -1, 1 << 30};
  const std::vector<double> d = {1.0 / 3.0};
  const std::array<float, 6> m = {1, 2, 3, 4, 5, 6};  // (2,3); its transpose is a strided (3,2) view
  const auto mt = slim::transpose(slim::tensor_view<const float, 2>(m.data(), {2, 3}));
  const std::vector<std::uint8_t> odd = {9, 8, 7};  // 3 bytes: would misalign what follows if placed first

  std::vector<io::tensor_entry> entries;
  entries.push_back(io::f32_entry("w.f32", {2, 3}, w));
  entries.push_back(io::f32_entry("w.bf16", {6}, w, io::dtype::bf16));
  entries.push_back(io::f32_entry("w.f16", {3, 2}, w, io::dtype::f16));
  entries.push_back(io::entry_of("ids", slim::tensor_view<const std::int32_t, 1>(ids.data(), {3})));
  entries.push_back(io::entry_of("a.third", slim::tensor_view<const double, 1>(d.data(), {1})));
  entries.push_back(io::entry_of("mt", mt));
  entries.push_back(io::entry_of("odd", slim::tensor_view<const std::uint8_t, 1>(odd.data(), {3})));
  io::write_safetensors(path, entries, {{"format", "pt"}, {"by", "slim"}});

  const io::safetensors_file f(path);
  CHECK(f.names() == std::vector<std::string>{"a.third", "ids", "mt", "odd", "w.bf16", "w.f16", "w.f32"});
  CHECK(f.metadata() == std::map<std::string, std::string>{{"by", "slim"}, {"format", "pt"}});
  CHECK(f.data_offset() % 8 == 0);
  for (const std::string& n : f.names())
    CHECK(f.info(n).begin % io::dtype_size(f.info(n).type) == 0);  // each tensor aligned for its dtype

  CHECK(f.to_vector<float>("w.f32") == w);
  // bf16(0.1) = 0x3DCD = 0.10009765625, f16(0.1) = 0x2E66 = 0.0999755859375 (round to nearest even);
  // 1e-3: bf16 0x3A83 = 0.00099945068359375, f16 0x1419 = 0.0010004043579101562.
  CHECK(f.to_vector<float>("w.bf16") ==
        std::vector<float>{0.10009765625f, -2.5f, 3.0f, 0.00099945068359375f, 65536.0f, -0.0f});
  CHECK(f.to_vector<float>("w.f16") ==
        std::vector<float>{0.0999755859375f, -2.5f, 3.0f, 0.0010004043579101562f, 65504.0f, -0.0f});
  CHECK(f.info("w.f16").shape == std::vector<index_t>{3, 2});
  CHECK(f.to_vector<std::int32_t>("ids") == ids);
  CHECK(f.to_vector<double>("a.third") == d);
  CHECK(f.to_vector<float>("mt") == std::vector<float>{1, 4, 2, 5, 3, 6});
  CHECK(f.to_vector<std::uint8_t>("odd") == odd);

  // Header: length multiple of 8, space padding, keys sorted, offsets relative to the data section.
  const std::string raw = read_raw(path);
  std::uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  CHECK(n % 8 == 0);
  CHECK(f.data_offset() == 8 + n);
  const std::string header = raw.substr(8, n);
  const auto last = header.find_last_not_of(' ');
  CHECK(header[last] == '}');
  const auto j = io::json::parse(header);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"__metadata__", "a.third", "ids", "mt", "odd", "w.bf16", "w.f16", "w.f32"});
  CHECK(j["w.f32"]["dtype"] == "F32");
  CHECK(j["w.f32"]["shape"] == io::json::array({2, 3}));
  const auto off = j["a.third"]["data_offsets"];
  CHECK(off == io::json::array({0, 8}));  // F64 first (largest element size), at the start of the data
  CHECK(raw.size() == 8 + n + 8 + 24 + 12 + 24 + 12 + 12 + 3);
}

TEST_CASE("write_safetensors replaces a file atomically and refuses inconsistent entries", "[io][safetensors]") {
  temp_dir dir;
  const std::string path = dir / "w.safetensors";
  const std::vector<float> x = {1, 2, 3, 4};
  const std::vector<io::tensor_entry> one = {io::f32_entry("x", {4}, x)};
  io::write_safetensors(path, one);
  CHECK(io::safetensors_file(path).to_vector<float>("x") == x);
  const std::vector<io::tensor_entry> two = {io::f32_entry("y", {2, 2}, x)};
  io::write_safetensors(path, two);
  CHECK(io::safetensors_file(path).names() == std::vector<std::string>{"y"});
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()) == 1);

  const std::vector<io::tensor_entry> wrong_size = {io::f32_entry("x", {3}, x)};
  require_error([&] { io::write_safetensors(path, wrong_size); }, {path, "tensor x", "12 bytes", "16"});
  const std::vector<io::tensor_entry> dup = {io::f32_entry("x", {4}, x), io::f32_entry("x", {2, 2}, x)};
  require_error([&] { io::write_safetensors(path, dup); }, {path, "tensor x", "more than once"});
  const std::vector<io::tensor_entry> reserved = {io::f32_entry("__metadata__", {4}, x)};
  require_error([&] { io::write_safetensors(path, reserved); }, {path, "__metadata__", "reserved"});
  const std::vector<io::tensor_entry> negative = {io::f32_entry("neg", {-1, -4}, x)};
  require_error([&] { io::write_safetensors(path, negative); }, {path, "tensor neg", "negative extent"});
  require_error([&] { io::write_safetensors(dir / "no/such/dir.safetensors", one); }, {"no/such/dir.safetensors"});
  require_error([&] { (void)io::f32_entry("q", {4}, x, io::dtype::i8); }, {"tensor q", "I8"});
  CHECK(io::safetensors_file(path).names() == std::vector<std::string>{"y"});  // untouched by the failures
}

TEST_CASE("read checks the shape exactly and converts only between compatible types", "[io][safetensors]") {
  const io::safetensors_file f(fixture());
  const std::string p = fixture();
  std::vector<float> buf(12);
  require_error(
      [&] {
        f.read("a.f32", slim::tensor_view<float, 2>(buf.data(), {3, 2}));
      },
      {p, "tensor a.f32", "(2,3)", "(3,2)"});
  require_error([&] { f.read("a.f32", slim::tensor_view<float, 1>(buf.data(), {6})); },
                {p, "tensor a.f32", "(2,3)", "(6)"});
  require_error(
      [&] {
        f.read("a.f32", slim::tensor_view<float, 3>(buf.data(), {1, 2, 3}));
      },
      {p, "tensor a.f32", "(1,2,3)"});
  require_error([&] { f.read_flat("a.f32", std::span<float>(buf.data(), 5)); }, {p, "tensor a.f32", "6 elements"});
  require_error([&] { (void)f.to_vector<float>("d.i32"); }, {p, "tensor d.i32", "I32"});
  require_error([&] { (void)f.to_vector<std::int32_t>("a.f32"); }, {p, "tensor a.f32", "F32"});
  require_error([&] { (void)f.to_vector<std::int16_t>("d.i32"); }, {p, "tensor d.i32", "2147483647"});
  require_error([&] { (void)f.to_vector<bool>("d.i32"); }, {p, "tensor d.i32", "not 0 or 1"});
  require_error([&] { (void)f.to_vector<std::uint32_t>("d.i32"); }, {p, "tensor d.i32", "element 1 = -17", "U32"});
  require_error([&] { (void)f.to_vector<std::uint64_t>("a.f32"); }, {p, "tensor a.f32", "F32", "U64"});
  require_error([&] { (void)f.info("no.such"); }, {p, "tensor no.such", "no such tensor"});
  require_error([&] { (void)f.bytes("no.such"); }, {p, "tensor no.such"});
  require_error([&] { f.read("no.such", slim::tensor_view<float, 1>(buf.data(), {1})); }, {p, "tensor no.such"});

  // A strided destination: the transpose of a (3,2) buffer receives the (2,3) tensor.
  std::array<float, 6> t{};
  f.read("a.f32", slim::transpose(slim::tensor_view<float, 2>(t.data(), {3, 2})));
  CHECK(t == std::array<float, 6>{0.5f, 0.001f, -1.25f, 1e30f, 3.0f, -0.0f});

  // bf16 and f16 destinations keep the stored bits when the dtype matches.
  const auto cb = f.to_vector<slim::bf16>("c.bf16");
  CHECK(cb[1].bits() == 0xC049);  // -3.140625
  const auto hb = f.to_vector<slim::f16>("b.f16");
  CHECK(hb[3].bits() == 0x0001);  // 2^-24, the smallest subnormal
}

TEST_CASE("view is zero-copy when the dtype, rank and alignment allow it, an error otherwise", "[io][safetensors]") {
  const io::safetensors_file f(fixture());
  require_error([&] { (void)f.view<float, 1>("b.f16"); }, {fixture(), "tensor b.f16", "F16", "F32"});
  require_error([&] { (void)f.view<float, 1>("a.f32"); }, {fixture(), "tensor a.f32", "rank 2"});
  CHECK(f.view<slim::f16, 1>("b.f16")(0).bits() == 0x3E00);  // 1.5

  // An F32 tensor after a 1-byte U8 tensor starts at an odd offset: no view, but read still works.
  temp_dir dir;
  const std::string path = dir / "odd.safetensors";
  const std::string header =
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}})";
  std::string h = header;
  h.append((8 - h.size() % 8) % 8, ' ');
  const float one = 1.0f;
  std::string data(1, '\x07');
  data.append(reinterpret_cast<const char*>(&one), 4);
  write_raw(path, craft(h, data));
  const io::safetensors_file g(path);
  require_error([&] { (void)g.view<float, 1>("b"); }, {path, "tensor b", "not aligned"});
  CHECK(g.to_vector<float>("b") == std::vector<float>{1.0f});
}

TEST_CASE("safetensors_file is movable; views stay valid across a move", "[io][safetensors]") {
  io::safetensors_file f(fixture());
  const auto v = f.view<float, 2>("a.f32");
  io::safetensors_file g(std::move(f));
  CHECK(v(0, 1) == -1.25f);
  CHECK(g.to_vector<std::int32_t>("d.i32")[2] == 250);
  io::safetensors_file h(fixture());
  h = std::move(g);
  CHECK(v(1, 2) == -0.0f);
  static_assert(!std::is_copy_constructible_v<io::safetensors_file>);
  static_assert(!std::is_copy_assignable_v<io::safetensors_file>);
}

TEST_CASE("malformed safetensors files are refused naming the file, the tensor and the field",
          "[io][safetensors][errors]") {
  temp_dir dir;
  const std::string p = dir / "bad.safetensors";
  auto open_bytes = [&](const std::string& bytes) {
    write_raw(p, bytes);
    io::safetensors_file f(p);
  };
  const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string eight(8, '\x01');
  // sanity: the well-formed version of the cases below opens
  open_bytes(craft("{" + ok_entry + "}", eight));

  SECTION("short and truncated files") {
    require_error([&] { open_bytes(""); }, {p, "8-byte header length", "truncated"});
    require_error([&] { open_bytes(std::string("\x05\0\0", 3)); }, {p, "3 bytes"});
    require_error([&] { open_bytes(craft("{" + ok_entry + "}", eight, 1000)); },
                  {p, "header length 1000", "past the end"});
    require_error([&] { open_bytes(craft("{}", "", 200'000'000)); }, {p, "exceeds the limit"});
    // the data cut short: the tensor now reaches past the end of the data section
    require_error([&] { open_bytes(craft("{" + ok_entry + "}", eight.substr(0, 5))); },
                  {p, "tensor t", "data_offsets", "past the end of the data section"});
    // a real file cut short by one byte
    const std::string whole = read_raw(fixture());
    require_error([&] { open_bytes(whole.substr(0, whole.size() - 1)); }, {p, "tensor ", "past the end"});
    require_error([&] { open_bytes(whole.substr(0, 100)); }, {p, "header length 424", "past the end"});
    require_error([&] { (void)io::safetensors_file(dir / "absent.safetensors"); },
                  {"absent.safetensors", "cannot open"});
    require_error([&] { (void)io::safetensors_file(dir.path()); }, {dir.path(), "not a regular file"});
  }
  SECTION("the header is not a JSON object") {
    require_error([&] { open_bytes(craft("[1,2]", "")); }, {p, "header", "array, not an object"});
    require_error([&] { open_bytes(craft("{\"t\":", "")); }, {p, "header", "not valid JSON"});
    require_error([&] { open_bytes(craft("{} x", "")); }, {p, "header", "not valid JSON"});
    require_error([&] { open_bytes(craft("{\"\xff\":1}", "")); }, {p, "header", "not valid JSON"});
    require_error([&] { open_bytes(craft(std::string("{}\0\0", 4), "")); }, {p, "header", "NUL byte at offset 10"});
    require_error([&] { open_bytes(craft(std::string("{\"a\0\":1}", 8), "")); }, {p, "header", "NUL byte"});
    require_error([&] { open_bytes(craft("{\"t\":[1]}", "")); }, {p, "tensor t", "got array"});
  }
  SECTION("missing or mistyped fields") {
    require_error([&] { open_bytes(craft(R"({"t":{"shape":[2],"data_offsets":[0,8]}})", eight)); },
                  {p, "tensor t", "field dtype", "missing"});
    require_error([&] { open_bytes(craft(R"({"t":{"dtype":"F32","data_offsets":[0,8]}})", eight)); },
                  {p, "tensor t", "field shape", "missing"});
    require_error([&] { open_bytes(craft(R"({"t":{"dtype":"F32","shape":[2]}})", eight)); },
                  {p, "tensor t", "field data_offsets", "missing"});
    require_error([&] { open_bytes(craft(R"({"t":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})", eight)); },
                  {p, "tensor t", "field dtype", "F8_E4M3"});
    require_error([&] { open_bytes(craft(R"({"t":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", eight)); },
                  {p, "tensor t", "field dtype", "\"f32\""});
    require_error([&] { open_bytes(craft(R"({"t":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", eight)); },
                  {p, "tensor t", "field dtype", "expected a string"});
    require_error([&] { open_bytes(craft(R"({"t":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", eight)); },
                  {p, "tensor t", "field shape", "expected an array"});
    require_error([&] { open_bytes(craft(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight)); },
                  {p, "tensor t", "field shape", "negative integer -2"});
    require_error([&] { open_bytes(craft(R"({"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", eight)); },
                  {p, "tensor t", "field shape", "non-integer"});
    require_error([&] { open_bytes(craft(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", eight)); },
                  {p, "tensor t", "field data_offsets", "[begin, end]"});
    require_error([&] { open_bytes(craft(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}})", eight)); },
                  {p, "tensor t", "field data_offsets", "negative"});
    require_error([&] { open_bytes(craft(R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", eight)); },
                  {p, "tensor t", "field data_offsets", "after end"});
  }
  SECTION("dtype, shape and byte count disagree") {
    require_error([&] { open_bytes(craft(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight)); },
                  {p, "tensor t", "(3)", "12 bytes", "hold 8"});
    require_error([&] { open_bytes(craft(R"({"t":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})", eight)); },
                  {p, "tensor t", "F16", "4 bytes", "hold 8"});
    require_error(
        [&] {
          open_bytes(craft(R"({"t":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})", eight));
        },
        {p, "tensor t", "field shape", "overflows"});
    require_error(
        [&] {
          open_bytes(craft(R"({"t":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}})", eight));
        },
        {p, "tensor t", "more bytes than fit"});
  }
  SECTION("offsets overlap, leave gaps or reach past the data") {
    const std::string two =
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
    require_error([&] { open_bytes(craft(two, std::string(12, '\0'))); }, {p, "tensor b", "overlaps tensor a"});
    const std::string same =
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})";
    require_error([&] { open_bytes(craft(same, eight)); }, {p, "overlaps tensor a"});
    const std::string gap =
        R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
    require_error([&] { open_bytes(craft(gap, std::string(12, '\0'))); }, {p, "tensor b", "unused"});
    require_error([&] { open_bytes(craft("{" + ok_entry + "}", eight + "xyz")); }, {p, "tensor t", "3 trailing bytes"});
    require_error([&] { open_bytes(craft("{}", "abc")); }, {p, "header", "3 trailing bytes"});
    require_error([&] { open_bytes(craft(R"({"t":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}})", eight)); },
                  {p, "tensor t", "end 12", "past the end"});
  }
  SECTION("duplicate names and bad metadata") {
    require_error([&] { open_bytes(craft("{" + ok_entry + "," + ok_entry + "}", eight)); },
                  {p, "tensor t", "more than once"});
    require_error([&] { open_bytes(craft(R"({"__metadata__":[1],)" + ok_entry + "}", eight)); },
                  {p, "__metadata__", "expected an object"});
    require_error([&] { open_bytes(craft(R"({"__metadata__":{"format":1},)" + ok_entry + "}", eight)); },
                  {p, "__metadata__/format", "expected a string"});
    require_error([&] { open_bytes(craft(R"({"__metadata__":{"a":{"b":"c"}},)" + ok_entry + "}", eight)); },
                  {p, "__metadata__/a", "expected a string"});
    // null metadata is accepted (as by the reference), and so is an empty file with no tensors
    write_raw(p, craft(R"({"__metadata__":null})", ""));
    CHECK(io::safetensors_file(p).size() == 0);
  }
}

TEST_CASE("hf_checkpoint reads a single-file and a sharded folder", "[io][hf_checkpoint]") {
  temp_dir dir;
  const std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {7, 8}, c = {9};
  const std::vector<io::tensor_entry> all = {io::f32_entry("x.a", {2, 3}, a), io::f32_entry("x.b", {2}, b),
                                             io::f32_entry("y.c", {1}, c)};
  write_raw(dir / "config.json", R"({"hidden_size": 8, "model_type": "llama"})");

  SECTION("single file") {
    io::write_safetensors(dir / "model.safetensors", all);
    const io::hf_checkpoint ck(dir.path());
    CHECK(ck.dir() == dir.path());
    CHECK(ck.names() == std::vector<std::string>{"x.a", "x.b", "y.c"});
    std::array<float, 6> out{};
    ck.read("x.a", slim::tensor_view<float, 2>(out.data(), {2, 3}));
    CHECK(std::vector<float>(out.begin(), out.end()) == a);
    CHECK(ck.info("y.c").shape == std::vector<index_t>{1});
    CHECK(ck.config()["hidden_size"] == 8);
    require_error([&] { (void)ck.info("z"); }, {dir.path(), "tensor z"});
  }
  SECTION("shards listed by model.safetensors.index.json") {
    const std::vector<io::tensor_entry> s1 = {all[0], all[1]}, s2 = {all[2]};
    io::write_safetensors(dir / "model-00001-of-00002.safetensors", s1);
    io::write_safetensors(dir / "model-00002-of-00002.safetensors", s2);
    const std::string index = dir / "model.safetensors.index.json";
    write_raw(index, R"({"metadata": {"total_size": 36}, "weight_map": {
        "x.a": "model-00001-of-00002.safetensors", "x.b": "model-00001-of-00002.safetensors",
        "y.c": "model-00002-of-00002.safetensors"}})");
    {
      const io::hf_checkpoint ck(dir.path() + "/");
      CHECK(ck.names() == std::vector<std::string>{"x.a", "x.b", "y.c"});
      CHECK(ck.files().size() == 2);
      CHECK_THAT(ck.file_of("y.c").path(), Contains("model-00002-of-00002.safetensors"));
      std::array<float, 1> out{};
      ck.read("y.c", slim::tensor_view<float, 1>(out.data(), {1}));
      CHECK(out[0] == 9.0f);
      require_error([&] { ck.read("x.b", slim::tensor_view<float, 1>(out.data(), {1})); },
                    {"model-00001-of-00002.safetensors", "tensor x.b", "(2)", "(1)"});
    }
    // a checkpoint moves with its files
    io::hf_checkpoint ck(dir.path());
    const auto v = ck.file_of("x.a").view<float, 2>("x.a");
    io::hf_checkpoint moved(std::move(ck));
    CHECK(v(1, 2) == 6.0f);
    CHECK(moved.info("x.b").numel() == 2);
  }
}

TEST_CASE("inconsistent HF checkpoint folders are refused naming the folder, file and tensor",
          "[io][hf_checkpoint][errors]") {
  temp_dir dir;
  const std::vector<float> a = {1, 2}, b = {3};
  const std::string s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
  const std::string index = dir / "model.safetensors.index.json";
  auto shards = [&](const std::vector<io::tensor_entry>& first, const std::vector<io::tensor_entry>& second) {
    io::write_safetensors(dir / s1, first);
    io::write_safetensors(dir / s2, second);
  };
  auto map = [&](const std::string& body) { write_raw(index, R"({"weight_map": {)" + body + "}}"); };
  const auto ea = io::f32_entry("a", {2}, a), eb = io::f32_entry("b", {1}, b);

  require_error([&] { (void)io::hf_checkpoint(dir.path()); }, {dir.path(), "neither model.safetensors nor"});
  require_error([&] { (void)io::hf_checkpoint(dir / "nope"); }, {"nope", "not a directory"});

  SECTION("a shard is missing") {
    io::write_safetensors(dir / s1, std::vector<io::tensor_entry>{ea});
    map(R"("a": ")" + s1 + R"(", "b": ")" + s2 + R"(")");
    require_error([&] { (void)io::hf_checkpoint(dir.path()); }, {s2, "tensor b", "does not exist"});
  }
  SECTION("a tensor listed in the index is absent from its shard") {
    shards({ea}, {eb});
    map(R"("a": ")" + s1 + R"(", "b": ")" + s1 + R"(")");
    require_error([&] { (void)io::hf_checkpoint(dir.path()); }, {dir / s1, "tensor b", "does not hold it"});
  }
  SECTION("a tensor is in two shards") {
    shards({ea, eb}, {eb});
    map(R"("a": ")" + s1 + R"(", "b": ")" + s2 + R"(")");
    require_error([&] { (void)io::hf_checkpoint(dir.path()); }, {dir / s1, "tensor b", "also held by", s2});
  }
  SECTION("a shard holds a tensor the index does not list") {
    shards({ea, eb}, {eb});
    map(R"("a": ")" + s1 + R"(")");
    require_error([&] { (void)io::hf_checkpoint(dir.path()); }, {dir / s1, "tensor b", "not listed"});
  }
  SECTION("a malformed index or shard") {
    shards({ea}, {eb});
    write_raw(index, R"({"weight_map": ["a"]})");
    require_error([&] { (void)io::hf_checkpoint(dir.path()); }, {index, "weight_map", "expected an object"});
    write_raw(index, R"({"metadata": {}})");
    require_error([&] { (void)io::hf_checkpoint(dir.path()); }, {index, "weight_map", "missing"});
    write_raw(index, R"({"weight_map": {"a": 3}})");
    require_error([&] { (void)io::hf_checkpoint(dir.path()); }, {index, "weight_map/a", "shard file name"});
    map(R"("a": "../model-00001-of-00002.safetensors")");
    require_error([&] { (void)io::hf_checkpoint(dir.path()); }, {index, "weight_map/a", "not a file name"});
    write_raw(index, R"({"weight_map": {"a": )");
    require_error([&] { (void)io::hf_checkpoint(dir.path()); }, {index, "line 1"});
    write_raw(dir / s2, "garbage");
    map(R"("a": ")" + s1 + R"(", "b": ")" + s2 + R"(")");
    require_error([&] { (void)io::hf_checkpoint(dir.path()); }, {dir / s2, "header length"});
  }
  SECTION("config.json absent or malformed") {
    io::write_safetensors(dir / "model.safetensors", std::vector<io::tensor_entry>{ea});
    const io::hf_checkpoint ck(dir.path());
    require_error([&] { (void)ck.config(); }, {dir / "config.json", "cannot open"});
    write_raw(dir / "config.json", "{\"hidden_size\": }");
    require_error([&] { (void)ck.config(); }, {dir / "config.json", "line 1, column"});
    write_raw(dir / "config.json", "[1]");
    require_error([&] { (void)ck.config(); }, {dir / "config.json", "expected a JSON object"});
  }
}
