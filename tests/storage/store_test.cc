// Opening stores: schema checks, corruption, locking, read-only access, meta values.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "storage/keys.h"
#include "storage_test_util.h"

using namespace noloco;
using namespace noloco::storage;
using namespace noloco::storage::test;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& p, const std::string& content) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << content;
}

std::vector<fs::path> files_with(const std::string& dir, const std::string& ext_or_prefix, bool prefix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (prefix ? name.rfind(ext_or_prefix, 0) == 0 : e.path().extension() == ext_or_prefix) out.push_back(e.path());
  }
  return out;
}

// A store with two checkpoints (the first written as stores before chunk ingestion did, its
// chunks in blob files; the second ingested), metrics and a peer, flushed so SST and blob
// files exist.
void populate(const std::string& path) {
  { auto created = open_or_fail(options_for(path)); }
  write_legacy_checkpoint(path, 1, make_checkpoint(1, {{"phi", 20000}}), 4096);
  {
    auto store = open_or_fail(options_for(path));
    REQUIRE(store->write_checkpoint(make_checkpoint(2, {{"phi", 20000}})).value().id == 2);
    REQUIRE(store->put_metrics(MetricsRecord{1, 0, 1.0, 2.0, 3, 4, "p", 5.0, {}}).ok());
    REQUIRE(store->put_peer(PeerRecord{"peer", {"/ip4/1.2.3.4/tcp/1"}, 1, 2, 0, 0, 0.0}).ok());
  }
  RawDb raw(path);
  for (auto* h : raw.handles) REQUIRE(raw.db->Flush(rocksdb::FlushOptions(), h).ok());
}

Status open_status(const StoreOptions& o) { return Store::open(o).status(); }

bool mentions(const Status& s, const std::string& text) { return s.message().find(text) != std::string::npos; }

}  // namespace

TEST_CASE("a new store is stamped with the schema version and keeps meta values") {
  TempDir dir;
  {
    auto store = open_or_fail(options_for(dir.sub("db")));
    CHECK(store->schema_version() == kSchemaVersion);
    CHECK_FALSE(store->run_id().value().has_value());
    REQUIRE(store->set_identity_ref("/home/u/.noloco/identity.key").ok());
    REQUIRE(store->set_run("run-123", to_bytes("manifest bytes")).ok());
  }
  auto store = open_or_fail(options_for(dir.sub("db")));
  CHECK(store->identity_ref().value() == "/home/u/.noloco/identity.key");
  CHECK(store->run_id().value() == "run-123");
  CHECK(store->run_manifest().value() == to_bytes("manifest bytes"));
}

