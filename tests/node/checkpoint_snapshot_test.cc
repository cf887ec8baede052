// A background checkpoint holds the replica's state at the moment it was taken: the training
// thread takes one copy (make_checkpoint) and goes on training, and the writer thread writes that
// copy later, after the weights have moved on.
#include "../trainer/torch_catch.h"

#include <algorithm>
#include <future>

#include "../trainer/test_corpus.h"
#include "node_test_util.h"
#include "storage/checkpoint_writer.h"
#include "storage/store.h"
#include "trainer/core/replica.h"
#include "trainer/core/replica_state.h"
#include "trainer/node/checkpointing.h"

using namespace noloco;

namespace {

trainer::ReplicaConfig config() {
  trainer::ReplicaConfig rc;
  rc.model = *trainer::model_preset("tiny");
  rc.model.context = 32;
  rc.batch = 4;
  rc.seed = 9;
  rc.inner.schedule = trainer::LrSchedule{3e-3, 2, 50, 0.1};
  return rc;
}

const storage::BlobData& blob(const storage::Checkpoint& c, const std::string& name) {
  const storage::NamedBlob* b = c.find(name);
  REQUIRE(b != nullptr);
  return b->data;
}

}  // namespace

TEST_CASE("a background checkpoint holds the state at snapshot time though training goes on meanwhile") {
  const Bytes train = trainer::testing::synthetic_text(64 * 1024);
  auto r = trainer::Replica::create(config(), &train, 0, 1);
  REQUIRE(r.ok());
  trainer::Replica& replica = **r;
  for (int i = 0; i < 2; ++i) replica.train_step();

  test::TempDir dir;
  storage::StoreOptions o;
  o.path = dir.sub("db");
  // The writer may not start staging until training has moved on: the snapshot alone must
  // carry the state.
  std::promise<void> trained;
  std::shared_future<void> gate = trained.get_future().share();
  o.checkpoint_phase_hook = [gate](storage::CheckpointPhase phase, uint64_t, uint64_t) {
    if (phase == storage::CheckpointPhase::kWritingFile) gate.wait();
  };
  auto store = storage::Store::open(o);
  REQUIRE(store.ok());
  storage::CheckpointWriter writer(**store);

  auto snapshot = node::make_checkpoint(replica, "run", "cfg");
  REQUIRE(snapshot.ok());
  const storage::Checkpoint expected = *snapshot;  // what the state was when the copy was taken
  REQUIRE(writer.submit(std::move(*snapshot)).ok());

  for (int i = 0; i < 3; ++i) replica.train_step();  // the weights move on while the write waits
  auto now = trainer::export_state(replica);
  REQUIRE(now.ok());
  trained.set_value();
  REQUIRE(writer.flush().ok());

  auto loaded = (*store)->load_latest();
  REQUIRE(loaded.ok());
  CHECK(loaded->manifest.step == 2);
  REQUIRE(loaded->blobs.size() == expected.blobs.size());
  for (const auto& b : expected.blobs) {
    INFO(b.name);
    CHECK(blob(*loaded, b.name) == b.data);
  }
  // Training did change them afterwards, so the equality above is not trivial.
  for (const auto& b : *now)
    if (b.name == "theta" || b.name == "adam.m" || b.name == "counters") {
      INFO(b.name);
      CHECK(b.bytes != blob(expected, b.name));
    }

  // And it restores: a fresh replica takes exactly the snapshot's state.
  auto fresh = trainer::Replica::create(config(), &train, 0, 1);
  REQUIRE(fresh.ok());
  REQUIRE(node::restore_checkpoint(**fresh, *loaded, "cfg").ok());
  auto restored = trainer::export_state(**fresh);
  REQUIRE(restored.ok());
  for (const auto& b : *restored) {
    INFO(b.name);
    CHECK(b.bytes == blob(expected, b.name));
  }
  REQUIRE(writer.close().ok());
}

