// `noloco init-run` and `noloco join` end to end (docs/invite.md): real processes on loopback,
// each "machine" with its own XDG_DATA_HOME. Assertions read the nodes' events, never the clock.
#include <catch2/catch.hpp>


#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/invite.h"
#include "node_proc.h"
#include "free_port.h"
#include "node_test_util.h"

namespace noloco::test {
namespace {

using json = nlohmann::json;

// Puts XDG_DATA_HOME back as it was when the test ends, however it ends.
struct XdgGuard {
  const char* old = std::getenv("XDG_DATA_HOME");
  const std::string saved = old ? old : "";
  ~XdgGuard() {
    if (old) setenv("XDG_DATA_HOME", saved.c_str(), 1);
    else unsetenv("XDG_DATA_HOME");
  }
};

// The children this test forks inherit XDG_DATA_HOME: one data directory per simulated machine.
void machine(const TempDir& t, const std::string& name) {
  std::filesystem::create_directories(t.sub(name));
  setenv("XDG_DATA_HOME", t.sub(name).c_str(), 1);
}

std::string invite_in(const std::string& out) {
  const size_t b = out.find("noloco1:");
  REQUIRE(b != std::string::npos);
  return out.substr(b, out.find_first_of(" '\n", b) - b);
}

const std::vector<std::string> kTuning = {"--json", "--threads", "1", "--eval-windows", "16", "--exchange-timeout", "5"};

std::vector<std::string> join_args(std::vector<std::string> head) {
  head.insert(head.begin(), "join");
  head.insert(head.end(), kTuning.begin(), kTuning.end());
  return head;
}

const json* find_event(const std::vector<json>& evs, const std::string& kind) {
  for (const auto& e : evs)
    if (e.value("event", "") == kind) return &e;
  return nullptr;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("join: init-run's invite starts the first node, a newcomer joins with it, syncs, trains, and resumes with no flags",
          "[join]") {
  TempDir t;
  XdgGuard xdg;
  const uint16_t port = free_loopback_port();
  REQUIRE(port != 0);

  machine(t, "a");
  RunResult init = run_noloco({"init-run", "--private", "--steps", "400", "--H", "10", "--batch", "8", "--lr", "5e-3",
                               "--warmup", "20", "--listen", "/ip4/127.0.0.1/tcp/" + std::to_string(port)});
  INFO(init.out << init.err);
  REQUIRE(init.exit_code == 0);
  const std::string invite = invite_in(init.out);
  CHECK(init.out.find("noloco join '" + invite + "'") != std::string::npos);  // the exact command to paste
  CHECK(init.out.find("(private)") != std::string::npos);
  auto decoded = cli::decode_invite(invite);
  REQUIRE(decoded.ok());
  REQUIRE(decoded->is_private());

  // Machine a: the printed command (plus test tuning). It serves the manifest and trains alone.
  NodeProc a(join_args({invite, "--linger", "120"}), t.sub("a.log"));
  const std::string a_addr = a.address();
  INFO("a: " << t.sub("a.log"));
  CHECK(a_addr == decoded->bootstrap.front().to_string());
  REQUIRE(a.wait_for([](auto& evs) { return NodeProc::max_outer(evs) >= 2; }));

  // Machine b: a newcomer; it fetches the manifest from a (hash-checked), catches up by state sync
  // and exchanges with a.
  machine(t, "b");
  std::vector<json> first;
  {
    NodeProc b(join_args({invite, "--listen", "/ip4/127.0.0.1/tcp/0", "--stop-after-outer", "3"}), t.sub("b1.log"));
    INFO("b: " << t.sub("b1.log"));
    REQUIRE(b.wait_for([](auto& evs) { return NodeProc::has(evs, "done"); }));
    CHECK(b.wait_exit() == 0);
    first = b.events();
  }
  const json* start1 = find_event(first, "start");
  const json* sync = find_event(first, "state_sync");
  const json* done1 = find_event(first, "done");
  INFO("b's log:\n" << read_file(t.sub("b1.log")));  // a few lines: why it did or did not sync
  REQUIRE(start1);
  REQUIRE(done1);
  CHECK((*start1)["resumed"].get<bool>() == false);
  CHECK((*start1)["run_id"].get<std::string>() == decoded->run_id);
  REQUIRE(sync);
  CHECK((*sync)["outer_step"].get<int64_t>() >= 1);
  int mixed = 0;
  for (const auto& e : first)
    if (e.value("event", "") == "outer" && !e["group"].empty()) ++mixed;
  CHECK(mixed >= 1);
  const int64_t stopped_at = (*done1)["inner_step"].get<int64_t>();
  CHECK(stopped_at > 0);

  // Machine b again, the next day: no invite, no flags but the test's tuning. It resumes.
  {
    NodeProc b(join_args({"--stop-after-outer", "1"}), t.sub("b2.log"));
    INFO("b again: " << t.sub("b2.log"));
    REQUIRE(b.wait_for([](auto& evs) { return NodeProc::has(evs, "done"); }));
    CHECK(b.wait_exit() == 0);
    const auto evs = b.events();
    const json* start2 = find_event(evs, "start");
    REQUIRE(start2);
    CHECK((*start2)["resumed"].get<bool>() == true);
    CHECK((*start2)["inner_step"].get<int64_t>() == stopped_at);
    CHECK(read_file(t.sub("b2.log")).find("data in " + t.sub("b") + "/noloco/" + decoded->run_id) != std::string::npos);
  }

  // An invite whose run id is not the hash of the manifest its peer serves is refused.
  cli::Invite forged = *decoded;
  forged.run_id[0] = forged.run_id[0] == '0' ? '1' : '0';
  machine(t, "c");
  RunResult c = run_noloco(join_args({cli::encode_invite(forged).value(), "--listen", "/ip4/127.0.0.1/tcp/0"}));
  CHECK(c.exit_code == 2);
  CHECK(c.err.find("hashes to " + decoded->run_id) != std::string::npos);

  a.kill(SIGTERM);
  CHECK(a.wait_exit() == 0);
}

TEST_CASE("join: a bad invite, a bad device or nothing saved is refused with exit code 2 and the reason", "[join]") {
  TempDir t;
  RunResult bad = run_noloco({"join", "noloco1:3mJr7AoUXx2Wqd", "--data-dir", t.sub("d")});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("invite: its checksum does not match") != std::string::npos);
  RunResult nothing = run_noloco({"join", "--data-dir", t.sub("d")});
  CHECK(nothing.exit_code == 2);
  CHECK(nothing.err.find("no run saved under " + t.sub("d")) != std::string::npos);
  // A good invite with a device that is not there: refused before anything is saved.
  RunResult init = run_noloco({"init-run", "--data-dir", t.sub("a"), "--listen", "/ip4/127.0.0.1/tcp/4001"});
  REQUIRE(init.exit_code == 0);
  RunResult dev = run_noloco({"join", invite_in(init.out), "--data-dir", t.sub("b"), "--device", "tpu"});
  CHECK(dev.exit_code == 2);
  CHECK(dev.err.find("--device 'tpu'") != std::string::npos);
  CHECK(run_noloco({"join", "--data-dir", t.sub("b")}).err.find("no run saved") != std::string::npos);
}

TEST_CASE("join: a newcomer to a public run of three joined nodes takes the current weights by state sync",
          "[join]") {
  TempDir t;
  XdgGuard xdg;
  const uint16_t port = free_loopback_port();
  REQUIRE(port != 0);

  machine(t, "m0");
  RunResult init = run_noloco({"init-run", "--steps", "400", "--H", "10", "--batch", "8", "--lr", "5e-3", "--warmup",
                               "20", "--listen", "/ip4/127.0.0.1/tcp/" + std::to_string(port)});
  INFO(init.out << init.err);
  REQUIRE(init.exit_code == 0);
  CHECK(init.out.find("(public)") != std::string::npos);
  const std::string invite = invite_in(init.out);
  REQUIRE_FALSE(cli::decode_invite(invite).value().is_private());

  std::vector<std::unique_ptr<NodeProc>> nodes;
  for (int i = 0; i < 3; ++i) {
    machine(t, "m" + std::to_string(i));
    std::vector<std::string> head = {invite, "--linger", "120"};
    if (i > 0) head.insert(head.end(), {"--listen", "/ip4/127.0.0.1/tcp/0"});
    nodes.push_back(std::make_unique<NodeProc>(join_args(head), t.sub("m" + std::to_string(i) + ".log")));
    REQUIRE_FALSE(nodes.back()->address().empty());
  }
  for (auto& n : nodes) REQUIRE(n->wait_for([](auto& evs) { return NodeProc::max_outer(evs) >= 2; }));

  machine(t, "m3");
  NodeProc d(join_args({invite, "--listen", "/ip4/127.0.0.1/tcp/0", "--stop-after-outer", "1"}), t.sub("m3.log"));
  INFO("newcomer: " << t.sub("m3.log"));
  REQUIRE(d.wait_for([](auto& evs) { return NodeProc::has(evs, "done"); }));
  CHECK(d.wait_exit() == 0);
  const auto evs = d.events();
  const json* sync = find_event(evs, "state_sync");
  REQUIRE(sync);
  CHECK((*sync)["outer_step"].get<int64_t>() >= 2);
  // The swarm's weights are better than a fresh model's (near ln 256 = 5.55 nats).
  CHECK((*sync)["val_loss_after"].get<double>() < 0.9 * (*sync)["val_loss_before"].get<double>());

  for (auto& n : nodes) n->kill(SIGTERM);
  for (auto& n : nodes) CHECK(n->wait_exit() == 0);
}

}  // namespace noloco::test
