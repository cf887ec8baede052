// The node's persistent state in one RocksDB directory: checkpoints, peer book, bans, metrics
// history and a few meta values. On-disk format: docs/storage.md.
//
// RocksDB stays behind a pimpl: including this header does not pull in <rocksdb/...>.
// All methods are thread safe. Checkpoint writes are synchronous here; CheckpointWriter
// (checkpoint_writer.h) moves them off the training thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "storage/disk_faults.h"
#include "storage/records.h"

namespace noloco::storage {

enum class OpenMode {
  kReadWrite,  // the node itself; one process at a time (RocksDB's LOCK file)
  kReadOnly,   // `noloco status` and friends, also while the node runs (a RocksDB read-only
               // instance: sees the writer's state as of open() or the last refresh())
};

// Which old checkpoints a write keeps. The one just written is always kept.
struct RetentionPolicy {
  uint32_t keep_last = 3;         // the newest K checkpoints (by write order), at least 1
  uint64_t keep_every_steps = 0;  // also keep every checkpoint whose step is a multiple of M (0: off)
};

// The steps of a checkpoint write, in order.
enum class CheckpointPhase {
  kWritingFile,   // writing the checkpoint's data file next to the database
  kPieceWritten,  // one more piece (StoreOptions::write_piece_bytes) went into it (called per piece)
  kCommitting,    // data file complete and synced with its directory; the manifest batch is being written
  kReclaiming,    // committed; giving pruned checkpoints' space back
};

// Per write: how fast the data file may be written.
struct CheckpointWriteOptions {
  // 0: as fast as the disk takes it. Otherwise the writer sleeps between pieces so that a
  // checkpoint spreads over time instead of taking the disk and a core in one burst.
  uint64_t max_bytes_per_s = 0;
};

struct StoreOptions {
  std::string path;                // the RocksDB directory
  OpenMode mode = OpenMode::kReadWrite;
  bool create_if_missing = true;   // read-write only
  RetentionPolicy retention;
  // A checkpoint's data file is hashed and written in pieces of this many bytes: each piece is
  // hashed and then copied by write(2) while it is still in the CPU cache.
  uint64_t write_piece_bytes = 1 << 20;
  // A checkpoint whose blobs are one snapshot buffer (blob_data.h, what the node's
  // make_checkpoint builds) is written with O_DIRECT, in pieces of at least 8 MiB: the kernel
  // does not copy it into the page cache. Where the filesystem refuses O_DIRECT (EINVAL) the
  // write goes on through the page cache. false: always through the page cache.
  bool direct_io = true;
  // When retention prunes checkpoints of older builds whose chunks sit in RocksDB files that
  // also hold other keys (docs/storage.md), compact the pruned range so that space comes back
  // now too. Data files of pruned checkpoints are always unlinked.
  bool compact_after_prune = true;
  size_t max_peers = 4096;                      // peer book cap; beyond it entries are evicted
  int64_t peer_stale_after_s = 7 * 24 * 3600;   // not seen for this long: evicted first
  // Wall-clock seconds for peer/ban times; tests inject a fake. Default: unix_time_seconds().
  std::function<int64_t()> now_unix;
  // Read-only mode: a directory for the reader's own RocksDB log files.
  // Empty: a fresh temporary directory, removed on close.
  std::string secondary_dir;
  // Tests and tracing only: called on the writing thread as a checkpoint write enters each
  // phase (docs/storage.md, "Checkpoint commit and recovery"). The crash test kills its child
  // process from here.
  std::function<void(CheckpointPhase phase, uint64_t id, uint64_t step)> checkpoint_phase_hook;
  // A read-write open is refused, with a clear error, when the store's filesystem has less than
  // this free: RocksDB writes a MANIFEST, OPTIONS and a WAL while opening, and RocksDB 7.8 (as
  // Debian builds it, with assertions) aborts the process on some of those failed writes. 0: no check.
  uint64_t min_free_bytes_to_open = 16 << 20;
  // Tests and chaos runs only: a simulated disk that fills up (disk_faults.h). Read-write only.
  std::shared_ptr<DiskFaults> disk_faults;

