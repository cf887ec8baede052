// Whole-file writes that survive a crash or power cut: the content goes to a temporary file in
// the target's directory, which is written, fsynced, given its mode and renamed (or linked) onto
// the target, and then the directory is fsynced so the new name is durable too. A reader sees
// the old file or the new one, never a mix; a failure leaves the old file as it was and removes
// the temporary file. Used for secrets (0600), run manifests, exports and charts.
#pragma once

#include <filesystem>
#include <functional>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco {

enum class Existing {
  kReplace,  // an existing file at the path is replaced atomically
  kKeep,     // an existing file is never touched: kAlreadyExists (also if it appears meanwhile)
};

struct DurableFileOptions {
  unsigned mode = 0644;  // the file's permission bits, applied exactly (umask does not narrow them)
  Existing existing = Existing::kReplace;
};

// Receives the content of a file being written; write() fails with kIoError naming the file.
class DurableSink {
 public:
  virtual ~DurableSink() = default;
  virtual Status write(ByteView bytes) = 0;
};

// `fill` writes the content through the sink; if it (or the sink) fails, the write is abandoned
// and its Status returned, the target untouched.
Status write_file_durably(const std::filesystem::path& path, const DurableFileOptions& options,
                          const std::function<Status(DurableSink&)>& fill);

// The same for content already in memory.
Status write_file_durably(const std::filesystem::path& path, ByteView content, const DurableFileOptions& options);

// fsync of a directory, so a rename, link or unlink in it survives a power cut.
Status sync_directory(const std::filesystem::path& dir);

}  // namespace noloco
