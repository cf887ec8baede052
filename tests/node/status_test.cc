// `noloco status`: what it reports for a trained store (checked against the store itself), clear
// failures for a missing or damaged store, and a read-only view while `noloco train` runs.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "node_test_util.h"
#include "storage/store.h"

using noloco::test::run_noloco;
using noloco::test::TempDir;
namespace fs = std::filesystem;

namespace {

bool mentions(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

std::unique_ptr<noloco::storage::Store> open_store(const std::string& path, noloco::storage::OpenMode mode) {
  noloco::storage::StoreOptions so;
  so.path = path;
  so.mode = mode;
  auto s = noloco::storage::Store::open(so);
  REQUIRE(s.ok());
  return std::move(s).value();
}

}  // namespace

TEST_CASE("noloco status reports the run, latest checkpoint and metrics of a trained store") {
  TempDir dir;
  const std::string db = dir.sub("db");
  auto train = run_noloco(noloco::test::train_args(db, 12));
  INFO(train.out << train.err);
  REQUIRE(train.exit_code == 0);

  auto st = run_noloco({"status", "--db", db, "--json"});
  INFO(st.out << st.err);
  REQUIRE(st.exit_code == 0);
  auto j = nlohmann::json::parse(st.out);

  auto store = open_store(db, noloco::storage::OpenMode::kReadOnly);
  auto latest = store->latest_checkpoint_info();
  REQUIRE(latest.ok());
  REQUIRE(latest->has_value());
  uint64_t bytes = 0;
  for (const auto& b : (*latest)->manifest.blobs) bytes += b.size;

  CHECK(j["run_id"] == train.field("run"));
  CHECK(j["latest_checkpoint"]["id"] == (*latest)->id);
  CHECK(j["latest_checkpoint"]["step"] == 12);
  CHECK(j["latest_checkpoint"]["outer_step"] == 2);
  CHECK(j["latest_checkpoint"]["bytes"] == bytes);
  CHECK(j["latest_checkpoint"]["blobs"] == (*latest)->manifest.blobs.size());
  CHECK(j["checkpoints"] == store->list_checkpoints().value().size());
  // H=5 over 12 steps: outer steps 1 and 2, at inner steps 5 and 10.
  REQUIRE(j["recent_metrics"].size() == 2);
  CHECK(j["recent_metrics"][0]["outer_step"] == 1);
  CHECK(j["recent_metrics"][1]["outer_step"] == 2);
  CHECK(j["recent_metrics"][1]["fields"]["inner_step"] == 10.0);
  CHECK(j["recent_metrics"][1]["loss"].get<double>() > 0.0);
  CHECK(j["peers"]["known"] == 0);

  auto text = run_noloco({"status", "--db", db});
  REQUIRE(text.exit_code == 0);
  CHECK(mentions(text.out, "run          " + train.field("run")));
  CHECK(mentions(text.out, "step 12 (outer 2)"));
  CHECK(mentions(text.out, std::to_string(bytes) + " bytes"));
  CHECK(mentions(text.out, "metrics      2 recent"));
}

TEST_CASE("noloco status fails clearly on a missing or damaged store and shows an empty one") {
  TempDir dir;
  SECTION("missing directory") {
    auto r = run_noloco({"status", "--db", dir.sub("nothing")});
    CHECK(r.exit_code == 1);
    CHECK(mentions(r.err, "no store at " + dir.sub("nothing")));
    CHECK_FALSE(fs::exists(dir.sub("nothing")));  // read-only: nothing created
  }
  SECTION("a directory that is not a store") {
    fs::create_directories(dir.sub("plain"));
    std::ofstream(dir.sub("plain") + "/notes.txt") << "hello";
    auto r = run_noloco({"status", "--db", dir.sub("plain"), "--json"});
    CHECK(r.exit_code == 1);
    CHECK(mentions(r.err, "no store at"));
  }
  SECTION("garbage CURRENT file") {
    open_store(dir.sub("db"), noloco::storage::OpenMode::kReadWrite);
    std::ofstream(dir.sub("db") + "/CURRENT", std::ios::trunc) << "\x01garbage";
    auto r = run_noloco({"status", "--db", dir.sub("db"), "--json"});
    CHECK(r.exit_code == 1);
    CHECK(mentions(r.err, "Corrupt"));
    CHECK(r.out.empty());
  }
  SECTION("a fresh store without checkpoints") {
    REQUIRE(open_store(dir.sub("db"), noloco::storage::OpenMode::kReadWrite)
                ->set_run("run-x", noloco::to_bytes("m"))
                .ok());
    auto r = run_noloco({"status", "--db", dir.sub("db"), "--json"});
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["run_id"] == "run-x");
    CHECK(j["latest_checkpoint"].is_null());
    CHECK(j["recent_metrics"].empty());
    auto t = run_noloco({"status", "--db", dir.sub("db")});
    CHECK(mentions(t.out, "checkpoint   none"));
  }
}

TEST_CASE("noloco status and export read the store while noloco train runs on it") {
  TempDir dir;
  const std::string db = dir.sub("db");
  // Far longer than the test: it only stops on our SIGTERM.
  const pid_t trainer = noloco::test::spawn_noloco(noloco::test::train_args(db, 100000));
  REQUIRE(trainer > 0);
  // Poll read-only until a checkpoint is visible; bounded by attempts and by the trainer being
  // alive, not by time.
  nlohmann::json j;
  bool seen = false, trainer_died = false;
  for (int attempt = 0; attempt < 2000 && !seen && !trainer_died; ++attempt) {
    auto st = run_noloco({"status", "--db", db, "--json"});
    if (st.exit_code == 0) {
      j = nlohmann::json::parse(st.out);
      seen = !j["latest_checkpoint"].is_null();
    }  // else: the trainer has not created the store yet (or is creating it right now)
    int ws = 0;
    trainer_died = waitpid(trainer, &ws, WNOHANG) == trainer;
  }
  REQUIRE_FALSE(trainer_died);
  REQUIRE(seen);
  CHECK(j["latest_checkpoint"]["step"].get<uint64_t>() % 6 == 0);  // --checkpoint-every 6
  CHECK(j["run_id"].get<std::string>().rfind("solo-", 0) == 0);
  auto ex = run_noloco({"export", "--db", db, "--out", dir.sub("live.safetensors")});
  INFO(ex.out << ex.err);
  CHECK(ex.exit_code == 0);
  CHECK(fs::file_size(dir.sub("live.safetensors")) > 4 * 100000u);

  kill(trainer, SIGTERM);
  int status = 0;
  waitpid(trainer, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);  // interrupted, after its synchronous final checkpoint
  auto after = run_noloco({"status", "--db", db, "--json"});
  REQUIRE(after.exit_code == 0);
  CHECK(nlohmann::json::parse(after.out)["latest_checkpoint"]["step"].get<uint64_t>() >=
        j["latest_checkpoint"]["step"].get<uint64_t>());
}
