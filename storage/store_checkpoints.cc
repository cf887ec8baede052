// Checkpoints: the tensor bytes go into one plain data file (checkpoint_data_file.cc), then one
// synced WriteBatch (manifest + latest pointer + retention deletes) commits it; checksums
// verified on every load, fallback to an older checkpoint. Checkpoints of older builds keep
// their chunks in RocksDB ('C' keys) and are read from there.
#include <rocksdb/options.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>
#include <new>
#include <set>
#include <system_error>

#include "common/hash.h"
#include "common/log.h"
#include "storage/keys.h"
#include "storage/store_impl.h"

namespace noloco::storage {

namespace {

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
rocksdb::Slice slice(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

struct ManifestEntry {
  uint64_t id;
  uint64_t step;
  BlobLayout layout;
};

// Every checkpoint's id and step, oldest first. Manifests are small: this reads no blob.
Result<std::vector<ManifestEntry>> scan_manifests(Store::Impl& impl, const rocksdb::ReadOptions& ro,
                                                  std::vector<CheckpointInfo>* infos) {
  std::vector<ManifestEntry> out;
  std::unique_ptr<rocksdb::Iterator> it(impl.db->NewIterator(ro, impl.checkpoints));
  const std::string first(1, kManifestTag);
  for (it->Seek(slice(first)); it->Valid() && it->key().starts_with(slice(first)); it->Next()) {
    auto id = parse_manifest_key(it->key().ToStringView());
    if (!id) return corrupt("checkpoints: malformed manifest key of " + std::to_string(it->key().size()) + " bytes");
    auto m = decode_manifest(ByteView(reinterpret_cast<const uint8_t*>(it->value().data()), it->value().size()));
    if (!m.ok()) return m.status().context("checkpoint " + std::to_string(*id));
    out.push_back({*id, m->step, m->layout});
    if (infos) infos->push_back({*id, std::move(m).value()});
  }
  NOLOCO_RETURN_IF_ERROR(from_rocks(it->status(), "scanning checkpoints"));
  return out;
}

// Which of `existing` (oldest first) the policy drops once `new_id` is written.
std::vector<uint64_t> to_prune(const std::vector<ManifestEntry>& existing, const RetentionPolicy& p) {
  std::vector<uint64_t> drop;
  // keep_last counts the new checkpoint.
  size_t keep_recent = p.keep_last - 1;
  size_t n = existing.size();
  for (size_t i = 0; i < n; ++i) {
    bool recent = n - i <= keep_recent;
    bool milestone = p.keep_every_steps != 0 && existing[i].step % p.keep_every_steps == 0;
    if (!recent && !milestone) drop.push_back(existing[i].id);
  }
  return drop;
}

Result<std::optional<uint64_t>> latest_id(Store::Impl& impl, const rocksdb::ReadOptions& ro) {
  std::string v;
  rocksdb::Status s = impl.db->Get(ro, impl.meta, slice(meta_key::kLatestCheckpoint), &v);
  if (s.IsNotFound()) return std::optional<uint64_t>();
  NOLOCO_RETURN_IF_ERROR(from_rocks(s, "reading latest checkpoint pointer"));
  auto id = parse_be64(v);
  if (!id) return corrupt("latest checkpoint pointer is " + std::to_string(v.size()) + " bytes, expected 8");
  return std::optional<uint64_t>(*id);
}

Result<CheckpointManifest> read_manifest(Store::Impl& impl, const rocksdb::ReadOptions& ro, uint64_t id) {
  std::string v;
  rocksdb::Status s = impl.db->Get(ro, impl.checkpoints, slice(manifest_key(id)), &v);
  if (s.IsNotFound()) return not_found("checkpoint " + std::to_string(id) + " does not exist");
  NOLOCO_RETURN_IF_ERROR(from_rocks(s, "reading checkpoint " + std::to_string(id)));
  auto m = decode_manifest(as_bytes(v));
  if (!m.ok()) return m.status().context("checkpoint " + std::to_string(id));
  return m;
}

// Chunk layout (checkpoints of builds before schema 3): every chunk is a RocksDB value.
Status read_chunks(Store::Impl& impl, const rocksdb::ReadOptions& ro, uint64_t id, const CheckpointManifest& m,
                   const std::string& where, std::vector<NamedBlob>& out) {
  rocksdb::ReadOptions chunk_ro = ro;
  chunk_ro.fill_cache = false;  // a checkpoint is read once; keep it out of the block cache
  for (uint32_t bi = 0; bi < m.blobs.size(); ++bi) {
    const BlobInfo& info = m.blobs[bi];
    NamedBlob blob{info.name, {}};
    try {
      blob.data.resize(info.size);
    } catch (const std::bad_alloc&) {
      return too_large(where + ": blob '" + info.name + "' of " + std::to_string(info.size) +
                       " bytes does not fit in memory");
    }
    uint64_t offset = 0;
    for (uint32_t ci = 0; ci < info.chunk_count; ++ci) {
      rocksdb::PinnableSlice chunk;
      rocksdb::Status s = impl.db->Get(chunk_ro, impl.checkpoints, slice(chunk_key(id, bi, ci)), &chunk);
      if (s.IsNotFound())
        return corrupt(where + ": blob '" + info.name + "' chunk " + std::to_string(ci) + " is missing");
      NOLOCO_RETURN_IF_ERROR(from_rocks(s, where + ": blob '" + info.name + "'"));
      uint64_t expect = std::min<uint64_t>(info.chunk_bytes, info.size - offset);
      if (chunk.size() != expect)
        return corrupt(where + ": blob '" + info.name + "' chunk " + std::to_string(ci) + " is " +
                       std::to_string(chunk.size()) + " bytes, expected " + std::to_string(expect));
      std::memcpy(blob.data.data() + offset, chunk.data(), chunk.size());
      offset += chunk.size();
    }
    // legacy_hash64 only for checkpoints written before schema version 2 (docs/storage.md).
    const uint64_t h = info.checksum_kind == BlobChecksum::kLegacyHash64 ? legacy_hash64(blob.data, kBlobSeed)
                                                                         : xxh3_64(blob.data, kBlobSeed);
    if (h != info.checksum)
      return corrupt(where + ": blob '" + info.name + "' checksum mismatch (stored " + std::to_string(info.checksum) +
                     ", computed " + std::to_string(h) + ")");
    out.push_back(std::move(blob));
  }
  return Status::Ok();
}

Result<Checkpoint> read_checkpoint(Store::Impl& impl, const rocksdb::ReadOptions& ro, uint64_t id) {
  NOLOCO_ASSIGN_OR_RETURN(CheckpointManifest m, read_manifest(impl, ro, id));
  const std::string where = "checkpoint " + std::to_string(id) + " (step " + std::to_string(m.step) + ")";
  Checkpoint c;
  if (m.layout == BlobLayout::kDataFile)
    NOLOCO_RETURN_IF_ERROR(read_data_file(impl.options.path, id, m, where, c.blobs));
  else
    NOLOCO_RETURN_IF_ERROR(read_chunks(impl, ro, id, m, where, c.blobs));
  c.manifest = std::move(m);
  return c;
}

// Consistent reads while retention may delete concurrently (read-write mode). A secondary
// instance changes only in refresh(), so it reads without a snapshot.
struct ReadView {
  explicit ReadView(Store::Impl& impl) : impl_(impl) {
    if (!impl.read_only() && !impl.fallback_read_only) {
      snap_ = impl.db->GetSnapshot();
      ro.snapshot = snap_;
    }
  }
  ~ReadView() {
    if (snap_) impl_.db->ReleaseSnapshot(snap_);
  }
  rocksdb::ReadOptions ro;

 private:
  Store::Impl& impl_;
  const rocksdb::Snapshot* snap_ = nullptr;
};

}  // namespace

namespace {

double seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The batch that makes checkpoint `info` exist: its manifest, the "latest" pointer and the
// retention deletes (for chunk-layout checkpoints their chunks too; data files go after it).
Status commit_checkpoint(Store::Impl& impl, const CheckpointInfo& info,
                         const std::vector<std::pair<uint64_t, BlobLayout>>& drop) {
  NOLOCO_ASSIGN_OR_RETURN(Bytes manifest_bytes, encode_manifest(info.manifest));
  rocksdb::WriteBatch batch;
  NOLOCO_RETURN_IF_ERROR(from_rocks(batch.Put(impl.checkpoints, slice(manifest_key(info.id)), slice(manifest_bytes)),
                                    "building checkpoint batch"));
  NOLOCO_RETURN_IF_ERROR(from_rocks(batch.Put(impl.meta, slice(meta_key::kLatestCheckpoint), slice(be64(info.id))),
                                    "building checkpoint batch"));
  // Retention rides in the same batch: the store never holds fewer valid checkpoints than
  // the policy promises, even after a crash.
  for (const auto& [id, layout] : drop) {
    NOLOCO_RETURN_IF_ERROR(from_rocks(batch.Delete(impl.checkpoints, slice(manifest_key(id))), "building prune"));
    if (layout == BlobLayout::kChunks)
      NOLOCO_RETURN_IF_ERROR(from_rocks(
          batch.DeleteRange(impl.checkpoints, slice(chunk_prefix(id)), slice(chunk_prefix(id + 1))), "building prune"));
  }
  return impl.write(batch, true, "committing checkpoint " + std::to_string(info.id));
}

// The manifest as the store writes it: blob sizes now, checksums once the file is written.
Result<CheckpointInfo> describe(const Checkpoint& checkpoint, uint64_t* total) {
  CheckpointInfo info;
  info.manifest = checkpoint.manifest;
  info.manifest.blobs.clear();
  info.manifest.layout = BlobLayout::kDataFile;
  *total = 0;
  for (const auto& b : checkpoint.blobs) {
    info.manifest.blobs.push_back(BlobInfo{b.name, b.data.size(), 0, 0, 0});
    *total += b.data.size();
  }
  // Validates names, uniqueness and caps before anything is written (checksums come later
  // and do not change what is valid).
  NOLOCO_RETURN_IF_ERROR(encode_manifest(info.manifest).status());
  return info;
}

// Write the data file (invisible), then commit manifest + latest pointer + retention deletes in
// one synced batch: the checkpoint exists from that batch on. Pruned data files go after it.
Result<CheckpointInfo> write_checkpoint_impl(Store::Impl& impl, const Checkpoint& checkpoint,
                                             const CheckpointWriteOptions& options) {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl.use_for_write("writing checkpoint"));
  if (checkpoint.blobs.size() > kMaxBlobsPerCheckpoint) return invalid_argument("too many blobs");
  try {
    uint64_t total = 0;
    NOLOCO_ASSIGN_OR_RETURN(CheckpointInfo info, describe(checkpoint, &total));
    std::lock_guard lock(impl.checkpoint_mu);
    info.id = impl.next_checkpoint_id;
    // Taken from here on, even if this write fails: a later checkpoint never reuses an id
    // whose file may still be on disk.
    impl.next_checkpoint_id = info.id + 1;
    const uint64_t step = info.manifest.step;
    NOLOCO_ASSIGN_OR_RETURN(auto existing, scan_manifests(impl, rocksdb::ReadOptions(), nullptr));
    std::vector<std::pair<uint64_t, BlobLayout>> drop;
    for (uint64_t id : to_prune(existing, impl.options.retention))
      for (const auto& e : existing)
        if (e.id == id) drop.emplace_back(id, e.layout);

    NOLOCO_ASSIGN_OR_RETURN(DataFileStats file,
                            write_data_file(impl, info.id, step, checkpoint.blobs, options.max_bytes_per_s));
    for (size_t i = 0; i < file.checksums.size(); ++i) info.manifest.blobs[i].checksum = file.checksums[i];

    impl.phase(CheckpointPhase::kCommitting, info.id, step);
    const auto t0 = std::chrono::steady_clock::now();
    if (Status committed = commit_checkpoint(impl, info, drop); !committed.ok()) {
      // Nothing refers to the file; the next open would remove it, but on a full disk the
      // space is wanted now.
      std::error_code ec;
      std::filesystem::remove(data_file_path(impl.options.path, info.id), ec);
      return committed;
    }
    NLOG_INFO("storage: checkpoint {} (step {}) committed: {:.1f} MB, data file written {:.3f} s (paced {:.3f} s{}), "
              "synced {:.3f} s, commit {:.3f} s, pruned {}",
              info.id, step, total / 1e6, file.write_s, file.paced_s, file.direct ? ", O_DIRECT" : "", file.sync_s,
              seconds(t0, std::chrono::steady_clock::now()), drop.size());
    if (!drop.empty()) {
      // Space of pruned checkpoints comes back now. Failure here loses no data.
      impl.phase(CheckpointPhase::kReclaiming, info.id, step);
      std::vector<uint64_t> live;
      bool chunks_pruned = false;
      for (const auto& e : existing) {
        bool dropped = false;
        for (const auto& [id, layout] : drop)
          if (id == e.id) dropped = true, chunks_pruned |= layout == BlobLayout::kChunks;
        if (!dropped) live.push_back(e.id);
      }
      live.push_back(info.id);
      reclaim_checkpoint_space(impl, live, drop.front().first, drop.back().first, chunks_pruned);
    }
    return info;
  } catch (const std::bad_alloc&) {
    return too_large("checkpoint does not fit in memory while writing it");
  }
}

}  // namespace

Result<CheckpointInfo> Store::write_checkpoint(const Checkpoint& checkpoint, CheckpointWriteOptions options) {
  return write_checkpoint_impl(*impl_, checkpoint, options);
}

Result<CheckpointInfo> Store::write_checkpoint(Checkpoint&& checkpoint, CheckpointWriteOptions options) {
  Checkpoint owned = std::move(checkpoint);  // freed on return, success or not
  return write_checkpoint_impl(*impl_, owned, options);
}

Result<std::optional<CheckpointInfo>> Store::latest_checkpoint_info() {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use());
  ReadView view(*impl_);
  NOLOCO_ASSIGN_OR_RETURN(auto id, latest_id(*impl_, view.ro));
  if (!id) return std::optional<CheckpointInfo>();
  NOLOCO_ASSIGN_OR_RETURN(auto m, read_manifest(*impl_, view.ro, *id));
  return std::optional<CheckpointInfo>(CheckpointInfo{*id, std::move(m)});
}

