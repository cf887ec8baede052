// Which refusal a node answers an exchange with when it has no payload (exchange_wire.h,
// kRefusalNoPayloadYet / kRefusalPayloadBusy): "no snapshot yet" only while its process is fresh,
// so that callers may take that refusal at two claimed steps as a false claim (claim_watch.h).
#include <catch2/catch.hpp>

#include "network_test_util.h"

using namespace noloco;
using namespace noloco::node;
using namespace noloco::test;
using namespace std::chrono_literals;

namespace {

// Publishing and set_progress are posted to the network thread; an exchange call is posted after
// them, so it sees their effect.
ExchangeOutcome call(NodeNetwork& from, const p2p::PeerRecord& to, const NodeNetwork& mine) {
  return from.exchange_with(to, payload_of(mine), 20s);
}

}  // namespace

TEST_CASE("exchange refusals: 'no snapshot yet' only while fresh, 'no payload now' after a payload or a claim",
          "[exchange][claims]") {
  auto a = start_network({});
  auto b = start_network({a->listen_addr()});
  auto c = start_network({a->listen_addr()});
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
