// The node's reachability verdict, relay reservations and dial order (reachability.h,
// relay_keeper.h, dial_order.h; docs/node.md, "Reachability and relays"): sans-IO, no sockets.
#include <catch2/catch.hpp>

#include "common/clock.h"
#include "p2p/identity.h"
#include "trainer/node/dial_order.h"
#include "trainer/node/reachability.h"
#include "trainer/node/relay_keeper.h"

using namespace noloco;
using namespace noloco::node;
using namespace std::chrono_literals;

namespace {

p2p::PeerId new_peer() { return p2p::Identity::generate()->peer_id(); }

RelayCandidate candidate(const std::string& ip) {
  const p2p::PeerId id = new_peer();
  return {id, p2p::Multiaddr::parse("/ip4/" + ip + "/tcp/4001")->with_peer_id(id)};
}

auto always = [](const p2p::PeerId&) { return true; };

}  // namespace

TEST_CASE("reachability: a loopback node seen at another loopback address (a local proxy) is public", "[relay]") {
  ReachabilityEvidence ev;
  ev.own_ips = {"127.0.1.2", "127.0.2.2"};  // tools/linkemu: listen 127.0.1.x, announce 127.0.2.x
  ev.observed_ips = {"127.0.0.1"};          // the proxy's own source address
  CHECK(decide_reachability(ReachabilityMode::kAuto, ev) == Reachability::kPublic);
  ev.observed_ips.push_back("198.51.100.1");  // not all loopback: judged as before
  CHECK(decide_reachability(ReachabilityMode::kAuto, ev) == Reachability::kPrivate);
  ev.own_ips = {"10.1.0.2"};
  ev.observed_ips = {"127.0.0.1"};  // our own address is not loopback: no exemption
  CHECK(decide_reachability(ReachabilityMode::kAuto, ev) == Reachability::kPrivate);
}

TEST_CASE("reachability: flags win, auto judges from the addresses peers saw us at", "[relay]") {
  ReachabilityEvidence ev;
  ev.own_ips = {"10.1.0.2"};
  CHECK(decide_reachability(ReachabilityMode::kAuto, ev) == Reachability::kUnknown);
  ev.observed_ips = {"198.51.100.1"};  // a NAT rewrote our source address
  CHECK(decide_reachability(ReachabilityMode::kAuto, ev) == Reachability::kPrivate);
  CHECK(decide_reachability(ReachabilityMode::kPublic, ev) == Reachability::kPublic);
  ev.observed_ips.push_back("10.1.0.2");  // a peer on our own network saw our real address
  CHECK(decide_reachability(ReachabilityMode::kAuto, ev) == Reachability::kPublic);
  CHECK(decide_reachability(ReachabilityMode::kPrivate, ev) == Reachability::kPrivate);
  ev.dialback_succeeded = false;  // the AutoNAT seam outranks the heuristic
  CHECK(decide_reachability(ReachabilityMode::kAuto, ev) == Reachability::kPrivate);
  CHECK(parse_reachability_mode("auto").ok());
  CHECK_FALSE(parse_reachability_mode("nat").ok());
}

TEST_CASE("relay keeper: asks the first two candidates, advertises granted slots, renews at half time", "[relay]") {
  RelayKeeper k;
  const TimePoint t0{};
  const auto a = candidate("198.51.100.10"), b = candidate("198.51.100.11"), c = candidate("198.51.100.12");
  CHECK(k.tick(t0, false, {a, b, c}, always).empty());  // reachable: nothing to do
  auto ask = k.tick(t0, true, {a, b, c}, always);
  REQUIRE(ask.size() == 2);
  CHECK(ask[0] == a.addr);
  CHECK(ask[1] == b.addr);
  CHECK(k.tick(t0 + 1s, true, {a, b, c}, always).empty());  // answers pending: not asked twice
  k.on_granted(a.peer, t0 + 1s, 3600s);
  k.on_failed(b.peer, t0 + 1s);
  REQUIRE(k.circuit_addrs().size() == 1);
  CHECK(k.circuit_addrs()[0] == a.addr.to_string() + "/p2p-circuit");
  // b is in back-off: c is asked in its place.
  ask = k.tick(t0 + 2s, true, {a, b, c}, always);
  REQUIRE(ask.size() == 1);
  CHECK(ask[0] == c.addr);
  k.on_granted(c.peer, t0 + 2s, 3600s);
  CHECK(k.held() == 2);
  CHECK(k.tick(t0 + 1700s, true, {a, b, c}, always).empty());
  ask = k.tick(t0 + 1801s, true, {a, b, c}, always);  // a: half of its hour left
  REQUIRE(ask.size() == 1);
  CHECK(ask[0] == a.addr);
  CHECK(k.held() == 2);  // still advertised while the renewal is on its way
}

