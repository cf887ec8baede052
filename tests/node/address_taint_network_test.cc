// Tainted addresses on real hosts (trainer/node/address_taint.h, NodeNetworkImpl::on_ban): once
// two identities connected from one address are banned, the node strikes every other identity
// connected from that address, except one that served it a payload, and nobody from elsewhere.
// The peers listen and dial from their own 127/8 addresses, as under tools/linkemu.
#include <catch2/catch.hpp>

#include <map>

#include "network_test_util.h"
#include "trainer/node/address_taint.h"

using namespace noloco;
using namespace noloco::node;
using namespace noloco::test;
using namespace std::chrono_literals;

TEST_CASE("address taint: two bans from one address strike the rest of it, not a vouched peer or another address",
          "[taint][network]") {
  auto v = start_network({}, "127.0.0.1");
  const std::vector<p2p::Multiaddr> boot = {v->listen_addr()};
  auto honest = start_network(boot, "127.0.1.9");  // shares the address with the liars, and trains
  auto s1 = start_network(boot, "127.0.1.9");
  auto s2 = start_network(boot, "127.0.1.9");
  auto s3 = start_network(boot, "127.0.1.9");
  auto elsewhere = start_network(boot, "127.0.1.11");
  for (auto* n : {honest.get(), s1.get(), s2.get(), s3.get(), elsewhere.get()}) REQUIRE(record_of(*v, n->peer_id()));

  // The honest one serves v a payload: vouched for.
  honest->publish_exchange_payload(payload_of(*honest));
  const ExchangeOutcome out = v->exchange_with(*record_of(*v, honest->peer_id()), payload_of(*v), 20s);
  REQUIRE(out.partner);

  // One ban taints nothing; the second taints 127.0.1.9.
  v->ban(s1->peer_id());
  v->ban(s2->peer_id());
  std::map<std::string, std::string> struck;  // peer -> why
  for (int i = 0; i < 200 && !struck.count(s3->peer_id().to_string()); ++i) {
    for (auto& e : v->take_events())
      if (e.kind == NetworkEvent::Kind::kBadPayload) {
        struck[e.peer.to_string()] = e.detail;
        CHECK(e.weight == kTaintStrike);
      }
    std::this_thread::sleep_for(50ms);
  }
  REQUIRE(struck.count(s3->peer_id().to_string()));
  CHECK(struck[s3->peer_id().to_string()].find("127.0.1.9") != std::string::npos);
  // The same sweep judged every live peer: nobody else was struck.
  CHECK(struck.size() == 1);
  CHECK_FALSE(struck.count(honest->peer_id().to_string()));
  CHECK_FALSE(struck.count(elsewhere->peer_id().to_string()));
}

TEST_CASE("address taint: one ban from an address strikes nobody else", "[taint][network]") {
  auto v = start_network({}, "127.0.0.1");
  const std::vector<p2p::Multiaddr> boot = {v->listen_addr()};
  auto s1 = start_network(boot, "127.0.1.12");
  auto s2 = start_network(boot, "127.0.1.12");
  REQUIRE(record_of(*v, s1->peer_id()));
  REQUIRE(record_of(*v, s2->peer_id()));
  v->ban(s1->peer_id());
  // A ban of a peer elsewhere afterwards: the network thread handled the first ban before it.
  auto other = start_network(boot, "127.0.1.13");
  REQUIRE(record_of(*v, other->peer_id()));
  v->ban(other->peer_id());
  // Events after both bans were handled (the ban is posted; a later exchange call is queued behind it).
  (void)v->exchange_with(*record_of(*v, s2->peer_id()), payload_of(*v), 5s);
  for (auto& e : v->take_events()) CHECK(e.kind != NetworkEvent::Kind::kBadPayload);
}
