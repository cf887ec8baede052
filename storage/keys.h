// Key layouts of every column family (docs/storage.md, "Keys"). Integers in keys are big-endian
// so RocksDB's bytewise order is numeric order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace noloco::storage {

inline constexpr const char* kCfMeta = "meta";
inline constexpr const char* kCfCheckpoints = "checkpoints";
inline constexpr const char* kCfPeers = "peers";
inline constexpr const char* kCfBans = "bans";
inline constexpr const char* kCfMetrics = "metrics";

// The schema this build writes, and the oldest it still reads. Bump it (and keep reading the old
// one, or add a migration) when a layout changes. 2: records and checkpoint blobs checksummed with
// xxh3_64 (record version 2); a schema 1 store is stamped 2 when opened for writing and its
// version 1 records keep reading (docs/storage.md, "Compatibility"). 3: new checkpoints keep
// their tensor bytes in plain data files next to RocksDB (manifest version 3 names the layout);
// older checkpoints' chunks stay readable where they are.
inline constexpr uint32_t kSchemaVersion = 3;
inline constexpr uint32_t kOldestReadableSchemaVersion = 1;

namespace meta_key {
inline constexpr std::string_view kSchemaVersion = "schema_version";      // u32 LE
inline constexpr std::string_view kCreatedUnix = "created_unix";          // i64 LE, seconds
inline constexpr std::string_view kLatestCheckpoint = "latest_checkpoint";  // u64 BE checkpoint id
inline constexpr std::string_view kIdentityRef = "identity_ref";          // UTF-8 text
inline constexpr std::string_view kRunId = "run_id";                      // UTF-8 text
inline constexpr std::string_view kRunManifest = "run_manifest";          // opaque bytes
}  // namespace meta_key

std::string be64(uint64_t v);
std::optional<uint64_t> parse_be64(std::string_view s);

// checkpoints CF: 'M' id -> manifest record; 'C' id blob chunk -> raw chunk bytes.
std::string manifest_key(uint64_t id);
std::string chunk_key(uint64_t id, uint32_t blob_index, uint32_t chunk_index);
std::string chunk_prefix(uint64_t id);  // 'C' id: every chunk of one checkpoint starts with it
inline constexpr char kManifestTag = 'M';
inline constexpr char kChunkTag = 'C';
std::optional<uint64_t> parse_manifest_key(std::string_view key);
// The checkpoint id of a whole chunk key (17 bytes); nullopt for anything else, including the
// 9-byte chunk_prefix bounds of a range delete.
std::optional<uint64_t> parse_chunk_key_id(std::string_view key);

// metrics CF: outer step as u64 BE.
inline std::string metrics_key(uint64_t outer_step) { return be64(outer_step); }

// peers and bans CFs: the peer id's bytes, as given.

}  // namespace noloco::storage
