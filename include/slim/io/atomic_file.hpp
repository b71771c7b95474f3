// slim — whole-file reads and crash-safe whole-file writes (POSIX).
//
// `write_file_atomic` never exposes a partial file: the bytes go to a temporary file in the target's
// directory, which is fsync'ed and then renamed over the target, and the directory is fsync'ed so the
// rename itself survives a power cut. A reader sees either the old content or the new, never a mixture.
// Every failure throws `slim::error` naming the path and the system's reason (strerror(errno)).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "slim/core/error.hpp"

namespace slim::io {

namespace detail {

inline std::string strerror_result(const char* r, const char*) { return r; }  // GNU strerror_r
inline std::string strerror_result(int r, const char* buf) {                  // XSI strerror_r
  return r == 0 ? std::string(buf) : std::string("unknown error");
}

/// strerror(e) without strerror's shared static buffer.
inline std::string errno_string(int e) {
  char buf[256] = {};
  return strerror_result(strerror_r(e, buf, sizeof buf), buf) + " (errno " + std::to_string(e) + ")";
}

/// `slim::error(path, "", what + ": " + strerror(e))`.
inline error system_error(const std::string& path, std::string_view what, int e) {
  return error(path, "", std::string(what) + ": " + errno_string(e));
}

/// Directory part of `path` ("." when there is none, "/" for a file in the root).
inline std::string parent_directory(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

/// Closes `fd`, retrying nothing (POSIX leaves the descriptor state unspecified after EINTR).
inline int close_fd(int fd) noexcept { return ::close(fd); }

/// fsync of a directory, so that entries created or renamed in it are durable. Filesystems that cannot
/// sync a directory (EINVAL, ENOTSUP) are accepted: they give no stronger guarantee to ask for.
inline void sync_directory(const std::string& dir, const std::string& path_for_errors) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw system_error(path_for_errors, "cannot open directory " + dir + " to sync it", errno);
  if (::fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP) {
    const int e = errno;
    close_fd(fd);
    throw system_error(path_for_errors, "fsync of directory " + dir + " failed", e);
  }
  close_fd(fd);
}

/// Writes all of `bytes` to `fd`, continuing after short writes and EINTR. Returns 0 or an errno value.
inline int write_all(int fd, std::string_view bytes) noexcept {
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;  // no progress and no error: do not spin
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return 0;
}

}  // namespace detail

/// The whole content of the file at `path`. Throws `slim::error` naming the path and strerror(errno).
inline std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw detail::system_error(path, "cannot open for reading", errno);
  std::string out;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      detail::close_fd(fd);
      throw detail::system_error(path, "read failed", e);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  detail::close_fd(fd);
  return out;
}

/// Replaces the file at `path` with `bytes` atomically and durably: temporary file in the same
/// directory ("." + name + ".tmp.<pid>.<n>"), fsync, rename over `path`, fsync of the directory.
/// An existing target keeps its permission bits; a new one gets 0666 minus the umask. If anything fails,
/// the temporary file is removed, the target is untouched, and `slim::error` names the path and the
/// reason. A symbolic link at `path` is replaced by a regular file (the link is not followed).
inline void write_file_atomic(const std::string& path, std::string_view bytes) {
  if (path.empty() || path.back() == '/') throw error(path, "", "not a file path");
  const std::string dir = detail::parent_directory(path);
  const std::size_t slash = path.find_last_of('/');
  const std::string prefix = slash == std::string::npos ? std::string() : path.substr(0, slash + 1);  // "dir/"
  const std::string base = path.substr(prefix.size());

  static std::atomic<unsigned long> counter{0};
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    tmp = prefix + "." + base + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt >= 100))
      throw detail::system_error(path, "cannot create temporary file " + tmp, errno);
  }

  // Until the rename succeeds, any failure closes and removes the temporary file.
  struct temporary {
    int& fd;
    const std::string& name;
    bool committed = false;
    ~temporary() {
      if (fd >= 0) detail::close_fd(fd);
      if (!committed) ::unlink(name.c_str());
    }
  } guard{fd, tmp};

  struct stat old {};
  if (::stat(path.c_str(), &old) == 0 && S_ISREG(old.st_mode) && ::fchmod(fd, old.st_mode & 07777) != 0)
    throw detail::system_error(path, "cannot copy permissions to " + tmp, errno);
  if (const int e = detail::write_all(fd, bytes)) throw detail::system_error(path, "write to " + tmp + " failed", e);
  if (::fsync(fd) != 0) throw detail::system_error(path, "fsync of " + tmp + " failed", errno);
  const int closing = fd;
  fd = -1;
  if (detail::close_fd(closing) != 0) throw detail::system_error(path, "close of " + tmp + " failed", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    throw detail::system_error(path, "cannot rename " + tmp + " over the target", errno);
  guard.committed = true;
  detail::sync_directory(dir, path);
}

}  // namespace slim::io
