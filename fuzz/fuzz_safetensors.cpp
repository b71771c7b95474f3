// libFuzzer target: io::safetensors_file on arbitrary bytes (held in a memfd, opened through /proc/self/fd).
// Contract: a malformed file throws slim::error at open and nothing else escapes; a file that opens is fully
// usable — every floating tensor reads as float, every integer tensor as int64, bytes() spans
// product(shape) * dtype size bytes, the tensors tile the data section, a zero-copy view exists exactly
// when the data is aligned, and writing the tensors back with safetensors_bytes gives a file that opens
// with the same names, dtypes, shapes, bytes and metadata.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "slim/io/safetensors.hpp"

namespace {

/// An in-memory file with a path the reader can open.
class mem_file {
 public:
  explicit mem_file(const char* name) : fd_(::memfd_create(name, MFD_CLOEXEC)) {
    if (fd_ < 0) slim::fuzz::finding("memfd_create failed");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~mem_file() { ::close(fd_); }
  mem_file(const mem_file&) = delete;
  mem_file& operator=(const mem_file&) = delete;

  const std::string& set(const void* data, std::size_t size) {
    if (::ftruncate(fd_, 0) != 0) slim::fuzz::finding("ftruncate failed");
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, static_cast<const char*>(data) + done, size - done, static_cast<off_t>(done));
      if (n <= 0) slim::fuzz::finding("pwrite failed");
      done += static_cast<std::size_t>(n);
    }
    return path_;
  }

 private:
  int fd_;
  std::string path_;
};

void check_file(const slim::io::safetensors_file& f, std::size_t file_size) {
  namespace io = slim::io;
  using slim::fuzz::check;
  std::size_t total = 0;
  std::vector<io::tensor_entry> entries;
  for (const std::string& name : f.names()) {
    const io::tensor_info& t = f.info(name);
    const auto bytes = f.bytes(name);
    check(t.name == name, "info().name differs from the key");
    check(t.numel() >= 0, "negative element count");
    check(bytes.size() == static_cast<std::size_t>(t.numel()) * io::dtype_size(t.type),
          "bytes() size != numel * dtype size");
    total += bytes.size();
    if (io::is_floating(t.type)) {
      const auto v = f.to_vector<float>(name);  // may not throw
      check(v.size() == static_cast<std::size_t>(t.numel()), "to_vector<float> size != numel");
      check(!slim::fuzz::loads([&] { (void)f.to_vector<std::int32_t>(name); }), "a float tensor read as int32");
    } else {
      check(!slim::fuzz::loads([&] { (void)f.to_vector<float>(name); }), "an integer tensor read as float");
      if (t.type != io::dtype::boolean) (void)f.to_vector<std::int64_t>(name);  // every integer dtype fits
      (void)slim::fuzz::loads([&] { (void)f.to_vector<bool>(name); });         // bytes other than 0/1: refused
    }
    if (t.type == io::dtype::f32 && t.shape.size() == 1) {
      const bool aligned = reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(float) == 0;
      check(slim::fuzz::loads([&] { (void)f.view<float, 1>(name); }) == aligned, "view<float> and alignment disagree");
    }
    entries.push_back({name, t.type, t.shape, bytes, {}});
  }
  check(f.data_offset() + total == file_size, "the tensors do not tile the data section");

  // Round trip through the writer.
  static mem_file again("slim_fuzz_safetensors_rt");
  const std::string out = io::safetensors_bytes(entries, f.metadata(), "round trip");
  const io::safetensors_file g(again.set(out.data(), out.size()));
  check(g.names() == f.names(), "round trip changed the names");
  check(g.metadata() == f.metadata(), "round trip changed the metadata");
  check(g.data_offset() % 8 == 0, "written header is not padded to a multiple of 8");
  for (const std::string& name : f.names()) {
    const auto a = f.bytes(name), b = g.bytes(name);
    check(g.info(name).type == f.info(name).type && g.info(name).shape == f.info(name).shape,
          "round trip changed a dtype or shape");
    check(a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin()), "round trip changed the data");
    check(g.info(name).begin % io::dtype_size(g.info(name).type) == 0, "written tensor not aligned to its dtype");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static mem_file input("slim_fuzz_safetensors");
  const std::string& path = input.set(data, size);
  std::optional<slim::io::safetensors_file> f;
  slim::fuzz::loads([&] { f.emplace(path); });
  if (f) check_file(*f, size);  // outside `loads`: a file that opened must not throw any more
  return 0;
}
