// A checkpoint's chunks reach the store as one SST file that RocksDB links in (external file
// ingestion), so the tensor bytes are written exactly once: no WAL, no memtable, no flush.
// The commit that makes them visible (the manifest batch) is store_checkpoints.cc's job.
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>

#include <chrono>
#include <filesystem>

#include "common/log.h"
#include "storage/keys.h"
#include "storage/store_impl.h"

namespace noloco::storage {

namespace fs = std::filesystem;

std::string staging_dir(const std::string& store_path) { return (fs::path(store_path) / "staging").string(); }

namespace {

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
rocksdb::Slice slice(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// Writes the chunks in key order ('C' id blob chunk, big-endian: blob then chunk ascending, as
// SstFileWriter requires) and syncs the file (SstFileWriter::Finish fsyncs it in 7.8).
Result<uint64_t> write_staging_file(Store::Impl& impl, const std::string& path, uint64_t id, uint64_t step,
                                    const std::vector<NamedBlob>& blobs, const std::vector<BlobInfo>& infos) {
  // The column family's own options: no compression, its table format. The page cache is
  // kept (as a plain file write keeps it): ingestion reads the first and last block back.
  rocksdb::Options options = impl.db->GetOptions(impl.checkpoints);
  // Without RocksDB's per-block checksum: every chunk is covered by its blob's xxh3_64 in the
  // manifest, checked on every load, so a block checksum would be a second hash pass over the
  // same bytes at write and at load (docs/storage.md "Checkpoint commit and recovery").
  if (const auto* table = options.table_factory->GetOptions<rocksdb::BlockBasedTableOptions>()) {
    rocksdb::BlockBasedTableOptions unchecked = *table;
    unchecked.checksum = rocksdb::kNoChecksum;
    options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(unchecked));
  }
  rocksdb::EnvOptions env_options(impl.db->GetDBOptions());  // bytes_per_sync: write back as we go
  rocksdb::SstFileWriter writer(env_options, options, impl.checkpoints, /*invalidate_page_cache=*/false);
  const std::string what = "writing checkpoint " + std::to_string(id) + " chunk file";
  NOLOCO_RETURN_IF_ERROR(from_rocks(writer.Open(path), what));
  for (uint32_t bi = 0; bi < blobs.size(); ++bi) {
    ByteView data = blobs[bi].data;
    const uint64_t chunk_bytes = infos[bi].chunk_bytes;
    for (uint32_t ci = 0; ci < infos[bi].chunk_count; ++ci) {
      const uint64_t offset = uint64_t{ci} * chunk_bytes;
      ByteView part = data.subspan(offset, std::min<uint64_t>(chunk_bytes, data.size() - offset));
      NOLOCO_RETURN_IF_ERROR(from_rocks(writer.Put(slice(chunk_key(id, bi, ci)), slice(part)), what));
      impl.phase(CheckpointPhase::kChunkStaged, id, step);
    }
  }
  rocksdb::ExternalSstFileInfo info;
  NOLOCO_RETURN_IF_ERROR(from_rocks(writer.Finish(&info), what));
  return info.file_size;
}

}  // namespace

Result<IngestStats> ingest_chunks(Store::Impl& impl, uint64_t id, uint64_t step, const std::vector<NamedBlob>& blobs,
                                  const std::vector<BlobInfo>& infos) {
  IngestStats stats;
  bool any_chunk = false;
  for (const auto& i : infos) any_chunk |= i.chunk_count > 0;
  if (!any_chunk) return stats;  // SstFileWriter refuses an empty file; nothing to ingest

  const fs::path dir = staging_dir(impl.options.path);
  const fs::path path = dir / ("ckpt-" + std::to_string(id) + ".sst");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return io_error("creating " + dir.string() + ": " + ec.message());
  auto remove_staging = [&] { fs::remove(path, ec); };

  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  impl.phase(CheckpointPhase::kStaging, id, step);
  auto size = write_staging_file(impl, path.string(), id, step, blobs, infos);
  if (!size.ok()) {
    remove_staging();
    return size.status();
  }
  const auto t1 = Clock::now();

  impl.phase(CheckpointPhase::kIngesting, id, step);
  rocksdb::IngestExternalFileOptions o;
  o.move_files = true;  // hard link into the store: no copy
  o.failed_move_fall_back_to_copy = true;  // (a filesystem without hard links: correct, slower)
  // A new id's keys overlap nothing, so the file gets sequence number 0 and goes to the bottom
  // level, where no compaction picks it. With snapshot_consistency a live snapshot would force
  // a new sequence number instead, and RocksDB 7.8 marks bottom-level files with a nonzero one
  // for compaction, i.e. a rewrite. Seeing the keys early is harmless: without a manifest no
  // reader looks for them.
  o.snapshot_consistency = false;
  o.allow_global_seqno = true;     // should the keys overlap after all: a newer seqno, kept in the MANIFEST,
  o.write_global_seqno = false;    // never written into the file
  o.verify_checksums_before_ingest = false;  // would read the whole file back; load verifies the blob checksums
  rocksdb::Status s = impl.db->IngestExternalFile(impl.checkpoints, {path.string()}, o);
  if (!s.ok()) {
    remove_staging();
    Status st = from_rocks(s, "ingesting checkpoint " + std::to_string(id) + " chunk file");
    impl.note_write_error(st);  // a failed MANIFEST write stops RocksDB: the next write reopens it
    return st;
  }
  // RocksDB removed the staging name after linking; a leftover would go at the next open.
  remove_staging();
  stats.file_bytes = *size;
  stats.write_s = std::chrono::duration<double>(t1 - t0).count();
  stats.ingest_s = std::chrono::duration<double>(Clock::now() - t1).count();
  return stats;
}

}  // namespace noloco::storage
