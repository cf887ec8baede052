// DCUtR: the HolePunch codec (bytes from the spec's field numbers), the address choice and
// both sides' state machines, sans-IO.
#include <catch2/catch.hpp>

#include "p2p/dcutr.h"

using namespace noloco;
using namespace noloco::p2p;
using namespace noloco::p2p::dcutr;
using namespace std::chrono_literals;

namespace {
Multiaddr ma(const char* s) { return *Multiaddr::parse(s); }
}  // namespace

TEST_CASE("dcutr: SYNC and CONNECT encode with the spec's field numbers", "[dcutr]") {
  // type = field 1 varint: SYNC 300 = ac 02; CONNECT 100 = 64.
  CHECK(encode_hole_punch(HolePunch{HolePunchType::kSync, {}, 0}) == Bytes{0x08, 0xac, 0x02});
  Bytes c = encode_hole_punch(HolePunch{HolePunchType::kConnect, {ma("/ip4/1.2.3.4/tcp/5")}, 0});
  // ObsAddrs = field 2 bytes: /ip4 (04) 1.2.3.4 /tcp (06) 0005.
  CHECK(c == Bytes{0x08, 0x64, 0x12, 0x08, 0x04, 1, 2, 3, 4, 0x06, 0x00, 0x05});
  auto back = decode_hole_punch(c);
  REQUIRE(back.ok());
  CHECK(back->type == HolePunchType::kConnect);
  CHECK(back->addrs == std::vector<Multiaddr>{ma("/ip4/1.2.3.4/tcp/5")});
}

TEST_CASE("dcutr: bad messages are refused", "[dcutr]") {
  CHECK(decode_hole_punch(Bytes{}).status().code() == StatusCode::kCorrupt);                // no type
  CHECK(decode_hole_punch(Bytes{0x08, 0x01}).status().code() == StatusCode::kCorrupt);      // unknown type
  CHECK(decode_hole_punch(Bytes{0x0a, 0x00}).status().code() == StatusCode::kCorrupt);      // type, wrong wire type
  CHECK(decode_hole_punch(Bytes{0x08, 0x64, 0x12, 0x05}).status().code() != StatusCode::kOk);  // truncated address
  HolePunch many{HolePunchType::kConnect, {}, 0};
  for (int i = 0; i < 17; ++i) many.addrs.push_back(*Multiaddr::from_ip_tcp("10.0.0.1", static_cast<uint16_t>(1000 + i)));
  CHECK(decode_hole_punch(encode_hole_punch(many)).status().code() == StatusCode::kTooLarge);
  CHECK(decode_hole_punch(Bytes(kMaxDcutrMessage + 1, 0)).status().code() == StatusCode::kTooLarge);
  // An address we cannot parse is dropped and counted, not fatal.
  auto m = decode_hole_punch(Bytes{0x08, 0x64, 0x12, 0x02, 0xff, 0xff});
  REQUIRE(m.ok());
  CHECK(m->addrs.empty());
  CHECK(m->dropped_addrs == 1);
}

TEST_CASE("dcutr: only plain TCP addresses are punched, observed IPs get the listen port", "[dcutr]") {
  auto p = punchable({ma("/ip4/1.2.3.4/tcp/5/p2p/12D3KooWEuvKzajzZxBkfvuTJL3jo7NfH3xHoRRe4T6HPbjN74LM"),
                      ma("/ip4/0.0.0.0/tcp/5"), ma("/ip4/1.2.3.4/tcp/5"),
                      ma("/ip4/9.9.9.9/tcp/1/p2p/12D3KooWEuvKzajzZxBkfvuTJL3jo7NfH3xHoRRe4T6HPbjN74LM/p2p-circuit"),
                      ma("/dns4/example.com/tcp/5"), ma("/ip6/::1/tcp/7")});
  CHECK(p == std::vector<Multiaddr>{ma("/ip4/1.2.3.4/tcp/5"), ma("/ip6/::1/tcp/7")});
  auto pred = predicted_addrs({ma("/ip4/198.51.100.2/tcp/40000")}, {ma("/ip4/10.0.0.2/tcp/4001")});
  CHECK(pred == std::vector<Multiaddr>{ma("/ip4/198.51.100.2/tcp/4001"), ma("/ip4/198.51.100.2/tcp/40000")});
}

TEST_CASE("dcutr: a full exchange, B dials after half the measured RTT, A on SYNC", "[dcutr]") {
  const std::vector<Multiaddr> a_addrs{ma("/ip4/198.51.100.2/tcp/4001")};
  const std::vector<Multiaddr> b_addrs{ma("/ip4/198.51.100.3/tcp/4002")};
  Initiator b(b_addrs);
  Responder a(a_addrs);
  TimePoint t0{};
  Bytes connect = b.start(t0);
  auto s1 = a.on_message(connect);
  REQUIRE(s1.ok());
  REQUIRE(s1->reply);
  CHECK(s1->dial.empty());
  CHECK_FALSE(s1->done);
  auto plan = b.on_reply(*s1->reply, t0 + 80ms);
  REQUIRE(plan.ok());
  CHECK(plan->dial == a_addrs);
  CHECK(plan->dial_after == 40ms);
  auto s2 = a.on_message(plan->sync);
  REQUIRE(s2.ok());
  CHECK(s2->done);
  CHECK(s2->dial == b_addrs);
  CHECK_FALSE(s2->reply);
  // Anything after SYNC, or a second reply, is a protocol error.
  CHECK(a.on_message(plan->sync).status().code() == StatusCode::kProtocolError);
  CHECK(b.on_reply(*s1->reply, t0).status().code() == StatusCode::kProtocolError);
}

TEST_CASE("dcutr: out-of-order and empty exchanges fail", "[dcutr]") {
  Responder a({});
  CHECK(a.on_message(encode_hole_punch(HolePunch{HolePunchType::kSync, {}, 0})).status().code() ==
        StatusCode::kProtocolError);
  Initiator b({ma("/ip4/198.51.100.3/tcp/4002")});
  CHECK(b.on_reply(encode_hole_punch(HolePunch{HolePunchType::kConnect, {}, 0}), TimePoint{}).status().code() ==
        StatusCode::kProtocolError);  // before start()
  Initiator b2({ma("/ip4/198.51.100.3/tcp/4002")});
  b2.start(TimePoint{});
  // A peer with no punchable address: nothing to dial, stay relayed.
  CHECK(b2.on_reply(encode_hole_punch(HolePunch{HolePunchType::kConnect, {ma("/ip4/0.0.0.0/tcp/1")}, 0}), TimePoint{})
            .status()
            .code() == StatusCode::kUnavailable);
  Initiator b3({});
  b3.start(TimePoint{});
  CHECK(b3.on_reply(encode_hole_punch(HolePunch{HolePunchType::kSync, {}, 0}), TimePoint{}).status().code() ==
        StatusCode::kProtocolError);
}
