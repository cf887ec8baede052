// Damages a closed node store on purpose, straight through RocksDB (tests only): the storage
// API never writes a torn checkpoint, so these make the faults a disk or a crash could.
#pragma once

#include <rocksdb/db.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "storage/keys.h"

namespace noloco::test {

class RawStore {
 public:
  explicit RawStore(const std::string& path) {
    std::vector<std::string> names;
    rocksdb::DBOptions o;
    check(rocksdb::DB::ListColumnFamilies(o, path, &names));
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    for (const auto& n : names) descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    rocksdb::DB* raw = nullptr;
    check(rocksdb::DB::Open(o, path, descs, &handles_, &raw));
    db_.reset(raw);
  }
  ~RawStore() {
    for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
    (void)db_->Close();
  }
  // Checkpoint ids that have a manifest, ascending.
  std::vector<uint64_t> manifest_ids() {
    std::vector<uint64_t> ids;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(storage::kCfCheckpoints)));
    for (it->Seek(std::string(1, storage::kManifestTag)); it->Valid() && it->key()[0] == storage::kManifestTag;
         it->Next())
      ids.push_back(*storage::parse_be64(it->key().ToString().substr(1)));
    return ids;
  }
  // Flips one byte in the first chunk of blob `blob` of checkpoint `id`.
  void flip_chunk_byte(uint64_t id, uint32_t blob) {
    const std::string key = storage::chunk_key(id, blob, 0);
    std::string v;
    check(db_->Get(rocksdb::ReadOptions(), cf(storage::kCfCheckpoints), key, &v));
    v[v.size() / 2] ^= 0x40;
    check(db_->Put(rocksdb::WriteOptions(), cf(storage::kCfCheckpoints), key, v));
  }
  void delete_chunk(uint64_t id, uint32_t blob, uint32_t chunk) {
    check(db_->Delete(rocksdb::WriteOptions(), cf(storage::kCfCheckpoints), storage::chunk_key(id, blob, chunk)));
  }
  // Every chunk of `id` gone, its manifest and the "latest" pointer left: what a write whose
  // chunk file never made it to disk would look like.
  void delete_all_chunks(uint64_t id) {
    check(db_->DeleteRange(rocksdb::WriteOptions(), cf(storage::kCfCheckpoints), storage::chunk_prefix(id),
                           storage::chunk_prefix(id + 1)));
  }
  void set_latest(uint64_t id) {
    check(db_->Put(rocksdb::WriteOptions(), cf(storage::kCfMeta), std::string(storage::meta_key::kLatestCheckpoint),
                   storage::be64(id)));
  }

 private:
  static void check(const rocksdb::Status& s) {
    if (!s.ok()) throw std::runtime_error(s.ToString());
  }
  rocksdb::ColumnFamilyHandle* cf(const std::string& name) {
    for (auto* h : handles_)
      if (h->GetName() == name) return h;
    throw std::runtime_error("no column family " + name);
  }
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

}  // namespace noloco::test
