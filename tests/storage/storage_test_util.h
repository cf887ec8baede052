// Helpers for the storage tests: temporary directories, deterministic checkpoints, and raw
// RocksDB access for damaging a store on purpose.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/metadata.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/hash.h"
#include "storage/keys.h"
#include "storage/records.h"
#include "storage/store.h"

namespace noloco::storage::test {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> n{0};
    path_ = std::filesystem::temp_directory_path() /
            ("noloco-storage-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Bytes that depend on (step, name, size) only, so a reader can recompute what a complete
// checkpoint must contain.
inline Bytes pattern_bytes(uint64_t step, const std::string& name, size_t size) {
  Bytes b(size);
  uint64_t x = step * 0x9E3779B97F4A7C15ULL ^ std::hash<std::string>{}(name);
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b[i] = static_cast<uint8_t>(x);
  }
  return b;
}

inline Checkpoint make_checkpoint(uint64_t step, const std::vector<std::pair<std::string, size_t>>& blobs) {
  Checkpoint c;
  c.manifest.run_id = "run-test";
  c.manifest.step = step;
  c.manifest.outer_step = step / 10;
  c.manifest.created_unix_ms = 1700000000000 + static_cast<int64_t>(step);
  c.manifest.config = "{\"model\":\"tiny\"}";
  c.manifest.codec = "fp32";
  c.manifest.fields["lr_position"] = std::to_string(step);
  for (const auto& [name, size] : blobs) c.blobs.push_back({name, pattern_bytes(step, name, size)});
  return c;
}

// The same checkpoint with its blobs copied into one snapshot buffer, back to back (what the
// node's make_checkpoint hands over, and what the store writes with O_DIRECT).
inline Checkpoint as_snapshot(const Checkpoint& c) {
  uint64_t total = 0;
  for (const auto& b : c.blobs) total += b.data.size();
  auto buffer = SnapshotBuffer::allocate(total).value();
  Checkpoint out;
  out.manifest = c.manifest;
  uint64_t at = 0;
  for (const auto& b : c.blobs) {
    if (!b.data.empty()) std::memcpy(buffer->data() + at, b.data.data(), b.data.size());
    out.blobs.push_back({b.name, BlobData(buffer, at, b.data.size())});
    at += b.data.size();
  }
  return out;
}

// A file's bytes.
inline Bytes file_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// A checkpoint's data file, as docs/storage.md lays it out: <store>/checkpoint_data/ckpt-<id>.data.
inline std::filesystem::path data_file(const std::string& store, uint64_t id) {
  return std::filesystem::path(store) / "checkpoint_data" / ("ckpt-" + std::to_string(id) + ".data");
}

// Ids of the data files in a store, from their names.
inline std::set<uint64_t> data_file_ids(const std::string& store) {
  std::set<uint64_t> ids;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(std::filesystem::path(store) / "checkpoint_data", ec), end;
       !ec && it != end; it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (n.starts_with("ckpt-") && n.ends_with(".data")) ids.insert(std::stoull(n.substr(5, n.size() - 10)));
  }
  return ids;
}

// XORs one byte of a file in place (damage as a disk would do it).
inline void flip_file_byte(const std::filesystem::path& p, uint64_t offset, char mask = 0x10) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + p.string());
  f.seekg(static_cast<std::streamoff>(offset));
  const char was = static_cast<char>(f.get());
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(was ^ mask));
}

inline StoreOptions options_for(const std::string& path) {
  StoreOptions o;
  o.path = path;
  o.write_piece_bytes = 4096;  // small pieces so tests cover blobs written in many pieces
  return o;
}

inline std::unique_ptr<Store> open_or_fail(StoreOptions o) {
  auto r = Store::open(std::move(o));
  if (!r.ok()) throw std::runtime_error("open failed: " + r.status().to_string());
  return std::move(r).value();
}

