// Stores written before xxHash (schema version 1, record version 1, legacy_hash64 checksums)
// keep opening, verifying and resuming. The fixture tests/storage/data/schema1_store is a real
// node store written by noloco at commit bab0d13 (how: tests/storage/data/README.md); every test
// works on a copy, so the fixture is never changed.
#include <catch2/catch.hpp>

#include <filesystem>

#include "storage/keys.h"
#include "storage_test_util.h"

using namespace noloco;
using namespace noloco::storage;
using namespace noloco::storage::test;
namespace fs = std::filesystem;

namespace {

// What `noloco status --json` of the bab0d13 build printed for the fixture.
constexpr uint64_t kOldCheckpointId = 1;
constexpr uint64_t kOldStep = 40;
constexpr uint64_t kOldOuterStep = 4;
constexpr size_t kOldBlobs = 9;
constexpr const char* kRunId = "37fcf6c832c1c689e7d8be01789cd5e2";
constexpr const char* kPartner = "12D3KooWAvtRMEeqi1mfH5HSoUe3FpDcLXRB2mdoR2XnZD6gPbNd";
constexpr int64_t kWrittenUnix = 1796282040;  // when the fixture was written

std::string copy_fixture(const TempDir& dir) {
  const std::string db = dir.sub("db");
  fs::copy(fs::path(NOLOCO_SOURCE_DIR) / "tests/storage/data/schema1_store", db, fs::copy_options::recursive);
  return db;
}

std::unique_ptr<Store> open_store(const std::string& path, OpenMode mode) {
  StoreOptions o;
  o.path = path;
  o.mode = mode;
  o.create_if_missing = false;
  o.now_unix = [] { return kWrittenUnix + 60; };  // the peer book as it was, whatever today is
  auto s = Store::open(std::move(o));
  REQUIRE(s.ok());
  return std::move(s).value();
}

// The version byte of a checkpoint's manifest record, read straight from RocksDB.
uint8_t manifest_record_version(const std::string& path, uint64_t id) {
  RawDb raw(path, /*read_only=*/true);
  const std::string v = raw.get(kCfCheckpoints, manifest_key(id));
  REQUIRE(!v.empty());
  return static_cast<uint8_t>(v[0]);
}

void check_old_contents(Store& store) {
  auto loaded = store.load_latest_valid();
  REQUIRE(loaded.ok());
  REQUIRE(loaded->has_value());
  const LoadedCheckpoint& cp = **loaded;
  CHECK(cp.skipped.empty());
  CHECK(cp.id == kOldCheckpointId);
  CHECK(cp.checkpoint.manifest.run_id == kRunId);
  CHECK(cp.checkpoint.manifest.step == kOldStep);
  CHECK(cp.checkpoint.manifest.outer_step == kOldOuterStep);
  REQUIRE(cp.checkpoint.blobs.size() == kOldBlobs);
  for (const auto& b : cp.checkpoint.manifest.blobs) CHECK(b.checksum_kind == BlobChecksum::kLegacyHash64);

  auto peers = store.list_peers();
  REQUIRE(peers.ok());
  REQUIRE(peers->size() == 1);
  CHECK((*peers)[0].peer_id == kPartner);
  CHECK((*peers)[0].successes == 4);
  CHECK((*peers)[0].failures == 0);

  auto metrics = store.recent_metrics(10);
  REQUIRE(metrics.ok());
  REQUIRE(metrics->size() == 4);
  for (size_t i = 0; i < 4; ++i) CHECK((*metrics)[i].outer_step == i + 1);
  CHECK(metrics->back().bytes_in == 364483);
  CHECK(metrics->back().bytes_out == 369753);
  CHECK(metrics->back().partner == kPartner);
  CHECK(metrics->back().fields.at("inner_step") == 40.0);
}

}  // namespace

