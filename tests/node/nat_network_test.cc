// The node's NAT services on loopback (node_network.h; docs/node.md, "Reachability and
// relays"): AutoNAT dial-backs decide the reachability verdict, and a relayed connection between
// two nodes is upgraded to a direct one by a hole punch (DCUtR), reported as a peer_path event
// and in nat_view(). Through real NATs: tools/journeys/private_run.sh.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "p2p/identity.h"
#include "trainer/node/node_network.h"

using namespace noloco;
using namespace noloco::node;
using namespace std::chrono_literals;

namespace {

const std::string kRun = "fedcba9876543210fedcba9876543210";

std::unique_ptr<NodeNetwork> start(ReachabilityMode mode, std::vector<p2p::Multiaddr> bootstrap,
                                   bool dead_announce = false) {
  NetworkOptions o;
  o.identity = *p2p::Identity::generate();
  o.listen = *p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0");
  // Port 1 on loopback refuses at once: peers can reach such a node only through the relay.
  if (dead_announce) o.announce = *p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/1");
  o.bootstrap = std::move(bootstrap);
  o.run_id = kRun;
  o.expect.run_id = kRun;
  o.gossip_interval = 100ms;
  o.reachability = mode;
  o.autonat_retry = 200ms;
  auto net = NodeNetwork::start(std::move(o));
  REQUIRE(net.ok());
  return std::move(*net);
}

// Polls `pred` up to a generous bound: setup only, never what a check measures.
template <class Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 600; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// Drains `n`'s events into `seen` and tells whether one matches.
template <class Pred>
bool has_event(NodeNetwork& n, std::vector<NetworkEvent>& seen, Pred pred) {
  for (auto& e : n.take_events()) seen.push_back(std::move(e));
  for (const auto& e : seen)
    if (pred(e)) return true;
  return false;
}

}  // namespace

TEST_CASE("nat network: dial-backs by peers make loopback nodes public, on dial-back evidence", "[nat]") {
  auto a = start(ReachabilityMode::kAuto, {});
  auto b = start(ReachabilityMode::kAuto, {a->listen_addr()});
  // Each serves the other's dial-back: b dialled a, and a's request goes back over that connection.
  REQUIRE(eventually([&] { return a->nat_view().basis == "dialback" && b->nat_view().basis == "dialback"; }));
  for (auto* n : {a.get(), b.get()}) {
    const NatView v = n->nat_view();
    CHECK(v.reachability == "public");
    CHECK(v.why.find("reached our listen address") != std::string::npos);
    CHECK(n->reachability() == Reachability::kPublic);
    CHECK(v.reservations.empty());  // a public node reserves nothing
  }
  std::vector<NetworkEvent> seen;
  CHECK(has_event(*a, seen, [](const NetworkEvent& e) {
    return e.kind == NetworkEvent::Kind::kReachability && e.detail == "public" && e.basis == "dialback";
  }));
  // The peer is reached directly, and said so once.
  REQUIRE(eventually([&] { return b->nat_view().direct == 1; }));
  std::vector<NetworkEvent> seen_b;
  CHECK(has_event(*b, seen_b, [&](const NetworkEvent& e) {
    return e.kind == NetworkEvent::Kind::kPath && e.peer == a->peer_id() && e.detail == "direct";
  }));
}

TEST_CASE("nat network: a relayed connection between two private nodes is upgraded by a hole punch", "[nat]") {
  auto relay = start(ReachabilityMode::kPublic, {});
  auto a = start(ReachabilityMode::kPrivate, {relay->listen_addr()}, true);
  auto b = start(ReachabilityMode::kPrivate, {relay->listen_addr()}, true);
  REQUIRE(eventually([&] { return !a->circuit_addrs().empty() && !b->circuit_addrs().empty(); }));
  // Gossip finds the other through the relay (its direct address is dead), then the relayed
  // connection's listener starts DCUtR: both dial each other's observed address from their
  // listen ports. On loopback the first SYN meets the other's listener, so one side holds a
  // hole-punched connection and the other the one it accepted; both are direct.
  const bool upgraded = eventually([&] {
    return a->relayed({b->peer_id()}).empty() && b->relayed({a->peer_id()}).empty() &&
           a->nat_view().direct + a->nat_view().hole_punched == 2 &&
           b->nat_view().direct + b->nat_view().hole_punched == 2;
  });
  if (!upgraded) {  // what each side ended with, for the failure message
    for (auto* n : {a.get(), b.get()}) {
      const NatView v = n->nat_view();
      UNSCOPED_INFO(n->peer_id().to_string() << ": direct " << v.direct << ", relayed " << v.relayed << ", hole-punched "
                    << v.hole_punched << ", punches " << v.punch_attempts << "/" << v.punch_succeeded << "/"
                    << v.punch_failed << ", live " << n->live_peers().size());
    }
  }
  REQUIRE(upgraded);
  const NatView va = a->nat_view(), vb = b->nat_view();
  CHECK(va.hole_punched + vb.hole_punched >= 1);
  CHECK(va.punch_succeeded + vb.punch_succeeded >= 1);
  CHECK(va.relayed == 0);
  CHECK(vb.relayed == 0);
  // The side that holds the punched connection said so in a peer_path event.
  std::vector<NetworkEvent> ea, eb;
  auto punched = [](const p2p::PeerId& peer) {
    return [peer](const NetworkEvent& e) {
      return e.kind == NetworkEvent::Kind::kPath && e.peer == peer && e.detail == "hole_punched";
    };
  };
  const bool said_a = has_event(*a, ea, punched(b->peer_id()));
  const bool said_b = has_event(*b, eb, punched(a->peer_id()));
  CHECK((said_a || said_b));
  if (va.hole_punched == 1) CHECK(said_a);
  if (vb.hole_punched == 1) CHECK(said_b);
  // Still private: the punch changes the path to one peer, not the verdict or the reservations.
  CHECK(va.reachability == "private");
  CHECK(va.reservations.size() == 1);
}
