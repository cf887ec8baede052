// The outer-step network model (tools/netsim): closed forms, the pair exchange's arithmetic,
// the all-reduce barrier, determinism and input checks.
#include <catch2/catch.hpp>

#include "tools/netsim/outer_step_model.h"

using namespace noloco::netsim;

namespace {

ModelConfig two_nodes(double lat, double bw, double bytes) {
  ModelConfig c;
  c.nodes.resize(2);
  for (auto& n : c.nodes) {
    n.compute_s = 1.0;
    n.latency_s = lat;
    n.bandwidth_Bps = bw;
  }
  c.payload_bytes = bytes;
  c.outer_steps = 1;
  c.jitter_sigma = 0;
  c.handshake_rtts = 1;
  return c;
}

}  // namespace

TEST_CASE("netsim: a ring over its real edges is the slowest chain of edges, not every step on the worst", "[netsim]") {
  const Link l{0.05, 12.5e6};
  // Equal edges: the closed form.
  CHECK(ring_allreduce_edges_s(std::vector<Link>(16, l), 4e6) == Approx(ring_allreduce_s(16, 4e6, l)));
  CHECK(ring_allreduce_edges_s({l}, 4e6) == 0);
  // Latency only, three members, one 150 ms edge: 2(n-1) = 4 hops in sequence, and the worst
  // window of 4 consecutive edges holds the slow one twice (0.15 + 0.01 + 0.01 + 0.15).
  const Link fast{0.01, 1e12}, slow{0.15, 1e12};
  CHECK(ring_allreduce_edges_s({slow, fast, fast}, 0) == Approx(0.32));
  CHECK(ring_allreduce_edges_s({slow, fast, fast}, 0) < ring_allreduce_s(3, 0, slow));
  // A slow-rate edge holds back the steps that cross it.
  const Link thin{0.05, 1.25e6};
  const double mixed = ring_allreduce_edges_s({thin, l, l, l}, 4e6);
  CHECK(mixed > ring_allreduce_s(4, 4e6, l));
  CHECK(mixed <= ring_allreduce_s(4, 4e6, thin));
}

TEST_CASE("netsim: ring and tree all-reduce closed forms", "[netsim]") {
  const Link l{0.05, 12.5e6};
  CHECK(ring_allreduce_s(1, 1e6, l) == 0);
  CHECK(tree_allreduce_s(1, 1e6, l) == 0);
  // Two members: reduce-scatter and all-gather are one step each, half the tensor per step.
  CHECK(ring_allreduce_s(2, 1e6, l) == Approx(2 * (0.05 + 0.5e6 / 12.5e6)));
  // A ring pays 2(n-1) latencies in sequence; at 1024 members that alone is 102 s at 50 ms.
  CHECK(ring_allreduce_s(1024, 0, l) == Approx(2 * 1023 * 0.05));
  // A tree pays 2 log2(n) latencies and, with fine pipelining, about 2 x children x size / rate.
  CHECK(tree_allreduce_s(1024, 0, l) == Approx(2 * 10 * 0.05));
  const double big = tree_allreduce_s(1024, 1e9, l);
  CHECK(big >= 2 * 2 * 1e9 / 12.5e6);
  CHECK(big < 1.05 * (2 * 2 * 1e9 / 12.5e6 + 2 * 10 * 0.05));
  // Halving-doubling: the tree's latency and the ring's bytes at once.
  CHECK(halving_doubling_s(1024, 1e6, l) == Approx(2 * 10 * 0.05 + 2 * 1023.0 / 1024 * 1e6 / 12.5e6));
  CHECK(halving_doubling_s(1024, 1e6, l) < std::min(ring_allreduce_s(1024, 1e6, l), tree_allreduce_s(1024, 1e6, l)));
  CHECK(halving_doubling_s(6, 1e6, l) > halving_doubling_s(8, 1e6, l));  // folding the extra two costs
  CHECK(link_between({1, 1, 0.01, 1e9}, {1, 1, 0.15, 2.5e6}).latency_s == 0.15);
  CHECK(link_between({1, 1, 0.01, 1e9}, {1, 1, 0.15, 2.5e6}).bandwidth_Bps == 2.5e6);
}

TEST_CASE("netsim: one pair exchange costs handshake, transfer and latency, and queues on the uplink", "[netsim]") {
  const double lat = 0.05, bw = 12.5e6, bytes = 2.5e6, x = bytes / bw;  // x = 0.2 s > lat
  auto r = simulate(two_nodes(lat, bw, bytes), Method::kNolocoPairs);
  REQUIRE(r.ok());
  CHECK(r->outer_steps_done == 2);
  // Node 0 calls node 1: one handshake round trip, then request and answer cross in parallel.
  CHECK(r->blocked_p50_s == Approx(4 * lat + x));
  // Node 1 finished at the same moment and calls node 0, but its uplink is busy answering.
  CHECK(r->blocked_p99_s == Approx(4 * lat + 2 * x));
  CHECK(r->bytes_per_node_per_step == Approx(2 * bytes));
}

TEST_CASE("netsim: the all-reduce barrier makes fast nodes wait for the slowest, pairs do not", "[netsim]") {
  ModelConfig c = two_nodes(0.01, 125e6, 1e6);
  c.nodes.resize(8, c.nodes[0]);
  c.nodes[7].slowdown = 4;
  c.outer_steps = 10;
  auto ring = simulate(c, Method::kRingAllReduce);
  auto tree = simulate(c, Method::kTreeAllReduce);
  auto pairs = simulate(c, Method::kNolocoPairs);
  REQUIRE(ring.ok());
  REQUIRE(tree.ok());
  REQUIRE(pairs.ok());
  // Seven of eight nodes wait three phases of compute for the slow one at every step.
  CHECK(ring->blocked_p50_s >= 3.0);
  CHECK(tree->blocked_p50_s >= 3.0);
  CHECK(pairs->blocked_p99_s < 1.0);
  // The fast nodes of the pair swarm finish their 10 steps near 10 s; the barrier swarm at ~40 s.
  CHECK(ring->wall_s >= 40.0);
  CHECK(pairs->outer_steps_done == 80);
}

TEST_CASE("netsim: a config gives the same figures every time, another seed other figures", "[netsim]") {
  ModelConfig c = two_nodes(0.05, 12.5e6, 1e6);
  c.nodes.resize(64, c.nodes[0]);
  c.jitter_sigma = 0.2;
  c.outer_steps = 20;
  auto a = simulate(c, Method::kNolocoPairs), b = simulate(c, Method::kNolocoPairs);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->wall_s == b->wall_s);
  CHECK(a->blocked_p99_s == b->blocked_p99_s);
  c.seed = 2;
  auto other = simulate(c, Method::kNolocoPairs);
  REQUIRE(other.ok());
  CHECK(other->wall_s != a->wall_s);
}

TEST_CASE("netsim: bad configs are refused with a reason", "[netsim]") {
  ModelConfig empty;
  CHECK_FALSE(simulate(empty, Method::kNolocoPairs).ok());
  ModelConfig c = two_nodes(0.05, 12.5e6, 1e6);
  c.nodes[1].bandwidth_Bps = 0;
  auto r = simulate(c, Method::kRingAllReduce);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("bandwidth") != std::string::npos);
  c = two_nodes(0.05, 12.5e6, 1e6);
  c.nodes[0].slowdown = 0.5;
  CHECK_FALSE(simulate(c, Method::kNolocoPairs).ok());
  c = two_nodes(0.05, 12.5e6, 1e6);
  c.outer_steps = 0;
  CHECK_FALSE(simulate(c, Method::kTreeAllReduce).ok());
}
