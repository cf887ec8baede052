// Where checkpoint files go when no manifest needs them any more: after a prune, after a write
// cut short before its commit, and at open. Data files (schema 3) are unlinked. Chunk files of
// older builds are dropped whole through RocksDB's DeleteFilesInRanges (a MANIFEST edit, no
// data read); compaction is the fallback for chunks that share files with other keys.
#include <rocksdb/convenience.h>
#include <rocksdb/metadata.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>
#include <thread>

#include "common/log.h"
#include "storage/keys.h"
#include "storage/store_impl.h"

namespace noloco::storage {

namespace fs = std::filesystem;

std::string staging_dir(const std::string& store_path) { return (fs::path(store_path) / "staging").string(); }

namespace {

constexpr uint64_t kMiB = 1 << 20;

// Data files in the store's data directory: id -> size. Names that are not ours map to nullopt
// ids and are listed in `strays`.
struct DataFiles {
  std::map<uint64_t, uint64_t> by_id;
  std::vector<fs::path> strays;
};

DataFiles list_data_files(const std::string& store_path) {
  DataFiles out;
  std::error_code ec;
  for (fs::directory_iterator it(data_dir(store_path), ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code size_ec;
    const uint64_t size = it->is_regular_file(size_ec) ? it->file_size(size_ec) : 0;
    if (auto id = parse_data_file_name(it->path().filename().string()))
      out.by_id[*id] = size_ec ? 0 : size;
    else
      out.strays.push_back(it->path());
  }
  return out;
}

// Unlinks the data files of `ids`. Returns bytes freed; a failure is logged, not fatal: the
// next open tries again.
uint64_t remove_data_files(const std::string& store_path, const std::map<uint64_t, uint64_t>& ids) {
  uint64_t bytes = 0;
  for (const auto& [id, size] : ids) {
    std::error_code ec;
    fs::remove(data_file_path(store_path, id), ec);
    if (ec) NLOG_WARN("storage: removing checkpoint {}'s data file: {}", id, ec.message());
    else bytes += size;
  }
  return bytes;
}

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

// Chunk key ranges ['C' a, 'C' b), kept alive for the RangePtrs that point into them.
struct IdRanges {
  std::vector<std::pair<std::string, std::string>> keys;
  void add(uint64_t first, uint64_t end) { keys.emplace_back(chunk_prefix(first), chunk_prefix(end)); }
  std::vector<rocksdb::Slice> slices() const {
    std::vector<rocksdb::Slice> s;
    for (const auto& [a, b] : keys) s.insert(s.end(), {slice(a), slice(b)});
    return s;
  }
};

// Drops every SST file (levels 1 and below; RocksDB leaves L0 alone) whose keys all lie in one
// of the ranges. The caller guarantees no manifest refers to an id in them.
Status delete_files_in(Store::Impl& impl, const IdRanges& ranges) {
  if (ranges.keys.empty()) return Status::Ok();
  std::vector<rocksdb::Slice> s = ranges.slices();
  std::vector<rocksdb::RangePtr> r;
  for (size_t i = 0; i < s.size(); i += 2) r.emplace_back(&s[i], &s[i + 1]);
  return from_rocks(rocksdb::DeleteFilesInRanges(impl.db.get(), impl.checkpoints, r.data(), r.size(),
                                                 /*include_end=*/false),
                    "deleting checkpoint chunk files");
}

uint64_t live_snapshots(Store::Impl& impl) {
  uint64_t n = 0;
  if (!impl.db->GetIntProperty("rocksdb.num-snapshots", &n)) return 1;  // unknown: assume a reader
  return n;
}

// The id of every checkpoint whose chunks sit in a file of their own with no manifest, and the
// highest id any chunk file holds. Only file metadata is read (RocksDB keeps it in memory).
struct ChunkFiles {
  std::set<uint64_t> unreferenced;
  uint64_t unreferenced_bytes = 0;
  uint64_t max_id = 0;
};

ChunkFiles scan_chunk_files(Store::Impl& impl, const std::set<uint64_t>& manifests) {
  ChunkFiles out;
  rocksdb::ColumnFamilyMetaData meta;
  impl.db->GetColumnFamilyMetaData(impl.checkpoints, &meta);
  for (const auto& level : meta.levels) {
    for (const auto& f : level.files) {
      auto lo = parse_chunk_key_id(f.smallestkey), hi = parse_chunk_key_id(f.largestkey);
      if (hi) out.max_id = std::max(out.max_id, *hi);
      // An ingested file holds exactly one checkpoint's chunks. Files that mix ids come from
      // flushes and compactions of stores written before ingestion, whose chunks were committed
      // in the same batch as their manifest: never unreferenced.
      if (lo && hi && *lo == *hi && !manifests.count(*lo)) {
        out.unreferenced.insert(*lo);
        out.unreferenced_bytes += f.size;
      }
    }
  }
  return out;
}

// Removes the chunks of `ids`, none of which has a manifest: their files whole where RocksDB
// can (levels 1 and below, no live snapshot), a range delete for what is left. Preferring the
// file drop leaves no range delete behind that a later ingestion would overlap.
Status drop_chunk_ids(Store::Impl& impl, const std::set<uint64_t>& ids) {
  IdRanges ranges;
  for (uint64_t id : ids) ranges.add(id, id + 1);
  if (live_snapshots(impl) == 0) NOLOCO_RETURN_IF_ERROR(delete_files_in(impl, ranges));
  std::set<uint64_t> left;
  for (uint64_t id : scan_chunk_files(impl, {}).unreferenced)
    if (ids.count(id)) left.insert(id);
  if (left.empty()) return Status::Ok();
  rocksdb::WriteBatch batch;
  for (uint64_t id : left)
    NOLOCO_RETURN_IF_ERROR(from_rocks(
        batch.DeleteRange(impl.checkpoints, slice(chunk_prefix(id)), slice(chunk_prefix(id + 1))), "building cleanup"));
  return impl.write(batch, true, "deleting chunks without a manifest");
}

}  // namespace

Status recover_checkpoints(Store::Impl& impl) {
  // 1. Builds before schema 3 staged chunk SSTs here, only inside a write_checkpoint call, and
  //    we hold the store's lock: anything there is a leftover of such a write that was killed.
  {
    std::error_code ec;
    const fs::path dir = staging_dir(impl.options.path);
    size_t files = 0;
    uint64_t bytes = 0;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code size_ec;
      uint64_t size = it->is_regular_file(size_ec) ? it->file_size(size_ec) : 0;
      std::error_code rm_ec;
      fs::remove_all(it->path(), rm_ec);
      if (rm_ec) return io_error("removing staging leftover " + it->path().string() + ": " + rm_ec.message());
      ++files;
      bytes += size_ec ? 0 : size;
    }
    if (files > 0)
      NLOG_INFO("storage: removed {} staging leftover(s) ({:.1f} MB) of a checkpoint write that was cut short", files,
                bytes / 1e6);
  }

