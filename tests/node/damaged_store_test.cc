// A damaged latest checkpoint at start (docs/checkpoints.md, "Disk faults"): `noloco train`
// resumes from the newest checkpoint that verifies and ends with the same weights as a run that
// was never interrupted; with no checkpoint left that verifies it refuses to train rather than
// start over on top of the store. Runs the real binary on a store damaged through RocksDB.
#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>

#include "damage_util.h"
#include "node_test_util.h"

using noloco::test::RawStore;
using noloco::test::run_noloco;
using noloco::test::RunResult;
using noloco::test::TempDir;
using noloco::test::train_args;

namespace {

// The uninterrupted 40-step run (checkpoints every 6 steps, keep-last 3): its store holds steps
// 30, 36 and 40 (the final checkpoint), and its final line is what every resume must reproduce.
struct Reference {
  TempDir dir;
  RunResult run;
};
const Reference& reference() {
  static Reference ref;  // built in place: a TempDir must not be copied (its destructor removes it)
  static bool ran = (ref.run = run_noloco(train_args(ref.dir.sub("db"))), true);
  (void)ran;
  return ref;
}

// Copies the base store, damages it, and resumes the run to its end.
RunResult resume_damaged(const std::function<void(RawStore&, const std::vector<uint64_t>&)>& damage,
                         TempDir& dir) {
  REQUIRE(reference().run.exit_code == 0);
  std::filesystem::copy(reference().dir.sub("db"), dir.sub("db"), std::filesystem::copy_options::recursive);
  {
    RawStore raw(dir.sub("db"));
    const std::vector<uint64_t> ids = raw.manifest_ids();
    REQUIRE(ids.size() == 3);
    damage(raw, ids);
  }
  return run_noloco(train_args(dir.sub("db")));
}

uint64_t resumed_step(const RunResult& r) {
  const std::string key = "from step ";
  const size_t p = r.err.find(key);
  if (p == std::string::npos) return UINT64_MAX;
  return std::stoull(r.err.substr(p + key.size()));
}

}  // namespace

TEST_CASE("train: a latest checkpoint with a flipped byte is passed over and the previous one resumes exactly") {
  TempDir dir;
  RunResult r = resume_damaged([](RawStore& raw, const auto& ids) { raw.flip_chunk_byte(ids.back(), 1); }, dir);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("passed over a damaged checkpoint") != std::string::npos);
  CHECK(r.err.find("checksum mismatch") != std::string::npos);
  CHECK(resumed_step(r) == 36);
  CHECK(r.field("step") == "40");
  CHECK(r.field("theta_sha256") == reference().run.field("theta_sha256"));
  CHECK(r.field("phi_sha256") == reference().run.field("phi_sha256"));
}

TEST_CASE("train: a latest checkpoint missing a chunk is passed over and the previous one resumes exactly") {
  TempDir dir;
  RunResult r = resume_damaged([](RawStore& raw, const auto& ids) { raw.delete_chunk(ids.back(), 1, 0); }, dir);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("is missing") != std::string::npos);
  CHECK(resumed_step(r) == 36);
  CHECK(r.field("theta_sha256") == reference().run.field("theta_sha256"));
  CHECK(r.field("phi_sha256") == reference().run.field("phi_sha256"));
}

TEST_CASE("train: a latest pointer naming a half-written checkpoint falls back to the previous one") {
  TempDir dir;
  // The newest manifest's chunks are all gone (its chunk file never reached the disk), and for
  // good measure "latest" names it explicitly.
  RunResult r = resume_damaged(
      [](RawStore& raw, const auto& ids) {
        raw.delete_all_chunks(ids.back());
        raw.set_latest(ids.back());
      },
      dir);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("passed over a damaged checkpoint") != std::string::npos);
  CHECK(resumed_step(r) == 36);
  CHECK(r.field("theta_sha256") == reference().run.field("theta_sha256"));
}

TEST_CASE("train: a latest pointer naming a checkpoint that does not exist falls back to the newest one below it") {
  TempDir dir;
  // Two newest gone too (chunks deleted), pointer beyond every manifest: only the oldest is whole.
  RunResult r = resume_damaged(
      [](RawStore& raw, const auto& ids) {
        raw.delete_all_chunks(ids[2]);
        raw.delete_all_chunks(ids[1]);
        raw.set_latest(ids.back() + 5);
      },
      dir);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("does not exist") != std::string::npos);
  CHECK(resumed_step(r) == 30);
  CHECK(r.field("theta_sha256") == reference().run.field("theta_sha256"));
}

TEST_CASE("train: with no checkpoint that verifies it refuses to train and leaves the store as it was") {
  TempDir dir;
  RunResult r = resume_damaged(
      [](RawStore& raw, const auto& ids) {
        for (uint64_t id : ids) raw.flip_chunk_byte(id, 1);
      },
      dir);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("verifies") != std::string::npos);
  CHECK(r.err.find("refusing to start over from step 0") != std::string::npos);
  CHECK(r.out.find("step 1 ") == std::string::npos);  // not one step trained
  CHECK(r.out.find("final") == std::string::npos);
  RawStore raw(dir.sub("db"));
  CHECK(raw.manifest_ids().size() == 3);
}
