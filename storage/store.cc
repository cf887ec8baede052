// Opening a store: RocksDB options, column families, the schema check, meta values.
#include <rocksdb/convenience.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_manager.h>
#include <rocksdb/table.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>

#include "common/clock.h"
#include "common/log.h"
#include "storage/keys.h"
#include "storage/store_impl.h"

namespace noloco::storage {

namespace fs = std::filesystem;

Status from_rocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  std::string m = what + ": " + s.ToString();
  if (s.IsCorruption()) return corrupt(m);
  if (s.IsNotFound()) return not_found(m);
  if (s.IsNotSupported()) return unsupported(m);
  if (s.IsInvalidArgument()) return invalid_argument(m);
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) return {StatusCode::kUnavailable, m};
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos)
    return {StatusCode::kUnavailable, m + " (another process has the store open read-write; open it read-only)"};
  if (s.IsIOError() && s.IsNoSpace()) return io_error(m + " (disk full)");
  return io_error(m);
}

Status StoreOptions::validate() const {
  if (path.empty()) return invalid_argument("store path is empty");
  if (retention.keep_last < 1) return invalid_argument("retention.keep_last must be at least 1");
  if (write_piece_bytes < 4096 || write_piece_bytes > (uint64_t{1} << 30))
    return invalid_argument("write_piece_bytes must be between 4 KiB and 1 GiB");
  if (max_peers < 1) return invalid_argument("max_peers must be at least 1");
  if (peer_stale_after_s <= 0) return invalid_argument("peer_stale_after_s must be positive");
  return Status::Ok();
}

namespace {

const std::vector<std::string>& our_families() {
  static const std::vector<std::string> k = {kCfMeta, kCfCheckpoints, kCfPeers, kCfBans, kCfMetrics};
  return k;
}

// `env`: the DiskFaults file system in tests, else null (RocksDB's default).
rocksdb::DBOptions db_options(const StoreOptions& o, rocksdb::Env* env) {
  rocksdb::DBOptions d;
  if (env) d.env = env;
  d.paranoid_checks = true;
  // A torn tail record after kill -9 is dropped whole; every batch before it is kept. Since a
  // checkpoint is one batch, recovery yields whole checkpoints only. kAbsoluteConsistency
  // would refuse to open after an ordinary crash mid-write.
  d.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // Small column families (peers, metrics) would otherwise pin old WAL files, including ones
  // holding gigabytes of checkpoint; past this size RocksDB flushes them so the WAL can go.
  d.max_total_wal_size = 256 << 20;
  // Sync SST/blob files in steps while they are written so the final fsync is short.
  d.bytes_per_sync = 8 << 20;
  d.max_background_jobs = 2;
  d.max_open_files = -1;  // a reader holds every SST open, so a writer's compaction cannot pull one away
  d.keep_log_file_num = 4;
  d.max_log_file_size = 4 << 20;
  return d;
}

rocksdb::ColumnFamilyOptions cf_options(const std::string& name) {
  rocksdb::ColumnFamilyOptions c;
  if (name == kCfCheckpoints) {
    c.compression = rocksdb::kNoCompression;  // fp32 tensors do not compress; no CPU wasted
    // Chunks arrive as ingested SST files (checkpoint_ingest.cc); only manifests and deletes
    // go through the memtable.
    c.write_buffer_size = 4 << 20;
    // Blob files were where chunks went before ingestion. Off now: a flush only ever sees
    // manifests, and a compaction that touched an ingested file would otherwise move its chunks
    // into blob files (a rewrite). Blob files of older stores stay readable with it off.
    c.enable_blob_files = false;
    // No TTL compaction (RocksDB's default is 30 days): it would push the small manifest and
    // delete files down level by level until they merged with, and rewrote, the ingested
    // chunk files at the bottom. Nothing here needs it: pruned chunk files are dropped whole.
    c.ttl = 0;
    c.periodic_compaction_seconds = 0;
  } else {
    c.write_buffer_size = 4 << 20;
    auto supported = rocksdb::GetSupportedCompressions();
    bool lz4 = std::find(supported.begin(), supported.end(), rocksdb::kLZ4Compression) != supported.end();
    c.compression = lz4 ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
  }
  return c;
}

// RocksDB would resume a store stopped by a full disk on its own (the SstFileManager polls the
// free space every few seconds and calls Resume()). We reopen it ourselves instead, at the next
// write (store_recovery.cc): Resume() after a hard error leaves RocksDB 7.8 unable to ingest
// files, and that write then succeeds or fails by what the disk holds now, not by the poll.
class ManualRecovery : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status, bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

}  // namespace