  // 2. Manifest ids (small values; no chunk is read).
  std::set<uint64_t> manifests;
  {
    std::unique_ptr<rocksdb::Iterator> it(impl.db->NewIterator(rocksdb::ReadOptions(), impl.checkpoints));
    const std::string tag(1, kManifestTag);
    for (it->Seek(slice(tag)); it->Valid() && it->key().starts_with(slice(tag)); it->Next())
      if (auto id = parse_manifest_key(it->key().ToStringView())) manifests.insert(*id);
    NOLOCO_RETURN_IF_ERROR(from_rocks(it->status(), "scanning checkpoints"));
  }

  // 3. Data files without a manifest: a write killed before its commit, or a prune killed
  //    before its unlink. Anything else in the data directory is not ours to keep either.
  uint64_t max_data_id = 0;
  {
    DataFiles data = list_data_files(impl.options.path);
    if (!data.by_id.empty()) max_data_id = data.by_id.rbegin()->first;
    std::map<uint64_t, uint64_t> orphans;
    for (const auto& [id, size] : data.by_id)
      if (!manifests.count(id)) orphans.emplace(id, size);
    for (const auto& p : data.strays) {
      std::error_code ec;
      fs::remove_all(p, ec);
      if (ec) return io_error("removing " + p.string() + ": " + ec.message());
      NLOG_INFO("storage: removed {}: not a checkpoint data file", p.string());
    }
    if (!orphans.empty()) {
      const uint64_t bytes = remove_data_files(impl.options.path, orphans);
      std::string ids;
      for (const auto& [id, size] : orphans) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
      NLOG_INFO("storage: removed the data file(s) of checkpoint id(s) {} ({:.1f} MB): they have no manifest (a write "
                "cut short before its commit, or a prune before its unlink)",
                ids, bytes / 1e6);
    }
  }

  // 4. Chunk files (older builds) without a manifest: a write killed between ingestion and
  //    commit, or a prune killed before its files were dropped.
  ChunkFiles files = scan_chunk_files(impl, manifests);
  if (!files.unreferenced.empty()) {
    NOLOCO_RETURN_IF_ERROR(drop_chunk_ids(impl, files.unreferenced));
    std::string ids;
    for (uint64_t id : files.unreferenced) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
    NLOG_INFO("storage: removed the chunks of checkpoint id(s) {} ({:.1f} MB): they have no manifest (a write cut "
              "short before its commit, or a prune before its files went)",
              ids, files.unreferenced_bytes / 1e6);
  }

