// Internal to storage/: the RocksDB handles behind Store. Only storage/*.cc include this.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <string>
#include <vector>

#include "storage/records.h"
#include "storage/store.h"

namespace noloco::storage {

// Turns a RocksDB status into ours, naming what we were doing.
Status from_rocks(const rocksdb::Status& s, const std::string& what);

// Opens impl.options.path with impl.cf_names (read-write, or read-only per impl.options.mode)
// and fills the handles. `exists`: false creates the database.
Status open_rocks(Store::Impl& impl, bool exists);

// A full disk at a read-write open gets a clear error (kIoError, "disk full"), not RocksDB's
// abort on a failed write while opening (StoreOptions::min_free_bytes_to_open).
Status check_space_to_open(const StoreOptions& o);

// A fresh directory under the temp dir for a read-only instance's info LOG.
std::string make_secondary_dir();

// Seed for blob checksums, so a blob's checksum never equals a record checksum of the same bytes.
inline constexpr uint64_t kBlobSeed = 0x6e6f6c6f636f6231ULL;  // "nolocob1"

// --- checkpoint data files (checkpoint_data_file.cc) ---

// <store>/checkpoint_data: one file per checkpoint, ckpt-<id>.data, blobs back to back.
std::string data_dir(const std::string& store_path);
std::string data_file_path(const std::string& store_path, uint64_t id);
std::optional<uint64_t> parse_data_file_name(std::string_view name);  // "ckpt-<id>.data" -> id

// Writes checkpoint `id`'s blobs into its data file, hashing each piece just before writing it,
// then fsyncs the file and its directory. Blobs that are one snapshot buffer, back to back,
// are written with O_DIRECT when StoreOptions::direct_io (falling back to the page cache where
// the filesystem refuses it). At most `max_bytes_per_s` (0: no limit). On failure
// the file is removed. The file stays invisible until a manifest refers to it.
struct DataFileStats {
  uint64_t bytes = 0;
  double write_s = 0;   // hashing and writing, pacing included
  double paced_s = 0;   // of which asleep for the rate limit
  double sync_s = 0;    // fsync of the file and the directory
  bool direct = false;  // written with O_DIRECT (all but a tail under one block)
  std::vector<uint64_t> checksums;  // xxh3_64 (kBlobSeed) per blob
};
Result<DataFileStats> write_data_file(Store::Impl& impl, uint64_t id, uint64_t step,
                                      const std::vector<NamedBlob>& blobs, uint64_t max_bytes_per_s);

// Reads and verifies (file size, each blob's checksum) the blobs of a data-file checkpoint into
// `out`. kCorrupt names the file or the blob; `where` prefixes every message.
Status read_data_file(const std::string& store_path, uint64_t id, const CheckpointManifest& m,
                      const std::string& where, std::vector<NamedBlob>& out);

// <store>/staging: where builds before schema 3 wrote a chunk SST before ingesting it. Only
// emptied now (leftovers of such a build killed mid-write).
std::string staging_dir(const std::string& store_path);

// --- checkpoint space (checkpoint_space.cc) ---

// Read-write open: removes staging leftovers, data files without a manifest (a write cut before
// its commit, a prune cut before its unlink), chunk files without a manifest (same, from older
// builds), and sets next_checkpoint_id above every id that has a manifest, chunks or a data
// file. Logs what it did.
Status recover_checkpoints(Store::Impl& impl);

// After a committed prune: removes the data files of every id not in `live` (below the newest),
// and, when `chunks_pruned`, drops the chunk files of such ids without reading them, compacting
// the pruned range [first, last] only where pruned data shares files with other keys.
void reclaim_checkpoint_space(Store::Impl& impl, const std::vector<uint64_t>& live, uint64_t first_pruned,
                              uint64_t last_pruned, bool chunks_pruned);

// The default file system with DiskFaults' budget on every write (disk_faults.cc).
std::unique_ptr<rocksdb::Env> make_faulty_env(std::shared_ptr<DiskFaults> faults);

struct Store::Impl {
  StoreOptions options;
  std::unique_ptr<rocksdb::Env> fault_env;  // with options.disk_faults only; outlives db (close() first)
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // owned; destroyed before db
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  rocksdb::ColumnFamilyHandle* checkpoints = nullptr;
  rocksdb::ColumnFamilyHandle* peers = nullptr;
  rocksdb::ColumnFamilyHandle* bans = nullptr;
  rocksdb::ColumnFamilyHandle* metrics = nullptr;
  std::vector<std::string> cf_names;  // as listed at open; refresh() reopens the same ones
  uint32_t schema_version = 0;
  bool owns_secondary_dir = false;  // read-only mode's log directory is ours to remove

