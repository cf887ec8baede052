// Damages a closed node store on purpose, straight through RocksDB and the checkpoint data files
// (tests only; layout in docs/storage.md): the storage API never writes a torn checkpoint, so
// these make the faults a disk or a crash could.
#pragma once

#include <rocksdb/db.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "storage/keys.h"
#include "storage/records.h"

namespace noloco::test {

class RawStore {
 public:
  explicit RawStore(const std::string& path) : path_(path) {
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
  // Flips one byte in the middle of blob `blob` of checkpoint `id` in its data file.
  void flip_blob_byte(uint64_t id, uint32_t blob) {
    const auto [offset, size] = blob_range(id, blob);
    std::fstream f(data_file(id), std::ios::in | std::ios::out | std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + data_file(id).string());
    f.seekg(static_cast<std::streamoff>(offset + size / 2));
    const char was = static_cast<char>(f.get());
    f.seekp(static_cast<std::streamoff>(offset + size / 2));
    f.put(static_cast<char>(was ^ 0x40));
  }
  // Cuts checkpoint `id`'s data file in the middle of blob `blob`: a write torn by the disk.
  void truncate_in_blob(uint64_t id, uint32_t blob) {
    const auto [offset, size] = blob_range(id, blob);
    std::filesystem::resize_file(data_file(id), offset + size / 2);
  }
  // Its manifest and the "latest" pointer left, its data file gone: what a write whose file
  // never made it to disk would look like.
  void delete_data_file(uint64_t id) { std::filesystem::remove(data_file(id)); }
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
  std::filesystem::path data_file(uint64_t id) const {
    return std::filesystem::path(path_) / "checkpoint_data" / ("ckpt-" + std::to_string(id) + ".data");
  }
  // Offset and size of blob `blob` in checkpoint `id`'s data file, from its manifest.
  std::pair<uint64_t, uint64_t> blob_range(uint64_t id, uint32_t blob) {
    std::string v;
    check(db_->Get(rocksdb::ReadOptions(), cf(storage::kCfCheckpoints), storage::manifest_key(id), &v));
    auto m = storage::decode_manifest(ByteView(reinterpret_cast<const uint8_t*>(v.data()), v.size()));
    if (!m.ok() || blob >= m->blobs.size()) throw std::runtime_error("no blob " + std::to_string(blob));
    uint64_t offset = 0;
    for (uint32_t i = 0; i < blob; ++i) offset += m->blobs[i].size;
    return {offset, m->blobs[blob].size};
  }
  std::string path_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

}  // namespace noloco::test