TEST_CASE("a schema 1 store of the previous build opens read-only and verifies", "[storage][compat]") {
  TempDir dir;
  const std::string db = copy_fixture(dir);
  auto store = open_store(db, OpenMode::kReadOnly);
  CHECK(store->schema_version() == 1);  // read-only: left as it is
  check_old_contents(*store);
  auto run = store->run_id();
  REQUIRE(run.ok());
  CHECK(*run == std::optional<std::string>(kRunId));
}

TEST_CASE("a schema 1 store resumes: stamped schema 3, new records in the new format, old ones still read",
          "[storage][compat]") {
  TempDir dir;
  const std::string db = copy_fixture(dir);
  uint64_t new_id = 0;
  {
    auto store = open_store(db, OpenMode::kReadWrite);
    CHECK(store->schema_version() == kSchemaVersion);
    check_old_contents(*store);

    // Resume: load the latest checkpoint, write the next one from it.
    auto old = store->load_checkpoint(kOldCheckpointId);
    REQUIRE(old.ok());
    Checkpoint next = *old;
    next.manifest.step = kOldStep + 10;
    next.manifest.outer_step = kOldOuterStep + 1;
    auto info = store->write_checkpoint(next);
    REQUIRE(info.ok());
    new_id = info->id;
    CHECK(new_id > kOldCheckpointId);
    for (const auto& b : info->manifest.blobs) CHECK(b.checksum_kind == BlobChecksum::kXxh3);
    CHECK(info->manifest.layout == BlobLayout::kDataFile);  // beside the old chunk-layout one
    CHECK(std::filesystem::exists(data_file(db, new_id)));

    MetricsRecord m;
    m.outer_step = kOldOuterStep + 1;
    m.partner = kPartner;
    REQUIRE(store->put_metrics(m).ok());
    REQUIRE(store->record_outcome(kPartner, true, 1.0).ok());
  }
  CHECK(manifest_record_version(db, kOldCheckpointId) == 1);
  CHECK(manifest_record_version(db, new_id) == 3);
  {
    RawDb raw(db, /*read_only=*/true);
    CHECK(raw.get(kCfMeta, std::string(meta_key::kSchemaVersion)) == std::string("\x03\x00\x00\x00", 4));
  }

  auto store = open_store(db, OpenMode::kReadOnly);
  CHECK(store->schema_version() == kSchemaVersion);
  auto latest = store->load_latest_valid();
  REQUIRE(latest.ok());
  REQUIRE(latest->has_value());
  CHECK((*latest)->id == new_id);
  CHECK((*latest)->skipped.empty());
  CHECK((*latest)->checkpoint.manifest.step == kOldStep + 10);
  auto old = store->load_checkpoint(kOldCheckpointId);  // kept by retention, still verifies
  REQUIRE(old.ok());
  REQUIRE(old->blobs.size() == (*latest)->checkpoint.blobs.size());
  for (size_t i = 0; i < old->blobs.size(); ++i) CHECK(old->blobs[i].data == (*latest)->checkpoint.blobs[i].data);
  auto metrics = store->recent_metrics(10);
  REQUIRE(metrics.ok());
  CHECK(metrics->size() == 5);
  auto peer = store->get_peer(kPartner);
  REQUIRE(peer.ok());
  REQUIRE(peer->has_value());
  CHECK((*peer)->successes == 5);
}

TEST_CASE("a damaged blob of a schema 1 checkpoint is caught by its legacy checksum", "[storage][compat]") {
  TempDir dir;
  const std::string db = copy_fixture(dir);
  {
    RawDb raw(db);
    std::string chunk = raw.get(kCfCheckpoints, chunk_key(kOldCheckpointId, 1, 0));
    REQUIRE(!chunk.empty());
    chunk[chunk.size() / 2] ^= 0x01;
    raw.put(kCfCheckpoints, chunk_key(kOldCheckpointId, 1, 0), chunk);
  }
  auto store = open_store(db, OpenMode::kReadOnly);
  auto cp = store->load_checkpoint(kOldCheckpointId);
  REQUIRE_FALSE(cp.ok());
  CHECK(cp.status().code() == StatusCode::kCorrupt);
  CHECK(cp.status().message().find("checksum mismatch") != std::string::npos);
}
