// `noloco status` against running nodes (docs/status.md): two real `noloco run` processes on
// loopback, one with --metrics; its GET /status, `status --node`, `status --db` (through the
// address file) and what is left after it stops. Waits are guards against hangs, never timings.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "node_proc.h"
#include "node_test_util.h"

namespace noloco::test {
namespace {

using json = nlohmann::json;

std::vector<std::string> node_args(const TempDir& t, const std::string& name, std::vector<std::string> extra) {
  std::vector<std::string> a = {"run",          "--db",  t.sub(name + "-db"), "--key", t.sub(name + ".key"),
                                "--json",       "--threads", "1",            "--eval-windows", "8",
                                "--eval-every", "1000",  "--exchange-timeout", "5"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// The "http" of the address file, once it is there (it is written at the node's start event).
std::string address_from_file(const std::string& db) {
  std::ifstream f(db + "/noloco-http.json");
  const json j = json::parse(f, nullptr, false);
  return j.is_discarded() ? std::string() : j.value("http", "");
}

bool mentions(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

}  // namespace

TEST_CASE("live status: noloco status --node and --db show a running node's phase, step, partner and peers",
          "[live_status]") {
  TempDir t;
  RunResult init = run_noloco({"init-run", "--out", t.sub("m.json"), "--steps", "100000", "--H", "5", "--batch", "4"});
  REQUIRE(init.exit_code == 0);
  const std::string run_id = init.out.substr(0, init.out.find('\n'));
  NodeProc a(node_args(t, "a", {"--manifest", t.sub("m.json"), "--metrics", "127.0.0.1:0"}), t.sub("a.log"));
  const std::string a_addr = a.address();
  REQUIRE(!a_addr.empty());
  REQUIRE(a.wait_for([](auto& evs) { return NodeProc::has(evs, "start"); }));
  NodeProc b(node_args(t, "b", {"--run-id", run_id, "--join", a_addr}), t.sub("b.log"));
  REQUIRE(b.wait_for([](auto& evs) { return NodeProc::has(evs, "start"); }));
  const std::string b_peer = b.events_of("start")[0]["peer"];
  const std::string a_peer = a.events_of("start").at(0)["peer"];

  // Until A has mixed with B at least once.
  auto mixed = [](const std::vector<json>& evs) {
    for (const auto& e : evs)
      if (e.value("event", "") == "outer" && !e["group"].empty()) return true;
    return false;
  };
  INFO("logs: " << t.sub("a.log") << " " << t.sub("b.log"));
  REQUIRE(a.wait_for(mixed));
  int64_t mixed_at = 0;
  for (const auto& e : a.events_of("outer"))
    if (!e["group"].empty()) mixed_at = e["outer_step"];

  const std::string http = address_from_file(t.sub("a-db"));
  REQUIRE(!http.empty());
  RunResult live = run_noloco({"status", "--node", http, "--json"});
  INFO(live.out << live.err);
  REQUIRE(live.exit_code == 0);
  const json j = json::parse(live.out);
  CHECK(j["state"] == "running");
  CHECK(j["peer"] == a_peer);
  CHECK(j["run_id"] == run_id);
  const std::set<std::string> phases = {"wait_peers", "state_sync", "adopt_state", "train",
                                        "verify",     "call",       "allreduce",   "apply_outer"};
  CHECK(phases.count(j["phase"].get<std::string>()) == 1);
  CHECK(j["outer_step"].get<int64_t>() >= mixed_at);
  CHECK(j["peers"]["live"].get<int64_t>() >= 1);
  CHECK(j["counts"]["mixed"].get<int64_t>() >= 1);
  std::set<std::string> partners;
  for (const auto& e : j["recent_partners"]) partners.insert(e["partner"].get<std::string>());
  CHECK(partners.count(b_peer) == 1);

  // Reachability: B dials A's listen address back (AutoNAT), so A is public on that evidence,
  // holds no relay reservation and reaches its one live peer directly. The dial-back is asked
  // for every few seconds until it answers: poll (setup, not a measured time).
  json nat = j["nat"];
  for (int i = 0; i < 60 && nat["basis"] != "dialback"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    RunResult again = run_noloco({"status", "--node", http, "--json"});
    REQUIRE(again.exit_code == 0);
    nat = json::parse(again.out)["nat"];
  }
  INFO(nat.dump());
  CHECK(nat["basis"] == "dialback");
  CHECK(nat["reachability"] == "public");
  CHECK(nat["relay_reservations"].empty());
  CHECK(nat["paths"]["direct"].get<int64_t>() >= 1);
  CHECK(nat["paths"]["relayed"] == 0);
  CHECK(nat["paths"]["hole_punched"] == 0);

  RunResult text = run_noloco({"status", "--node", http});
  REQUIRE(text.exit_code == 0);
  CHECK(mentions(text.out, "live         http://" + http + "/status"));
  CHECK(mentions(text.out, "node         …" + a_peer.substr(a_peer.size() - 6) + "  running"));
  CHECK(mentions(text.out, "partners     "));
  CHECK(mentions(text.out, "reachability public (dial-back: "));
  CHECK(mentions(text.out, "relay        no reservation"));
  CHECK(mentions(text.out, "paths        1 direct, 0 relayed, 0 hole-punched"));
  CHECK(mentions(text.out, "…" + b_peer.substr(b_peer.size() - 6)));

  // --db alone finds the node through its address file and shows the store as well.
  RunResult both = run_noloco({"status", "--db", t.sub("a-db"), "--json"});
  INFO(both.out << both.err);
  REQUIRE(both.exit_code == 0);
  const json jb = json::parse(both.out);
  CHECK(jb["live"]["peer"] == a_peer);
  CHECK(jb["run_id"] == run_id);

  a.kill(SIGTERM);
  b.kill(SIGTERM);
  CHECK(a.wait_exit() == 0);
  CHECK(b.wait_exit() == 0);
  // A stopped node removes its address file; asked directly, nothing answers and status says so.
  CHECK_FALSE(std::filesystem::exists(t.sub("a-db") + "/noloco-http.json"));
  RunResult after = run_noloco({"status", "--db", t.sub("a-db"), "--json"});
  REQUIRE(after.exit_code == 0);
  CHECK_FALSE(json::parse(after.out).contains("live"));
  RunResult gone = run_noloco({"status", "--node", http, "--timeout", "10"});
  CHECK(gone.exit_code == 1);
  CHECK(mentions(gone.err, http));
}

TEST_CASE("live status: a stale address file is reported, the store is still shown", "[live_status]") {
  TempDir t;
  RunResult train = run_noloco(train_args(t.sub("db"), 6));
  REQUIRE(train.exit_code == 0);
  // What a node killed with SIGKILL leaves behind: an address nobody answers at (port 1 on
  // loopback is not listening here; a refused connect is the point, not the port).
  std::ofstream(t.sub("db") + "/noloco-http.json") << "{\"http\":\"127.0.0.1:1\",\"pid\":1,\"peer\":\"x\"}\n";
  RunResult r = run_noloco({"status", "--db", t.sub("db"), "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const json j = json::parse(r.out);
  CHECK_FALSE(j.contains("live"));
  CHECK(mentions(j["live_error"].get<std::string>(), "no node answers at 127.0.0.1:1"));
  CHECK(j["latest_checkpoint"]["step"] == 6);
  RunResult text = run_noloco({"status", "--db", t.sub("db")});
  CHECK(mentions(text.out, "live         no node answers at 127.0.0.1:1"));
  RunResult none = run_noloco({"status"});
  CHECK(none.exit_code == 2);
  CHECK(mentions(none.err, "--db DIR"));
}

}  // namespace noloco::test
