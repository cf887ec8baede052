// A damaged latest checkpoint at start (docs/checkpoints.md, "Disk faults"): `noloco train`
// resumes from the newest checkpoint that verifies and ends with the same weights as a run that
// was never interrupted; with no checkpoint left that verifies it refuses to train rather than
// start over on top of the store. Runs the real binary on a store damaged on disk (damage_util.h).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>

#include "damage_util.h"
#include "node_proc.h"
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
  RunResult r = resume_damaged([](RawStore& raw, const auto& ids) { raw.flip_blob_byte(ids.back(), 1); }, dir);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("passed over a damaged checkpoint") != std::string::npos);
  CHECK(r.err.find("checksum mismatch") != std::string::npos);
  CHECK(resumed_step(r) == 36);
  CHECK(r.field("step") == "40");
  CHECK(r.field("theta_sha256") == reference().run.field("theta_sha256"));
  CHECK(r.field("phi_sha256") == reference().run.field("phi_sha256"));
}

TEST_CASE("train: a latest checkpoint whose data file is truncated is passed over and the previous one resumes exactly") {
  TempDir dir;
  RunResult r = resume_damaged([](RawStore& raw, const auto& ids) { raw.truncate_in_blob(ids.back(), 1); }, dir);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("(truncated)") != std::string::npos);
  CHECK(resumed_step(r) == 36);
  CHECK(r.field("theta_sha256") == reference().run.field("theta_sha256"));
  CHECK(r.field("phi_sha256") == reference().run.field("phi_sha256"));
}

TEST_CASE("train: a latest pointer naming a half-written checkpoint falls back to the previous one") {
  TempDir dir;
  // The newest manifest's data file is gone (it never reached the disk), and for good measure
  // "latest" names it explicitly.
  RunResult r = resume_damaged(
      [](RawStore& raw, const auto& ids) {
        raw.delete_data_file(ids.back());
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
  // Two newest gone too (data files deleted), pointer beyond every manifest: only the oldest is whole.
  RunResult r = resume_damaged(
      [](RawStore& raw, const auto& ids) {
        raw.delete_data_file(ids[2]);
        raw.delete_data_file(ids[1]);
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
        for (uint64_t id : ids) raw.flip_blob_byte(id, 1);
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

namespace noloco::test {
namespace {

using json = nlohmann::json;

std::vector<std::string> node_args(const TempDir& t, int i, std::vector<std::string> extra) {
  const std::string d = t.sub("n" + std::to_string(i));
  std::filesystem::create_directories(d);
  std::vector<std::string> a = {"run", "--db", d + "/db", "--key", d + "/key", "--json", "--threads", "1",
                                "--eval-windows", "32", "--exchange-timeout", "5", "--checkpoint-every", "2",
                                "--linger", "120", "--join-wait", "120", "--min-peers", "1"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

int64_t committed_outer(const std::vector<json>& evs) {
  int64_t best = -1;
  for (const auto& e : evs)
    if (e.value("event", "") == "checkpoint") best = std::max(best, e["outer_step"].get<int64_t>());
  return best;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

TEST_CASE("run: a node whose latest checkpoint is damaged resumes from the previous one, and one whose every "
          "checkpoint is damaged starts as a new node and state-syncs from the swarm",
          "[swarm]") {
  TempDir t;
  RunResult init = run_noloco({"init-run", "--out", t.sub("manifest.json"), "--steps", "400", "--H", "10", "--batch",
                               "8", "--lr", "5e-3", "--warmup", "20"});
  REQUIRE(init.exit_code == 0);
  const std::string run_id = init.out.substr(0, init.out.find('\n'));
  NodeProc n0(node_args(t, 0, {"--manifest", t.sub("manifest.json")}), t.sub("n0.log"));
  const std::string join = n0.address();
  REQUIRE(!join.empty());

  // Node 1 trains with the swarm until it has a few checkpoints, then stops (final checkpoint).
  auto n1 = std::make_unique<NodeProc>(node_args(t, 1, {"--run-id", run_id, "--join", join}), t.sub("n1a.log"));
  REQUIRE(n1->wait_for([](auto& evs) { return committed_outer(evs) >= 4; }));
  n1->kill(SIGTERM);
  n1->wait_exit();
  n1.reset();
  const std::string db = t.sub("n1") + "/db";

  // 1. Only the newest checkpoint damaged: the restart resumes from the one before it.
  {
    RawStore raw(db);
    const auto ids = raw.manifest_ids();
    REQUIRE(ids.size() >= 2);
    raw.flip_blob_byte(ids.back(), 1);
  }
  n1 = std::make_unique<NodeProc>(node_args(t, 1, {}), t.sub("n1b.log"));
  REQUIRE(n1->wait_for([](auto& evs) { return NodeProc::has(evs, "start"); }));
  {
    const json start = n1->events_of("start").at(0);
    CHECK(start["resumed"].get<bool>());
    CHECK(start["outer_step"].get<int64_t>() >= 2);
    CHECK(start["inner_step"].get<int64_t>() == start["outer_step"].get<int64_t>() * 10);
  }
  REQUIRE(n1->wait_for([](auto& evs) { return NodeProc::has(evs, "outer"); }));
  n1->kill(SIGTERM);
  n1->wait_exit();
  n1.reset();
  CHECK(read_file(t.sub("n1b.log")).find("passed over a damaged checkpoint") != std::string::npos);

  // 2. Every checkpoint damaged: no training from garbage and no silent resume. The node starts
  //    at step 0 like a new one and takes the swarm's weights by state sync.
  {
    RawStore raw(db);
    // (Not another flip: the checkpoint damaged above would be repaired by it.)
    for (uint64_t id : raw.manifest_ids()) raw.truncate_in_blob(id, 1);
  }
  REQUIRE(n0.wait_for([](auto& evs) { return NodeProc::max_outer(evs) >= 2; }));
  n1 = std::make_unique<NodeProc>(node_args(t, 1, {}), t.sub("n1c.log"));
  const bool synced = n1->wait_for([](auto& evs) { return NodeProc::has(evs, "state_sync"); });
  INFO(read_file(t.sub("n1c.log")));
  std::string evs;
  for (const auto& e : n1->events()) evs += e.dump() + "\n";
  INFO(evs);
  REQUIRE(synced);
  REQUIRE(n1->wait_for([](auto& evs) { return NodeProc::has(evs, "state_sync"); }));
  {
    const json start = n1->events_of("start").at(0);
    CHECK_FALSE(start["resumed"].get<bool>());
    CHECK(start["inner_step"].get<int64_t>() == 0);
    const json sync = n1->events_of("state_sync").at(0);
    CHECK(sync["outer_step"].get<int64_t>() >= 2);
    CHECK(sync["inner_step"].get<int64_t>() == sync["outer_step"].get<int64_t>() * 10);
  }
  CHECK(read_file(t.sub("n1c.log")).find("NO USABLE CHECKPOINT") != std::string::npos);
  n1->kill(SIGTERM);
  n0.kill(SIGTERM);
  n1->wait_exit();
  n0.wait_exit();
}

}  // namespace noloco::test
