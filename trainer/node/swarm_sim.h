// A deterministic swarm simulator on the node core (docs/simulate-swarm.md): N virtual nodes in
// one process, each a NodeCore (node_core.h) making exactly the decisions `noloco run` makes, on
// a virtual clock (an event queue) and a virtual network (per-link delay, bandwidth, loss,
// partitions), with crashes, restarts, late joiners and hostile nodes, all from one seed.
// Training is replaced by a model: an inner phase takes H · step time · the node's speed factor,
// and moves a small weight vector toward the node's own optimum; the NoLoCo outer step is applied
// to those vectors exactly, so the spread of the weights across the swarm can be measured.
//
// Same config (seed included) -> the same trace, byte for byte, on every platform.
// Torch-free and Asio-free.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace noloco::node {

// Something that happens to the swarm at a given virtual time.
struct SimFault {
  enum class Kind {
    kCrash,      // `node` is killed (SIGKILL: no final checkpoint); restarts after `duration` if > 0
    kPartition,  // nodes [0, split) and [split, N) cannot reach each other for `duration` seconds
    kJoin,       // `node` starts only at `at` (a late joiner, from scratch)
    kHostile,    // `node` sends payloads that fail verification (from the start)
    kSlow,       // `node`'s inner steps take `factor` times longer (from the start)
  } kind;
  double at = 0;
  int node = 0;
  double duration = 0;
  int split = 0;
  double factor = 1.0;
};

struct SimConfig {
  uint64_t seed = 1;
  int nodes = 16;
  int64_t outer_steps = 100;       // the run's length in outer steps (total inner = this · H)
  int64_t H = 50;
  double step_s = 0.1;             // one inner step at speed 1
  double speed_spread = 0.3;       // speed factors uniform in [1, 1 + spread]
  double phase_jitter = 0.05;      // each phase's time varies by up to ± this fraction
  // Virtual network.
  double delay_s = 0.01;           // one-way delay, per link scaled by a factor in [1, 1 + delay_spread]
  double delay_spread = 1.0;
  double bandwidth_Bps = 100e6;    // per transfer
  double loss = 0.0;               // probability that one message (request or answer) is lost
  uint64_t payload_bytes = 2'000'000;
  uint64_t state_bytes = 1'000'000;
  double membership_timeout_s = 5.0;  // a dead or unreachable peer leaves the views after this
  double heal_gossip_s = 5.0;         // after a partition heals, the halves see each other after this
  double join_poll_s = 0.1;
  size_t max_inbox = 8;
  // The node's rules (NodeOptions' defaults).
  int64_t max_staleness = 4;
  int64_t resync_behind = 8;
  bool always_exchange = false;
  int exchange_tries = 3;
  double exchange_budget_s = 10.0;
  int64_t checkpoint_every = 5;
  int strikes_to_ban = 5;
  double join_wait_s = 10.0;
  // The weight model.
  int dim = 8;
  double alpha = 0.5, beta = 0.7, gamma = 0.7;
  double inner_rate = 0.3;         // an inner phase moves θ this fraction toward the node's optimum
  double optimum_spread = 1.0;     // per-node optima scattered this much around the common one
  double inner_noise = 0.05;
  std::vector<SimFault> faults;

  Status validate() const;
};

struct SimNodeStats {
  int64_t outer_steps = 0, exchanges = 0, solo_steps = 0, resyncs = 0, calls = 0, call_failures = 0;
  int64_t refused = 0, stale = 0, bans = 0, checkpoints = 0, crashes = 0, mixed_callers = 0;
  int64_t distinct_partners = 0;
  std::vector<int64_t> staleness_hist;  // [lag] -> payloads mixed with that lag
  int64_t mixed_over_bound = 0;         // payloads mixed with lag > max_staleness (must stay 0)
  double blocked_p50 = 0, blocked_p99 = 0, blocked_max = 0;  // seconds, phase done -> outer step
  int64_t final_outer = 0;
  bool finished = false;
};

struct SimResult {
  std::vector<SimNodeStats> nodes;
  uint64_t trace_hash = 0;     // FNV-1a 64 over every trace line
  uint64_t events = 0;         // processed by the event queue
  double end_time = 0;         // virtual seconds
  double weight_spread = 0;    // mean distance of the nodes' φ from their mean, at the end
  double initial_spread = 0;   // the same if nobody had ever mixed (solo training only)
  // Groups that mixed across the partition split, per window [k, k+1) of `window_s` seconds.
  std::vector<int64_t> cross_mixes;
  double window_s = 0;
};

// Runs the simulation. `trace`, when set, receives one JSON object per line (no newline).
Result<SimResult> run_swarm_sim(const SimConfig& config, const std::function<void(const std::string&)>& trace = {});

// A fault from its text form (docs/simulate-swarm.md): crash:NODE@AT[+DOWN], partition:SPLIT@AT+FOR,
// join:NODE@AT, hostile:NODE, slow:NODE*FACTOR (times in virtual seconds).
Result<SimFault> parse_sim_fault(const std::string& text);

// Per-node counters as JSON lines, and a one-line summary.
std::string sim_node_json(int node, const SimNodeStats& s);
std::string sim_summary_json(const SimConfig& c, const SimResult& r);

}  // namespace noloco::node
