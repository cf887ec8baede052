// How checkpoint bytes sit on disk: one plain data file per checkpoint, written once, removed
// when pruned or when no manifest names it; damage to it is caught at load; stores written
// before data files keep working; staging leftovers of older builds go.
#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "storage/keys.h"
#include "storage_test_util.h"

using namespace noloco;
using namespace noloco::storage;
using namespace noloco::storage::test;
namespace fs = std::filesystem;

namespace {

// This process's write_bytes from /proc/self/io (bytes sent towards the disk); nullopt where
// the kernel does not report it.
std::optional<uint64_t> written_bytes() {
  FILE* f = std::fopen("/proc/self/io", "r");
  if (!f) return std::nullopt;
  char line[128];
  std::optional<uint64_t> v;
  unsigned long long x = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "write_bytes: %llu", &x) == 1) v = x;
  std::fclose(f);
  return v;
}

size_t count_files(const std::string& dir, const std::string& ext) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ext) ++n;
  return n;
}

std::vector<uint64_t> live_ids(Store& s) {
  std::vector<uint64_t> ids;
  const auto infos = s.list_checkpoints().value();  // kept: value() refers into the Result
  for (const auto& c : infos) ids.push_back(c.id);
  return ids;
}

}  // namespace

TEST_CASE("a checkpoint's bytes are one data file, written once, and never in RocksDB") {
  TempDir dir;
  auto store = open_or_fail(options_for(dir.str()));
  REQUIRE(store->write_checkpoint(make_checkpoint(1, {{"phi", 100000}})).ok());  // the store's own files exist
  REQUIRE(store->flush().ok());
  const auto before = written_bytes();
  auto c = make_checkpoint(2, {{"phi", 3000000}, {"theta", 2000000}, {"empty", 0}});
  auto info = store->write_checkpoint(c);
  REQUIRE(info.ok());
  const auto after = written_bytes();
  CHECK(fs::file_size(data_file(dir.str(), info->id)) == 5000000);
  if (before && after && *after > *before) {
    // The data goes to disk once: the file, plus the manifest batch and RocksDB's bookkeeping.
    CHECK(*after - *before >= 5000000);
    CHECK(*after - *before < 5000000 + 512 * 1024);
  }
  // No chunk value and no SST of chunk size in the database.
  store.reset();
  RawDb raw(dir.str(), /*read_only=*/true);
  for (const auto& f : raw.checkpoint_files()) CHECK(f.size < 1000000);
}

TEST_CASE("a truncated, extended or damaged latest data file is caught and the previous checkpoint loads") {
  const std::string damage = GENERATE(as<std::string>{}, "truncated", "extended", "flipped", "missing");
  INFO(damage);
  TempDir dir;
  auto o = options_for(dir.str());
  auto prev = make_checkpoint(1, {{"phi", 50000}, {"theta", 30000}});
  uint64_t bad = 0;
  {
    auto store = open_or_fail(o);
    REQUIRE(store->write_checkpoint(prev).ok());
    bad = store->write_checkpoint(make_checkpoint(2, {{"phi", 50000}, {"theta", 30000}})).value().id;
  }
  const fs::path f = data_file(dir.str(), bad);
  if (damage == "truncated") fs::resize_file(f, 50000 + 10000);  // a torn write: cut inside theta
  if (damage == "extended") fs::resize_file(f, 80001);
  if (damage == "flipped") flip_file_byte(f, 50000 + 29999);  // the last byte of theta
  if (damage == "missing") fs::remove(f);
  auto store = open_or_fail(o);
  auto direct = store->load_checkpoint(bad);
  REQUIRE_FALSE(direct.ok());
  CHECK(direct.status().code() == StatusCode::kCorrupt);
  const std::string why = direct.status().message();
  CHECK(why.find("checkpoint " + std::to_string(bad) + " (step 2)") != std::string::npos);
  if (damage == "truncated") CHECK(why.find("is 60000 bytes, expected 80000 (truncated)") != std::string::npos);
  if (damage == "extended") CHECK(why.find("is 80001 bytes, expected 80000") != std::string::npos);
  if (damage == "flipped") CHECK(why.find("blob 'theta' checksum mismatch") != std::string::npos);
  if (damage == "missing") CHECK(why.find("is missing") != std::string::npos);
  auto valid = store->load_latest_valid();
  REQUIRE(valid.ok());
  REQUIRE(valid->has_value());
  CHECK((*valid)->id == bad - 1);
  REQUIRE((*valid)->skipped.size() == 1);
  CHECK((*valid)->checkpoint.blobs[1].data == prev.blobs[1].data);
  // The damaged checkpoint is committed, so it is not an orphan: the open left its file as it was
  // (only retention removes it), for whoever wants to look at it.
  if (damage != "missing") CHECK(fs::exists(f));
}

