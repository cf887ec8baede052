#include "common/durable_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "common/errno_text.h"

namespace noloco {

namespace {

// Closes the descriptor on every path out of a function.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

class FdSink final : public DurableSink {
 public:
  FdSink(int fd, const std::string& name) : fd_(fd), name_(name) {}
  Status write(ByteView bytes) override {
    const uint8_t* p = bytes.data();
    size_t n = bytes.size();
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return io_error("writing " + name_ + ": " + errno_text(errno));
      p += w;
      n -= static_cast<size_t>(w);
    }
    return Status::Ok();
  }

 private:
  int fd_;
  const std::string& name_;
};

// Moves the finished temporary file onto `path`. Without replacement, link() is used: it
// refuses to replace an existing file, so two processes creating the same file cannot
// overwrite each other.
Status publish(const std::string& tmp, const std::string& path, Existing existing) {
  if (existing == Existing::kReplace) {
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      return io_error("renaming " + tmp + " to " + path + ": " + errno_text(errno));
    return Status::Ok();
  }
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    if (errno == EEXIST) return Status(StatusCode::kAlreadyExists, path + ": already exists");
    return io_error("linking " + tmp + " to " + path + ": " + errno_text(errno));
  }
  ::unlink(tmp.c_str());
  return Status::Ok();
}

// Everything up to and including the fsync of the temporary file.
Status write_temp(Fd& f, const std::string& tmp, const DurableFileOptions& options,
                  const std::function<Status(DurableSink&)>& fill) {
  // fchmod, not the mode of open(): the umask must not change what the caller asked for.
  if (::fchmod(f.fd, static_cast<mode_t>(options.mode)) != 0)
    return io_error("setting the mode of " + tmp + ": " + errno_text(errno));
  FdSink sink(f.fd, tmp);
  NOLOCO_RETURN_IF_ERROR(fill(sink));
  if (::fsync(f.fd) != 0) return io_error("syncing " + tmp + ": " + errno_text(errno));
  const int fd = f.fd;
  f.fd = -1;
  if (::close(fd) != 0) return io_error("closing " + tmp + ": " + errno_text(errno));
  return Status::Ok();
}

}  // namespace

Status sync_directory(const std::filesystem::path& dir) {
  const std::string name = dir.empty() ? std::string(".") : dir.string();
  Fd d{::open(name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0) return io_error("opening directory " + name + ": " + errno_text(errno));
  if (::fsync(d.fd) != 0) return io_error("syncing directory " + name + ": " + errno_text(errno));
  return Status::Ok();
}

Status write_file_durably(const std::filesystem::path& path, const DurableFileOptions& options,
                          const std::function<Status(DurableSink&)>& fill) {
  const std::string name = path.string();
  if (options.mode > 07777) return invalid_argument(name + ": mode " + std::to_string(options.mode) + " is not a mode");
  struct stat st;
  if (options.existing == Existing::kKeep && ::lstat(name.c_str(), &st) == 0)
    return Status(StatusCode::kAlreadyExists, name + ": already exists");
  // Same directory as the target, so the rename never crosses a filesystem.
  std::string tmp = name + ".tmp-XXXXXX";
  Fd f{::mkostemp(tmp.data(), O_CLOEXEC)};
  if (f.fd < 0) return io_error("creating a temporary file next to " + name + ": " + errno_text(errno));
  Status s = write_temp(f, tmp, options, fill);
  if (s.ok()) s = publish(tmp, name, options.existing);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return sync_directory(path.parent_path());
}

Status write_file_durably(const std::filesystem::path& path, ByteView content, const DurableFileOptions& options) {
  return write_file_durably(path, options, [&](DurableSink& sink) { return sink.write(content); });
}

}  // namespace noloco
