// `noloco run`: one training node of a peer-to-peer NoLoCo run (docs/node.md).
//
// The node trains its own replica on its own thread (the caller's), and every H inner steps
// exchanges a payload with one random live peer through NodeNetwork (the network thread), checks
// what it got, and takes the NoLoCo outer step with that partner plus any peers that called it
// meanwhile. There is no barrier: a partner that fails or is slow is replaced, and after the
// exchange budget a solo step is taken. It checkpoints into its store every K outer steps and at
// shutdown, resumes from the store by itself, and a fresh node that finds the swarm ahead of it
// downloads the current slow weights (state sync) instead of starting from zero.
//
// Torch-free header for the CLI.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "p2p/host_options.h"
#include "p2p/identity.h"
#include "trainer/node/nat_view.h"
#include "trainer/node/publish_tamper.h"

namespace noloco::node {

struct NodeOptions {
  std::string db;                      // the node's store (created when missing)
  std::optional<p2p::Identity> identity;  // required
  p2p::HostOptions host;               // PSK, limits
  std::string listen = "/ip4/127.0.0.1/tcp/0";
  std::string announce;                // address peers should dial (default: the bound one)
  std::vector<std::string> join;       // bootstrap multiaddrs (with /p2p/)
  std::string manifest_path;           // start a run from this manifest, or
  std::string run_id;                  // join this run (manifest fetched from --join, hash checked)
  std::string data;                    // corpus path; default: the manifest's
  std::string device = "cpu";
  int threads = 1;                     // torch intra-op threads
  double slowdown = 1.0;               // >1: sleep so each inner step takes this many times longer
  int64_t checkpoint_every = 5;        // outer steps between checkpoints
  uint32_t keep_last = 3;
  // Bounded wait for a partner (NoLoCo) or for the all-reduce with its barrier (DiLoCo) before a
  // solo step; 0: the method's default (exchange_budget_for).
  double exchange_budget_s = 0;
  int exchange_tries = 3;              // partners tried per outer step
  double join_wait_s = 10.0;           // a starting node waits at most this long for the swarm
  int min_peers = 0;                   // ... until it sees this many live peers (0: 1 when it has
                                       // somewhere to look, i.e. --join or a peer book; else none)
  int64_t resync_behind = 8;           // outer steps behind the swarm that trigger a state sync
  int64_t max_staleness = 4;           // older callers' payloads are not mixed
  bool always_exchange = false;        // call a partner even when callers already paired with us
  int64_t eval_windows = 64;           // held-out windows for validation loss
  int64_t eval_every = 1;              // outer steps between evaluations
  double linger_s = 0.0;               // keep serving this long after the last step
  int64_t stop_after_outer = 0;        // tests: exit (with checkpoint) after this many outer steps here
  std::string reachability = "auto";   // auto|public|private (docs/node.md, "Reachability and relays")

  Status validate() const;
};

// The exchange budget in force: --exchange-timeout, or when it is not given a base of 10 s for
// NoLoCo (a pair exchange is a round trip and a transfer) and 300 s for DiLoCo, whose barrier waits
// a whole phase of the slowest member (with 4x-slower nodes, tens of seconds; 10 s would turn every
// such outer step into a solo step), plus the time to move `wire_bytes` at kBudgetLinkBitsPerS.
// The transfer term matters only for big models: a gpt-125m bf16 payload needs ~22-34 s on a
// 100 Mbit/s link (docs/benchmarks.md), longer than the 10 s base, and would never be mixed.
inline constexpr double kBudgetLinkBitsPerS = 50e6;
double exchange_budget_for(const NodeOptions& o, const std::string& method, uint64_t wire_bytes = 0);

// An upper bound on the bytes one node sends in one outer step, before zstd (which only
// shrinks it): NoLoCo's payload (Δ and φ, or θ) in the manifest's codec, or DiLoCo's ring
// all-reduce (each member sends about twice its tensor). Used to scale the default budget.
uint64_t outer_step_wire_bytes(const std::string& method, const std::string& codec, const std::string& wire_form,
                               uint64_t numel);

// The node's live state, for `--metrics` (docs/metrics.md): sampled on the training thread after
// every inner step and whenever the node starts something else (a phase of node_core.h).
struct NodeProgress {
  const char* phase = "";  // wait_peers, state_sync, adopt_state, train, verify, call, allreduce, apply_outer, finish
  int64_t inner_step = 0, outer_step = 0;
  double loss = 0, lr = 0;         // of the last inner step
  size_t live_peers = 0;           // the live view as last seen by the training thread
  size_t connections = 0;          // p2p connections (upgrading and upgraded), as of the last gossip tick
  uint64_t exchange_out = 0, exchange_in = 0, state_out = 0, state_in = 0;  // protocol bytes so far
  NatView nat;  // reachability, relay reservations, peer paths (as of the last gossip tick)
};

struct NodeSinks {
  std::function<void(const std::string& addr)> on_listening;  // full multiaddr with /p2p/
  // Optional; must be cheap (called after every inner step).
  std::function<void(const NodeProgress&)> on_progress;
  // One JSON object per event (docs/events.md). Called from the training thread and, for
  // `checkpoint` events, from the checkpoint writer's thread: the sink must be thread-safe.
  std::function<void(const std::string& json)> on_event;
  // tools/attacker only (publish_tamper.h); empty in every honest node.
  PublishTamper tamper;
};

struct NodeSummary {
  std::string run_id;
  std::string peer_id;
  bool resumed = false;
  bool interrupted = false;
  int64_t start_inner = 0, end_inner = 0;
  int64_t outer_steps = 0;        // taken in this process
  int64_t exchanges = 0;          // outer steps mixed with at least one peer
  int64_t solo_steps = 0;
  double first_val_loss = 0, last_val_loss = 0;
};

Result<NodeSummary> run_node(const NodeOptions& options, const NodeSinks& sinks, const std::atomic<bool>* stop);

}  // namespace noloco::node
