// An exchange payload in an unlinked file (payload_spool.h).
#include "trainer/node/payload_spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace noloco::node {
namespace {

std::string errno_text() { return std::strerror(errno); }

// O_TMPFILE first; file systems without it (and older kernels) get mkstemp + unlink.
int open_anonymous(const std::string& dir) {
#ifdef O_TMPFILE
  const int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
#endif
  std::string path = dir + "/.noloco-payload-XXXXXX";
  const int fd2 = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd2 >= 0) ::unlink(path.c_str());
  return fd2;
}

}  // namespace

Result<std::shared_ptr<SpoolFile>> SpoolFile::create(const std::string& dir) {
  const int fd = open_anonymous(dir);
  if (fd < 0) return Status(StatusCode::kIoError, "payload spool in " + dir + ": " + errno_text());
  return std::shared_ptr<SpoolFile>(new SpoolFile(fd, dir));
}

SpoolFile::~SpoolFile() {
  if (fd_ >= 0) ::close(fd_);
}

Result<uint64_t> SpoolFile::append(ByteView data) {
  const uint64_t at = size_;
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(at + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status(StatusCode::kIoError, "payload spool in " + dir_ + ": write: " + errno_text());
    done += static_cast<size_t>(n);
  }
  size_ += data.size();
  return at;
}

Result<Bytes> SpoolFile::read(uint64_t offset, size_t length) const {
  if (offset > size_ || length > size_ - offset) return invalid_argument("payload spool: read past the end");
  Bytes out(length);
  size_t done = 0;
  while (done < length) {
    const ssize_t n = ::pread(fd_, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status(StatusCode::kIoError, "payload spool in " + dir_ + ": read: " + errno_text());
    done += static_cast<size_t>(n);
  }
  return out;
}

Status PayloadSpooler::add_tensor(std::string name, std::vector<Bytes>& pieces) {
  auto write = [this](Bytes frame) -> Status {
    NOLOCO_ASSIGN_OR_RETURN(uint64_t at, file_->append(frame));
    spans_.push_back({at, frame.size()});
    return Status::Ok();
  };
  NOLOCO_ASSIGN_OR_RETURN(TensorEntry e, frame_tensor(std::move(name), pieces, write));
  entries_.push_back(std::move(e));
  return Status::Ok();
}

Result<WirePayload> PayloadSpooler::finish(PayloadHeader base) {
  base.tensors = std::move(entries_);
  const Bytes head = header_frame(base);
  NOLOCO_ASSIGN_OR_RETURN(uint64_t at, file_->append(head));
  WirePayload w;
  w.spans.push_back({at, head.size()});
  w.spans.insert(w.spans.end(), spans_.begin(), spans_.end());
  w.store = std::move(file_);
  return w;
}

}  // namespace noloco::node
