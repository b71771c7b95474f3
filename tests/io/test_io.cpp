// io: atomic whole-file writes, JSON / JSON Lines reading with located errors, the truncated-tail policy,
// the durable appender (including a child process killed mid-stream), and typed field access.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "slim/io/atomic_file.hpp"
#include "slim/io/json.hpp"

namespace io = slim::io;
using io::json;

namespace {

/// A fresh directory under /tmp (mkdtemp), removed with its content at scope exit.
class temp_dir {
 public:
  temp_dir() {
    char name[] = "/tmp/slim_test_io_XXXXXX";
    if (::mkdtemp(name) == nullptr) FAIL("mkdtemp failed: " << std::strerror(errno));
    path_ = name;
  }
  ~temp_dir() {
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator(path_, ec))  // undo chmod 0555
      if (e.is_directory(ec)) ::chmod(e.path().c_str(), 0755);
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  /// Names in the directory (not recursive), sorted.
  std::vector<std::string> list() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::string path_;
};

/// Writes `bytes` with plain POSIX calls (not the code under test).
void write_raw(const std::string& path, const std::string& bytes, int flags = O_WRONLY | O_CREAT | O_TRUNC) {
  const int fd = ::open(path.c_str(), flags, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

/// Runs `body` in a child process and returns its exit code (or 128 + signal). `body` must not return
/// into Catch2: the child leaves with _exit.
template <class F>
int in_child(F&& body) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
      code = 98;
    }
    std::_Exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// Every record of a JSON Lines file with its line number.
struct read_back {
  std::vector<json> records;
  std::vector<std::size_t> lines;
  io::jsonl_summary summary;
};
read_back read_all(const std::string& path, io::truncated_tail tail) {
  read_back r;
  r.summary = io::read_jsonl(path,
                             [&](json&& j, std::size_t line) {
                               r.records.push_back(std::move(j));
                               r.lines.push_back(line);
                             },
                             {.tail = tail});
  return r;
}

/// Catches the slim::error that `f` must throw.
template <class F>
slim::error error_of(F&& f) {
  try {
    f();
  } catch (const slim::error& e) {
    return e;
  }
  FAIL("no slim::error thrown");
  return slim::error("unreachable");
}

}  // namespace

// --- atomic files ------------------------------------------------------------------------------------------

TEST_CASE("write_file_atomic creates and replaces content and leaves no temporary files", "[io][atomic]") {
  temp_dir dir;
  const std::string target = dir / "state.json";
  io::write_file_atomic(target, "first version");
  CHECK(io::read_file(target) == "first version");
  io::write_file_atomic(target, "second");
  CHECK(io::read_file(target) == "second");
  io::write_file_atomic(target, "");
  CHECK(io::read_file(target).empty());
  std::string big(3 << 20, '\0');  // binary content, several MiB, NUL bytes included
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 2654435761u >> 24);
  io::write_file_atomic(target, big);
  CHECK(io::read_file(target) == big);
  CHECK(dir.list() == std::vector<std::string>{"state.json"});

