// kill -9 at random moments while a child process writes checkpoints: every time, the store
// must hold a complete, checksum-valid checkpoint equal to one the child wrote, keep every
// checkpoint and metrics record the child saw committed, and let a new child carry on.
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "crash_content.h"
#include "storage/keys.h"

using namespace noloco;
using namespace noloco::storage;
using namespace noloco::storage::test;

namespace {

struct Child {
  pid_t pid = -1;
  int out = -1;  // read end of the child's stdout
  std::string buffer;
};

// `die_phase` / `die_step`: the child kills itself when that step's write reaches the phase
// (crash_writer.cc); empty: it runs until killed.
Child spawn(const std::string& db, uint64_t first_step, const std::string& die_phase = "", uint64_t die_step = 0) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::string step = std::to_string(first_step), dstep = std::to_string(die_step);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    if (die_phase.empty())
      ::execl(NOLOCO_CRASH_WRITER, NOLOCO_CRASH_WRITER, db.c_str(), step.c_str(), static_cast<char*>(nullptr));
    else
      ::execl(NOLOCO_CRASH_WRITER, NOLOCO_CRASH_WRITER, db.c_str(), step.c_str(), die_phase.c_str(), dstep.c_str(),
              static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  return Child{pid, fds[0], {}};
}

// Reads whatever the child printed, for at most `ms` (or until EOF).
void drain(Child& c, int ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  char buf[4096];
  for (;;) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now()).count());
    if (left < 0) left = 0;
    pollfd p{c.out, POLLIN, 0};
    int r = ::poll(&p, 1, left);
    if (r <= 0) return;
    ssize_t n = ::read(c.out, buf, sizeof buf);
    if (n <= 0) return;
    c.buffer.append(buf, static_cast<size_t>(n));
  }
}

struct Report {
  bool ready = false;
  uint64_t max_done = 0;
  bool any_done = false;
  uint64_t max_metrics = 0;
  bool any_metrics = false;
  bool mid_write = false;  // a checkpoint had been handed over but not committed
  // Where the write in progress was when the child died: "" (none), or the last phase it
  // reported: file, commit, reclaim.
  std::string phase;
  uint64_t phase_id = 0;  // store id of that write
};

Report parse(const std::string& text) {
  Report r;
  std::istringstream in(text);
  std::string line;
  uint64_t last_begin = 0;
  bool begun = false;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // a line cut by the kill has no newline: ignore it
    if (line == "ready") r.ready = true;
    else if (line.rfind("done ", 0) == 0) {
      r.max_done = std::stoull(line.substr(5));
      r.any_done = true;
      r.phase.clear();
    } else if (line.rfind("phase ", 0) == 0) {
      std::istringstream f(line.substr(6));
      uint64_t step = 0;
      f >> r.phase >> step >> r.phase_id;
    } else if (line.rfind("m ", 0) == 0) {
      r.max_metrics = std::stoull(line.substr(2));
      r.any_metrics = true;
    } else if (line.rfind("begin ", 0) == 0) {
      last_begin = std::stoull(line.substr(6));
      begun = true;
    }
  }
  r.mid_write = begun && (!r.any_done || r.max_done < last_begin);
  return r;
}

void require_complete(Store& store, uint64_t id, uint64_t step) {
  auto c = store.load_checkpoint(id);
  INFO("checkpoint " << id << ": " << c.status().to_string());
  REQUIRE(c.ok());
  Checkpoint want = crash_checkpoint(step);
  REQUIRE(c->manifest.step == step);
  REQUIRE(c->manifest.fields == want.manifest.fields);
  REQUIRE(c->blobs.size() == want.blobs.size());
  for (size_t i = 0; i < want.blobs.size(); ++i) {
    REQUIRE(c->blobs[i].name == want.blobs[i].name);
    REQUIRE(c->blobs[i].data == want.blobs[i].data);  // never a mix of two steps
  }
}

