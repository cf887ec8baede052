// Node-level relay use (node_network.h; docs/node.md, "Reachability and relays"): nodes that are
// not publicly reachable reserve a slot on the public bootstrap, advertise their /p2p-circuit
// address in their membership record, and reach each other through it: a whole exchange and a
// state sync larger than the libp2p default circuit limit (128 KiB) pass through the relay. Their
// own direct addresses are made undialable (port 1 on loopback refuses at once), so only the
// circuit can carry the traffic.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "common/hash.h"
#include "p2p/identity.h"
#include "trainer/node/node_network.h"

using namespace noloco;
using namespace noloco::node;
using namespace std::chrono_literals;

namespace {

const std::string kRun = "0123456789abcdef0123456789abcdef";
constexpr uint64_t kNumel = 200000;  // 800 KB of fp32-sized tensors per payload
const std::string kDead = "/ip4/127.0.0.1/tcp/1";

Bytes pseudo_random(size_t n, uint32_t seed) {
  Bytes b(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& v : b) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    v = static_cast<uint8_t>(x);
  }
  return b;
}

std::unique_ptr<NodeNetwork> start(ReachabilityMode mode, std::vector<p2p::Multiaddr> bootstrap, bool dead_announce) {
  NetworkOptions o;
  o.identity = *p2p::Identity::generate();
  o.listen = *p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0");
  if (dead_announce) o.announce = *p2p::Multiaddr::parse(kDead);
  o.bootstrap = std::move(bootstrap);
  o.run_id = kRun;
  o.expect.run_id = kRun;
  o.expect.numel = kNumel;
  o.expect.form = WireForm::kDeltaPhi;
  o.expect.max_tensor_bytes = kNumel * 4 + 4096;
  o.gossip_interval = 100ms;
  o.reachability = mode;
  // These tests are about the relay carrying the traffic: on loopback a hole punch would
  // succeed and move it to a direct connection (nat_network_test.cc covers that).
  o.hole_punch = false;
  auto net = NodeNetwork::start(std::move(o));
  REQUIRE(net.ok());
  return std::move(*net);
}

std::shared_ptr<const WirePayload> payload_of(const NodeNetwork& n, uint32_t seed) {
  PayloadHeader h;
  h.run_id = kRun;
  h.sender = n.peer_id().to_string();
  h.outer_step = 3;
  h.inner_step = 60;
  h.form = WireForm::kDeltaPhi;
  h.numel = kNumel;
  return std::make_shared<const WirePayload>(
      frame_payload(h, {{"delta", {pseudo_random(kNumel * 2, seed)}}, {"phi", {pseudo_random(kNumel * 2, seed + 1)}}}));
}

// Polls `pred` up to a generous bound: setup only, never what a check measures.
template <class Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 300; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

std::optional<p2p::PeerRecord> live_record(NodeNetwork& n, const p2p::PeerId& peer) {
  for (auto& r : n.live_peers())
    if (r.peer == peer) return r;
  return std::nullopt;
}

}  // namespace

TEST_CASE("relay network: a private node reserves on the public bootstrap and lists its circuit address first", "[relay]") {
  auto relay = start(ReachabilityMode::kPublic, {}, false);
  auto a = start(ReachabilityMode::kPrivate, {relay->listen_addr()}, true);
  REQUIRE(eventually([&] { return !a->circuit_addrs().empty(); }));
  const auto circuits = a->circuit_addrs();
  REQUIRE(circuits.size() == 1);  // the only public peer
  CHECK(circuits[0] == relay->listen_addr().to_string() + "/p2p-circuit");
  CHECK(a->reachability() == Reachability::kPrivate);
  CHECK(relay->reachability() == Reachability::kPublic);
  CHECK(relay->circuit_addrs().empty());
  // The relay's view of a: its record lists the circuit address before the direct one.
  std::optional<p2p::PeerRecord> rec;
  REQUIRE(eventually([&] { return (rec = live_record(*relay, a->peer_id())) && rec->addrs.size() == 2; }));
  CHECK(rec->addrs[0] == circuits[0]);
  CHECK(rec->addrs[1] == kDead);
}

TEST_CASE("relay network: two private nodes exchange and state-sync through the relay", "[relay]") {
  auto relay = start(ReachabilityMode::kPublic, {}, false);
  auto a = start(ReachabilityMode::kPrivate, {relay->listen_addr()}, true);
  auto b = start(ReachabilityMode::kPrivate, {relay->listen_addr()}, true);
  a->publish_exchange_payload(payload_of(*a, 1));
  std::optional<p2p::PeerRecord> rec_a;
  REQUIRE(eventually([&] {
    rec_a = live_record(*b, a->peer_id());
    return rec_a && rec_a->addrs.size() == 2;
  }));
  REQUIRE(rec_a->addrs[0].find("/p2p-circuit") != std::string::npos);
  // The dead direct address first: the dialer falls back to the circuit address.
  std::swap(rec_a->addrs[0], rec_a->addrs[1]);
  auto mine = payload_of(*b, 7);
  const ExchangeOutcome out = b->exchange_with(*rec_a, mine, 20s);
  INFO((out.failures.empty() ? std::string() : out.failures.front()));
  REQUIRE(out.partner);
  CHECK(out.partner->peer == a->peer_id());
  CHECK(out.bytes_received > (128u << 10));  // more than the libp2p default circuit limit
  CHECK(out.partner->payload.header.sender == a->peer_id().to_string());
  CHECK(b->relayed({a->peer_id(), relay->peer_id()}) == std::vector<p2p::PeerId>{a->peer_id()});
  std::vector<ReceivedPayload> inbox;
  REQUIRE(eventually([&] { return !(inbox = a->take_inbox()).empty(); }));
  CHECK(inbox[0].peer == b->peer_id());
  CHECK(inbox[0].payload.header.sender == b->peer_id().to_string());
  CHECK(inbox[0].payload.tensors.size() == 2);

  // State sync: 1 MB through the same relay, bit for bit.
  const Bytes blob = pseudo_random(1 << 20, 9);
  auto snap = std::make_shared<StateSnapshot>();
  snap->blob = blob;
  const auto d = sha256(blob);
  snap->sha256.assign(d.begin(), d.end());
  snap->outer_step = 3;
  snap->inner_step = 60;
  a->publish_state(snap);
  (void)a->live_peers();  // a round trip through a's network thread: the snapshot is in place
  auto got = b->fetch_state(*rec_a, blob.size() + 4096, 30s);
  REQUIRE(got.ok());
  CHECK(got->blob == blob);
  CHECK(got->outer_step == 3);
}
