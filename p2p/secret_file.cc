#include "p2p/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "common/durable_file.h"
#include "common/errno_text.h"

namespace noloco::p2p {

namespace {

// Closes the descriptor on every path out of a function.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<Bytes> read_secret_file(const std::filesystem::path& path, size_t max_bytes) {
  const std::string name = path.string();
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) {
    if (errno == ENOENT) return not_found(name + ": no such file");
    if (errno == EACCES || errno == EPERM) return Status(StatusCode::kPermissionDenied, name + ": " + errno_text(errno));
    return io_error(name + ": " + errno_text(errno));
  }
  struct stat st;
  if (::fstat(f.fd, &st) != 0) return io_error(name + ": " + errno_text(errno));
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
    if (n < 0) return io_error(name + ": " + errno_text(errno));
    if (n == 0) return corrupt(name + ": shorter than its size (changed while reading)");
    got += static_cast<size_t>(n);
  }
  return content;
}

Status write_secret_file(const std::filesystem::path& path, ByteView content) {
  // Never replaces a file: two processes creating the same key cannot overwrite each other.
  return write_file_durably(path, content, {.mode = 0600, .existing = Existing::kKeep});
}

}  // namespace noloco::p2p
