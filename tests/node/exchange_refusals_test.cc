// Which refusal a node answers an exchange with when it has no payload (exchange_wire.h,
// kRefusalNoPayloadYet / kRefusalPayloadBusy): "no snapshot yet" only while its process is fresh,
// so that callers may take that refusal at two claimed steps as a false claim (claim_watch.h).
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "p2p/identity.h"
#include "trainer/node/node_network.h"

using namespace noloco;
using namespace noloco::node;
using namespace std::chrono_literals;

namespace {

const std::string kRun = "0123456789abcdef0123456789abcdef";
constexpr uint64_t kNumel = 64;

std::unique_ptr<NodeNetwork> start(std::vector<p2p::Multiaddr> bootstrap) {
  NetworkOptions o;
  o.identity = *p2p::Identity::generate();
  o.listen = *p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0");
  o.bootstrap = std::move(bootstrap);
  o.run_id = kRun;
  o.expect.run_id = kRun;
  o.expect.numel = kNumel;
  o.expect.form = WireForm::kDeltaPhi;
  o.expect.max_tensor_bytes = kNumel * 4 + 4096;
  o.gossip_interval = 100ms;
  o.reachability = ReachabilityMode::kPublic;
  auto net = NodeNetwork::start(std::move(o));
  REQUIRE(net.ok());
  return std::move(*net);
}

std::shared_ptr<const WirePayload> payload_of(const NodeNetwork& n) {
  PayloadHeader h;
  h.run_id = kRun;
  h.sender = n.peer_id().to_string();
  h.outer_step = 1;
  h.inner_step = 10;
  h.form = WireForm::kDeltaPhi;
  h.numel = kNumel;
  return std::make_shared<const WirePayload>(frame_payload(h, {{"delta", {Bytes(kNumel * 2, 1)}}, {"phi", {Bytes(kNumel * 2, 2)}}}));
}

// Polls up to a generous bound: setup only, never what a check measures.
std::optional<p2p::PeerRecord> record_of(NodeNetwork& in, const p2p::PeerId& peer) {
  for (int i = 0; i < 300; ++i) {
    for (auto& r : in.live_peers())
      if (r.peer == peer) return r;
    std::this_thread::sleep_for(50ms);
  }
  return std::nullopt;
}

// Publishing and set_progress are posted to the network thread; an exchange call is posted after
// them, so it sees their effect.
ExchangeOutcome call(NodeNetwork& from, const p2p::PeerRecord& to, const NodeNetwork& mine) {
  return from.exchange_with(to, payload_of(mine), 20s);
}

}  // namespace

TEST_CASE("exchange refusals: 'no snapshot yet' only while fresh, 'no payload now' after a payload or a claim",
          "[exchange][claims]") {
  auto a = start({});
  auto b = start({a->listen_addr()});
  auto c = start({a->listen_addr()});
  const auto rec_a = record_of(*b, a->peer_id());
  const auto rec_c = record_of(*b, c->peer_id());
  REQUIRE(rec_a);
  REQUIRE(rec_c);

  // Fresh: nothing published, no progress advertised.
  ExchangeOutcome out = call(*b, *rec_a, *b);
  REQUIRE_FALSE(out.partner);
  REQUIRE(out.failures.size() == 1);
  CHECK(out.failures[0].find("refused: no snapshot yet") != std::string::npos);
  CHECK(out.no_payload_yet);

  // A payload, then the gap before the next one: a different refusal.
  a->publish_exchange_payload(payload_of(*a));
  out = call(*b, *rec_a, *b);
  CHECK(out.partner);
  CHECK_FALSE(out.no_payload_yet);
  a->publish_exchange_payload(nullptr);
  out = call(*b, *rec_a, *b);
  REQUIRE_FALSE(out.partner);
  REQUIRE(out.failures.size() == 1);
  CHECK(out.failures[0].find("refused: no payload now") != std::string::npos);
  CHECK_FALSE(out.no_payload_yet);

  // Progress advertised without a payload (a last, partial phase after a restart): not fresh.
  out = call(*b, *rec_c, *b);
  CHECK(out.no_payload_yet);
  c->set_progress(3, 100.0);
  out = call(*b, *rec_c, *b);
  REQUIRE_FALSE(out.partner);
  CHECK_FALSE(out.no_payload_yet);
  CHECK(out.failures[0].find("refused: no payload now") != std::string::npos);
}
