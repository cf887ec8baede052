// A full disk during a checkpoint write (docs/storage.md, "Disk faults"): the write fails
// cleanly, the previous checkpoint stays intact and loadable, the store keeps answering reads,
// and once space is back the next checkpoint and every other write succeed without a reopen.
// The disk is simulated by DiskFaults (a file system under RocksDB that refuses writes past a
// byte budget), so the test needs no root and no mount; tools/chaos/enospc.sh does it for real.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "storage/disk_faults.h"
#include "storage/keys.h"
#include "storage_test_util.h"

using namespace noloco;
using namespace noloco::storage;
using namespace noloco::storage::test;

namespace {

// ~200 KiB: 50 pieces of 4 KiB, so a budget can run out in the middle of the data file.
const std::vector<std::pair<std::string, size_t>> kBlobs = {{"theta", 100000}, {"phi", 100000}, {"counters", 24}};

MetricsRecord metrics(uint64_t outer) {
  MetricsRecord m;
  m.outer_step = outer;
  m.loss = 1.0;
  return m;
}

// Ids of chunk files in the checkpoints column family (older builds' layout; none expected).
std::set<uint64_t> chunk_file_ids(const std::string& path) {
  RawDb raw(path, /*read_only=*/true);
  std::set<uint64_t> ids;
  for (const auto& f : raw.checkpoint_files())
    if (auto id = parse_chunk_key_id(f.smallestkey)) ids.insert(*id);
  return ids;
}

// Where the disk fills up during a checkpoint write.
enum class FullAt { kDataFile, kCommit };

void fill_disk_during_write(FullAt where) {
  TempDir dir;
  auto faults = std::make_shared<DiskFaults>();
  StoreOptions o = options_for(dir.str());
  o.disk_faults = faults;
  o.checkpoint_phase_hook = [&](CheckpointPhase p, uint64_t id, uint64_t step) {
    (void)id;
    if (step != 20) return;
    if (where == FullAt::kCommit && p == CheckpointPhase::kCommitting) faults->set_space_left(0);
  };
  auto store = open_or_fail(o);
  const Checkpoint good = make_checkpoint(10, kBlobs);
  REQUIRE(store->write_checkpoint(good).ok());
  REQUIRE(store->put_metrics(metrics(1)).ok());

  // The disk fills up: halfway through the data file, or just before the commit.
  if (where == FullAt::kDataFile) faults->set_space_left(100000);
  auto failed = store->write_checkpoint(make_checkpoint(20, kBlobs));
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().code() == StatusCode::kIoError);
  CHECK(failed.status().message().find("disk full") != std::string::npos);
  CHECK(faults->no_space_errors() > 0);

  // Still full: the previous checkpoint is the latest and loads; a new one fails again, clearly.
  auto loaded = store->load_latest_valid();
  REQUIRE(loaded.ok());
  REQUIRE(loaded->has_value());
  CHECK((*loaded)->checkpoint.manifest.step == 10);
  CHECK((*loaded)->checkpoint.blobs[0].data == good.blobs[0].data);
  CHECK((*loaded)->skipped.empty());
  CHECK_FALSE(store->write_checkpoint(make_checkpoint(25, kBlobs)).ok());
  CHECK(store->recent_metrics(10).value().size() == 1);

  // Space is back: the next checkpoint and metrics land, in the same process.
  faults->set_space_left(DiskFaults::kUnlimited);
  auto next = store->write_checkpoint(make_checkpoint(30, kBlobs));
  INFO((next.ok() ? std::string() : next.status().to_string()));
  REQUIRE(next.ok());
  REQUIRE(store->put_metrics(metrics(3)).ok());
  CHECK(store->latest_checkpoint_info().value()->manifest.step == 30);
  store.reset();

  // A plain reopen finds both checkpoints whole, nothing of the failed ones.
  auto again = open_or_fail(options_for(dir.str()));
  auto infos = again->list_checkpoints().value();
  REQUIRE(infos.size() == 2);
  CHECK(infos[0].manifest.step == 10);
  CHECK(infos[1].manifest.step == 30);
  CHECK(again->load_checkpoint(infos[0].id).ok());
  CHECK(again->load_checkpoint(infos[1].id).ok());
  CHECK(again->recent_metrics(10).value().size() == 2);
  const std::set<uint64_t> live = {infos[0].id, infos[1].id};
  again.reset();
  // Only the two committed checkpoints have data files; nothing went into RocksDB as chunks.
  CHECK(data_file_ids(dir.str()) == live);
  CHECK(chunk_file_ids(dir.str()).empty());
}

}  // namespace

