// Small secret files (identity keys, swarm keys): created 0600 through a temp file that is
// linked into place (common/durable_file.h), so a crash leaves either no file or the whole file,
// and an existing file is never overwritten; read back only if no group/other permission bit is
// set.
#pragma once

#include <filesystem>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::p2p {

// kNotFound if missing; kPermissionDenied if unreadable or if mode & 077 != 0; kCorrupt if not
// a regular file or larger than max_bytes.
Result<Bytes> read_secret_file(const std::filesystem::path& path, size_t max_bytes);

// kAlreadyExists if path exists; kIoError for any write/sync/link failure (the temp file is
// removed).
Status write_secret_file(const std::filesystem::path& path, ByteView content);

}  // namespace noloco::p2p