  // Permission bits of an existing target are kept.
  REQUIRE(::chmod(target.c_str(), 0640) == 0);
  io::write_file_atomic(target, "x");
  struct stat st {};
  REQUIRE(::stat(target.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);

  // A relative path (no directory part) works from the current directory.
  const std::string cwd = std::filesystem::current_path().string();
  REQUIRE(::chdir(dir.path().c_str()) == 0);
  io::write_file_atomic("relative.txt", "here");
  REQUIRE(::chdir(cwd.c_str()) == 0);
  CHECK(io::read_file(dir / "relative.txt") == "here");
  CHECK(dir.list() == std::vector<std::string>{"relative.txt", "state.json"});
}

TEST_CASE("write_file_atomic errors name the path and the system's reason", "[io][atomic]") {
  temp_dir dir;
  SECTION("missing directory") {
    const std::string target = dir / "no_such_dir/file.txt";
    const slim::error e = error_of([&] { io::write_file_atomic(target, "x"); });
    CHECK(e.where() == target);
    CHECK_THAT(e.message(), Catch::Contains(std::strerror(ENOENT)));
  }
  SECTION("a file where the directory should be") {
    write_raw(dir / "plain", "x");
    const std::string target = dir / "plain/file.txt";
    const slim::error e = error_of([&] { io::write_file_atomic(target, "x"); });
    CHECK(e.where() == target);
    CHECK_THAT(e.message(), Catch::Contains(std::strerror(ENOTDIR)));
  }
  SECTION("the target is a directory: nothing changes, no temporary file is left") {
    REQUIRE(::mkdir((dir / "sub").c_str(), 0755) == 0);
    write_raw(dir / "sub/keep", "kept");
    const slim::error e = error_of([&] { io::write_file_atomic(dir / "sub", "x"); });
    CHECK(e.where() == dir / "sub");
    CHECK_THAT(e.message(), Catch::Contains("rename"));
    CHECK(dir.list() == std::vector<std::string>{"sub"});
    CHECK(io::read_file(dir / "sub/keep") == "kept");
  }
  SECTION("an unwritable directory (EACCES, checked without root privileges)") {
    const std::string ro = dir / "readonly";
    REQUIRE(::mkdir(ro.c_str(), 0755) == 0);
    write_raw(ro + "/existing", "old");
    REQUIRE(::chmod(ro.c_str(), 0555) == 0);
    REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);  // mkdtemp made it 0700: let "nobody" reach readonly/
    // Root ignores permission bits, so the attempt runs in a child that drops to an unprivileged user.
    const int code = in_child([&] {
      if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) return 10;
      try {
        io::write_file_atomic(ro + "/existing", "new");
      } catch (const slim::error& e) {
        const std::string m = e.message();
        if (e.where() != ro + "/existing") return 11;
        return m.find(std::strerror(EACCES)) != std::string::npos ? 0 : 12;
      }
      return 13;  // no error
    });
    CHECK(code == 0);
    CHECK(io::read_file(ro + "/existing") == "old");
    REQUIRE(::chmod(ro.c_str(), 0755) == 0);
    CHECK(std::filesystem::directory_iterator(ro)->path().filename() == "existing");
  }
}

TEST_CASE("a write that fails midway leaves the old target and no temporary file", "[io][atomic]") {
  temp_dir dir;
  const std::string target = dir / "model.bin";
  write_raw(target, "old content");
  // In a child, cap the file size so the temporary file cannot be written in full (EFBIG).
  const int code = in_child([&] {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{4096, 4096};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 10;
    try {
      io::write_file_atomic(target, std::string(100000, 'n'));
    } catch (const slim::error& e) {
      return std::string(e.message()).find(std::strerror(EFBIG)) != std::string::npos && e.where() == target ? 0 : 11;
    }
    return 12;
  });
  CHECK(code == 0);
  CHECK(io::read_file(target) == "old content");
  CHECK(dir.list() == std::vector<std::string>{"model.bin"});
}

TEST_CASE("read_file errors name the path and the reason", "[io][atomic]") {
  temp_dir dir;
  const std::string missing = dir / "absent.txt";
  const slim::error e = error_of([&] { (void)io::read_file(missing); });
  CHECK(e.where() == missing);
  CHECK_THAT(e.message(), Catch::Contains("cannot open") && Catch::Contains(std::strerror(ENOENT)));
  const slim::error d = error_of([&] { (void)io::read_file(dir.path()); });
  CHECK_THAT(d.message(), Catch::Contains(std::strerror(EISDIR)));
}

// --- JSON --------------------------------------------------------------------------------------------------

