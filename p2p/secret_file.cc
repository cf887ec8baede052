#include "p2p/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace noloco::p2p {

namespace {

std::string errno_text() { return std::strerror(errno); }

// Closes the descriptor on every path out of a function.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status sync_directory(const std::filesystem::path& dir) {
  Fd d{::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0) return io_error("open directory " + dir.string() + ": " + errno_text());
  if (::fsync(d.fd) != 0) return io_error("fsync directory " + dir.string() + ": " + errno_text());
  return Status::Ok();
}

}  // namespace

Result<Bytes> read_secret_file(const std::filesystem::path& path, size_t max_bytes) {
  const std::string name = path.string();
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) {
    if (errno == ENOENT) return not_found(name + ": no such file");
    if (errno == EACCES || errno == EPERM) return Status(StatusCode::kPermissionDenied, name + ": " + errno_text());
    return io_error(name + ": " + errno_text());
  }
  struct stat st;
  if (::fstat(f.fd, &st) != 0) return io_error(name + ": " + errno_text());
  if (!S_ISREG(st.st_mode)) return corrupt(name + ": not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status(StatusCode::kPermissionDenied,
                  name + ": mode " + mode + " lets group or others read a secret; chmod 600 it");
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) return corrupt(name + ": larger than " + std::to_string(max_bytes) + " bytes");
  Bytes content(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < content.size()) {
    ssize_t n = ::read(f.fd, content.data() + got, content.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error(name + ": " + errno_text());
    if (n == 0) return corrupt(name + ": shorter than its size (changed while reading)");
    got += static_cast<size_t>(n);
  }
  return content;
}

Status write_secret_file(const std::filesystem::path& path, ByteView content) {
  const std::string name = path.string();
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) return Status(StatusCode::kAlreadyExists, name + ": already exists");
  std::string tmpl = name + ".tmp-XXXXXX";
  Fd f{::mkstemp(tmpl.data())};  // mode 0600
  if (f.fd < 0) return io_error("create temp file for " + name + ": " + errno_text());
  const std::string tmp = tmpl;
  auto fail = [&](const std::string& what) {
    Status s = io_error(what + " " + tmp + ": " + errno_text());
    ::unlink(tmp.c_str());
    return s;
  };
  if (::fchmod(f.fd, 0600) != 0) return fail("chmod");
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(f.fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write");
    done += static_cast<size_t>(n);
  }
  if (::fsync(f.fd) != 0) return fail("fsync");
  ::close(f.fd);
  f.fd = -1;
  // link() refuses to replace an existing file, unlike rename(): two processes creating the
  // same key cannot overwrite each other.
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    if (errno == EEXIST) {
      ::unlink(tmp.c_str());
      return Status(StatusCode::kAlreadyExists, name + ": already exists");
    }
    return fail("link " + name + " from");
  }
  ::unlink(tmp.c_str());
  return sync_directory(path.parent_path());
}

}  // namespace noloco::p2p
