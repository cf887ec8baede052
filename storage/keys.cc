#include "storage/keys.h"

#include "common/bytes.h"

namespace noloco::storage {

std::string be64(uint64_t v) {
  Bytes b;
  put_u64_be(b, v);
  return to_string(b);
}

std::optional<uint64_t> parse_be64(std::string_view s) {
  if (s.size() != 8) return std::nullopt;
  return get_u64_be(reinterpret_cast<const uint8_t*>(s.data()));
}

std::string manifest_key(uint64_t id) { return kManifestTag + be64(id); }

std::string chunk_prefix(uint64_t id) { return kChunkTag + be64(id); }

std::string chunk_key(uint64_t id, uint32_t blob_index, uint32_t chunk_index) {
  Bytes b;
  put_u32_be(b, blob_index);
  put_u32_be(b, chunk_index);
  return chunk_prefix(id) + to_string(b);
}

std::optional<uint64_t> parse_manifest_key(std::string_view key) {
  if (key.size() != 9 || key[0] != kManifestTag) return std::nullopt;
  return parse_be64(key.substr(1));
}

std::optional<uint64_t> parse_chunk_key_id(std::string_view key) {
  if (key.size() != 17 || key[0] != kChunkTag) return std::nullopt;
  return parse_be64(key.substr(1, 8));
}

}  // namespace noloco::storage