TEST_CASE("read_json parses a file and write_json round-trips it", "[io][json]") {
  temp_dir dir;
  const json value = {{"name", "slim"}, {"layers", 4}, {"dims", {1, 2, 3}}, {"text", "line\nbreak ü"}};
  io::write_json(dir / "v.json", value);
  CHECK(io::read_json(dir / "v.json") == value);
  CHECK(io::read_file(dir / "v.json").back() == '\n');
  const std::string path = dir / "bad.json";
  write_raw(path, "{\"s\": \"\xff\"}");
  // Invalid UTF-8 inside a string is a parse error too.
  CHECK_THROWS_AS(io::read_json(path), slim::error);
  json bad_utf8 = {{"s", std::string("\xff")}};
  const slim::error e = error_of([&] { io::write_json(dir / "w.json", bad_utf8); });
  CHECK(e.where() == dir / "w.json");
  CHECK_THAT(e.message(), Catch::Contains("UTF-8"));
  CHECK_FALSE(std::filesystem::exists(dir / "w.json"));
}

TEST_CASE("JSON syntax errors name the file, line and column", "[io][json]") {
  temp_dir dir;
  const std::string path = dir / "config.json";
  SECTION("trailing comma: the column of the '}'") {
    write_raw(path, "[\n  {\"a\": 1,}\n]\n");
    const slim::error e = error_of([&] { (void)io::read_json(path); });
    CHECK(e.where() == path);
    CHECK(e.place() == "line 2, column 11");
    CHECK_THAT(e.message(), Catch::Contains("unexpected '}'"));
    CHECK_THAT(e.message(), !Catch::Contains("json.exception"));  // nlohmann's own prefix is replaced
    CHECK(std::string(e.what()).rfind(path + ": line 2, column 11: syntax error", 0) == 0);
  }
  SECTION("bad literal: the byte where the lexer gave up") {
    write_raw(path, "{\n  \"a\": 1,\n  \"b\": tru\n}\n");
    // The lexer reads "tru" and fails on the newline that follows: line 3 is `  "b": tru`, 10 bytes.
    CHECK(error_of([&] { (void)io::read_json(path); }).place() == "line 3, column 11");
  }
  SECTION("columns count bytes, lines count newlines") {
    write_raw(path, "{\"é\": 1, \"x\": @}");  // é is 2 bytes: '@' is byte 16
    CHECK(error_of([&] { (void)io::read_json(path); }).place() == "line 1, column 16");
  }
  SECTION("unexpected end of input") {
    write_raw(path, "{\"a\": [1, 2\n");
    const slim::error e = error_of([&] { (void)io::read_json(path); });
    CHECK(e.place() == "line 2, column 1");
    CHECK_THAT(e.message(), Catch::Contains("end of input"));
  }
  SECTION("empty file") {
    write_raw(path, "");
    CHECK(error_of([&] { (void)io::read_json(path); }).place() == "line 1, column 1");
  }
  SECTION("number overflow (no position from the parser)") {
    write_raw(path, "{\"x\": 1e500}");
    const slim::error e = error_of([&] { (void)io::read_json(path); });
    CHECK(e.where() == path);
    CHECK_THAT(e.message(), Catch::Contains("overflow"));
  }
  SECTION("missing file") {
    const slim::error e = error_of([&] { (void)io::read_json(dir / "none.json"); });
    CHECK(e.where() == dir / "none.json");
    CHECK_THAT(e.message(), Catch::Contains(std::strerror(ENOENT)));
  }
  SECTION("in-memory text names its source") {
    const slim::error e = error_of([&] { (void)io::parse_json("[1,\n2,,3]", "https://api/reply"); });
    CHECK(e.where() == "https://api/reply");
    CHECK(e.place() == "line 2, column 3");
  }
}

TEST_CASE("position_of: 1-based lines and byte columns", "[io][json]") {
  const std::string t = "ab\ncd\n\nx";
  CHECK(io::position_of(t, 0).line == 1);
  CHECK(io::position_of(t, 0).column == 1);
  CHECK(io::position_of(t, 2).column == 3);  // the '\n' ends line 1
  CHECK(io::position_of(t, 3).line == 2);
  CHECK(io::position_of(t, 3).column == 1);
  CHECK(io::position_of(t, 6).line == 3);
  CHECK(io::position_of(t, 7).line == 4);
  CHECK(io::position_of(t, 99).line == 4);  // past the end: just after the last byte
  CHECK(io::position_of(t, 99).column == 2);
}

