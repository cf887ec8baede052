// How checkpoint chunks sit on disk: one ingested file per checkpoint, written once, dropped
// whole when pruned; stores written before ingestion keep working; staging leftovers go.
#include <catch2/catch.hpp>

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

// Chunk file of each checkpoint id (by file name), from a read-only look beside the writer.
std::map<uint64_t, std::string> chunk_files(const std::string& path, uint64_t* chunk_bytes_on_disk = nullptr) {
  RawDb raw(path, /*read_only=*/true);
  std::map<uint64_t, std::string> out;
  if (chunk_bytes_on_disk) *chunk_bytes_on_disk = 0;
  for (const auto& f : raw.checkpoint_files()) {
    auto lo = parse_chunk_key_id(f.smallestkey), hi = parse_chunk_key_id(f.largestkey);
    if (!lo) continue;
    REQUIRE(hi == lo);  // one checkpoint per file
    REQUIRE(out.count(*lo) == 0);
    out[*lo] = f.name;
    if (chunk_bytes_on_disk) *chunk_bytes_on_disk += f.size;
  }
  return out;
}

}  // namespace

TEST_CASE("a checkpoint's chunks are one file at the bottom level with sequence number 0, written once") {
  TempDir dir;
  auto o = options_for(dir.str());
  o.chunk_bytes = 1 << 20;
  auto cp = make_checkpoint(1, {{"phi", 8 << 20}, {"theta", (1 << 20) + 5}, {"empty", 0}, {"rng", 9}});
  const uint64_t size = (8 << 20) + (1 << 20) + 5 + 9;
  auto w0 = written_bytes();
  uint64_t id = 0;
  {
    auto store = open_or_fail(o);
    id = store->write_checkpoint(cp).value().id;
  }  // closing flushes the memtable: the manifest, a few hundred bytes
  auto w1 = written_bytes();
  if (w0 && w1) {
    INFO("wrote " << (*w1 - *w0) << " bytes for a " << size << "-byte checkpoint");
    CHECK(*w1 - *w0 < size + size / 8);  // through the WAL and a flush it was twice the size
  } else {
    WARN("/proc/self/io has no write_bytes here; the written-once check is skipped");
  }

  RawDb raw(dir.str(), /*read_only=*/true);
  std::vector<int> levels;
  auto files = raw.checkpoint_files(&levels);
  int found = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    if (parse_chunk_key_id(files[i].smallestkey) != id) continue;
    ++found;
    CHECK(files[i].smallestkey == chunk_key(id, 0, 0));
    CHECK(files[i].largestkey == chunk_key(id, 3, 0));
    CHECK(levels[i] == raw.db->NumberLevels(raw.cf(kCfCheckpoints)) - 1);  // no compaction ever picks it
    CHECK(files[i].largest_seqno == 0);  // RocksDB 7.8 would mark a nonzero one for a rewrite
    CHECK(files[i].size >= size);
  }
  CHECK(found == 1);
  CHECK(count_files(dir.str(), ".blob") == 0);
  CHECK_FALSE(fs::exists(fs::path(dir.str()) / "staging" / ("ckpt-" + std::to_string(id) + ".sst")));

  auto store = open_or_fail(o);
  auto got = store->load_latest();
  REQUIRE(got.ok());
  for (size_t i = 0; i < cp.blobs.size(); ++i) CHECK(got->blobs[i].data == cp.blobs[i].data);
}

// The chunk file has no RocksDB block checksums (one hash pass fewer at write and load): a byte
// flipped on disk inside a chunk is caught by the blob's own checksum, which names the blob.
TEST_CASE("a byte flipped on disk inside a chunk file is caught by the blob checksum at load") {
  TempDir dir;
  auto o = options_for(dir.str());
  o.chunk_bytes = 1 << 20;
  auto cp = make_checkpoint(7, {{"theta", 3 << 20}, {"rng", 8}});
  uint64_t id = 0;
  {
    auto store = open_or_fail(o);
    id = store->write_checkpoint(cp).value().id;
  }
  auto files = chunk_files(dir.str());
  REQUIRE(files.count(id) == 1);
  const fs::path file = fs::path(dir.str()) / fs::path(files[id]).filename();
  REQUIRE(fs::file_size(file) > (3u << 20));
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>((3u << 20) / 2));  // the middle of theta's second chunk
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>((3u << 20) / 2));
    c = static_cast<char>(c ^ 0x10);
    f.write(&c, 1);
    REQUIRE(f.good());
  }
  auto store = open_or_fail(o);
  auto got = store->load_checkpoint(id);
  REQUIRE_FALSE(got.ok());
  CHECK(got.status().code() == StatusCode::kCorrupt);
  INFO(got.status().to_string());
  CHECK(got.status().message().find("blob 'theta' checksum mismatch (stored") != std::string::npos);
}

TEST_CASE("pruned checkpoints' files are dropped whole and kept ones are never rewritten") {
  TempDir dir;
  auto o = options_for(dir.str());
  o.chunk_bytes = 64 << 10;
  o.retention.keep_last = 2;
  o.retention.keep_every_steps = 3;
  auto store = open_or_fail(o);
  std::map<uint64_t, std::string> first_file;  // id -> its chunk file right after the write
  std::vector<uint64_t> live;
  for (uint64_t step = 1; step <= 8; ++step) {
    auto info = store->write_checkpoint(make_checkpoint(step, {{"phi", 300000}, {"theta", 200000}}));
    REQUIRE(info.ok());
    uint64_t on_disk = 0;
    auto files = chunk_files(dir.str(), &on_disk);
    REQUIRE(files.count(info->id) == 1);
    first_file[info->id] = files[info->id];
    live.clear();
    auto infos = store->list_checkpoints().value();
    for (const auto& c : infos) live.push_back(c.id);
    // Chunk files exist for live checkpoints only, each the very file ingested.
    std::vector<uint64_t> with_files;
    for (const auto& [fid, name] : files) {
      with_files.push_back(fid);
      CHECK(name == first_file[fid]);
    }
    CHECK(with_files == live);
    CHECK(on_disk < live.size() * 520000);
  }
  // steps 3 and 6 are milestones; 7 and 8 the last two
  std::vector<uint64_t> steps;
  auto infos = store->list_checkpoints().value();
  for (const auto& c : infos) steps.push_back(c.manifest.step);
  CHECK(steps == std::vector<uint64_t>{3, 6, 7, 8});
}

TEST_CASE("a store written before chunk ingestion loads unchanged and its blob files go once pruned") {
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
    // New checkpoints are ingested beside the old ones and take the next ids.
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

TEST_CASE("staging leftovers are removed by a read-write open and left alone by a read-only one") {
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