// The store's database opened directly, every column family, for tests that damage it or look
// at its files. `read_only`: a RocksDB read-only instance (changes nothing, works beside a
// writer).
struct RawDb {
  explicit RawDb(const std::string& path, bool read_only = false) {
    std::vector<std::string> names;
    rocksdb::DBOptions o;
    auto s = rocksdb::DB::ListColumnFamilies(o, path, &names);
    if (!s.ok()) throw std::runtime_error(s.ToString());
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    for (const auto& n : names) {
      rocksdb::ColumnFamilyOptions c;
      if (n == "checkpoints") {  // as stores before chunk ingestion set it: a flush writes blob files
        c.enable_blob_files = true;
        c.min_blob_size = 4096;
      }
      descs.emplace_back(n, c);
    }
    rocksdb::DB* raw = nullptr;
    s = read_only ? rocksdb::DB::OpenForReadOnly(o, path, descs, &handles, &raw)
                  : rocksdb::DB::Open(o, path, descs, &handles, &raw);
    read_only_ = read_only;
    if (!s.ok()) throw std::runtime_error(s.ToString());
    db.reset(raw);
  }
  ~RawDb() {
    for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
    if (!read_only_) (void)db->Close();
  }
  rocksdb::ColumnFamilyHandle* cf(const std::string& name) {
    for (auto* h : handles)
      if (h->GetName() == name) return h;
    throw std::runtime_error("no column family " + name);
  }
  std::string get(const std::string& cf_name, const std::string& key) {
    std::string v;
    auto s = db->Get(rocksdb::ReadOptions(), cf(cf_name), key, &v);
    if (!s.ok()) throw std::runtime_error(s.ToString());
    return v;
  }
  void put(const std::string& cf_name, const std::string& key, const std::string& value) {
    auto s = db->Put(rocksdb::WriteOptions(), cf(cf_name), key, value);
    if (!s.ok()) throw std::runtime_error(s.ToString());
  }
  void del(const std::string& cf_name, const std::string& key) {
    auto s = db->Delete(rocksdb::WriteOptions(), cf(cf_name), key);
    if (!s.ok()) throw std::runtime_error(s.ToString());
  }
  void flush_all() {
    for (auto* h : handles)
      if (!db->Flush(rocksdb::FlushOptions(), h).ok()) throw std::runtime_error("flush failed");
  }
  // Files of the checkpoints column family: (level, file metadata).
  std::vector<rocksdb::SstFileMetaData> checkpoint_files(std::vector<int>* levels = nullptr) {
    rocksdb::ColumnFamilyMetaData meta;
    db->GetColumnFamilyMetaData(cf("checkpoints"), &meta);
    std::vector<rocksdb::SstFileMetaData> out;
    for (const auto& l : meta.levels)
      for (const auto& f : l.files) {
        out.push_back(f);
        if (levels) levels->push_back(l.level);
      }
    return out;
  }
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;

 private:
  bool read_only_ = false;
};

// Writes checkpoint `c` under `id` the way stores did before chunk ingestion and before data
// files (chunk layout, 'C' keys): chunks, manifest and latest pointer in one WriteBatch through
// the WAL, then a flush, so the chunks land in blob files. The store must exist and be closed.
inline void write_legacy_checkpoint(const std::string& path, uint64_t id, const Checkpoint& c, uint64_t chunk_bytes) {
  CheckpointManifest m = c.manifest;
  m.blobs.clear();
  m.layout = BlobLayout::kChunks;
  rocksdb::WriteBatch batch;
  RawDb raw(path);
  for (uint32_t bi = 0; bi < c.blobs.size(); ++bi) {
    const ByteView data = c.blobs[bi].data;
    BlobInfo info{c.blobs[bi].name, data.size(), xxh3_64(data, 0x6e6f6c6f636f6231ULL /* "nolocob1" */), chunk_bytes,
                  static_cast<uint32_t>((data.size() + chunk_bytes - 1) / chunk_bytes)};
    for (uint32_t ci = 0; ci < info.chunk_count; ++ci) {
      size_t off = size_t{ci} * chunk_bytes, n = std::min<size_t>(chunk_bytes, data.size() - off);
      batch.Put(raw.cf(kCfCheckpoints), chunk_key(id, bi, ci),
                rocksdb::Slice(reinterpret_cast<const char*>(data.data()) + off, n));
    }
    m.blobs.push_back(info);
  }
  Bytes mb = encode_manifest(m).value();
  batch.Put(raw.cf(kCfCheckpoints), manifest_key(id), rocksdb::Slice(reinterpret_cast<const char*>(mb.data()), mb.size()));
  batch.Put(raw.cf(kCfMeta), std::string(meta_key::kLatestCheckpoint), be64(id));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (!raw.db->Write(wo, &batch).ok()) throw std::runtime_error("legacy write failed");
  raw.flush_all();
}

}  // namespace noloco::storage::test