std::string make_secondary_dir() {
  static std::atomic<int> counter{0};
  fs::path p = fs::temp_directory_path() /
               ("noloco-ro-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::error_code ec;
  fs::create_directories(p, ec);
  return p.string();
}

namespace {

}  // namespace

void Store::Impl::find_handles() {
  meta = checkpoints = peers = bans = metrics = nullptr;
  for (auto* h : handles) {
    const std::string& n = h->GetName();
    if (n == kCfMeta) meta = h;
    else if (n == kCfCheckpoints) checkpoints = h;
    else if (n == kCfPeers) peers = h;
    else if (n == kCfBans) bans = h;
    else if (n == kCfMetrics) metrics = h;
  }
}

// Read-only mode opens a RocksDB *read-only* instance, not a secondary one: in RocksDB 7.8 a
// secondary instance (ReactiveVersionSet) gives its column families a reference to a temporary
// db-id string, so reading any value kept in a blob file hashes freed memory for the blob cache
// key and crashes (facebook/rocksdb#13248; upstream passes the real id since 11.8). Stores
// written before chunk ingestion keep their chunks in blob files. A read-only instance is a DBImpl with its own id; it sees the store
// as of open (WALs replayed up to the last whole batch), and refresh() reopens it.
Status open_rocks(Store::Impl& impl, bool exists) {
  const StoreOptions& o = impl.options;
  rocksdb::DBOptions dbo = db_options(o, impl.fault_env.get());
  if (!exists) {
    dbo.create_if_missing = true;
    dbo.create_missing_column_families = true;
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const auto& n : impl.cf_names) descs.emplace_back(n, cf_options(n));
  rocksdb::Status s;
  if (impl.read_only() || impl.fallback_read_only) {
    // The reader's info LOG goes to its own directory: RocksDB would otherwise rotate the
    // writer's LOG file in the store directory.
    dbo.db_log_dir = o.secondary_dir;
    // A writer running meanwhile may delete a WAL or SST between our listing and opening it;
    // the next attempt sees its new state. RocksDB reports an SST that vanished while the
    // tables are opened as Corruption ("No such file or directory").
    for (int attempt = 0; attempt < 5; ++attempt) {
      rocksdb::DB* raw = nullptr;
      impl.handles.clear();
      s = rocksdb::DB::OpenForReadOnly(dbo, o.path, descs, &impl.handles, &raw);
      if (s.ok()) {
        impl.db.reset(raw);
        break;
      }
      const bool vanished = s.IsCorruption() && s.ToString().find("No such file or directory") != std::string::npos;
      if (!s.IsIOError() && !s.IsPathNotFound() && !vanished) break;
    }
  } else {
    // Unlinking a pruned checkpoint's chunk file (gigabytes) is slow where the filesystem
    // discards freed blocks (ext4 -o discard: ~0.4 s per 500 MB on the build machine), so
    // RocksDB's delete scheduler does it on its own thread rather than inside write_checkpoint.
    // Whole files only (no gradual truncation): a read-only reader holding a pruned file open
    // keeps reading it. A deletion still queued at close is a `.trash` file the next open deletes.
    dbo.sst_file_manager.reset(rocksdb::NewSstFileManager(rocksdb::Env::Default(), nullptr, "",
                                                          /*rate_bytes_per_sec=*/int64_t{1} << 30,
                                                          /*delete_existing_trash=*/true, nullptr,
                                                          /*max_trash_db_ratio=*/1.0,
                                                          /*bytes_max_delete_chunk=*/0));
    dbo.listeners.push_back(std::make_shared<ManualRecovery>());
    rocksdb::DB* raw = nullptr;
    s = rocksdb::DB::Open(dbo, o.path, descs, &impl.handles, &raw);
    if (s.ok()) impl.db.reset(raw);
  }
  if (!s.ok()) return from_rocks(s, "opening store at " + o.path);
  impl.find_handles();
  return Status::Ok();
}

Store::Impl::~Impl() { close(); }

void Store::Impl::close() {
  wait_unlinks();
  close_db();
  remove_secondary_dir();  // also after a failed read-only open
}

void Store::Impl::close_db() {
  if (!db) return;
  for (auto* h : handles) {
    rocksdb::Status s = db->DestroyColumnFamilyHandle(h);
    if (!s.ok()) NLOG_WARN("storage: closing column family: {}", s.ToString());
  }
  handles.clear();
  meta = checkpoints = peers = bans = metrics = nullptr;
  if (!read_only() && !fallback_read_only) {
    rocksdb::Status s = db->Close();
    if (!s.ok()) NLOG_WARN("storage: closing {}: {}", options.path, s.ToString());
  }
  db.reset();
}

void Store::Impl::remove_secondary_dir() {
  if (!owns_secondary_dir) return;
  std::error_code ec;
  fs::remove_all(options.secondary_dir, ec);
  owns_secondary_dir = false;
}

Status Store::Impl::require_writable(const char* what) const {
  if (read_only()) return invalid_argument(std::string(what) + ": store is open read-only");
  return Status::Ok();
}

Status Store::Impl::write(rocksdb::WriteBatch& batch, bool sync, const std::string& what) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  Status s = from_rocks(db->Write(wo, &batch), what);
  note_write_error(s);
  return s;
}

