// The small structs the store keeps, and their byte encodings (docs/storage.md has the layouts).
// No RocksDB here: other modules include this header.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "storage/blob_data.h"

namespace noloco::storage {

// Caps checked on write (kInvalidArgument) and on read (kCorrupt) so a damaged value can never
// ask for an absurd allocation.
inline constexpr size_t kMaxNameBytes = 256;               // blob names, field names
inline constexpr size_t kMaxShortStringBytes = 4096;       // run id, reason, partner, address
inline constexpr size_t kMaxLongStringBytes = 1 << 20;     // config, codec settings, field values
inline constexpr size_t kMaxBlobsPerCheckpoint = 4096;
inline constexpr size_t kMaxFieldsPerRecord = 1024;
inline constexpr size_t kMaxAddressesPerPeer = 64;
inline constexpr uint64_t kMaxBlobBytes = uint64_t{1} << 40;  // 1 TiB, far beyond any real tensor

// Which function computed a blob's checksum: xxh3_64 for everything written now, legacy_hash64
// in manifests of record version 1 (schema version 1 stores), read but never written.
enum class BlobChecksum : uint8_t { kXxh3, kLegacyHash64 };

// Where a checkpoint's blob bytes are (docs/storage.md, "Checkpoint data files").
enum class BlobLayout : uint8_t {
  kChunks = 0,    // RocksDB values 'C' id blob chunk (manifests of record version 1 and 2)
  kDataFile = 1,  // one plain file per checkpoint, blobs back to back in manifest order (written now)
};

// How one named blob of a checkpoint is stored: its length, its checksum and, in the chunk
// layout, how it was split into RocksDB values (both 0 in the data-file layout).
struct BlobInfo {
  std::string name;
  uint64_t size = 0;
  uint64_t checksum = 0;
  uint64_t chunk_bytes = 0;  // every chunk but the last holds exactly this many bytes
  uint32_t chunk_count = 0;
  BlobChecksum checksum_kind = BlobChecksum::kXxh3;  // not stored: follows from the record version

  bool operator==(const BlobInfo&) const = default;
};

// What the trainer describes about a checkpoint. `blobs` is filled in by the store on write.
struct CheckpointManifest {
  std::string run_id;
  uint64_t step = 0;
  uint64_t outer_step = 0;
  int64_t created_unix_ms = 0;
  std::string config;                         // the run/model config the trainer used
  std::string codec;                          // codec settings (trainer's own text form)
  std::map<std::string, std::string> fields;  // free-form small values (lr schedule position...)
  std::vector<BlobInfo> blobs;
  BlobLayout layout = BlobLayout::kDataFile;  // set by the store on write, like `blobs`

  bool operator==(const CheckpointManifest&) const = default;
};

struct NamedBlob {
  std::string name;
  BlobData data;  // owned bytes, or a slice of a snapshot buffer (blob_data.h)
};

// A checkpoint as the trainer hands it over: already-serialised bytes.
struct Checkpoint {
  CheckpointManifest manifest;
  std::vector<NamedBlob> blobs;

  const NamedBlob* find(std::string_view name) const {
    for (const auto& b : blobs)
      if (b.name == name) return &b;
    return nullptr;
  }
};

struct PeerRecord {
  std::string peer_id;
  std::vector<std::string> addresses;
  int64_t first_seen_unix = 0;
  int64_t last_seen_unix = 0;
  uint64_t successes = 0;
  uint64_t failures = 0;
  double score = 0.0;

  bool operator==(const PeerRecord&) const = default;
};

struct BanRecord {
  std::string peer_id;
  std::string reason;
  int64_t banned_unix = 0;
  int64_t expires_unix = 0;  // 0: never expires

  bool expired_at(int64_t now_unix) const { return expires_unix != 0 && expires_unix <= now_unix; }
  bool operator==(const BanRecord&) const = default;
};

struct MetricsRecord {
  uint64_t outer_step = 0;
  int64_t unix_ms = 0;
  double loss = 0.0;
  double tokens_per_s = 0.0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  std::string partner;  // peer id of this outer step's partner, empty if none
  double exchange_ms = 0.0;
  std::map<std::string, double> fields;

  bool operator==(const MetricsRecord&) const = default;
};

// Encoders check caps and fail with kInvalidArgument; decoders are strict (exact length,
// caps, trailing checksum) and fail with kCorrupt or kUnsupported (unknown record version).
Result<Bytes> encode_manifest(const CheckpointManifest& m);
Result<CheckpointManifest> decode_manifest(ByteView in);
Result<Bytes> encode_peer(const PeerRecord& p);
Result<PeerRecord> decode_peer(ByteView in);
Result<Bytes> encode_ban(const BanRecord& b);
Result<BanRecord> decode_ban(ByteView in);
Result<Bytes> encode_metrics(const MetricsRecord& m);
Result<MetricsRecord> decode_metrics(ByteView in);

}  // namespace noloco::storage
