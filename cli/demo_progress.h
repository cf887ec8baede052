// The live view of `noloco demo`: turns each node's `--json` event lines (docs/node.md) into the
// per-node totals the summary needs, and prints a progress line for the notable ones.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace noloco::cli {

// What the demo learns about one node from its events.
struct NodeState {
  std::string name;  // "node3"
  std::string addr;  // its first non-JSON stdout line: the address it listens on
  std::string peer;  // its peer id (from "start")
  double first_val = 0, last_val = 0;  // validation loss at the start and the latest
  bool have_first = false;
  int64_t exchanges = 0, solo = 0, outer = 0, inner = 0;  // outer steps mixed / alone; latest steps
  uint64_t bytes_out = 0, raw_out = 0;  // bytes sent, and the same payloads as raw fp32
  std::map<std::string, int> partners;  // peer id -> times mixed
  std::vector<std::pair<double, double>> curve;  // (inner step, val loss)
  // Per evaluation: seconds since the demo started, inner step, val loss, bytes sent so far (for
  // loss against wall-clock and against bytes: tools/bench/wan_bench.sh).
  std::vector<std::vector<double>> timeline;
  std::vector<double> blocked_s;  // every outer step: seconds waiting on the exchange or all-reduce
  std::vector<double> tokens_per_s, exchange_s, group_sizes;  // per outer step
  uint64_t payload_bytes = 0, raw_payload = 0;  // our payload's size, and as raw fp32 (last outer step)
};

class Progress {
 public:
  // outer_total: outer steps per node; every tenth of them gets a progress line per node.
  explicit Progress(int64_t outer_total, std::FILE* out = stdout);

  // One stdout line of `node`. Lines that are not JSON objects are its address (the first one).
  // An event with a wrongly typed field is reported and the rest of it skipped (what was read
  // before that field still counts).
  void on_line(NodeState& node, const std::string& line);

  // "node2" for a peer id seen in a "start" event, else the id's last 6 characters.
  std::string label(const std::string& peer) const;

 private:
  void on_event(NodeState& c, const std::string& ev, nlohmann::json& j);
  void on_start(NodeState& c, const nlohmann::json& j);
  void on_outer(NodeState& c, nlohmann::json& j);
  void print_outer(const NodeState& c, const nlohmann::json& j);
  void on_state_sync(NodeState& c, const nlohmann::json& j);

  double seconds() const;  // since this Progress was made (the demo's start)

  std::map<std::string, std::string> name_of_;  // peer id -> node name
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  int64_t outer_total_;
  int64_t print_every_;
  std::FILE* out_;
};

}  // namespace noloco::cli