// --- JSON Lines --------------------------------------------------------------------------------------------

TEST_CASE("read_jsonl streams records with line numbers, skipping blank lines and CRs", "[io][jsonl]") {
  temp_dir dir;
  const std::string path = dir / "r.jsonl";
  const std::string long_text(200000, 'z');  // a line much longer than the 64 KiB read buffer
  write_raw(path, "{\"id\": 1}\n\n   \n{\"id\": 2}\r\n\t\n{\"id\": 3, \"t\": \"" + long_text + "\"}\n[4]\n");
  const read_back r = read_all(path, io::truncated_tail::error);
  REQUIRE(r.records.size() == 4);
  CHECK(r.lines == std::vector<std::size_t>{1, 4, 6, 7});
  CHECK(r.records[0]["id"] == 1);
  CHECK(r.records[1]["id"] == 2);
  CHECK(r.records[2]["t"].get<std::string>() == long_text);
  CHECK(r.records[3] == json::array({4}));
  CHECK(r.summary.lines == 7);
  CHECK(r.summary.records == 4);
  CHECK(r.summary.blank_lines == 3);
  CHECK_FALSE(r.summary.skipped_tail);

  write_raw(path, "");
  CHECK(read_all(path, io::truncated_tail::error).summary.lines == 0);

  // Errors thrown by the callback come through unchanged.
  write_raw(path, "1\n2\n");
  CHECK_THROWS_WITH(io::read_jsonl(path,
                                   [](const json&, std::size_t line) {
                                     if (line == 2) throw std::runtime_error("stop at 2");
                                   }),
                    "stop at 2");
}

TEST_CASE("a malformed JSON Lines record throws naming the file, the line and the column", "[io][jsonl]") {
  temp_dir dir;
  const std::string path = dir / "teacher.jsonl";
  write_raw(path, "{\"u\": 1}\n\n{\"u\": 2}\n{\"u\": 3,, }\n{\"u\": 4}\n");
  std::vector<std::size_t> seen;
  const slim::error e =
      error_of([&] { io::read_jsonl(path, [&](const json&, std::size_t line) { seen.push_back(line); }); });
  CHECK(e.where() == path);
  CHECK(e.place() == "line 4, column 9");
  CHECK(std::string(e.what()).rfind(path + ": line 4, column 9: ", 0) == 0);
  CHECK(seen == std::vector<std::size_t>{1, 3});  // records before the bad line were delivered

  const slim::error m = error_of([&] { io::read_jsonl(dir / "absent.jsonl", [](const json&, std::size_t) {}); });
  CHECK(m.where() == dir / "absent.jsonl");
  CHECK_THAT(m.message(), Catch::Contains(std::strerror(ENOENT)));
}

TEST_CASE("an unterminated last line follows the truncated_tail policy", "[io][jsonl]") {
  temp_dir dir;
  const std::string path = dir / "cut.jsonl";
  SECTION("a record cut off mid-write") {
    write_raw(path, "{\"seq\": 0}\n{\"seq\": 1}\n{\"seq\": 2, \"te");
    const slim::error e = error_of([&] { (void)read_all(path, io::truncated_tail::error); });
    CHECK(e.where() == path);
    CHECK(e.place() == "line 3");
    CHECK_THAT(e.message(), Catch::Contains("no terminating newline") && Catch::Contains("14 bytes"));

    const read_back r = read_all(path, io::truncated_tail::skip);
    CHECK(r.records.size() == 2);
    CHECK(r.summary.skipped_tail);
    CHECK(r.summary.tail_bytes == 14);
    CHECK(r.summary.lines == 3);

    // accept parses it — and this one is malformed.
    CHECK(error_of([&] { (void)read_all(path, io::truncated_tail::accept); }).place().rfind("line 3, column", 0) == 0);
  }
  SECTION("a complete record without its newline") {
    write_raw(path, "{\"seq\": 0}\n{\"seq\": 1}");
    CHECK_THROWS_AS(read_all(path, io::truncated_tail::error), slim::error);
    CHECK(read_all(path, io::truncated_tail::skip).records.size() == 1);
    const read_back r = read_all(path, io::truncated_tail::accept);
    REQUIRE(r.records.size() == 2);
    CHECK(r.records[1]["seq"] == 1);
    CHECK(r.lines[1] == 2);
  }
  SECTION("a blank unterminated last line is just blank") {
    write_raw(path, "{\"seq\": 0}\n  ");
    const read_back r = read_all(path, io::truncated_tail::error);
    CHECK(r.records.size() == 1);
    CHECK(r.summary.blank_lines == 1);
    CHECK_FALSE(r.summary.skipped_tail);
  }
}