// Runs a child that writes steps 1.. and kills itself when step `die_step` reaches `phase`;
// returns what it printed.
Report run_until_death(const std::string& db, const std::string& phase, uint64_t die_step) {
  Child child = spawn(db, 1, phase, die_step);
  drain(child, 60000);  // until EOF: the child is dead
  int status = 0;
  REQUIRE(::waitpid(child.pid, &status, 0) == child.pid);
  ::close(child.out);
  INFO(child.buffer);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);
  return parse(child.buffer);
}

// The ids of checkpoints that have a manifest, from the store.
std::set<uint64_t> committed_ids(Store& store) {
  std::set<uint64_t> ids;
  const auto infos = store.list_checkpoints().value();  // kept: value() refers into the Result
  for (const auto& info : infos) ids.insert(info.id);
  return ids;
}

}  // namespace

TEST_CASE("kill -9 during checkpoint writes leaves the old or the new checkpoint, never a mix") {
  TempDir dir;
  const std::string db = dir.sub("db");
  std::mt19937_64 rng(20261128);  // fixed seed: the same kill schedule every run
  constexpr int kKills = 24;
  int mid_write = 0, before_ready = 0, resumed_from_checkpoint = 0;
  std::map<std::string, int> in_phase;  // kills inside a write, by the phase it had reached
  uint64_t committed_floor = 0;  // highest step a child reported committed, ever
  bool any_committed = false;
  uint64_t metrics_floor = 0;
  bool any_metrics = false;
  uint64_t next_step = 1;

  for (int round = 0; round < kKills; ++round) {
    Child child = spawn(db, next_step);
    // Most rounds kill after the store is open; every fifth kills during open/recovery.
    bool early = round % 5 == 4;
    int delay = static_cast<int>(rng() % (early ? 40 : 400));
    if (!early) {
      while (child.buffer.find("ready\n") == std::string::npos) {
        size_t before = child.buffer.size();
        drain(child, 100);
        if (child.buffer.size() == before) {
          int st = 0;
          REQUIRE(::waitpid(child.pid, &st, WNOHANG) == 0);  // the child must not exit on its own
        }
      }
    }
    drain(child, delay);
    REQUIRE(::kill(child.pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(child.pid, &status, 0) == child.pid);
    REQUIRE(WIFSIGNALED(status));  // it was still running: it never failed a write
    drain(child, 0);
    ::close(child.out);
    Report rep = parse(child.buffer);
    if (!rep.ready) ++before_ready;
    if (rep.mid_write) ++mid_write;
    if (!rep.phase.empty()) ++in_phase[rep.phase];
    if (rep.any_done) {
      committed_floor = std::max(committed_floor, rep.max_done);
      any_committed = true;
    }
    if (rep.any_metrics) {
      metrics_floor = std::max(metrics_floor, rep.max_metrics);
      any_metrics = true;
    }

    auto store = open_or_fail(crash_store_options(db));
    // A killed write's data file is gone: exactly the committed checkpoints have one.
    REQUIRE(data_file_ids(db) == committed_ids(*store));
    auto latest = store->latest_checkpoint_info();
    REQUIRE(latest.ok());
    if (any_committed) {
      REQUIRE(latest->has_value());
      // Nothing the child saw committed is lost, and the latest is exactly one it wrote.
      REQUIRE((*latest)->manifest.step >= committed_floor);
    }
    if (latest->has_value()) {
      auto infos = store->list_checkpoints().value();
      for (const auto& info : infos) require_complete(*store, info.id, info.manifest.step);
      REQUIRE((*latest)->manifest.step + 1 >= next_step);  // never older than where this child started
      next_step = (*latest)->manifest.step + 1;
      ++resumed_from_checkpoint;
    }
    if (any_metrics) {
      // Metrics writes are not fsynced, but they reach the OS before Write() returns, so they
      // survive kill -9.
      auto m = store->metrics_range(metrics_floor, metrics_floor).value();
      REQUIRE(m.size() == 1);
      REQUIRE(m[0] == crash_metrics(metrics_floor));
    }
  }
  std::fprintf(stderr,
               "crash test: %d kills, %d before the store was open, %d with a checkpoint handed over but not "
               "committed, %d restarts resumed from a stored checkpoint, last step %llu\n",
               kKills, before_ready, mid_write, resumed_from_checkpoint,
               static_cast<unsigned long long>(next_step - 1));
  std::fprintf(stderr,
               "crash test: kills inside a checkpoint write: %d writing the data file, %d in the commit batch, %d "
               "removing pruned files\n",
               in_phase["file"], in_phase["commit"], in_phase["reclaim"]);
  CHECK(any_committed);
}

TEST_CASE("a checkpoint killed after its data file was synced but before its commit is invisible and removed") {
  TempDir dir;
  const std::string db = dir.sub("db");
  Report rep = run_until_death(db, "commit", 4);  // steps 1-3 committed, step 4's file complete
  REQUIRE(rep.max_done == 3);
  REQUIRE(rep.phase == "commit");
  const uint64_t orphan = rep.phase_id;
  REQUIRE(data_file_ids(db).count(orphan) == 1);  // the file is on disk...
  CHECK(std::filesystem::file_size(data_file(db, orphan)) > 0);

  {  // ...but a read-only open neither shows it nor touches it
    auto ro = crash_store_options(db);
    ro.mode = OpenMode::kReadOnly;
    auto reader = open_or_fail(ro);
    CHECK(reader->latest_checkpoint_info().value()->manifest.step == 3);
    CHECK(committed_ids(*reader).count(orphan) == 0);
    auto valid = reader->load_latest_valid();
    REQUIRE(valid.ok());
    CHECK((*valid)->skipped.empty());
    CHECK((*valid)->checkpoint.manifest.step == 3);
  }
  REQUIRE(data_file_ids(db).count(orphan) == 1);

  {  // a read-write open removes it; the previous checkpoint loads whole
    auto store = open_or_fail(crash_store_options(db));
    CHECK(data_file_ids(db) == committed_ids(*store));
    auto valid = store->load_latest_valid();
    REQUIRE(valid.ok());
    REQUIRE(valid->has_value());
    CHECK((*valid)->skipped.empty());
    require_complete(*store, (*valid)->id, 3);
    CHECK(store->load_checkpoint(orphan).status().code() == StatusCode::kNotFound);
    // The next checkpoint takes a new id above the removed one.
    auto next = store->write_checkpoint(crash_checkpoint(4));
    REQUIRE(next.ok());
    CHECK(next->id > orphan);
    require_complete(*store, next->id, 4);
  }
}

TEST_CASE("a checkpoint killed while its data file is written leaves a partial file the next open removes") {
  TempDir dir;
  const std::string db = dir.sub("db");
  Report rep = run_until_death(db, "piece", 4);
  REQUIRE(rep.max_done == 3);
  REQUIRE(rep.phase == "file");
  const uint64_t partial = rep.phase_id;
  REQUIRE(data_file_ids(db).count(partial) == 1);
  const auto size = std::filesystem::file_size(data_file(db, partial));
  CHECK(size > 0);
  CHECK(size < crash_checkpoint(4).blobs[0].data.size() + crash_checkpoint(4).blobs[1].data.size());

  {
    auto ro = crash_store_options(db);
    ro.mode = OpenMode::kReadOnly;
    auto reader = open_or_fail(ro);
    CHECK(reader->latest_checkpoint_info().value()->manifest.step == 3);
  }
  CHECK(data_file_ids(db).count(partial) == 1);  // read-only: untouched

  auto store = open_or_fail(crash_store_options(db));
  CHECK(data_file_ids(db) == committed_ids(*store));
  auto valid = store->load_latest_valid();
  REQUIRE(valid.ok());
  CHECK((*valid)->skipped.empty());
  require_complete(*store, (*valid)->id, 3);
  auto next = store->write_checkpoint(crash_checkpoint(4));
  REQUIRE(next.ok());
  require_complete(*store, next->id, 4);
}
