// Our exchange payload kept in an unlinked file instead of the heap. A node keeps its payload for
// callers for a whole phase, and during an exchange it also holds the partner's: both in memory
// are 1.6 models above the model state at gpt-125m with bf16+zstd (docs/memory.md, "One
// exchange"). Spooled, ours lives in the page cache, which the kernel may write back and drop
// under memory pressure, and each frame is read back when it is sent.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "trainer/node/exchange_wire.h"

namespace noloco::node {

// An anonymous file in a folder: O_TMPFILE where the file system has it, else a name removed at
// once, so the file never outlives the process (nor shows up in the folder). Append, then read.
class SpoolFile final : public FrameStore {
 public:
  static Result<std::shared_ptr<SpoolFile>> create(const std::string& dir);
  ~SpoolFile() override;
  SpoolFile(const SpoolFile&) = delete;
  SpoolFile& operator=(const SpoolFile&) = delete;

  // Writes `data` at the end; returns where it starts.
  Result<uint64_t> append(ByteView data);
  Result<Bytes> read(uint64_t offset, size_t length) const override;
  uint64_t size() const { return size_; }

 private:
  SpoolFile(int fd, std::string dir) : fd_(fd), dir_(std::move(dir)) {}
  int fd_ = -1;
  std::string dir_;  // for messages
  uint64_t size_ = 0;
};

// Frames a payload into a spool file tensor by tensor, so that a tensor's codec pieces are on
// disk before the next tensor is encoded. The bytes on the wire are frame_payload()'s (the header
// frame goes last into the file but first into the stream).
class PayloadSpooler {
 public:
  explicit PayloadSpooler(std::shared_ptr<SpoolFile> file) : file_(std::move(file)) {}
  // The tensor's pieces are freed as they are written.
  Status add_tensor(std::string name, std::vector<Bytes>& pieces);
  Result<WirePayload> finish(PayloadHeader base);

 private:
  std::shared_ptr<SpoolFile> file_;
  std::vector<TensorEntry> entries_;
  std::vector<FrameSpan> spans_;  // the tensors' frames, in stream order
};

}  // namespace noloco::node