TEST_CASE("data files without a manifest are removed by a read-write open and left alone by a read-only one") {
  TempDir dir;
  {
    auto store = open_or_fail(options_for(dir.str()));
    REQUIRE(store->write_checkpoint(make_checkpoint(1, {{"phi", 10000}})).ok());
  }
  const fs::path data = fs::path(dir.str()) / "checkpoint_data";
  std::ofstream(data / "ckpt-7.data") << std::string(5000, 'x');  // a write cut before its commit
  std::ofstream(data / "ckpt-1.data.tmp") << "y";                  // not a name the store writes
  fs::create_directories(data / "odd-dir");
  {
    auto ro = options_for(dir.str());
    ro.mode = OpenMode::kReadOnly;
    auto reader = open_or_fail(ro);
    CHECK(reader->load_latest().value().manifest.step == 1);
    CHECK(reader->list_checkpoints().value().size() == 1);
  }
  CHECK(fs::exists(data / "ckpt-7.data"));
  CHECK(fs::exists(data / "ckpt-1.data.tmp"));
  auto store = open_or_fail(options_for(dir.str()));
  CHECK(data_file_ids(dir.str()) == std::set<uint64_t>{1});
  CHECK_FALSE(fs::exists(data / "ckpt-1.data.tmp"));
  CHECK_FALSE(fs::exists(data / "odd-dir"));
  CHECK(store->load_latest().value().manifest.step == 1);
  auto next = store->write_checkpoint(make_checkpoint(2, {{"phi", 10000}}));
  REQUIRE(next.ok());
  CHECK(store->load_latest().value().manifest.step == 2);
  CHECK(data_file_ids(dir.str()) == std::set<uint64_t>{1, next->id});
}

TEST_CASE("pruned checkpoints' data files are removed and kept ones are never rewritten") {
  TempDir dir;
  auto o = options_for(dir.str());
  o.retention.keep_last = 2;
  o.retention.keep_every_steps = 3;
  auto store = open_or_fail(o);
  std::map<uint64_t, uint64_t> inode;  // id -> its data file's inode right after the write
  for (uint64_t step = 1; step <= 8; ++step) {
    auto info = store->write_checkpoint(make_checkpoint(step, {{"phi", 300000}, {"theta", 200000}}));
    REQUIRE(info.ok());
    struct stat st {};
    REQUIRE(::stat(data_file(dir.str(), info->id).c_str(), &st) == 0);
    inode[info->id] = st.st_ino;
    REQUIRE(store->flush().ok());  // waits for the pruned files' unlink (a background thread)
    const auto live = live_ids(*store);
    CHECK(data_file_ids(dir.str()) == std::set<uint64_t>(live.begin(), live.end()));
    for (uint64_t id : live) {
      REQUIRE(::stat(data_file(dir.str(), id).c_str(), &st) == 0);
      CHECK(st.st_ino == inode[id]);
      CHECK(st.st_size == 500000);
    }
  }
  std::vector<uint64_t> steps;
  const auto infos = store->list_checkpoints().value();
  for (const auto& c : infos) steps.push_back(c.manifest.step);
  CHECK(steps == std::vector<uint64_t>{3, 6, 7, 8});  // 3 and 6 are milestones; 7 and 8 the last two
}