  // 5. One past the highest manifest, chunk file or data file (removed ones too): no id that was
  //    committed (the latest is never pruned, so the highest manifest only grows) or that had
  //    bytes on disk is given out again, so logs never name two checkpoints with one id.
  uint64_t max_id = std::max({manifests.empty() ? 0 : *manifests.rbegin(), files.max_id, max_data_id});
  impl.next_checkpoint_id = max_id + 1;
  return Status::Ok();
}

void reclaim_checkpoint_space(Store::Impl& impl, const std::vector<uint64_t>& live, uint64_t first_pruned,
                              uint64_t last_pruned, bool chunks_pruned) {
  const auto t0 = std::chrono::steady_clock::now();
  // A reader's snapshot from before the prune may still be loading a pruned checkpoint; dropping
  // its files would pull them from under it. The next prune or open picks these files up.
  if (uint64_t n = live_snapshots(impl); n > 0) {
    NLOG_INFO("storage: {} open read snapshot(s); pruned checkpoint files stay until the next prune or open", n);
    return;
  }
  // Data files of every id below the newest that has no manifest: the ones just pruned, and any
  // earlier ones that had to stay for a reader. Unlinked on the store's unlinker thread.
  {
    std::map<uint64_t, uint64_t> gone;
    for (const auto& [id, size] : list_data_files(impl.options.path).by_id)
      if (id < live.back() && std::find(live.begin(), live.end(), id) == live.end()) gone.emplace(id, size);
    std::lock_guard lock(impl.unlinker_mu);
    if (impl.unlinker.joinable()) impl.unlinker.join();
    try {
      impl.unlinker = std::thread([path = impl.options.path, gone = std::move(gone)] {
        const auto t = std::chrono::steady_clock::now();
        const uint64_t bytes = remove_data_files(path, gone);
        NLOG_INFO("storage: pruned checkpoint data files removed: {} file(s), {:.1f} MB in {:.3f} s", gone.size(),
                  bytes / 1e6, std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
      });
    } catch (const std::system_error&) {
      NLOG_WARN("storage: no thread to remove pruned data files; the next open removes them");
    }
  }
  if (!chunks_pruned) return;
  rocksdb::ColumnFamilyMetaData before;
  impl.db->GetColumnFamilyMetaData(impl.checkpoints, &before);
  // Every id below the newest that has no manifest: the ones just pruned, and any earlier ones
  // whose files could not go at the time.
  IdRanges gaps;
  uint64_t next = 1;
  for (uint64_t id : live) {
    if (id > next) gaps.add(next, id);
    next = id + 1;
  }
  Status s = delete_files_in(impl, gaps);
  if (!s.ok()) NLOG_WARN("storage: {}", s.to_string());
  rocksdb::ColumnFamilyMetaData after;
  impl.db->GetColumnFamilyMetaData(impl.checkpoints, &after);
  const double dropped_mb = (before.size - std::min(before.size, after.size)) / 1e6;
  const size_t dropped_files = before.file_count - std::min(before.file_count, after.file_count);

  // Pruned data left in files that also hold other keys: chunks of a store written before
  // ingestion (in blob files, or inline in flushed SSTs), or a chunk file stuck in L0. Those
  // need a compaction; manifest and range-delete files (a few KB) do not.
  const std::string begin = chunk_prefix(first_pruned), end = chunk_prefix(last_pruned + 1);
  bool blob_refs = false;
  for (const auto& level : after.levels)
    for (const auto& f : level.files)
      if (f.oldest_blob_file_number != 0 && f.smallestkey < end && f.largestkey >= begin) blob_refs = true;
  rocksdb::Range range(slice(begin), slice(end));
  uint64_t bytes_in_range = 0;
  rocksdb::SizeApproximationOptions sao;
  sao.include_memtables = false;
  sao.include_files = true;
  s = from_rocks(impl.db->GetApproximateSizes(sao, impl.checkpoints, &range, 1, &bytes_in_range), "sizing pruned range");
  if (!s.ok()) NLOG_WARN("storage: {}", s.to_string());
  const bool compact = impl.options.compact_after_prune && (blob_refs || bytes_in_range >= kMiB);
  const auto t1 = std::chrono::steady_clock::now();
  if (compact) {
    rocksdb::Slice b = slice(begin), e = slice(end);
    rocksdb::CompactRangeOptions cro;
    cro.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
    rocksdb::Status cs = impl.db->CompactRange(cro, impl.checkpoints, &b, &e);
    if (!cs.ok()) NLOG_WARN("storage: compacting pruned checkpoints: {}", cs.ToString());
  }
  const auto t2 = std::chrono::steady_clock::now();
  NLOG_INFO("storage: pruned checkpoint files dropped: {} file(s), {:.1f} MB in {:.3f} s", dropped_files, dropped_mb,
            std::chrono::duration<double>(t1 - t0).count());
  if (compact)
    NLOG_INFO("storage: compacted the pruned range ({:.1f} MB still in it{}) in {:.3f} s", bytes_in_range / 1e6,
              blob_refs ? ", blob files" : "", std::chrono::duration<double>(t2 - t1).count());
}

}  // namespace noloco::storage
