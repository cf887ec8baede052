// Internal to storage/: the RocksDB handles behind Store. Only storage/*.cc include this.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <mutex>
#include <string>

#include "storage/store.h"

namespace noloco::storage {

// Turns a RocksDB status into ours, naming what we were doing.
Status from_rocks(const rocksdb::Status& s, const std::string& what);

// Opens impl.options.path with impl.cf_names (read-write, or read-only per impl.options.mode)
// and fills the handles. `exists`: false creates the database.
Status open_rocks(Store::Impl& impl, bool exists);

struct Store::Impl {
  StoreOptions options;
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
  uint64_t next_checkpoint_id = 1;
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

  // Durable writes (checkpoints, meta) fsync the WAL; the rest rely on the WAL being written
  // before Write() returns, which survives kill -9 (not power loss).
  Status write(rocksdb::WriteBatch& batch, bool sync, const std::string& what);
  Result<std::optional<std::string>> get(rocksdb::ColumnFamilyHandle* cf, std::string_view key,
                                         const std::string& what);
};

}  // namespace noloco::storage