  std::mutex checkpoint_mu;  // one checkpoint write at a time; guards next_checkpoint_id
  uint64_t next_checkpoint_id = 1;  // never a committed id, nor one whose chunks may exist
  // Unlinking pruned data files runs here, off the writing thread: on ext4 mounted with
  // `discard` unlinking takes ~0.4 s per 500 MB. One at a time; flush() and close() wait.
  std::thread unlinker;
  std::mutex unlinker_mu;
  void wait_unlinks() {
    std::lock_guard lock(unlinker_mu);
    if (unlinker.joinable()) unlinker.join();
  }
  std::mutex peer_mu;        // peer book read-modify-write and the count
  size_t peer_count = 0;

  ~Impl();
  void close();     // close_db() and remove the read-only log directory
  void close_db();  // destroys handles and the DB
  void find_handles();
  void remove_secondary_dir();

  bool read_only() const { return options.mode == OpenMode::kReadOnly; }
  int64_t now() const { return options.now_unix(); }
  Status require_writable(const char* what) const;

  // --- after a failed write (docs/storage.md, "Disk faults") ---
  // A failed WAL or MANIFEST write (a full disk above all) stops RocksDB: every later write
  // fails until it recovers. DB::Resume() is not enough in RocksDB 7.8: after a hard error it
  // leaves the DB flagged as stopped for ingestion, which then asserts (file number 0), so the
  // store reopens the database instead, at the start of the next write. Every public method
  // holds a Use while it touches `db`; a reopen waits until none is held.
  class Use {
   public:
    explicit Use(Impl& impl);
    Use(Use&& o) noexcept : impl_(o.impl_) { o.impl_ = nullptr; }
    Use& operator=(Use&&) = delete;
    ~Use();

   private:
    Impl* impl_;
  };
  // For reads: fails only when a reopen after an error failed (the database is closed).
  Result<Use> use();
  // For writes: refuses a read-only store, reopens a stopped one first, then as use().
  Result<Use> use_for_write(const char* what);
  // Called with a failed write's status: an I/O error makes the next write reopen first.
  void note_write_error(const Status& s) {
    if (s.code() == StatusCode::kIoError) write_error.store(true);
  }
  Status reopen_after_error();
  std::atomic<bool> write_error{false};
  std::mutex use_mu;
  std::condition_variable use_cv;
  int users = 0;           // threads holding a Use (a nested Use on one thread counts once)
  bool reopening = false;  // a reopen waits for users == 0; new Uses wait for it
  Status closed_because;   // set while db is null after a failed reopen
  // The read-write reopen failed (the disk is still full): db is a read-only instance meanwhile,
  // so reads go on and writes fail until a later write's reopen succeeds.
  bool fallback_read_only = false;
  void phase(CheckpointPhase p, uint64_t id, uint64_t step) const {
    if (options.checkpoint_phase_hook) options.checkpoint_phase_hook(p, id, step);
  }

  // Durable writes (checkpoints, meta) fsync the WAL; the rest rely on the WAL being written
  // before Write() returns, which survives kill -9 (not power loss).
  Status write(rocksdb::WriteBatch& batch, bool sync, const std::string& what);
  Result<std::optional<std::string>> get(rocksdb::ColumnFamilyHandle* cf, std::string_view key,
                                         const std::string& what);
};

}  // namespace noloco::storage
