#include <catch2/catch.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "storage/checkpoint_writer.h"
#include "storage/keys.h"
#include "storage_test_util.h"

using namespace noloco;
using namespace noloco::storage;
using namespace noloco::storage::test;

namespace {

const std::vector<std::pair<std::string, size_t>> kBlobs = {
    {"phi", 10000}, {"theta", 4096}, {"delta", 1}, {"adam_m", 0}, {"rng", 17}};

void require_same(const Checkpoint& got, const Checkpoint& want) {
  CHECK(got.manifest.run_id == want.manifest.run_id);
  CHECK(got.manifest.step == want.manifest.step);
  CHECK(got.manifest.outer_step == want.manifest.outer_step);
  CHECK(got.manifest.created_unix_ms == want.manifest.created_unix_ms);
  CHECK(got.manifest.config == want.manifest.config);
  CHECK(got.manifest.codec == want.manifest.codec);
  CHECK(got.manifest.fields == want.manifest.fields);
  REQUIRE(got.blobs.size() == want.blobs.size());
  for (size_t i = 0; i < want.blobs.size(); ++i) {
    CHECK(got.blobs[i].name == want.blobs[i].name);
    CHECK(got.blobs[i].data == want.blobs[i].data);
  }
}

std::vector<uint64_t> steps_of(Store& s) {
  std::vector<uint64_t> out;
  auto infos = s.list_checkpoints().value();
  for (const auto& i : infos) out.push_back(i.manifest.step);
  return out;
}

}  // namespace

TEST_CASE("checkpoint round trip across reopen, with multi-piece and empty blobs") {
  TempDir dir;
  auto want = make_checkpoint(100, kBlobs);
  uint64_t id = 0;
  {
    auto store = open_or_fail(options_for(dir.str()));
    auto info = store->write_checkpoint(want);
    REQUIRE(info.ok());
    id = info->id;
    REQUIRE(info->manifest.blobs.size() == kBlobs.size());
    CHECK(info->manifest.layout == BlobLayout::kDataFile);
    CHECK(info->manifest.blobs[0].chunk_count == 0);
    CHECK(info->manifest.blobs[0].size == 10000);  // 3 pieces of at most 4096 bytes
    CHECK(info->manifest.blobs[0].checksum == xxh3_64(want.blobs[0].data, 0x6e6f6c6f636f6231ULL));
    // The data file holds the blobs back to back, nothing else.
    CHECK(std::filesystem::file_size(data_file(dir.str(), id)) == 10000 + 4096 + 1 + 0 + 17);
  }
  auto store = open_or_fail(options_for(dir.str()));
  auto latest = store->latest_checkpoint_info();
  REQUIRE(latest.ok());
  REQUIRE(latest->has_value());
  CHECK((*latest)->id == id);
  CHECK((*latest)->manifest.step == 100);
  auto got = store->load_latest();
  REQUIRE(got.ok());
  require_same(*got, want);
  auto valid = store->load_latest_valid();
  REQUIRE(valid.ok());
  REQUIRE(valid->has_value());
  CHECK((*valid)->skipped.empty());
  require_same((*valid)->checkpoint, want);

  // Ids keep increasing after a reopen.
  auto next = store->write_checkpoint(make_checkpoint(200, kBlobs));
  REQUIRE(next.ok());
  CHECK(next->id == id + 1);
}

TEST_CASE("an empty store has no checkpoint") {
  TempDir dir;
  auto store = open_or_fail(options_for(dir.str()));
  auto v = store->load_latest_valid();
  REQUIRE(v.ok());
  CHECK_FALSE(v->has_value());
  CHECK(store->load_latest().status().code() == StatusCode::kNotFound);
  CHECK_FALSE(store->latest_checkpoint_info().value().has_value());
}

TEST_CASE("a flipped byte in a stored blob is detected and the previous checkpoint is used") {
  TempDir dir;
  auto older = make_checkpoint(10, kBlobs);
  uint64_t bad_id = 0;
  {
    auto store = open_or_fail(options_for(dir.str()));
    REQUIRE(store->write_checkpoint(older).ok());
    bad_id = store->write_checkpoint(make_checkpoint(20, kBlobs)).value().id;
  }
  flip_file_byte(data_file(dir.str(), bad_id), 10000 + 1234);  // inside theta, after phi
  auto store = open_or_fail(options_for(dir.str()));
  auto direct = store->load_checkpoint(bad_id);
  REQUIRE_FALSE(direct.ok());
  CHECK(direct.status().code() == StatusCode::kCorrupt);
  CHECK(direct.status().message().find("blob 'theta' checksum mismatch") != std::string::npos);

  auto valid = store->load_latest_valid();
  REQUIRE(valid.ok());
  REQUIRE(valid->has_value());
  CHECK((*valid)->checkpoint.manifest.step == 10);
  REQUIRE((*valid)->skipped.size() == 1);
  CHECK((*valid)->skipped[0].find("checksum mismatch") != std::string::npos);
  require_same((*valid)->checkpoint, older);
}

