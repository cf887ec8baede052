#include "storage/records.h"

#include <set>

#include "storage/value_codec.h"

namespace noloco::storage {

namespace {

// Record versions: bump one when its layout changes, and keep a reader for the old one.
// Version 2 (schema 2) changed only the checksums, to xxh3_64: a version 1 record has the same
// fields, and a version 1 manifest's blob checksums are legacy_hash64 (value_codec.h).
// Manifest version 3 (schema 3) adds the blob layout; versions 1 and 2 are the chunk layout.
constexpr uint8_t kManifestVersion = 3;
constexpr uint8_t kFirstManifestVersionWithLayout = 3;
constexpr uint8_t kPeerVersion = 2;
constexpr uint8_t kBanVersion = 2;
constexpr uint8_t kMetricsVersion = 2;

// A manifest is read whole before any blob; keep it small.
constexpr size_t kMaxManifestBytes = 16 << 20;
constexpr size_t kMaxSmallRecordBytes = 1 << 20;

Status check_len(std::string_view what, std::string_view s, size_t cap) {
  if (s.size() > cap)
    return invalid_argument(std::string(what) + " is " + std::to_string(s.size()) + " bytes, cap " +
                            std::to_string(cap));
  return Status::Ok();
}

uint64_t expected_chunks(uint64_t size, uint64_t chunk_bytes) {
  return size == 0 ? 0 : (size + chunk_bytes - 1) / chunk_bytes;
}

// The layout rules a blob entry must satisfy, on both write and read.
Status check_blob(const BlobInfo& b, BlobLayout layout) {
  if (b.name.empty()) return invalid_argument("blob with an empty name");
  if (b.size > kMaxBlobBytes) return invalid_argument("blob '" + b.name + "' over 1 TiB");
  if (layout == BlobLayout::kDataFile) {
    if (b.chunk_bytes != 0 || b.chunk_count != 0)
      return invalid_argument("blob '" + b.name + "' has chunks but lives in a data file");
    return Status::Ok();
  }
  if (b.size > 0 && b.chunk_bytes == 0) return invalid_argument("blob '" + b.name + "' has chunk size 0");
  if (b.chunk_count != expected_chunks(b.size, b.chunk_bytes))
    return invalid_argument("blob '" + b.name + "': " + std::to_string(b.chunk_count) + " chunks do not cover " +
                            std::to_string(b.size) + " bytes of " + std::to_string(b.chunk_bytes) + "-byte chunks");
  return Status::Ok();
}

Result<Bytes> sized(Result<Bytes> r, size_t cap, const char* what) {
  if (r.ok() && r->size() > cap)
    return invalid_argument(std::string(what) + " encodes to " + std::to_string(r->size()) + " bytes, cap " +
                            std::to_string(cap));
  return r;
}

Status as_corrupt(const Status& s, const char* what) {
  return s.ok() ? s : corrupt(std::string(what) + " record: " + s.message());
}

}  // namespace

Result<Bytes> encode_manifest(const CheckpointManifest& m) {
  NOLOCO_RETURN_IF_ERROR(check_len("run id", m.run_id, kMaxShortStringBytes));
  NOLOCO_RETURN_IF_ERROR(check_len("config", m.config, kMaxLongStringBytes));
  NOLOCO_RETURN_IF_ERROR(check_len("codec", m.codec, kMaxLongStringBytes));
  if (m.fields.size() > kMaxFieldsPerRecord) return invalid_argument("too many manifest fields");
  if (m.blobs.size() > kMaxBlobsPerCheckpoint) return invalid_argument("too many blobs");
  for (const auto& b : m.blobs)
    if (b.checksum_kind != BlobChecksum::kXxh3)
      return invalid_argument("blob '" + b.name + "' has a legacy checksum: new manifests carry xxh3_64 only");
  if (m.layout != BlobLayout::kChunks && m.layout != BlobLayout::kDataFile)
    return invalid_argument("unknown blob layout " + std::to_string(static_cast<int>(m.layout)));
  ValueWriter w(kManifestVersion);
  w.str(m.run_id);
  w.u64(m.step);
  w.u64(m.outer_step);
  w.i64(m.created_unix_ms);
  w.str(m.config);
  w.str(m.codec);
  w.u64(m.fields.size());
  for (const auto& [k, v] : m.fields) {
    NOLOCO_RETURN_IF_ERROR(check_len("field name", k, kMaxNameBytes));
    NOLOCO_RETURN_IF_ERROR(check_len("field '" + k + "'", v, kMaxLongStringBytes));
    w.str(k);
    w.str(v);
  }
  w.u64(static_cast<uint64_t>(m.layout));
  w.u64(m.blobs.size());
  std::set<std::string_view> names;
  for (const auto& b : m.blobs) {
    NOLOCO_RETURN_IF_ERROR(check_len("blob name", b.name, kMaxNameBytes));
    NOLOCO_RETURN_IF_ERROR(check_blob(b, m.layout));
    if (!names.insert(b.name).second) return invalid_argument("blob name '" + b.name + "' appears twice");
    w.str(b.name);
    w.u64(b.size);
    w.fixed64(b.checksum);
    if (m.layout == BlobLayout::kChunks) {
      w.u64(b.chunk_bytes);
      w.u64(b.chunk_count);
    }
  }
  return sized(std::move(w).seal(), kMaxManifestBytes, "manifest");
}

Result<CheckpointManifest> decode_manifest(ByteView in) {
  if (in.size() > kMaxManifestBytes) return corrupt("manifest record over 16 MiB");
  NOLOCO_ASSIGN_OR_RETURN(ValueReader r, ValueReader::open(in, kManifestVersion, "manifest"));
  CheckpointManifest m;
  NOLOCO_ASSIGN_OR_RETURN(m.run_id, r.str(kMaxShortStringBytes));
  NOLOCO_ASSIGN_OR_RETURN(m.step, r.u64());
  NOLOCO_ASSIGN_OR_RETURN(m.outer_step, r.u64());
  NOLOCO_ASSIGN_OR_RETURN(m.created_unix_ms, r.i64());
  NOLOCO_ASSIGN_OR_RETURN(m.config, r.str(kMaxLongStringBytes));
  NOLOCO_ASSIGN_OR_RETURN(m.codec, r.str(kMaxLongStringBytes));
  NOLOCO_ASSIGN_OR_RETURN(uint64_t nfields, r.count(kMaxFieldsPerRecord));
  for (uint64_t i = 0; i < nfields; ++i) {
    NOLOCO_ASSIGN_OR_RETURN(std::string k, r.str(kMaxNameBytes));
    NOLOCO_ASSIGN_OR_RETURN(std::string v, r.str(kMaxLongStringBytes));
    // Encoders write fields in sorted order; anything else is not a record we wrote.
    if (!m.fields.empty() && !(m.fields.rbegin()->first < k)) return corrupt("manifest record: fields out of order");
    m.fields.emplace_hint(m.fields.end(), std::move(k), std::move(v));
  }
  m.layout = BlobLayout::kChunks;
  if (r.version() >= kFirstManifestVersionWithLayout) {
    NOLOCO_ASSIGN_OR_RETURN(uint64_t layout, r.u64());
    if (layout > static_cast<uint64_t>(BlobLayout::kDataFile))
      return corrupt("manifest record: unknown blob layout " + std::to_string(layout));
    m.layout = static_cast<BlobLayout>(layout);
  }
  NOLOCO_ASSIGN_OR_RETURN(uint64_t nblobs, r.count(kMaxBlobsPerCheckpoint));
  std::set<std::string> names;
  for (uint64_t i = 0; i < nblobs; ++i) {
    BlobInfo b;
    NOLOCO_ASSIGN_OR_RETURN(b.name, r.str(kMaxNameBytes));
    NOLOCO_ASSIGN_OR_RETURN(b.size, r.u64());
    NOLOCO_ASSIGN_OR_RETURN(b.checksum, r.fixed64());
    if (r.version() <= kLegacyChecksumRecordVersion) b.checksum_kind = BlobChecksum::kLegacyHash64;
    if (m.layout == BlobLayout::kChunks) {
      NOLOCO_ASSIGN_OR_RETURN(b.chunk_bytes, r.u64());
      NOLOCO_ASSIGN_OR_RETURN(uint64_t chunks, r.count(UINT32_MAX));
      b.chunk_count = static_cast<uint32_t>(chunks);
    }
    NOLOCO_RETURN_IF_ERROR(as_corrupt(check_blob(b, m.layout), "manifest"));
    if (!names.insert(b.name).second) return corrupt("manifest record: blob '" + b.name + "' appears twice");
    m.blobs.push_back(std::move(b));
  }
  NOLOCO_RETURN_IF_ERROR(r.finish());
  return m;
}

Result<Bytes> encode_peer(const PeerRecord& p) {
  NOLOCO_RETURN_IF_ERROR(check_len("peer id", p.peer_id, kMaxShortStringBytes));
  if (p.peer_id.empty()) return invalid_argument("empty peer id");
  if (p.addresses.size() > kMaxAddressesPerPeer) return invalid_argument("too many addresses");
  ValueWriter w(kPeerVersion);
  w.str(p.peer_id);
  w.u64(p.addresses.size());
  for (const auto& a : p.addresses) {
    NOLOCO_RETURN_IF_ERROR(check_len("address", a, kMaxShortStringBytes));
    w.str(a);
  }
  w.i64(p.first_seen_unix);
  w.i64(p.last_seen_unix);
  w.u64(p.successes);
  w.u64(p.failures);
  w.f64(p.score);
  return sized(std::move(w).seal(), kMaxSmallRecordBytes, "peer");
}

Result<PeerRecord> decode_peer(ByteView in) {
  if (in.size() > kMaxSmallRecordBytes) return corrupt("peer record over 1 MiB");
  NOLOCO_ASSIGN_OR_RETURN(ValueReader r, ValueReader::open(in, kPeerVersion, "peer"));
  PeerRecord p;
  NOLOCO_ASSIGN_OR_RETURN(p.peer_id, r.str(kMaxShortStringBytes));
  if (p.peer_id.empty()) return corrupt("peer record: empty peer id");
  NOLOCO_ASSIGN_OR_RETURN(uint64_t n, r.count(kMaxAddressesPerPeer));
  for (uint64_t i = 0; i < n; ++i) {
    NOLOCO_ASSIGN_OR_RETURN(std::string a, r.str(kMaxShortStringBytes));
    p.addresses.push_back(std::move(a));
  }
  NOLOCO_ASSIGN_OR_RETURN(p.first_seen_unix, r.i64());
  NOLOCO_ASSIGN_OR_RETURN(p.last_seen_unix, r.i64());
  NOLOCO_ASSIGN_OR_RETURN(p.successes, r.u64());
  NOLOCO_ASSIGN_OR_RETURN(p.failures, r.u64());
  NOLOCO_ASSIGN_OR_RETURN(p.score, r.f64());
  NOLOCO_RETURN_IF_ERROR(r.finish());
  return p;
}

Result<Bytes> encode_ban(const BanRecord& b) {
  NOLOCO_RETURN_IF_ERROR(check_len("peer id", b.peer_id, kMaxShortStringBytes));
  NOLOCO_RETURN_IF_ERROR(check_len("ban reason", b.reason, kMaxShortStringBytes));
  if (b.peer_id.empty()) return invalid_argument("empty peer id");
  ValueWriter w(kBanVersion);
  w.str(b.peer_id);
  w.str(b.reason);
  w.i64(b.banned_unix);
  w.i64(b.expires_unix);
  return std::move(w).seal();
}

Result<BanRecord> decode_ban(ByteView in) {
  if (in.size() > kMaxSmallRecordBytes) return corrupt("ban record over 1 MiB");
  NOLOCO_ASSIGN_OR_RETURN(ValueReader r, ValueReader::open(in, kBanVersion, "ban"));
  BanRecord b;
  NOLOCO_ASSIGN_OR_RETURN(b.peer_id, r.str(kMaxShortStringBytes));
  if (b.peer_id.empty()) return corrupt("ban record: empty peer id");
  NOLOCO_ASSIGN_OR_RETURN(b.reason, r.str(kMaxShortStringBytes));
  NOLOCO_ASSIGN_OR_RETURN(b.banned_unix, r.i64());
  NOLOCO_ASSIGN_OR_RETURN(b.expires_unix, r.i64());
  NOLOCO_RETURN_IF_ERROR(r.finish());
  return b;
}

Result<Bytes> encode_metrics(const MetricsRecord& m) {
  NOLOCO_RETURN_IF_ERROR(check_len("partner", m.partner, kMaxShortStringBytes));
  if (m.fields.size() > kMaxFieldsPerRecord) return invalid_argument("too many metrics fields");
  ValueWriter w(kMetricsVersion);
  w.u64(m.outer_step);
  w.i64(m.unix_ms);
  w.f64(m.loss);
  w.f64(m.tokens_per_s);
  w.u64(m.bytes_in);
  w.u64(m.bytes_out);
  w.str(m.partner);
  w.f64(m.exchange_ms);
  w.u64(m.fields.size());
  for (const auto& [k, v] : m.fields) {
    NOLOCO_RETURN_IF_ERROR(check_len("metrics field name", k, kMaxNameBytes));
    w.str(k);
    w.f64(v);
  }
  return sized(std::move(w).seal(), kMaxSmallRecordBytes, "metrics");
}

Result<MetricsRecord> decode_metrics(ByteView in) {
  if (in.size() > kMaxSmallRecordBytes) return corrupt("metrics record over 1 MiB");
  NOLOCO_ASSIGN_OR_RETURN(ValueReader r, ValueReader::open(in, kMetricsVersion, "metrics"));
  MetricsRecord m;
  NOLOCO_ASSIGN_OR_RETURN(m.outer_step, r.u64());
  NOLOCO_ASSIGN_OR_RETURN(m.unix_ms, r.i64());
  NOLOCO_ASSIGN_OR_RETURN(m.loss, r.f64());
  NOLOCO_ASSIGN_OR_RETURN(m.tokens_per_s, r.f64());
  NOLOCO_ASSIGN_OR_RETURN(m.bytes_in, r.u64());
  NOLOCO_ASSIGN_OR_RETURN(m.bytes_out, r.u64());
  NOLOCO_ASSIGN_OR_RETURN(m.partner, r.str(kMaxShortStringBytes));
  NOLOCO_ASSIGN_OR_RETURN(m.exchange_ms, r.f64());
  NOLOCO_ASSIGN_OR_RETURN(uint64_t n, r.count(kMaxFieldsPerRecord));
  for (uint64_t i = 0; i < n; ++i) {
    NOLOCO_ASSIGN_OR_RETURN(std::string k, r.str(kMaxNameBytes));
    NOLOCO_ASSIGN_OR_RETURN(double v, r.f64());
    if (!m.fields.empty() && !(m.fields.rbegin()->first < k)) return corrupt("metrics record: fields out of order");
    m.fields.emplace_hint(m.fields.end(), std::move(k), v);
  }
  NOLOCO_RETURN_IF_ERROR(r.finish());
  return m;
}

}  // namespace noloco::storage
