// Exact resume of `noloco train` from its store: a run SIGKILLed at random steps and restarted
// ends with the same θ/φ hashes as an uninterrupted run; every stored field is needed (dropping or
// corrupting it changes the resumed result or is refused). Runs the real binary.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>

#include "node_test_util.h"
#include "storage/store.h"

using noloco::test::run_noloco;
using noloco::test::RunResult;
using noloco::test::TempDir;
using noloco::test::train_args;

namespace {

// The uninterrupted 40-step run's final line, computed once per process.
const RunResult& reference_run() {
  static TempDir dir;
  static RunResult r = run_noloco(train_args(dir.sub("ref")));
  return r;
}

// A store interrupted (SIGTERM, synchronous final checkpoint) part way through the same run.
const TempDir& interrupted_base() {
  static TempDir dir;
  static bool done = [] {
    RunResult r = run_noloco(train_args(dir.sub("db")), 17, SIGTERM);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 130);
    REQUIRE(r.out.find("interrupted") != std::string::npos);
    return true;
  }();
  (void)done;
  return dir;
}

float get_f32(const noloco::Bytes& b, size_t i) {
  float f;
  std::memcpy(&f, b.data() + 4 * i, 4);
  return f;
}
void set_f32(noloco::Bytes& b, size_t i, float f) { std::memcpy(b.data() + 4 * i, &f, 4); }
uint64_t get_u64(const noloco::Bytes& b, size_t i) { return noloco::get_u64_le(b.data() + 8 * i); }
void set_u64(noloco::Bytes& b, size_t i, uint64_t v) {
  for (int k = 0; k < 8; ++k) b[8 * i + k] = static_cast<uint8_t>(v >> (8 * k));
}

noloco::Bytes& blob(noloco::storage::Checkpoint& cp, const std::string& name) {
  for (auto& b : cp.blobs)
    if (b.name == name) return b.data.bytes();
  FAIL("no blob " << name);
  throw std::logic_error("unreachable");
}

using Mutation = std::function<void(noloco::storage::Checkpoint&)>;

// Copies the interrupted store, rewrites its latest checkpoint through `mutate` (as a new
// checkpoint, so it becomes "latest") and resumes the run to the end.
RunResult resume_mutated(const Mutation& mutate) {
  TempDir dir;
  std::filesystem::copy(interrupted_base().sub("db"), dir.sub("db"), std::filesystem::copy_options::recursive);
  {
    noloco::storage::StoreOptions so;
    so.path = dir.sub("db");
    auto store = noloco::storage::Store::open(so);
    REQUIRE(store.ok());
    auto cp = (*store)->load_latest();
    REQUIRE(cp.ok());
    mutate(*cp);
    REQUIRE((*store)->write_checkpoint(*cp).ok());
  }
  return run_noloco(train_args(dir.sub("db")));
}

}  // namespace

TEST_CASE("an uninterrupted run prints a final hash and a rerun of a finished store reproduces it") {
  const RunResult& ref = reference_run();
  INFO(ref.out << ref.err);
  REQUIRE(ref.exit_code == 0);
  REQUIRE(ref.field("step") == "40");
  REQUIRE(ref.field("theta_sha256").size() == 64);
  // Independent second run from scratch: training itself is deterministic on CPU.
  TempDir dir;
  RunResult again = run_noloco(train_args(dir.sub("db")));
  REQUIRE(again.exit_code == 0);
  CHECK(again.field("theta_sha256") == ref.field("theta_sha256"));
  CHECK(again.field("phi_sha256") == ref.field("phi_sha256"));
  // Restarting a finished run trains nothing and reports the stored weights.
  RunResult done = run_noloco(train_args(dir.sub("db")));
  REQUIRE(done.exit_code == 0);
  CHECK(done.err.find("resumed run") != std::string::npos);
  CHECK(done.field("theta_sha256") == ref.field("theta_sha256"));
}

TEST_CASE("SIGKILL at random steps, then resume: bit-identical weights") {
  const RunResult& ref = reference_run();
  REQUIRE(ref.exit_code == 0);
  std::mt19937 rng(20261128);  // fixed: the kill points are random but the test is repeatable
  for (int trial = 0; trial < 2; ++trial) {
    TempDir dir;
    const long k1 = std::uniform_int_distribution<long>(2, 20)(rng);
    const long k2 = std::uniform_int_distribution<long>(k1 + 8, 38)(rng);
    RunResult a = run_noloco(train_args(dir.sub("db")), k1, SIGKILL);
    INFO("trial " << trial << " kill at " << k1 << " then " << k2 << "\n" << a.err);
    REQUIRE(a.signal == SIGKILL);
    RunResult b = run_noloco(train_args(dir.sub("db")), k2, SIGKILL);
    INFO(b.err);
    // The second process either got killed or (had it resumed past k2) finished.
    REQUIRE((b.signal == SIGKILL || b.exit_code == 0));
    RunResult c = run_noloco(train_args(dir.sub("db")));
    INFO(c.out << c.err);
    REQUIRE(c.exit_code == 0);
    CHECK(c.err.find("resumed run") != std::string::npos);
    CHECK(c.field("step") == "40");
    CHECK(c.field("theta_sha256") == ref.field("theta_sha256"));
    CHECK(c.field("phi_sha256") == ref.field("phi_sha256"));
  }
}

