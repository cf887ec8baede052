// DiLoCo as a method of `noloco run` (docs/node.md, "DiLoCo: the all-reduce baseline"): real
// processes on loopback, one all-reduce of Δ among all live nodes at every outer step.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "node_proc.h"
#include "node_test_util.h"

namespace noloco::test {
namespace {

using json = nlohmann::json;

std::vector<json> outer_events(const std::vector<json>& evs) {
  std::vector<json> out;
  for (const auto& e : evs)
    if (e.value("event", "") == "outer") out.push_back(e);
  return out;
}

// A DiLoCo run of `steps` inner steps (H 5) and `n` node processes that wait for each other;
// `codec` empty: init-run's default.
std::vector<std::unique_ptr<NodeProc>> start_diloco_swarm(const TempDir& t, int n, int steps,
                                                          const std::string& codec = "") {
  std::vector<std::string> init_args = {"init-run", "--out", t.sub("manifest.json"), "--method", "diloco", "--steps",
                                        std::to_string(steps), "--H", "5", "--batch", "4", "--warmup", "5",
                                        "--no-data-hash"};
  if (!codec.empty()) init_args.insert(init_args.end(), {"--codec", codec});
  RunResult init = run_noloco(init_args);
  REQUIRE(init.exit_code == 0);
  const std::string run_id = init.out.substr(0, init.out.find('\n'));
  REQUIRE(run_id.size() == 32);
  std::vector<std::unique_ptr<NodeProc>> nodes;
  std::string join;
  for (int i = 0; i < n; ++i) {
    const std::string d = t.sub("n" + std::to_string(i));
    std::filesystem::create_directories(d);
    // Everyone waits for the others before its first step; the all-reduce's budget is
    // generous so that only a real failure (not a slow machine) makes a ring smaller.
    std::vector<std::string> args = {"run", "--db", d + "/db", "--key", d + "/key", "--json", "--threads", "1",
                                     "--eval-windows", "16", "--eval-every", "1", "--exchange-timeout", "120",
                                     "--min-peers", std::to_string(n - 1), "--join-wait", "120", "--linger", "60"};
    if (i == 0) args.insert(args.end(), {"--manifest", t.sub("manifest.json")});
    else args.insert(args.end(), {"--run-id", run_id, "--join", join});
    nodes.push_back(std::make_unique<NodeProc>(args, t.sub("n" + std::to_string(i) + ".log")));
    const std::string addr = nodes[i]->address();
    REQUIRE(!addr.empty());
    if (i == 0) join = addr;
  }
  return nodes;
}

// Three nodes, 30 steps: every outer step is a 3-member ring, after which all hold the same
// weights; the ring's bytes against their fp32 equivalent are at most `max_ratio`.
void identical_after_every_ring(const std::string& codec, const std::string& want_codec, double max_ratio) {
  TempDir t;
  constexpr int kNodes = 3;
  auto nodes = start_diloco_swarm(t, kNodes, 30, codec);
  std::ifstream manifest(t.sub("manifest.json"));
  CHECK(json::parse(manifest)["codec"] == want_codec);
  for (auto& n : nodes) REQUIRE(n->wait_for([](auto& evs) { return NodeProc::has(evs, "done"); }));
  for (auto& n : nodes) n->kill(SIGTERM);  // end the linger
  for (auto& n : nodes) CHECK(n->wait_exit() == 0);

  // val_loss per outer step per node: after a 3-member all-reduce every node holds the same φ
  // (the ring hands everyone the bit-identical mean, and all started from the same φ and δ = 0),
  // and every node evaluates the same validation windows.
  std::map<int64_t, std::vector<double>> val_by_step;
  for (int i = 0; i < kNodes; ++i) {
    INFO("node " << i << ", log " << t.sub("n" + std::to_string(i) + ".log"));
    const auto outers = outer_events(nodes[i]->events());
    REQUIRE(outers.size() == 6);  // 30 steps / H 5
    for (const auto& e : outers) {
      INFO(e.dump());
      CHECK(e["method"] == "diloco");
      CHECK(e["members"].get<int>() == kNodes);
      CHECK(e["group"].size() == kNodes - 1);
      CHECK(e["attempts"].get<int>() >= 1);
      CHECK(e["payload_bytes"].get<uint64_t>() == 0);
      CHECK(e["bytes_out"].get<uint64_t>() > 0);
      CHECK(e["bytes_out"].get<double>() <= max_ratio * e["raw_bytes_out"].get<double>());
      REQUIRE(e.contains("val_loss"));
      val_by_step[e["outer_step"].get<int64_t>()].push_back(e["val_loss"].get<double>());
    }
  }
  REQUIRE(val_by_step.size() == 6);
  for (const auto& [step, vals] : val_by_step) {
    INFO("outer step " << step);
    REQUIRE(vals.size() == kNodes);
    CHECK(vals[0] == vals[1]);  // exactly: same weights, same data, one thread
    CHECK(vals[0] == vals[2]);
  }
  // And training happened: the loss after the last step is below the first one's.
  CHECK(val_by_step.rbegin()->second[0] < val_by_step.begin()->second[0]);
}

}  // namespace

TEST_CASE("diloco: three nodes all-reduce every outer step and end each one with identical weights", "[swarm][diloco]") {
  identical_after_every_ring("", "fp32", 1.0);  // DiLoCo's default stays fp32
}

TEST_CASE("diloco: an int8 ring still leaves every node with identical weights, at about a quarter of the bytes", "[swarm][diloco]") {
  // int8: 1 byte per value + 4 per 128; headers are 64 bytes per 32768 values in both.
  identical_after_every_ring("int8", "int8", 0.27);
}

TEST_CASE("diloco: when a node is killed the others all-reduce without it and finish the run", "[swarm][diloco]") {
  TempDir t;
  auto nodes = start_diloco_swarm(t, 3, 60);  // 12 outer steps
  REQUIRE(nodes[2]->wait_for([](auto& evs) {
    for (const auto& e : evs)
      if (e.value("event", "") == "outer" && e.value("outer_step", 0) >= 2) return true;
    return false;
  }));
  nodes[2]->kill(SIGKILL);
  CHECK(nodes[2]->wait_exit() == -SIGKILL);
  // The barrier holds no survivor forever: a dead member's dial is refused, and it is dropped.
  for (int i = 0; i < 2; ++i) REQUIRE(nodes[i]->wait_for([](auto& evs) { return NodeProc::has(evs, "done"); }));
  for (int i = 0; i < 2; ++i) nodes[i]->kill(SIGTERM);  // end the linger
  for (int i = 0; i < 2; ++i) {
    INFO("node " << i << ", log " << t.sub("n" + std::to_string(i) + ".log"));
    CHECK(nodes[i]->wait_exit() == 0);
    const auto outers = outer_events(nodes[i]->events());
    REQUIRE(outers.size() == 12);
    // The last one long after the kill: a ring of the two survivors.
    CHECK(outers.back()["members"].get<int>() == 2);
    CHECK(outers.back()["inner_step"].get<int>() == 60);
  }
}

}  // namespace noloco::test