Result<std::vector<CheckpointInfo>> Store::list_checkpoints() {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use());
  ReadView view(*impl_);
  std::vector<CheckpointInfo> infos;
  NOLOCO_RETURN_IF_ERROR(scan_manifests(*impl_, view.ro, &infos).status());
  return infos;
}

Result<Checkpoint> Store::load_checkpoint(uint64_t id) {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use());
  ReadView view(*impl_);
  return read_checkpoint(*impl_, view.ro, id);
}

Result<Checkpoint> Store::load_latest() {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use());
  ReadView view(*impl_);
  NOLOCO_ASSIGN_OR_RETURN(auto id, latest_id(*impl_, view.ro));
  if (!id) return not_found("store has no checkpoint");
  return read_checkpoint(*impl_, view.ro, *id);
}

Result<std::optional<LoadedCheckpoint>> Store::load_latest_valid() {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use());
  ReadView view(*impl_);
  NOLOCO_ASSIGN_OR_RETURN(auto latest, latest_id(*impl_, view.ro));
  // Ids only; a manifest that fails to decode is reported by read_checkpoint below.
  std::vector<uint64_t> ids;
  {
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(view.ro, impl_->checkpoints));
    const std::string tag(1, kManifestTag);
    for (it->Seek(slice(tag)); it->Valid() && it->key().starts_with(slice(tag)); it->Next())
      if (auto id = parse_manifest_key(it->key().ToStringView())) ids.push_back(*id);
    NOLOCO_RETURN_IF_ERROR(from_rocks(it->status(), "scanning checkpoints"));
  }
  if (ids.empty() && !latest) return std::optional<LoadedCheckpoint>();
  LoadedCheckpoint out;
  if (!latest) {
    out.skipped.push_back("latest checkpoint pointer missing; starting from the highest id");
    NLOG_WARN("storage: {}", out.skipped.back());
  } else if (std::find(ids.begin(), ids.end(), *latest) == ids.end()) {
    ids.push_back(*latest);  // reading it reports why it is missing
  }
  std::sort(ids.rbegin(), ids.rend());
  for (uint64_t id : ids) {
    if (latest && id > *latest) continue;  // never committed as latest: not ours to resume from
    auto c = read_checkpoint(*impl_, view.ro, id);
    if (c.ok()) {
      if (!out.skipped.empty())
        NLOG_WARN("storage: resuming from checkpoint {} (step {}) after passing over {} newer one(s)", id,
                  c->manifest.step, out.skipped.size());
      out.id = id;
      out.checkpoint = std::move(c).value();
      return std::optional<LoadedCheckpoint>(std::move(out));
    }
    out.skipped.push_back(c.status().to_string());
    NLOG_WARN("storage: passing over a checkpoint: {}", out.skipped.back());
  }
  std::string why;
  for (const auto& s : out.skipped) why += "\n  " + s;
  return corrupt("no checkpoint in " + impl_->options.path + " verifies:" + why);
}

}  // namespace noloco::storage
