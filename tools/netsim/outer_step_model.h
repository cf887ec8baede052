// A discrete-event model of the outer step's time on a wide-area swarm (issue 10, docs/netsim.md):
// NoLoCo's random pairs against DiLoCo's all-reduce (ring, pipelined binary tree, and recursive
// halving-doubling, the one that is both latency- and bandwidth-optimal), for
// swarms far larger than one machine can run, fed with measured compute and link figures.
//
// What is modelled: per-node compute time of one inner phase (with a speed factor and seeded
// log-normal jitter), per-node access links (one-way latency, bandwidth; a pair's link is the
// worse of its two ends, as tools/linkemu's profiles do), the bytes each method moves, the
// node's exchange rules (a node that was called since its last outer step mixes that caller's
// payload instead of calling; a called node answers from its last snapshot without waiting),
// uplink contention (transfers leaving one node queue on its uplink), and DiLoCo's barrier (an
// all-reduce starts when the slowest member arrives). What is not: TCP slow start and loss, CPU
// cost of encryption and codecs, membership gossip.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace noloco::netsim {

struct NodeSpec {
  double compute_s = 1.0;     // one inner phase (H steps) at speed factor 1
  double slowdown = 1.0;      // >= 1: this node computes that many times slower
  double latency_s = 0.05;    // one-way latency of its access link
  double bandwidth_Bps = 12.5e6;  // its access link's rate, bytes per second
};

struct ModelConfig {
  std::vector<NodeSpec> nodes;
  double payload_bytes = 0;    // NoLoCo: one payload, each direction; DiLoCo: the tensor all-reduced
  int outer_steps = 100;
  double jitter_sigma = 0.1;   // log-normal sigma of each phase's compute time
  int handshake_rtts = 1;      // round trips before payload bytes flow (stream + protocol negotiation)
  uint64_t seed = 1;

  Status validate() const;
};

// The link between two nodes: the worse latency and the lower rate of the two ends.
struct Link {
  double latency_s, bandwidth_Bps;
};
Link link_between(const NodeSpec& a, const NodeSpec& b);

enum class Method { kNolocoPairs, kRingAllReduce, kTreeAllReduce, kHalvingDoubling };
const char* method_name(Method m);

struct MethodResult {
  Method method;
  double wall_s = 0;                   // until the last node finished its last outer step
  double blocked_p50_s = 0, blocked_p99_s = 0, blocked_mean_s = 0;  // per node per outer step
  double bytes_per_node_per_step = 0;  // sent, mean over nodes
  int64_t outer_steps_done = 0;        // summed over nodes
};

// Deterministic for a given config (seeded jitter and partner choice).
Result<MethodResult> simulate(const ModelConfig& config, Method method);

// Closed forms the simulation uses for one all-reduce of `bytes` over n members whose slowest
// link is `worst` (exposed for tests).
double ring_allreduce_s(int n, double bytes, const Link& worst);
// The ring over its real edges (edges[r]: member r to r+1, the last back to 0): member r sends
// step t once step t-1 has arrived from r-1 and its own link is free, so the time is the
// slowest chain of edges around the ring, not 2(n-1) times the worst edge. Equals
// ring_allreduce_s when every edge is the same.
double ring_allreduce_edges_s(const std::vector<Link>& edges, double bytes);
double tree_allreduce_s(int n, double bytes, const Link& worst);  // best pipelining depth
double halving_doubling_s(int n, double bytes, const Link& worst);

}  // namespace noloco::netsim