TEST_CASE("jsonl_appender writes one complete line per record", "[io][jsonl]") {
  temp_dir dir;
  const std::string path = dir / "cache.jsonl";
  {
    io::jsonl_appender out(path);
    out.append({{"user", 1}, {"rationale", "likes\nstrategy games"}});  // the newline is escaped: one line
    out.append({{"user", 2}, {"rationale", "ü"}});
    out.append(json::array({1, 2}));
    CHECK(out.path() == path);
    CHECK(out.repaired_bytes() == 0);

    // One appender per file: a second one is refused (advisory lock), and says so.
    const slim::error e = error_of([&] { io::jsonl_appender second(path); });
    CHECK(e.where() == path);
    CHECK_THAT(e.message(), Catch::Contains("another jsonl_appender"));

    // A record that cannot be serialised is refused and the file is unchanged.
    const std::string before = io::read_file(path);
    const slim::error u = error_of([&] { out.append({{"s", std::string("\xc3")}}); });
    CHECK(u.where() == path);
    CHECK_THAT(u.message(), Catch::Contains("UTF-8"));
    CHECK(io::read_file(path) == before);

    // Moving keeps the file open and locked.
    io::jsonl_appender moved(std::move(out));
    moved.append({{"user", 3}});
    CHECK_THROWS_AS(out.append({{"user", 4}}), slim::error);  // NOLINT(bugprone-use-after-move)
  }
  const std::string text = io::read_file(path);
  CHECK(text ==
        "{\"rationale\":\"likes\\nstrategy games\",\"user\":1}\n{\"rationale\":\"ü\",\"user\":2}\n[1,2]\n"
        "{\"user\":3}\n");
  // Reopening appends after the existing records.
  io::jsonl_appender again(path);
  again.append({{"user", 5}});
  const read_back r = read_all(path, io::truncated_tail::error);
  REQUIRE(r.records.size() == 5);
  CHECK(r.records[4]["user"] == 5);
}

TEST_CASE("jsonl_appender applies the truncated_tail policy to a file that ends mid-record", "[io][jsonl]") {
  temp_dir dir;
  const std::string path = dir / "torn.jsonl";
  const std::string good = "{\"seq\":0}\n{\"seq\":1}\n";
  SECTION("error refuses to append") {
    write_raw(path, good + "{\"seq\":2,\"pa");
    const slim::error e = error_of([&] { io::jsonl_appender a(path); });
    CHECK(e.where() == path);
    CHECK(e.place() == "offset " + std::to_string(good.size()));
    CHECK_THAT(e.message(), Catch::Contains("partial line of 12 bytes"));
    CHECK(io::read_file(path) == good + "{\"seq\":2,\"pa");  // untouched
  }
  SECTION("skip truncates the partial line, then appends") {
    write_raw(path, good + "{\"seq\":2,\"pa");
    io::jsonl_appender a(path, io::truncated_tail::skip);
    CHECK(a.repaired_bytes() == 12);
    a.append({{"seq", 2}});
    CHECK(io::read_file(path) == good + "{\"seq\":2}\n");
  }
  SECTION("accept ends the line, then appends") {
    write_raw(path, good + "{\"seq\":2}");
    io::jsonl_appender a(path, io::truncated_tail::accept);
    a.append({{"seq", 3}});
    CHECK(io::read_file(path) == good + "{\"seq\":2}\n{\"seq\":3}\n");
  }
  SECTION("a file without any newline is one partial line") {
    write_raw(path, std::string(10000, 'x'));  // longer than the backwards-search block
    io::jsonl_appender a(path, io::truncated_tail::skip);
    CHECK(a.repaired_bytes() == 10000);
    CHECK(io::read_file(path).empty());
  }
}