Result<std::optional<std::string>> Store::Impl::get(rocksdb::ColumnFamilyHandle* cf, std::string_view key,
                                                     const std::string& what) {
  std::string value;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), cf, rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return from_rocks(s, what);
  return std::optional<std::string>(std::move(value));
}

namespace {

// True when no column family holds a key: a store whose creation was interrupted before the
// schema version was written.
bool all_empty(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& handles) {
  for (auto* h : handles) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h));
    it->SeekToFirst();
    if (it->Valid() || !it->status().ok()) return false;
  }
  return true;
}

// The store's schema version, if this build can read it.
Result<uint32_t> check_schema(std::optional<std::string> v, const std::string& path) {
  if (!v) return unsupported("store at " + path + " has no schema version: not a noloco store, or one from an unknown schema");
  if (v->size() != 4)
    return corrupt("store at " + path + ": schema version value is " + std::to_string(v->size()) +
                   " bytes, expected 4");
  uint32_t version = get_u32_le(reinterpret_cast<const uint8_t*>(v->data()));
  if (version > kSchemaVersion)
    return unsupported("store at " + path + " has schema version " + std::to_string(version) +
                       ", newer than this build's " + std::to_string(kSchemaVersion) +
                       "; use a newer noloco (nothing was changed)");
  if (version < kOldestReadableSchemaVersion)
    return unsupported("store at " + path + " has unknown schema version " + std::to_string(version) +
                       " (this build reads " + std::to_string(kOldestReadableSchemaVersion) + " to " +
                       std::to_string(kSchemaVersion) + ")");
  return version;
}

// A writable store of an older schema is stamped with ours before anything new goes in, so an
// older build refuses it ("newer than this build's") instead of tripping over a new record.
// The old records stay as they are and keep reading (docs/storage.md, "Compatibility").
Status upgrade_schema(Store::Impl& impl, uint32_t from, const std::string& path) {
  Bytes v;
  put_u32_le(v, kSchemaVersion);
  rocksdb::WriteBatch b;
  b.Put(impl.meta, rocksdb::Slice(meta_key::kSchemaVersion.data(), meta_key::kSchemaVersion.size()),
        rocksdb::Slice(reinterpret_cast<const char*>(v.data()), v.size()));
  NOLOCO_RETURN_IF_ERROR(impl.write(b, true, "upgrading the schema version"));
  NLOG_INFO("storage: store at {} upgraded from schema version {} to {}", path, from, kSchemaVersion);
  return Status::Ok();
}

// Free bytes for an unprivileged writer on the filesystem that holds `path` (or its nearest
// existing parent, for a store still to be created); nullopt when that cannot be told.
std::optional<uint64_t> free_bytes(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  while (!p.empty() && !fs::exists(p, ec)) p = p.parent_path();
  struct statvfs st {};
  if (p.empty() || ::statvfs(p.c_str(), &st) != 0) return std::nullopt;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

}  // namespace

