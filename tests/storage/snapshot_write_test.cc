// Checkpoints handed over as one snapshot buffer (blob_data.h): written with O_DIRECT, or
// through the page cache where the filesystem refuses O_DIRECT, the data file holds the same
// bytes as a checkpoint of ordinary blobs and loads verified.
#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>

#include "storage/checkpoint_writer.h"
#include "storage/disk_faults.h"
#include "storage_test_util.h"

using namespace noloco;
using namespace noloco::storage;
using namespace noloco::storage::test;

namespace {

// Sizes that are not multiples of a disk block, a blob of 0 bytes, a tail under one block, and
// (with 4 KiB pieces) more than one 8 MiB O_DIRECT piece.
const std::vector<std::pair<std::string, size_t>> kOddBlobs = {
    {"config", 417}, {"theta", (9 << 20) + 13}, {"empty", 0}, {"phi", 123457}, {"counters", 24}};

// Writes `c` into a fresh store at `path` and returns the data file's bytes and the load.
std::pair<Bytes, Checkpoint> write_and_load(const std::string& path, const Checkpoint& c,
                                            std::shared_ptr<DiskFaults> faults = nullptr, bool direct_io = true) {
  StoreOptions o = options_for(path);
  o.disk_faults = std::move(faults);
  o.direct_io = direct_io;
  auto store = open_or_fail(o);
  auto info = store->write_checkpoint(c);
  if (!info.ok()) throw std::runtime_error(info.status().to_string());
  auto loaded = store->load_checkpoint(info->id);
  if (!loaded.ok()) throw std::runtime_error(loaded.status().to_string());
  return {file_bytes(data_file(path, info->id)), std::move(loaded).value()};
}

void check_same_blobs(const Checkpoint& got, const Checkpoint& want) {
  REQUIRE(got.blobs.size() == want.blobs.size());
  for (size_t i = 0; i < want.blobs.size(); ++i) {
    CHECK(got.blobs[i].name == want.blobs[i].name);
    CHECK(got.blobs[i].data == want.blobs[i].data);
  }
}

}  // namespace

TEST_CASE("a snapshot buffer is 2 MiB aligned, its slices read like bytes, and resizing one copies it") {
  auto buffer = SnapshotBuffer::allocate(5000).value();
  CHECK(reinterpret_cast<uintptr_t>(buffer->data()) % SnapshotBuffer::kAlign == 0);
  CHECK(buffer->allocated() == SnapshotBuffer::kAlign);
  for (size_t i = 5000; i < buffer->allocated(); i += 4096) CHECK(buffer->data()[i] == 0);  // padding zeroed
  for (size_t i = 0; i < 5000; ++i) buffer->data()[i] = static_cast<uint8_t>(i);
  BlobData slice(buffer, 1000, 3);
  CHECK(slice.size() == 3);
  CHECK(slice == Bytes{232, 233, 234});  // 1000..1002 mod 256
  CHECK(slice.buffer() == buffer.get());
  slice.resize(2);
  CHECK(slice.buffer() == nullptr);
  CHECK(slice == Bytes{232, 233});
  CHECK(buffer->data()[1002] == 234);  // the buffer itself is untouched
}

TEST_CASE("a snapshot checkpoint's data file holds the same bytes as one of ordinary blobs") {
  TempDir dir;
  const Checkpoint plain = make_checkpoint(7, kOddBlobs);
  const Checkpoint snap = as_snapshot(plain);
  REQUIRE(snap.blobs[1].data.buffer() != nullptr);
  auto [plain_file, plain_loaded] = write_and_load(dir.sub("plain"), plain);
  auto [snap_file, snap_loaded] = write_and_load(dir.sub("snap"), snap);
  CHECK(snap_file.size() == plain_file.size());
  CHECK(snap_file == plain_file);
  check_same_blobs(snap_loaded, plain);
  check_same_blobs(plain_loaded, plain);
}

TEST_CASE("where the filesystem refuses O_DIRECT the snapshot goes through the page cache, same bytes") {
  TempDir dir;
  const Checkpoint plain = make_checkpoint(8, kOddBlobs);
  auto faults = std::make_shared<DiskFaults>();
  faults->set_refuse_direct_io(true);
  auto [refused_file, refused_loaded] = write_and_load(dir.sub("refused"), as_snapshot(plain), faults);
  auto [direct_file, direct_loaded] = write_and_load(dir.sub("direct"), as_snapshot(plain));
  auto [off_file, off_loaded] = write_and_load(dir.sub("off"), as_snapshot(plain), nullptr, /*direct_io=*/false);
  CHECK(refused_file == direct_file);
  CHECK(off_file == direct_file);
  check_same_blobs(refused_loaded, plain);
  check_same_blobs(off_loaded, plain);
}