TEST_CASE("disk full while the checkpoint's data file is written: clean failure, previous kept, next succeeds") {
  fill_disk_during_write(FullAt::kDataFile);
}

TEST_CASE("disk full at the commit batch: clean failure, previous kept, next succeeds without the caller reopening") {
  fill_disk_during_write(FullAt::kCommit);
}

TEST_CASE("disk full stops metrics and peer writes with a clear error, and they resume when space is back") {
  TempDir dir;
  auto faults = std::make_shared<DiskFaults>();
  StoreOptions o = options_for(dir.str());
  o.disk_faults = faults;
  auto store = open_or_fail(o);
  REQUIRE(store->write_checkpoint(make_checkpoint(10, kBlobs)).ok());
  faults->set_space_left(0);
  Status m = store->put_metrics(metrics(1));
  REQUIRE_FALSE(m.ok());
  CHECK(m.message().find("disk full") != std::string::npos);
  CHECK_FALSE(store->record_seen("peer-a", {"/ip4/127.0.0.1/tcp/1"}).ok());
  CHECK(store->load_latest().ok());  // reads go on
  faults->set_space_left(DiskFaults::kUnlimited);
  CHECK(store->put_metrics(metrics(2)).ok());
  CHECK(store->record_seen("peer-a", {"/ip4/127.0.0.1/tcp/1"}).ok());
  CHECK(store->write_checkpoint(make_checkpoint(20, kBlobs)).ok());
}

TEST_CASE("a read-write open with too little free space is refused clearly and creates nothing") {
  TempDir dir;
  StoreOptions o = options_for(dir.sub("db"));
  o.min_free_bytes_to_open = uint64_t{1} << 62;  // more than any disk has free
  auto r = Store::open(o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kIoError);
  CHECK(r.status().message().find("disk full") != std::string::npos);
  CHECK(r.status().message().find("needs at least") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.sub("db")));
  // An existing store: refused read-write the same way, still readable.
  open_or_fail(options_for(dir.sub("db")))->write_checkpoint(make_checkpoint(10, kBlobs)).value();
  CHECK(Store::open(o).status().code() == StatusCode::kIoError);
  StoreOptions ro = options_for(dir.sub("db"));
  ro.mode = OpenMode::kReadOnly;
  ro.min_free_bytes_to_open = o.min_free_bytes_to_open;
  auto reader = Store::open(ro);
  REQUIRE(reader.ok());
  CHECK((*reader)->load_latest().ok());
}

TEST_CASE("reads on another thread go on while the store is stopped by a full disk and reopened") {
  TempDir dir;
  auto faults = std::make_shared<DiskFaults>();
  StoreOptions o = options_for(dir.str());
  o.disk_faults = faults;
  auto store = open_or_fail(o);
  REQUIRE(store->write_checkpoint(make_checkpoint(10, kBlobs)).ok());
  REQUIRE(store->put_metrics(metrics(1)).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, failed_reads{0};
  std::thread reader([&] {
    while (!stop.load()) {
      auto c = store->load_latest_valid();
      auto m = store->recent_metrics(5);
      if (!c.ok() || !c->has_value() || !m.ok() || m->empty()) ++failed_reads;
      ++reads;
    }
  });
  for (int round = 0; round < 5; ++round) {
    faults->set_space_left(0);  // the commit's WAL write fails: RocksDB stops
    CHECK_FALSE(store->put_metrics(metrics(2 + round)).ok());
    CHECK_FALSE(store->write_checkpoint(make_checkpoint(20 + round, kBlobs)).ok());  // reopen fails: read-only
    faults->set_space_left(DiskFaults::kUnlimited);
    CHECK(store->write_checkpoint(make_checkpoint(30 + round, kBlobs)).ok());  // reopened
  }
  stop = true;
  reader.join();
  CHECK(reads.load() > 0);
  CHECK(failed_reads.load() == 0);
  CHECK(store->latest_checkpoint_info().value()->manifest.step == 34);
}