Status check_space_to_open(const StoreOptions& o) {
  if (o.mode != OpenMode::kReadWrite || o.min_free_bytes_to_open == 0) return Status::Ok();
  auto free = free_bytes(o.path);
  if (!free || *free >= o.min_free_bytes_to_open) return Status::Ok();
  return io_error("store at " + o.path + ": only " + std::to_string(*free / 1024) +
                  " KiB free on its filesystem, a read-write open needs at least " +
                  std::to_string(o.min_free_bytes_to_open >> 20) +
                  " MiB (disk full); free some space. Reading it works as it is (noloco status)");
}

Result<std::unique_ptr<Store>> Store::open(StoreOptions options) {
  NOLOCO_RETURN_IF_ERROR(options.validate());
  if (!options.now_unix) options.now_unix = [] { return unix_time_seconds(); };
  auto impl = std::make_unique<Impl>();
  const std::string path = options.path;
  const bool read_only = options.mode == OpenMode::kReadOnly;

  std::error_code ec;
  const bool exists = fs::exists(fs::path(path) / "CURRENT", ec);
  if (!exists && (read_only || !options.create_if_missing)) return not_found("no store at " + path);
  if (!exists && fs::exists(path, ec) && !fs::is_directory(path, ec))
    return invalid_argument("store path " + path + " is not a directory");
  NOLOCO_RETURN_IF_ERROR(check_space_to_open(options));

  if (options.disk_faults && !read_only) impl->fault_env = make_faulty_env(options.disk_faults);
  const rocksdb::DBOptions dbo = db_options(options, impl->fault_env.get());
  std::vector<std::string> names;
  if (exists) {
    rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(dbo, path, &names);
    if (!ls.ok()) {
      // CURRENT exists, so a MANIFEST that is missing or unreadable means a damaged store.
      Status st = from_rocks(ls, "store at " + path + " cannot be read (damaged CURRENT or MANIFEST)");
      if (ls.ToString().find("ermission denied") != std::string::npos)
        return Status(StatusCode::kPermissionDenied, st.message());
      return corrupt(st.message());
    }
    for (const auto& n : names) {
      if (n == rocksdb::kDefaultColumnFamilyName) continue;
      if (std::find(our_families().begin(), our_families().end(), n) == our_families().end())
        return unsupported("store at " + path + " has column family '" + n +
                           "' which this build does not know: a newer or unknown schema");
    }
  } else {
    names = {rocksdb::kDefaultColumnFamilyName};
    names.insert(names.end(), our_families().begin(), our_families().end());
  }
  if (std::find(names.begin(), names.end(), rocksdb::kDefaultColumnFamilyName) == names.end())
    return corrupt("store at " + path + " has no default column family");

  if (read_only && options.secondary_dir.empty()) {
    options.secondary_dir = make_secondary_dir();
    impl->owns_secondary_dir = true;
  }
  impl->options = std::move(options);
  impl->cf_names = names;
  NOLOCO_RETURN_IF_ERROR(open_rocks(*impl, exists));

  std::optional<std::string> version;
  if (impl->meta) {
    NOLOCO_ASSIGN_OR_RETURN(version, impl->get(impl->meta, meta_key::kSchemaVersion, "reading schema version"));
  }
  if (!version && !read_only && all_empty(impl->db.get(), impl->handles)) {
    // New store, or one whose creation was interrupted: create what is missing, then stamp it.
    for (const auto& n : our_families()) {
      if (std::find(names.begin(), names.end(), n) != names.end()) continue;
      rocksdb::ColumnFamilyHandle* h = nullptr;
      NOLOCO_RETURN_IF_ERROR(
          from_rocks(impl->db->CreateColumnFamily(cf_options(n), n, &h), "creating " + n));
      impl->handles.push_back(h);
      if (n == kCfMeta) impl->meta = h;
      else if (n == kCfCheckpoints) impl->checkpoints = h;
      else if (n == kCfPeers) impl->peers = h;
      else if (n == kCfBans) impl->bans = h;
      else if (n == kCfMetrics) impl->metrics = h;
    }
    Bytes v, created;
    put_u32_le(v, kSchemaVersion);
    put_u64_le(created, static_cast<uint64_t>(impl->now()));
    rocksdb::WriteBatch b;
    b.Put(impl->meta, rocksdb::Slice(meta_key::kSchemaVersion.data(), meta_key::kSchemaVersion.size()),
          rocksdb::Slice(reinterpret_cast<const char*>(v.data()), v.size()));
    b.Put(impl->meta, rocksdb::Slice(meta_key::kCreatedUnix.data(), meta_key::kCreatedUnix.size()),
          rocksdb::Slice(reinterpret_cast<const char*>(created.data()), created.size()));
    NOLOCO_RETURN_IF_ERROR(impl->write(b, true, "writing schema version"));
    version = to_string(v);
    NLOG_INFO("storage: created store at {} (schema version {})", path, kSchemaVersion);
  }
  NOLOCO_ASSIGN_OR_RETURN(impl->schema_version, check_schema(version, path));
  for (const auto& n : our_families())
    if (std::find_if(impl->handles.begin(), impl->handles.end(),
                     [&](auto* h) { return h->GetName() == n; }) == impl->handles.end())
      return corrupt("store at " + path + " lacks column family '" + n + "'");
  if (!read_only && impl->schema_version < kSchemaVersion) {
    NOLOCO_RETURN_IF_ERROR(upgrade_schema(*impl, impl->schema_version, path));
    impl->schema_version = kSchemaVersion;
  }

  if (!read_only) {
    // Staging leftovers and chunks without a manifest (a write cut short) go; the next id
    // is above every id in use.
    NOLOCO_RETURN_IF_ERROR(recover_checkpoints(*impl));
    std::unique_ptr<rocksdb::Iterator> pit(impl->db->NewIterator(rocksdb::ReadOptions(), impl->peers));
    for (pit->SeekToFirst(); pit->Valid(); pit->Next()) ++impl->peer_count;
    NOLOCO_RETURN_IF_ERROR(from_rocks(pit->status(), "counting peers"));
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

const std::string& Store::path() const { return impl_->options.path; }
uint32_t Store::schema_version() const { return impl_->schema_version; }
bool Store::read_only() const { return impl_->read_only(); }

Status Store::refresh() {
  if (!read_only()) return Status::Ok();
  // A read-only instance is a snapshot of its open: reopening is how it catches up.
  impl_->close_db();
  return open_rocks(*impl_, true);
}

Status Store::flush() {
  impl_->wait_unlinks();
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use_for_write("flushing"));
  rocksdb::FlushOptions fo;
  fo.wait = true;
  return from_rocks(impl_->db->Flush(fo, impl_->handles), "flushing memtables");
}

namespace {
Status put_meta(Store::Impl& impl, std::string_view key, std::string_view value) {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl.use_for_write("writing meta"));
  rocksdb::WriteBatch b;
  b.Put(impl.meta, rocksdb::Slice(key.data(), key.size()), rocksdb::Slice(value.data(), value.size()));
  return impl.write(b, true, "writing meta " + std::string(key));
}
}  // namespace