TEST_CASE("opening without create_if_missing, or read-only, needs an existing store") {
  TempDir dir;
  auto o = options_for(dir.sub("none"));
  o.create_if_missing = false;
  CHECK(open_status(o).code() == StatusCode::kNotFound);
  o = options_for(dir.sub("none"));
  o.mode = OpenMode::kReadOnly;
  CHECK(open_status(o).code() == StatusCode::kNotFound);
  CHECK_FALSE(fs::exists(dir.sub("none")));
  o = options_for("");
  CHECK(open_status(o).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("a store from a newer schema is refused and left untouched") {
  TempDir dir;
  populate(dir.str());
  {
    RawDb raw(dir.str());
    raw.put(kCfMeta, std::string(meta_key::kSchemaVersion), std::string("\x04\x00\x00\x00", 4));
  }
  Status s = open_status(options_for(dir.str()));
  CHECK(s.code() == StatusCode::kUnsupported);
  CHECK(mentions(s, "schema version 4, newer than this build's 3"));
  auto ro = options_for(dir.str());
  ro.mode = OpenMode::kReadOnly;
  CHECK(open_status(ro).code() == StatusCode::kUnsupported);
  RawDb raw(dir.str());
  CHECK(raw.get(kCfMeta, std::string(meta_key::kSchemaVersion)) == std::string("\x04\x00\x00\x00", 4));
  CHECK(parse_be64(raw.get(kCfMeta, std::string(meta_key::kLatestCheckpoint))).value() == 2);
}

TEST_CASE("unknown schema versions, a missing version and unknown column families are refused") {
  TempDir dir;
  populate(dir.str());
  SECTION("version 0") {
    {
      RawDb raw(dir.str());
      raw.put(kCfMeta, std::string(meta_key::kSchemaVersion), std::string(4, '\0'));
    }
    Status s = open_status(options_for(dir.str()));
    CHECK(s.code() == StatusCode::kUnsupported);
    CHECK(mentions(s, "unknown schema version 0"));
  }
  SECTION("malformed version value") {
    {
      RawDb raw(dir.str());
      raw.put(kCfMeta, std::string(meta_key::kSchemaVersion), "1");
    }
    Status s = open_status(options_for(dir.str()));
    CHECK(s.code() == StatusCode::kCorrupt);
    CHECK(mentions(s, "schema version value is 1 bytes"));
  }
  SECTION("no version but data") {
    {
      RawDb raw(dir.str());
      raw.del(kCfMeta, std::string(meta_key::kSchemaVersion));
    }
    Status s = open_status(options_for(dir.str()));
    CHECK(s.code() == StatusCode::kUnsupported);
    CHECK(mentions(s, "no schema version"));
  }
  SECTION("unknown column family") {
    {
      RawDb raw(dir.str());
      rocksdb::ColumnFamilyHandle* h = nullptr;
      REQUIRE(raw.db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "shards_v2", &h).ok());
      raw.handles.push_back(h);
    }
    Status s = open_status(options_for(dir.str()));
    CHECK(s.code() == StatusCode::kUnsupported);
    CHECK(mentions(s, "'shards_v2'"));
  }
}

TEST_CASE("a store whose creation was interrupted is finished on the next open") {
  TempDir dir;
  {
    rocksdb::DBOptions o;
    o.create_if_missing = true;
    o.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> d = {{rocksdb::kDefaultColumnFamilyName, {}}, {kCfMeta, {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> hs;
    rocksdb::DB* db = nullptr;
    REQUIRE(rocksdb::DB::Open(o, dir.str(), d, &hs, &db).ok());
    for (auto* h : hs) REQUIRE(db->DestroyColumnFamilyHandle(h).ok());
    delete db;
  }
  auto store = open_or_fail(options_for(dir.str()));
  CHECK(store->schema_version() == kSchemaVersion);
  REQUIRE(store->put_metrics(MetricsRecord{1, 0, 0, 0, 0, 0, "", 0, {}}).ok());
}

TEST_CASE("corrupt stores give a clear error, never a crash") {
  TempDir dir;
  populate(dir.str());
  SECTION("garbage CURRENT") {
    write_file(fs::path(dir.str()) / "CURRENT", "\x01\x02garbage");
    Status s = open_status(options_for(dir.str()));
    CHECK(s.code() == StatusCode::kCorrupt);
    CHECK(mentions(s, "cannot be read"));
    auto ro = options_for(dir.str());
    ro.mode = OpenMode::kReadOnly;
    CHECK(open_status(ro).code() == StatusCode::kCorrupt);
  }
  SECTION("CURRENT naming a missing MANIFEST") {
    write_file(fs::path(dir.str()) / "CURRENT", "MANIFEST-999999\n");
    Status s = open_status(options_for(dir.str()));
    CHECK(s.code() == StatusCode::kCorrupt);
  }
  SECTION("garbage MANIFEST") {
    auto manifests = files_with(dir.str(), "MANIFEST-", true);
    REQUIRE_FALSE(manifests.empty());
    for (const auto& m : manifests) write_file(m, std::string(300, '\x5a'));
    Status s = open_status(options_for(dir.str()));
    CHECK(s.code() == StatusCode::kCorrupt);
  }
  SECTION("truncated SST files") {
    auto ssts = files_with(dir.str(), ".sst", false);
    REQUIRE_FALSE(ssts.empty());
    for (const auto& f : ssts) fs::resize_file(f, fs::file_size(f) / 2);
    Status s = open_status(options_for(dir.str()));
    CHECK_FALSE(s.ok());
    CHECK(s.code() == StatusCode::kCorrupt);
    CHECK(mentions(s, "opening store"));
  }
  SECTION("truncated blob files (a checkpoint written before chunk ingestion): its load fails with a reason") {
    auto blobs = files_with(dir.str(), ".blob", false);
    REQUIRE_FALSE(blobs.empty());
    for (const auto& f : blobs) fs::resize_file(f, fs::file_size(f) / 2);
    auto r = Store::open(options_for(dir.str()));
    if (r.ok()) {  // RocksDB does not check blob file sizes at open; the load must fail cleanly
      auto c = (*r)->load_checkpoint(1);
      REQUIRE_FALSE(c.ok());
      CHECK_FALSE(c.status().message().empty());
      auto latest = (*r)->load_latest_valid();  // the ingested checkpoint is unaffected
      REQUIRE(latest.ok());
      CHECK((*latest)->id == 2);
    } else {
      CHECK_FALSE(r.status().message().empty());
    }
  }
}

TEST_CASE("a second read-write open is refused while the first is open") {
  TempDir dir;
  auto first = open_or_fail(options_for(dir.str()));
  Status s = open_status(options_for(dir.str()));
  CHECK(s.code() == StatusCode::kUnavailable);
  CHECK(mentions(s, "read-only"));
}

TEST_CASE("read-only open works while a writer is open and follows it on refresh") {
  TempDir dir;
  auto writer = open_or_fail(options_for(dir.str()));
  auto first = make_checkpoint(5, {{"phi", 50000}, {"theta", 100}});
  REQUIRE(writer->write_checkpoint(first).ok());
  REQUIRE(writer->set_run("run-x", to_bytes("m")).ok());

  auto ro_opts = options_for(dir.str());
  ro_opts.mode = OpenMode::kReadOnly;
  auto reader = open_or_fail(ro_opts);
  CHECK(reader->read_only());
  CHECK(reader->run_id().value() == "run-x");
  auto got = reader->load_latest();
  REQUIRE(got.ok());
  CHECK(got->blobs[0].data == first.blobs[0].data);

  REQUIRE(writer->write_checkpoint(make_checkpoint(6, {{"phi", 100}})).ok());
  REQUIRE(writer->put_metrics(MetricsRecord{6, 0, 0.5, 0, 0, 0, "", 0, {}}).ok());
  CHECK(reader->latest_checkpoint_info().value()->manifest.step == 5);  // a consistent view until refresh
  {
    Status refreshed = reader->refresh();
    INFO(refreshed.to_string());
    REQUIRE(refreshed.ok());
  }
  CHECK(reader->latest_checkpoint_info().value()->manifest.step == 6);
  CHECK(reader->recent_metrics(1).value().at(0).loss == 0.5);

  CHECK(reader->put_metrics(MetricsRecord{}).code() == StatusCode::kInvalidArgument);
  CHECK(reader->write_checkpoint(first).status().code() == StatusCode::kInvalidArgument);
  CHECK(reader->ban("p", "r", 0).code() == StatusCode::kInvalidArgument);

  // The writer is unaffected and the reader's temporary directory goes away with it.
  reader.reset();
  REQUIRE(writer->write_checkpoint(make_checkpoint(7, {{"phi", 100}})).ok());
  CHECK(writer->load_latest().value().manifest.step == 7);
}

// Regression: a RocksDB 7.8 secondary instance crashed (SIGSEGV in the blob cache key) on any
// value kept in a blob file (store.cc, open_rocks). Stores written before chunk ingestion keep
// their chunks in blob files.
TEST_CASE("read-only open loads checkpoints whose chunks are in blob files, also while the writer runs") {
  TempDir dir;
  { auto created = open_or_fail(options_for(dir.str())); }
  auto old = make_checkpoint(4, {{"phi", 50000}, {"theta", 30000}});
  write_legacy_checkpoint(dir.str(), 1, old, 4096);
  REQUIRE_FALSE(files_with(dir.str(), ".blob", false).empty());

  auto writer = open_or_fail(options_for(dir.str()));
  auto cp = make_checkpoint(5, {{"phi", 50000}, {"theta", 30000}});
  REQUIRE(writer->write_checkpoint(cp).ok());
  REQUIRE(writer->flush().ok());

  const auto old_logs = files_with(dir.str(), "LOG.old", true);  // from the opens before the writer's
  auto ro_opts = options_for(dir.str());
  ro_opts.mode = OpenMode::kReadOnly;
  auto reader = open_or_fail(ro_opts);
  auto legacy = reader->load_checkpoint(1);
  REQUIRE(legacy.ok());
  CHECK(legacy->blobs[0].data == old.blobs[0].data);
  CHECK(legacy->blobs[1].data == old.blobs[1].data);
  auto got = reader->load_latest_valid();
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->checkpoint.blobs.size() == 2);
  CHECK((*got)->checkpoint.blobs[0].data == cp.blobs[0].data);
  CHECK((*got)->checkpoint.blobs[1].data == cp.blobs[1].data);

  // A newer checkpoint becomes visible after refresh, and the writer's LOG was not rotated by
  // the reader (its own log lives in its temporary directory).
  auto next = make_checkpoint(6, {{"phi", 50000}});
  REQUIRE(writer->write_checkpoint(next).ok());
  REQUIRE(writer->flush().ok());
  {
    Status refreshed = reader->refresh();
    INFO(refreshed.to_string());
    REQUIRE(refreshed.ok());
  }
  auto latest = reader->load_latest();
  REQUIRE(latest.ok());
  CHECK(latest->manifest.step == 6);
  CHECK(latest->blobs[0].data == next.blobs[0].data);
  CHECK(files_with(dir.str(), "LOG.old", true) == old_logs);
}