TEST_CASE("a crash mid-write loses at most the record in flight", "[io][jsonl]") {
  temp_dir dir;
  const std::string path = dir / "teacher_cache.jsonl";
  const std::string pad(3000, 'p');

  SECTION("child appends 100 records, starts a 101st by hand, and _exits") {
    const int code = in_child([&] {
      io::jsonl_appender out(path);
      for (int i = 0; i < 100; ++i) out.append({{"seq", i}, {"pad", pad}});
      // What a torn write leaves: the first part of the next line, no newline.
      const std::string partial = "{\"pad\":\"" + pad.substr(0, 1000);
      const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
      if (fd < 0 || ::write(fd, partial.data(), partial.size()) != static_cast<ssize_t>(partial.size())) return 10;
      std::_Exit(0);  // no destructors, no flush: a crash
    });
    REQUIRE(code == 0);
    const slim::error e = error_of([&] { (void)read_all(path, io::truncated_tail::error); });
    CHECK(e.place() == "line 101");
    const read_back r = read_all(path, io::truncated_tail::skip);
    REQUIRE(r.records.size() == 100);
    for (int i = 0; i < 100; ++i) CHECK(r.records[static_cast<std::size_t>(i)]["seq"] == i);
    CHECK(r.summary.skipped_tail);
  }

  SECTION("child appends until killed with SIGKILL") {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        io::jsonl_appender out(path);
        for (int i = 0;; ++i) out.append({{"seq", i}, {"pad", pad}});
      } catch (...) {
      }
      std::_Exit(1);
    }
    // Wait until at least 50 records are on disk, then kill mid-stream.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    struct stat st {};
    while ((::stat(path.c_str(), &st) != 0 || st.st_size < 50 * 3020) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);

    // Every complete line is a record, in order, with nothing missing before the last one.
    const read_back r = read_all(path, io::truncated_tail::skip);
    REQUIRE(r.records.size() >= 50);
    bool in_order = true;
    for (std::size_t i = 0; i < r.records.size(); ++i)
      in_order = in_order && r.records[i]["seq"] == static_cast<int>(i) && r.records[i]["pad"] == pad;
    CHECK(in_order);

    // The file can be reopened (the dead child's lock is gone) and appended to; it then reads strictly.
    io::jsonl_appender out(path, io::truncated_tail::skip);
    const auto next = static_cast<int>(r.records.size());
    out.append({{"seq", next}, {"pad", pad}});
    const read_back after = read_all(path, io::truncated_tail::error);
    REQUIRE(after.records.size() == r.records.size() + 1);
    CHECK(after.records.back()["seq"] == next);
  }
}

// --- typed field access ------------------------------------------------------------------------------------