Status Store::set_identity_ref(std::string_view ref) {
  if (ref.size() > kMaxShortStringBytes) return invalid_argument("identity reference too long");
  return put_meta(*impl_, meta_key::kIdentityRef, ref);
}

Result<std::optional<std::string>> Store::identity_ref() {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use());
  return impl_->get(impl_->meta, meta_key::kIdentityRef, "reading identity reference");
}

Status Store::set_run(std::string_view run_id, ByteView run_manifest) {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use_for_write("writing run"));
  if (run_id.size() > kMaxShortStringBytes) return invalid_argument("run id too long");
  if (run_manifest.size() > kMaxLongStringBytes) return invalid_argument("run manifest over 1 MiB");
  rocksdb::WriteBatch b;
  b.Put(impl_->meta, rocksdb::Slice(meta_key::kRunId.data(), meta_key::kRunId.size()),
        rocksdb::Slice(run_id.data(), run_id.size()));
  b.Put(impl_->meta, rocksdb::Slice(meta_key::kRunManifest.data(), meta_key::kRunManifest.size()),
        rocksdb::Slice(reinterpret_cast<const char*>(run_manifest.data()), run_manifest.size()));
  return impl_->write(b, true, "writing run");
}

Result<std::optional<std::string>> Store::run_id() {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use());
  return impl_->get(impl_->meta, meta_key::kRunId, "reading run id");
}

Result<std::optional<Bytes>> Store::run_manifest() {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use());
  NOLOCO_ASSIGN_OR_RETURN(auto v, impl_->get(impl_->meta, meta_key::kRunManifest, "reading run manifest"));
  if (!v) return std::optional<Bytes>();
  return std::optional<Bytes>(to_bytes(*v));
}

}  // namespace noloco::storage