TEST_CASE("missing and truncated data files and damaged manifests fall back too") {
  TempDir dir;
  uint64_t id1, id2, id3, id4;
  {
    auto store = open_or_fail(options_for(dir.str()));
    id1 = store->write_checkpoint(make_checkpoint(1, kBlobs)).value().id;
    id2 = store->write_checkpoint(make_checkpoint(2, kBlobs)).value().id;
    id3 = store->write_checkpoint(make_checkpoint(3, kBlobs)).value().id;
  }
  // keep_last is 3: all three are still there. Add a fourth with a bigger policy.
  {
    auto o = options_for(dir.str());
    o.retention.keep_last = 10;
    auto store = open_or_fail(o);
    id4 = store->write_checkpoint(make_checkpoint(4, kBlobs)).value().id;
  }
  std::filesystem::remove(data_file(dir.str(), id4));                  // missing file
  std::filesystem::resize_file(data_file(dir.str(), id3), 100);        // truncated file
  {
    RawDb raw(dir.str());
    std::string m = raw.get(kCfCheckpoints, manifest_key(id2));
    m[3] ^= 1;
    raw.put(kCfCheckpoints, manifest_key(id2), m);                   // manifest checksum
  }
  auto o = options_for(dir.str());
  o.retention.keep_last = 10;
  auto store = open_or_fail(o);
  CHECK(store->load_checkpoint(id4).status().code() == StatusCode::kCorrupt);
  CHECK(store->load_checkpoint(id4).status().message().find("ckpt-" + std::to_string(id4) + ".data is missing") !=
        std::string::npos);
  CHECK(store->load_checkpoint(id3).status().code() == StatusCode::kCorrupt);
  CHECK(store->load_checkpoint(id3).status().message().find("is 100 bytes, expected 14114 (truncated)") !=
        std::string::npos);
  CHECK(store->load_checkpoint(id2).status().message().find("checksum mismatch") != std::string::npos);
  auto valid = store->load_latest_valid();
  REQUIRE(valid.ok());
  REQUIRE(valid->has_value());
  CHECK((*valid)->id == id1);
  CHECK((*valid)->skipped.size() == 3);

  // When nothing verifies, the error lists every reason.
  flip_file_byte(data_file(dir.str(), id1), 0);
  auto none = store->load_latest_valid();
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().code() == StatusCode::kCorrupt);
  CHECK(none.status().message().find("no checkpoint") != std::string::npos);
}

TEST_CASE("retention keeps the last K and every M-th step, in the same batch") {
  TempDir dir;
  auto o = options_for(dir.str());
  o.retention.keep_last = 2;
  o.retention.keep_every_steps = 30;
  auto store = open_or_fail(o);
  for (uint64_t step = 10; step <= 100; step += 10) REQUIRE(store->write_checkpoint(make_checkpoint(step, {{"x", 5000}})).ok());
  CHECK(steps_of(*store) == std::vector<uint64_t>{30, 60, 90, 100});
  // Pruned checkpoints leave no data file behind, and nothing is stored as chunks.
  REQUIRE(store->flush().ok());  // waits for the pruned files' unlink (a background thread)
  std::set<uint64_t> live;
  const auto infos = store->list_checkpoints().value();
  for (const auto& i : infos) live.insert(i.id);
  CHECK(data_file_ids(dir.str()) == live);
  store.reset();
  {
    RawDb raw(dir.str());
    std::unique_ptr<rocksdb::Iterator> it(raw.db->NewIterator(rocksdb::ReadOptions(), raw.cf(kCfCheckpoints)));
    size_t chunks = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next())
      if (it->key()[0] == kChunkTag) ++chunks;
    CHECK(chunks == 0);
  }
  o.retention = {1, 0};
  store = open_or_fail(o);
  REQUIRE(store->write_checkpoint(make_checkpoint(110, {{"x", 1}})).ok());
  CHECK(steps_of(*store) == std::vector<uint64_t>{110});
}

TEST_CASE("invalid checkpoints are refused before anything is written") {
  TempDir dir;
  auto store = open_or_fail(options_for(dir.str()));
  auto c = make_checkpoint(1, {{"a", 10}, {"a", 20}});
  CHECK(store->write_checkpoint(c).status().code() == StatusCode::kInvalidArgument);
  c = make_checkpoint(1, {{"", 10}});
  CHECK(store->write_checkpoint(c).status().code() == StatusCode::kInvalidArgument);
  CHECK(store->list_checkpoints().value().empty());
}