TEST_CASE("get<T> returns typed fields and names the file and field path on error", "[io][json]") {
  const json j = json::parse(R"({
    "name": "llama", "hidden_size": 4096, "negative": -1, "byte": 300, "eps": 1e-5, "tie": true,
    "dims": [1, 2, 3], "rope_scaling": {"factor": 8.0, "type": "llama3"}, "layers": [{"id": 7}],
    "absent_value": null, "a/b": 5, "huge": 1e300
  })");
  const std::string file = "config.json";

  CHECK(io::get<std::string>(j, "name", file) == "llama");
  CHECK(io::get<int>(j, "hidden_size", file) == 4096);
  CHECK(io::get<std::int64_t>(j, "negative", file) == -1);
  CHECK(io::get<double>(j, "eps", file) == 1e-5);
  CHECK(io::get<float>(j, "hidden_size", file) == 4096.0f);  // integers are numbers
  CHECK(io::get<bool>(j, "tie", file));
  CHECK(io::get<std::vector<int>>(j, "dims", file) == std::vector<int>{1, 2, 3});
  CHECK(io::get<double>(j, "rope_scaling/factor", file) == 8.0);
  CHECK(io::get<int>(j, "layers/0/id", file) == 7);
  CHECK(io::get<int>(j, "a~1b", file) == 5);  // "~1" is '/' inside a key
  CHECK(io::get<json>(j, "rope_scaling", file)["type"] == "llama3");

  auto message_of = [&](auto&& f) { return std::string(error_of(f).what()); };
  CHECK(message_of([&] { (void)io::get<int>(j, "num_layers", file); }) == "config.json: field num_layers: missing");
  CHECK(message_of([&] { (void)io::get<int>(j, "name", file); }) ==
        "config.json: field name: expected an integer, found string");
  CHECK(message_of([&] { (void)io::get<int>(j, "eps", file); }) ==
        "config.json: field eps: expected an integer, found number");
  CHECK(message_of([&] { (void)io::get<bool>(j, "hidden_size", file); }) ==
        "config.json: field hidden_size: expected a boolean, found number");
  CHECK(message_of([&] { (void)io::get<std::uint8_t>(j, "byte", file); }) ==
        "config.json: field byte: value 300 is out of range [0, 255]");
  CHECK_THAT(message_of([&] { (void)io::get<unsigned>(j, "negative", file); }), Catch::Contains("out of range"));
  CHECK_THAT(message_of([&] { (void)io::get<float>(j, "huge", file); }), Catch::Contains("out of range"));
  CHECK(io::get<double>(j, "huge", file) == 1e300);
  CHECK(message_of([&] { (void)io::get<std::vector<std::string>>(j, "dims", file); }) ==
        "config.json: field dims/0: expected a string, found number");
  CHECK(message_of([&] { (void)io::get<double>(j, "rope_scaling/low_freq_factor", file); }) ==
        "config.json: field rope_scaling/low_freq_factor: missing");
  CHECK_THAT(message_of([&] { (void)io::get<int>(j, "name/first", file); }),
             Catch::Contains("field name/first: expected an object at \"name\", found string"));
  CHECK_THAT(message_of([&] { (void)io::get<int>(j, "layers/3/id", file); }),
             Catch::Contains("index 3 is past the end of the array at \"layers\" (size 1)"));
  CHECK_THAT(message_of([&] { (void)io::get<int>(j, "layers/x/id", file); }), Catch::Contains("not an index"));
  CHECK_THAT(message_of([&] { (void)io::get<int>(j, "layers/01/id", file); }), Catch::Contains("not an index"));

  // A JSON Lines record names its line too.
  const slim::error e = error_of([&] { (void)io::get<int>(j, "user_id", {std::string("cache.jsonl"), 12}); });
  CHECK(e.where() == "cache.jsonl");
  CHECK(e.place() == "line 12, field user_id");

  // get_or: absent or null gives the fallback; a wrong type still throws.
  CHECK(io::get_or<double>(j, "rope_theta", 10000.0, file) == 10000.0);
  CHECK(io::get_or<std::string>(j, "absent_value", "none", file) == "none");
  CHECK(io::get_or<int>(j, "hidden_size", 1, file) == 4096);
  CHECK_THROWS_AS(io::get_or<int>(j, "name", 1, file), slim::error);
  CHECK(io::has(j, "rope_scaling/type", file));
  CHECK_FALSE(io::has(j, "absent_value", file));
  CHECK_FALSE(io::has(j, "nothing", file));
}