TEST_CASE("relay keeper: a lost relay connection or a relay that turns private is let go", "[relay]") {
  RelayKeeper k;
  const TimePoint t0{};
  const auto a = candidate("198.51.100.10"), b = candidate("198.51.100.11");
  (void)k.tick(t0, true, {a, b}, always);
  k.on_granted(a.peer, t0, 3600s);
  k.on_granted(b.peer, t0, 3600s);
  // a's connection went: reserve again at once (that redials it).
  auto ask = k.tick(t0 + 5s, true, {a, b}, [&](const p2p::PeerId& p) { return p != a.peer; });
  REQUIRE(ask.size() == 1);
  CHECK(ask[0] == a.addr);
  CHECK(k.held() == 1);
  // b no longer looks public: dropped, never advertised again.
  (void)k.tick(t0 + 6s, true, {a}, always);
  CHECK(k.held() == 0);
  // Becoming reachable drops everything.
  k.on_granted(a.peer, t0 + 7s, 3600s);
  CHECK(k.held() == 1);
  CHECK(k.tick(t0 + 8s, false, {a}, always).empty());
  CHECK(k.circuit_addrs().empty());
}

TEST_CASE("relay keeper: a failed renewal keeps the live grant and retries after the back-off", "[relay]") {
  RelayKeeperOptions o;
  o.want = 1;
  RelayKeeper k(o);
  const TimePoint t0{};
  const auto a = candidate("198.51.100.10");
  (void)k.tick(t0, true, {a}, always);
  k.on_granted(a.peer, t0, 100s);
  REQUIRE(k.tick(t0 + 50s, true, {a}, always).size() == 1);
  k.on_failed(a.peer, t0 + 51s);
  CHECK(k.held() == 1);
  CHECK(k.tick(t0 + 55s, true, {a}, always).empty());
  CHECK(k.tick(t0 + 61s, true, {a}, always).size() == 1);
  k.on_failed(a.peer, t0 + 101s);  // lapsed meanwhile
  CHECK(k.held() == 0);
}

TEST_CASE("dial order: the address that last worked first, then the record's order", "[relay]") {
  p2p::PeerRecord r;
  r.peer = new_peer();
  const std::string relay = "/ip4/198.51.100.10/tcp/4001/p2p/" + new_peer().to_string() + "/p2p-circuit";
  r.addrs = {relay, "/ip4/10.1.0.2/tcp/4001", "not an address"};
  auto order = dial_order(r, std::nullopt);
  REQUIRE(order.size() == 2);
  CHECK(order[0].is_circuit());
  CHECK(order[0].to_string() == relay + "/p2p/" + r.peer.to_string());
  CHECK(order[1].to_string() == "/ip4/10.1.0.2/tcp/4001/p2p/" + r.peer.to_string());
  order = dial_order(r, std::string("/ip4/10.1.0.2/tcp/4001"));
  REQUIRE(order.size() == 2);
  CHECK_FALSE(order[0].is_circuit());
  order = dial_order(r, std::string("/ip4/10.9.9.9/tcp/1"));  // no longer listed: ignored
  REQUIRE(order.size() == 2);
  CHECK(order[0].is_circuit());
}
