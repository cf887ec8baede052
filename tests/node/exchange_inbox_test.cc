// Callers' payloads cannot pile up (node_network.h NetworkOptions::max_inbox; docs/defences.md,
// "callers' payloads piling up"): a node keeps at most max_inbox callers' payloads for its next
// outer step, one per caller. A newer payload from a caller replaces its older one, an older one
// is not kept over it, and when the inbox is full a new caller's payload drops the stalest.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "network_test_util.h"
#include "trainer/node/node_network.h"

using namespace noloco;
using namespace noloco::node;
using namespace std::chrono_literals;
using noloco::test::payload_of;

namespace {

std::unique_ptr<NodeNetwork> start_net(size_t max_inbox) {
  return test::start_network({}, "127.0.0.1", [max_inbox](NetworkOptions& o) { o.max_inbox = max_inbox; });
}

p2p::PeerRecord record(const NodeNetwork& n) {
  p2p::PeerRecord r;
  r.peer = n.peer_id();
  r.addrs = {n.bound_addr().without_peer_id().to_string()};
  r.outer_step = 1;
  return r;
}

// `caller` exchanges a payload of `outer_step` with `node`, and returns once `node` has taken it
// in (the caller may have the answer first: the node answers as soon as the header checks out).
void call(NodeNetwork& caller, NodeNetwork& node, uint64_t outer_step) {
  const uint64_t served = node.traffic().exchanges_served;
  const ExchangeOutcome out = caller.exchange_with(record(node), payload_of(caller, outer_step), 20s);
  INFO((out.failures.empty() ? std::string() : out.failures.front()));
  REQUIRE(out.partner);
  for (int i = 0; i < 400 && node.traffic().exchanges_served == served; ++i) std::this_thread::sleep_for(25ms);
  REQUIRE(node.traffic().exchanges_served == served + 1);
  (void)node.live_peers();  // a round trip through its network thread: the inbox write is done
}

std::map<std::string, uint64_t> steps_by_sender(const std::vector<ReceivedPayload>& inbox) {
  std::map<std::string, uint64_t> out;
  for (const auto& r : inbox) out[r.peer.to_string()] = r.payload.header.outer_step;
  return out;
}

}  // namespace

TEST_CASE("exchange inbox: one payload per caller, the newest kept, the stalest dropped when full",
          "[node][defence][streams]") {
  auto node = start_net(2);
  node->publish_exchange_payload(payload_of(*node, 5));
  auto a = start_net(8), b = start_net(8), c = start_net(8);
  const std::string ida = a->peer_id().to_string(), idb = b->peer_id().to_string(), idc = c->peer_id().to_string();

  SECTION("a caller's newer payload replaces its older one; an older one does not") {
    call(*a, *node, 4);
    call(*a, *node, 6);
    call(*b, *node, 7);
    call(*b, *node, 3);  // older than what b already has in the inbox: not kept
    CHECK(steps_by_sender(node->take_inbox()) == std::map<std::string, uint64_t>{{ida, 6}, {idb, 7}});
    CHECK(node->take_inbox().empty());  // taken once
  }
  SECTION("full: a new caller's payload drops the stalest entry") {
    call(*a, *node, 3);
    call(*b, *node, 5);
    call(*c, *node, 4);  // the inbox of 2 is full: a's (outer step 3) goes
    CHECK(steps_by_sender(node->take_inbox()) == std::map<std::string, uint64_t>{{idb, 5}, {idc, 4}});
  }
}