TEST_CASE("a paced checkpoint write takes at least its bytes over the rate") {
  TempDir dir;
  auto store = open_or_fail(options_for(dir.str()));
  const auto t0 = std::chrono::steady_clock::now();
  auto info = store->write_checkpoint(make_checkpoint(1, {{"phi", 300000}}), CheckpointWriteOptions{1000000});
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(info.ok());
  CHECK(s >= 0.29);  // 300 kB at 1 MB/s: the last piece is not written before 0.3 s
  CHECK(store->load_latest().value().blobs[0].data == make_checkpoint(1, {{"phi", 300000}}).blobs[0].data);
}

TEST_CASE("a store written before data files loads unchanged and its blob files go once pruned") {
  TempDir dir;
  { auto created = open_or_fail(options_for(dir.str())); }
  auto c1 = make_checkpoint(1, {{"phi", 20000}, {"theta", 5000}});
  auto c2 = make_checkpoint(2, {{"phi", 20000}, {"theta", 5000}});
  write_legacy_checkpoint(dir.str(), 1, c1, 4096);
  write_legacy_checkpoint(dir.str(), 2, c2, 4096);
  REQUIRE(count_files(dir.str(), ".blob") > 0);

  auto o = options_for(dir.str());
  o.retention.keep_last = 2;
  {
    auto store = open_or_fail(o);
    CHECK(store->load_checkpoint(1).value().blobs[0].data == c1.blobs[0].data);
    auto latest = store->load_latest_valid();
    REQUIRE(latest.ok());
    CHECK((*latest)->id == 2);
    CHECK((*latest)->checkpoint.blobs[1].data == c2.blobs[1].data);
    // New checkpoints go into data files beside the old chunks and take the next ids.
    auto c3 = store->write_checkpoint(make_checkpoint(3, {{"phi", 20000}}));
    REQUIRE(c3.ok());
    CHECK(c3->id == 3);
    CHECK(store->load_checkpoint(2).value().blobs[0].data == c2.blobs[0].data);
    REQUIRE(store->write_checkpoint(make_checkpoint(4, {{"phi", 20000}})).ok());
  }
  // Both old checkpoints are pruned: their blob files are gone.
  CHECK(count_files(dir.str(), ".blob") == 0);
  auto store = open_or_fail(o);
  std::vector<uint64_t> steps;
  auto infos = store->list_checkpoints().value();
  for (const auto& c : infos) steps.push_back(c.manifest.step);
  CHECK(steps == std::vector<uint64_t>{3, 4});
  CHECK(store->load_latest().value().manifest.step == 4);
}

TEST_CASE("staging leftovers of older builds are removed by a read-write open and left alone by a read-only one") {
  TempDir dir;
  {
    auto store = open_or_fail(options_for(dir.str()));
    REQUIRE(store->write_checkpoint(make_checkpoint(1, {{"phi", 10000}})).ok());
  }
  const fs::path staging = fs::path(dir.str()) / "staging";
  fs::create_directories(staging / "odd-dir");
  std::ofstream(staging / "ckpt-2.sst") << std::string(5000, 'x');  // a partial chunk file
  std::ofstream(staging / "odd-dir" / "f") << "y";
  {
    auto ro = options_for(dir.str());
    ro.mode = OpenMode::kReadOnly;
    auto reader = open_or_fail(ro);
    CHECK(reader->load_latest().value().manifest.step == 1);
  }
  CHECK(fs::exists(staging / "ckpt-2.sst"));
  auto store = open_or_fail(options_for(dir.str()));
  CHECK(fs::is_empty(staging));
  auto next = store->write_checkpoint(make_checkpoint(2, {{"phi", 10000}}));
  REQUIRE(next.ok());
  CHECK(next->id == 2);
  CHECK(store->load_latest().value().manifest.step == 2);
  CHECK(fs::is_empty(staging));
}