  Status validate() const;
};

struct CheckpointInfo {
  uint64_t id = 0;  // store-assigned, increasing in write order
  CheckpointManifest manifest;
};

struct LoadedCheckpoint {
  uint64_t id = 0;
  Checkpoint checkpoint;
  // Newer checkpoints that failed verification and were passed over, with the reason.
  std::vector<std::string> skipped;
};

struct PeerBookSummary {
  size_t peers = 0;
  size_t active_bans = 0;
  std::vector<PeerRecord> best;  // highest score first
};

class Store {
 public:
  // Opens (or creates) the store. Fails with a message naming the problem when the directory
  // holds a corrupt database (kCorrupt), a newer or unknown schema (kUnsupported), or is in use
  // by another read-write process (kUnavailable).
  static Result<std::unique_ptr<Store>> open(StoreOptions options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const;
  uint32_t schema_version() const;
  bool read_only() const;
  // Read-only mode: pick up what the writer has committed since open or the last refresh.
  Status refresh();
  // Writes every memtable out to SST/blob files and waits, so the next open has no large WAL
  // to replay. Optional (a clean shutdown, a benchmark); durability never depends on it.
  Status flush();

  // --- meta ---
  Status set_identity_ref(std::string_view ref);  // e.g. the key file path or the peer id
  Result<std::optional<std::string>> identity_ref();
  Status set_run(std::string_view run_id, ByteView run_manifest);
  Result<std::optional<std::string>> run_id();
  Result<std::optional<Bytes>> run_manifest();

  // --- checkpoints ---
  // Writes the blobs into one plain data file next to the database (fsynced with its directory;
  // the bytes are written once, not through the WAL), then commits the manifest (naming the
  // file's blobs with their sizes and xxh3_64), the "latest" pointer and the retention deletes
  // as one synced WriteBatch. A checkpoint exists only once that batch is committed: after a
  // crash the store holds the old latest or the new one, never a mix, and the next read-write
  // open removes data files that never got their manifest.
  // Blob names must be unique and non-empty; manifest.blobs and .layout are ignored and rebuilt.
  Result<CheckpointInfo> write_checkpoint(const Checkpoint& checkpoint, CheckpointWriteOptions options = {});
  // Same, but takes the bytes over; they are freed when the call returns, also when it fails.
  Result<CheckpointInfo> write_checkpoint(Checkpoint&& checkpoint, CheckpointWriteOptions options = {});
  Result<std::optional<CheckpointInfo>> latest_checkpoint_info();
  Result<std::vector<CheckpointInfo>> list_checkpoints();  // oldest first
  // Loads and verifies every blob's length and checksum; kCorrupt names the bad blob.
  Result<Checkpoint> load_checkpoint(uint64_t id);
  Result<Checkpoint> load_latest();  // kNotFound when there is none
  // The newest checkpoint that verifies, walking back from "latest" and logging each one it
  // passes over. nullopt when the store has no checkpoint; kCorrupt when none verifies.
  Result<std::optional<LoadedCheckpoint>> load_latest_valid();

  // --- peer book ---
  // Inserts or replaces. Beyond max_peers, other entries are evicted: stale ones (not seen
  // for peer_stale_after_s) oldest first, then lowest score; the entry just written is kept.
  Status put_peer(const PeerRecord& peer);
  // Read-modify-write under the store's lock; a missing peer starts as {peer_id, first and
  // last seen = now}.
  Status update_peer(std::string_view peer_id, const std::function<void(PeerRecord&)>& change);
  Status record_seen(std::string_view peer_id, const std::vector<std::string>& addresses);
  Status record_outcome(std::string_view peer_id, bool success, double score_delta);
  Result<std::optional<PeerRecord>> get_peer(std::string_view peer_id);
  Status remove_peer(std::string_view peer_id);
  Result<std::vector<PeerRecord>> list_peers();
  Result<PeerBookSummary> peer_summary(size_t best_n = 10);

  // --- bans ---
  // duration_s 0: until unbanned.
  Status ban(std::string_view peer_id, std::string_view reason, int64_t duration_s);
  Status unban(std::string_view peer_id);
  // The ban in force now, if any. An expired ban is deleted (read-write mode) and ignored.
  Result<std::optional<BanRecord>> active_ban(std::string_view peer_id);
  Result<std::vector<BanRecord>> list_active_bans();
  Result<size_t> purge_expired_bans();

  // --- metrics history ---
  Status put_metrics(const MetricsRecord& record);  // one per outer step; rewriting replaces
  // Records with from <= outer_step <= to, ascending, at most `limit`.
  Result<std::vector<MetricsRecord>> metrics_range(uint64_t from, uint64_t to, size_t limit = SIZE_MAX);
  Result<std::vector<MetricsRecord>> recent_metrics(size_t n);  // the last n, ascending
  Status prune_metrics_before(uint64_t outer_step);

  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace noloco::storage