TEST_CASE("a snapshot equals the live state, as one buffer laid out like the data file, each blob with its checksum") {
  const Bytes train = trainer::testing::synthetic_text(64 * 1024);
  auto r = trainer::Replica::create(config(), &train, 0, 1);
  REQUIRE(r.ok());
  for (int i = 0; i < 2; ++i) (*r)->train_step();
  auto snapshot = node::make_checkpoint(**r, "run", "cfg");
  REQUIRE(snapshot.ok());
  auto live = trainer::export_state(**r);
  REQUIRE(live.ok());
  REQUIRE(snapshot->blobs.size() == live->size());
  const storage::SnapshotBuffer* buffer = snapshot->blobs[0].data.buffer();
  REQUIRE(buffer != nullptr);
  uint64_t offset = 0;
  for (size_t i = 0; i < live->size(); ++i) {
    const storage::BlobData& got = snapshot->blobs[i].data;
    INFO((*live)[i].name);
    CHECK(snapshot->blobs[i].name == (*live)[i].name);
    CHECK(got == (*live)[i].bytes);
    CHECK(got.buffer() == buffer);  // one buffer, blobs back to back in file order
    CHECK(got.offset() == offset);
    offset += got.size();
    storage::BlobHasher hash;
    hash.update((*live)[i].bytes);
    REQUIRE(got.checksum().has_value());
    CHECK(*got.checksum() == hash.digest());
  }
  CHECK(reinterpret_cast<uintptr_t>(buffer->data()) % storage::SnapshotBuffer::kAlign == 0);

  // The store records those checksums, and a load verifies the bytes against them.
  test::TempDir dir;
  storage::StoreOptions o;
  o.path = dir.sub("db");
  auto store = storage::Store::open(o);
  REQUIRE(store.ok());
  auto info = (*store)->write_checkpoint(*snapshot);
  REQUIRE(info.ok());
  for (size_t i = 0; i < live->size(); ++i) CHECK(info->manifest.blobs[i].checksum == *snapshot->blobs[i].data.checksum());
  auto loaded = (*store)->load_checkpoint(info->id);
  REQUIRE(loaded.ok());
  for (size_t i = 0; i < live->size(); ++i) CHECK(loaded->blobs[i].data == (*live)[i].bytes);
}

TEST_CASE("checkpoints through the writer's snapshot pool reuse the written one's buffer and each holds its own state") {
  const Bytes train = trainer::testing::synthetic_text(64 * 1024);
  auto r = trainer::Replica::create(config(), &train, 0, 1);
  REQUIRE(r.ok());
  test::TempDir dir;
  storage::StoreOptions o;
  o.path = dir.sub("db");
  auto store = storage::Store::open(o);
  REQUIRE(store.ok());
  storage::CheckpointWriter writer(**store);
  storage::SnapshotPool& pool = writer.snapshots();
  // Prepared before the first step (as the node does at start): every checkpoint, the first one
  // included, is a copy into that one buffer.
  REQUIRE(node::prepare_snapshots(**r, pool).ok());

  std::vector<storage::Checkpoint> expected;
  const storage::SnapshotBuffer* previous = nullptr;
  for (int round = 0; round < 3; ++round) {
    (*r)->train_step();
    auto cp = node::make_checkpoint(**r, "run", "cfg", {}, &pool);
    REQUIRE(cp.ok());
    const storage::SnapshotBuffer* buffer = cp->blobs[0].data.buffer();
    REQUIRE(buffer != nullptr);
    if (previous != nullptr) CHECK(buffer == previous);  // the written checkpoint's memory again
    previous = buffer;
    // A plain copy of what was snapshot (owned bytes: reusing the buffer must not change it).
    storage::Checkpoint copy = *cp;
    for (auto& b : copy.blobs) b.data = storage::BlobData(b.data.to_bytes());
    expected.push_back(std::move(copy));
    REQUIRE(writer.submit(std::move(*cp)).ok());
    REQUIRE(writer.flush().ok());  // written: the writer lets go of the buffer
  }
  CHECK(pool.allocations() == 1);
  CHECK(pool.reuses() == 3);

  // Every checkpoint on disk is the state of its own step, though all three shared one buffer.
  auto list = (*store)->list_checkpoints();
  REQUIRE(list.ok());
  REQUIRE(list->size() >= 2);  // retention may have pruned the oldest
  for (const auto& info : *list) {
    auto loaded = (*store)->load_checkpoint(info.id);
    REQUIRE(loaded.ok());
    const auto want = std::find_if(expected.begin(), expected.end(),
                                   [&](const storage::Checkpoint& c) { return c.manifest.step == loaded->manifest.step; });
    REQUIRE(want != expected.end());
    for (const auto& b : want->blobs) {
      INFO("step " << loaded->manifest.step << " blob " << b.name);
      CHECK(blob(*loaded, b.name) == b.data);
    }
  }
  REQUIRE(writer.close().ok());
}