TEST_CASE("a snapshot checkpoint that does not fit on the disk fails and leaves no data file") {
  TempDir dir;
  StoreOptions o = options_for(dir.str());
  auto faults = std::make_shared<DiskFaults>();
  o.disk_faults = faults;
  auto store = open_or_fail(o);
  faults->set_space_left(1 << 20);
  auto r = store->write_checkpoint(as_snapshot(make_checkpoint(9, kOddBlobs)));
  CHECK(r.status().code() == StatusCode::kIoError);
  CHECK(data_file_ids(dir.str()).empty());
  faults->set_space_left(DiskFaults::kUnlimited);
  CHECK(store->write_checkpoint(as_snapshot(make_checkpoint(10, kOddBlobs))).ok());
}

TEST_CASE("the snapshot pool hands back its kept buffer only once nobody else holds it") {
  SnapshotPool pool;
  auto first = pool.take(5000);
  REQUIRE(first.ok());
  SnapshotBuffer* const kept = first->get();
  std::memset(kept->data(), 0xAB, kept->size());

  // The writer still holds the first snapshot: the next one gets a new buffer.
  auto second = pool.take(5000);
  REQUIRE(second.ok());
  CHECK(second->get() != kept);
  CHECK(pool.allocations() == 2);
  CHECK(pool.reuses() == 0);

  // Both let go: the newest buffer (the kept one now) comes back, the same memory.
  SnapshotBuffer* const newest = second->get();
  first->reset();
  second->reset();
  auto third = pool.take(4000);
  REQUIRE(third.ok());
  CHECK(third->get() == newest);
  CHECK(pool.reuses() == 1);
  CHECK((*third)->size() == 4000);
  // Shrinking zeroes what became padding, so an O_DIRECT block past the end carries no old bytes.
  std::memset((*third)->data(), 0xCD, (*third)->size());
  third->reset();
  auto smaller = pool.take(100);
  REQUIRE(smaller.ok());
  CHECK(smaller->get() == newest);
  for (size_t i = 100; i < 4000; ++i) {
    if ((*smaller)->data()[i] != 0) FAIL("byte " << i << " of the padding is not zero");
  }
  smaller->reset();

  // Larger than the kept buffer's allocation: a new one.
  auto bigger = pool.take(SnapshotBuffer::kAlign + 1);
  REQUIRE(bigger.ok());
  CHECK(bigger->get() != newest);
  CHECK(pool.allocations() == 3);
  bigger->reset();
  pool.release();
  CHECK(pool.allocations() == 3);
}

TEST_CASE("a prepared pool's buffer is resident and serves the first take") {
  SnapshotPool pool;
  const size_t size = SnapshotBuffer::kAlign + 12345;
  REQUIRE(pool.prepare(size).ok());
  REQUIRE(pool.prepare(size - 1).ok());  // already large enough: nothing new
  CHECK(pool.allocations() == 1);
  auto first = pool.take(size);
  REQUIRE(first.ok());
  CHECK(pool.allocations() == 1);
  CHECK(pool.reuses() == 1);
  // Every page is in memory already: mincore reports each one resident.
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in((*first)->allocated() / page);
  REQUIRE(mincore((*first)->data(), (*first)->allocated(), in.data()) == 0);
  size_t resident = 0;
  for (unsigned char c : in) resident += c & 1;
  CHECK(resident == in.size());
  // Fresh memory is zero, padding included.
  for (size_t i = 0; i < (*first)->allocated(); i += 4093)
    if ((*first)->data()[i] != 0) FAIL("byte " << i << " is not zero");
  // A larger state later: prepare replaces the kept buffer.
  first->reset();
  REQUIRE(pool.prepare(3 * SnapshotBuffer::kAlign).ok());
  CHECK(pool.allocations() == 2);

  // In the background: a take() right after waits for it and gets the prepared buffer.
  SnapshotPool later;
  later.prepare_in_background(size);
  auto taken = later.take(size);
  REQUIRE(taken.ok());
  CHECK(later.allocations() == 1);
  CHECK(later.reuses() == 1);
}

TEST_CASE("the writer paces ordinary checkpoints over the interval but writes a snapshot at once") {
  CheckpointWriterOptions wo;
  wo.spread = 0.5;
  wo.min_bytes_per_s = 1;
  wo.first_bytes_per_s = 777;
  const Checkpoint plain = make_checkpoint(1, {{"w", 100000}});
  CHECK(checkpoint_pace(plain, wo, 0) == 777);               // first one: its own rate
  CHECK(checkpoint_pace(plain, wo, 2.0) == 100000);          // 100 kB over 0.5 x 2 s
  auto buffer = SnapshotBuffer::allocate(100000);
  REQUIRE(buffer.ok());
  Checkpoint snapshot = plain;
  snapshot.blobs[0].data = BlobData(*buffer, 0, 100000);
  CHECK(checkpoint_pace(snapshot, wo, 0) == 0);
  CHECK(checkpoint_pace(snapshot, wo, 2.0) == 0);
  wo.spread = 0;
  CHECK(checkpoint_pace(plain, wo, 2.0) == 0);
}