TEST_CASE("SIGTERM writes a final checkpoint, and resuming it matches the uninterrupted run") {
  const RunResult& ref = reference_run();
  REQUIRE(ref.exit_code == 0);
  RunResult r = resume_mutated([](noloco::storage::Checkpoint&) {});  // control: no change
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.field("theta_sha256") == ref.field("theta_sha256"));
  CHECK(r.field("phi_sha256") == ref.field("phi_sha256"));
}

TEST_CASE("resume refuses a store written with different flags") {
  TempDir dir;
  RunResult a = run_noloco(train_args(dir.sub("db"), 12));
  REQUIRE(a.exit_code == 0);
  auto args = train_args(dir.sub("db"), 12);
  args.push_back("--lr");
  args.push_back("0.001");
  RunResult b = run_noloco(args);
  INFO(b.err);
  CHECK(b.exit_code == 2);
  CHECK(b.err.find("different config") != std::string::npos);
  CHECK(b.err.find("inner.lr") != std::string::npos);
}

// Every stored field matters: dropping it is refused, and a wrong value either changes the
// resumed run's final weights or is refused on load. `name` says which field is touched.
TEST_CASE("every checkpoint field is needed for exact resume") {
  const RunResult& ref = reference_run();
  REQUIRE(ref.exit_code == 0);
  using noloco::storage::Checkpoint;
  std::vector<std::pair<std::string, Mutation>> cases;
  // Drop each blob the store actually holds (so a field added later is covered too).
  {
    noloco::storage::StoreOptions so;
    so.path = interrupted_base().sub("db");
    so.mode = noloco::storage::OpenMode::kReadOnly;
    auto store = noloco::storage::Store::open(so);
    REQUIRE(store.ok());
    auto cp = (*store)->load_latest();
    REQUIRE(cp.ok());
    REQUIRE(cp->blobs.size() >= 9);
    for (const auto& b : cp->blobs) {
      const std::string name = b.name;
      cases.push_back({"drop " + name, [name](Checkpoint& c) {
                         std::erase_if(c.blobs, [&](const auto& x) { return x.name == name; });
                       }});
    }
  }
  auto bump_float = [](const char* name, float scale, float add) {
    return [=](Checkpoint& c) {
      noloco::Bytes& b = blob(c, name);
      for (size_t i = 0; i < 8; ++i) set_f32(b, i * 97, get_f32(b, i * 97) * scale + add);
    };
  };
  cases.push_back({"theta", bump_float("theta", 1.0f, 1e-3f)});
  cases.push_back({"phi", bump_float("phi", 1.0f, 1e-3f)});
  cases.push_back({"delta", bump_float("delta", 1.0f, 1e-3f)});
  cases.push_back({"adam.m", bump_float("adam.m", 1.0f, 1e-3f)});
  cases.push_back({"adam.v", bump_float("adam.v", 4.0f, 1e-6f)});
  cases.push_back({"counters.optimizer_step", [](Checkpoint& c) {
                     auto& b = blob(c, "counters");
                     set_u64(b, 0, get_u64(b, 0) - 1);
                   }});
  cases.push_back({"counters.inner_step", [](Checkpoint& c) {
                     auto& b = blob(c, "counters");
                     set_u64(b, 1, get_u64(b, 1) + 1);
                   }});
  cases.push_back({"counters.inner_step+manifest", [](Checkpoint& c) {
                     auto& b = blob(c, "counters");
                     set_u64(b, 1, get_u64(b, 1) + 1);
                     c.manifest.step += 1;
                   }});
  cases.push_back({"counters.outer_step", [](Checkpoint& c) {
                     auto& b = blob(c, "counters");
                     set_u64(b, 2, get_u64(b, 2) + 1);
                     c.manifest.outer_step += 1;
                   }});
  cases.push_back({"rng.seed", [](Checkpoint& c) {
                     auto& b = blob(c, "rng");
                     set_u64(b, 0, get_u64(b, 0) + 1);
                   }});
  cases.push_back({"data.shard_begin", [](Checkpoint& c) {
                     auto& b = blob(c, "data");
                     set_u64(b, 0, get_u64(b, 0) + 1);
                   }});
  cases.push_back({"data.cursor", [](Checkpoint& c) {
                     auto& b = blob(c, "data");
                     set_u64(b, 2, get_u64(b, 2) + 1);
                   }});
  cases.push_back({"config blob", [](Checkpoint& c) {
                     auto& b = blob(c, "config");
                     std::string s = noloco::to_string(b);
                     s.replace(s.find("inner.clip="), 11, "inner.clip=2");
                     b = noloco::to_bytes(s);
                   }});
  cases.push_back({"manifest.config", [](Checkpoint& c) { c.manifest.config += "node.extra=1\n"; }});
  cases.push_back({"manifest.step", [](Checkpoint& c) { c.manifest.step += 1; }});
  cases.push_back({"manifest.format", [](Checkpoint& c) { c.manifest.fields.erase("format"); }});

  for (const auto& [name, mutate] : cases) {
    DYNAMIC_SECTION(name) {
      RunResult r = resume_mutated(mutate);
      INFO(name << ": exit " << r.exit_code << "\n" << r.err);
      const bool refused = r.exit_code != 0 && r.err.find("noloco train:") != std::string::npos;
      const bool changed = r.exit_code == 0 && !r.field("theta_sha256").empty() &&
                           r.field("theta_sha256") != ref.field("theta_sha256") &&
                           r.field("phi_sha256") != ref.field("phi_sha256");
      CHECK((refused || changed));
      if (name.rfind("drop ", 0) == 0) CHECK(refused);
    }
  }
}
