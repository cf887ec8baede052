// The node's identity key on disk. Format: the libp2p PrivateKey protobuf
// { Type = Ed25519 (1), Data = 64 bytes seed || public key }, nothing else (see
// docs/protocols/identity.md). The file is created 0600 via a temp file + rename so a crash
// never leaves half a key; a file that is unreadable, corrupt, truncated, or readable by group
// or others is an error and is never silently replaced by a new identity.
#pragma once

#include <filesystem>

#include "common/status.h"
#include "p2p/identity.h"

namespace noloco::p2p {

// kNotFound if missing, kPermissionDenied if group/world-accessible (mode & 077) or not readable,
// kCorrupt if the content is not a valid Ed25519 PrivateKey protobuf (or is oversized).
Result<Identity> load_key_file(const std::filesystem::path& path);

// Writes atomically with mode 0600. Refuses (kAlreadyExists) to overwrite an existing file.
Status write_key_file(const std::filesystem::path& path, const Identity& identity);

// Loads the file if it exists (any error above is returned as is); creates a new identity only
// when the file does not exist at all.
Result<Identity> load_or_create_key_file(const std::filesystem::path& path);

}  // namespace noloco::p2p