TEST_CASE("the async writer commits in order, applies back-pressure and drains on close") {
  TempDir dir;
  auto store = open_or_fail(options_for(dir.str()));
  std::atomic<int> done{0};
  std::vector<uint64_t> order;
  std::mutex mu;
  {
    CheckpointWriterOptions wo;
    wo.max_queued = 1;
    wo.on_done = [&](const Result<CheckpointInfo>& r) {
      // No Catch assertions here: this runs on the writer thread.
      std::lock_guard l(mu);
      order.push_back(r.ok() ? r->manifest.step : 0);
      ++done;
    };
    CheckpointWriter writer(*store, wo);
    for (uint64_t s = 1; s <= 5; ++s) REQUIRE(writer.submit(make_checkpoint(s, {{"w", 9000}})).ok());
    REQUIRE(writer.flush().ok());
    CHECK(done == 5);
    CHECK(writer.last_committed()->manifest.step == 5);
    // try_submit never blocks; when refused the checkpoint stays with the caller.
    int accepted = 0;
    for (uint64_t s = 6; s <= 8; ++s) {
      auto c = make_checkpoint(s, {{"w", 100}});
      Status st = writer.try_submit(c);
      if (st.ok()) {
        ++accepted;
        CHECK(c.blobs.empty());
      } else {
        CHECK(st.code() == StatusCode::kUnavailable);
        CHECK(c.blobs.size() == 1);
      }
    }
    CHECK(accepted >= 1);
    auto now = writer.write_now(make_checkpoint(9, {{"w", 100}}));
    REQUIRE(now.ok());
    CHECK(writer.last_committed()->manifest.step == 9);
    REQUIRE(writer.close().ok());
    CHECK(writer.submit(make_checkpoint(10, {})).code() == StatusCode::kUnavailable);
  }
  std::lock_guard l(mu);
  CHECK(std::is_sorted(order.begin(), order.end()));
  CHECK(std::find(order.begin(), order.end(), 0u) == order.end());
  CHECK(store->latest_checkpoint_info().value()->manifest.step == 9);
}

TEST_CASE("the async writer thread runs nicer than its creator and write_now at the caller's priority") {
  TempDir dir;
  auto o = options_for(dir.str());
  auto nice_now = [] { return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())); };
  std::atomic<int> seen{-100};  // the nice value of the thread that wrote, from the phase hook
  o.checkpoint_phase_hook = [&](CheckpointPhase phase, uint64_t, uint64_t) {
    if (phase == CheckpointPhase::kCommitting) seen = nice_now();
  };
  auto store = open_or_fail(o);
  const int mine = nice_now();
  for (int nice : {10, 0}) {
    INFO("nice " << nice << ", test thread at " << mine);
    CheckpointWriterOptions wo;
    wo.nice = nice;
    CheckpointWriter writer(*store, wo);
    REQUIRE(writer.submit(make_checkpoint(1, {{"w", 100}})).ok());
    REQUIRE(writer.flush().ok());
    CHECK(seen == std::min(19, mine + nice));
    REQUIRE(writer.write_now(make_checkpoint(2, {{"w", 100}})).ok());
    CHECK(seen == mine);
    REQUIRE(writer.close().ok());
  }
  CHECK(nice_now() == mine);
}

TEST_CASE("the async writer reports a failed write at flush") {
  TempDir dir;
  auto store = open_or_fail(options_for(dir.str()));
  CheckpointWriter writer(*store);
  REQUIRE(writer.submit(make_checkpoint(1, {{"dup", 1}, {"dup", 1}})).ok());
  Status s = writer.flush();
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(writer.flush().ok());  // reported once
}

TEST_CASE("the async writer spreads a checkpoint over half the interval between submits") {
  TempDir dir;
  auto store = open_or_fail(options_for(dir.str()));
  std::atomic<int64_t> done_ns{0};
  CheckpointWriterOptions wo;
  wo.spread = 0.5;
  wo.min_bytes_per_s = 1;    // no floor: the interval alone sets the rate
  wo.first_bytes_per_s = 0;  // the first one unpaced
  wo.on_done = [&](const Result<CheckpointInfo>&) {
    done_ns = std::chrono::steady_clock::now().time_since_epoch().count();
  };
  CheckpointWriter writer(*store, wo);
  REQUIRE(writer.submit(make_checkpoint(1, {{"w", 200000}})).ok());
  REQUIRE(writer.flush().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(writer.submit(make_checkpoint(2, {{"w", 200000}})).ok());  // >= 0.4 s after the first
  REQUIRE(writer.flush().ok());
  const double took = (done_ns.load() - t0.time_since_epoch().count()) / 1e9;
  CHECK(took >= 0.19);  // 200 kB at 200 kB / (0.5 x >= 0.4 s): the last piece not before 0.2 s
  CHECK(store->load_latest().value().manifest.step == 2);
}
