#include "p2p/key_file.h"

#include <string>

#include "p2p/secret_file.h"

namespace noloco::p2p {

namespace {
// A PrivateKey protobuf for Ed25519 is 68 bytes (or 100 in the legacy layout).
constexpr size_t kMaxKeyFileBytes = 4096;
}  // namespace

Result<Identity> load_key_file(const std::filesystem::path& path) {
  NOLOCO_ASSIGN_OR_RETURN(Bytes content, read_secret_file(path, kMaxKeyFileBytes));
  auto id = Identity::from_private_key_protobuf(content);
  if (!id.ok()) return corrupt("key file " + path.string() + ": " + id.status().message());
  return id;
}

Status write_key_file(const std::filesystem::path& path, const Identity& identity) {
  return write_secret_file(path, identity.private_key_protobuf());
}

Result<Identity> load_or_create_key_file(const std::filesystem::path& path) {
  auto loaded = load_key_file(path);
  if (loaded.ok() || loaded.status().code() != StatusCode::kNotFound) return loaded;
  NOLOCO_ASSIGN_OR_RETURN(Identity fresh, Identity::generate());
  Status written = write_key_file(path, fresh);
  // Another process created it between our load and write: use theirs.
  if (written.code() == StatusCode::kAlreadyExists) return load_key_file(path);
  NOLOCO_RETURN_IF_ERROR(written);
  return fresh;
}

}  // namespace noloco::p2p
