// Circuit relay v2 messages: byte layouts from the spec's .proto (libp2p/specs
// relay/circuit-v2.md), round trips, and every kind of bad input refused.
#include <catch2/catch.hpp>

#include "common/encoding.h"
#include "p2p/protobuf.h"
#include "p2p/relay_wire.h"

using namespace noloco;
using namespace noloco::p2p;
using namespace noloco::p2p::relay;

namespace {

PeerId new_peer() { return Identity::generate()->peer_id(); }

Bytes peer_field(ByteView id_bytes) {
  pb::Writer w;
  w.add_bytes(1, id_bytes);
  return w.take();
}

}  // namespace

TEST_CASE("relay messages have the spec's byte layout", "[relay]") {
  HopMessage reserve;
  reserve.type = HopType::kReserve;
  CHECK(hex_encode(encode_hop(reserve)) == "0800");  // field 1, varint 0

  // STATUS OK: type 2 (08 02), status 100 in field 5 (28 64).
  CHECK(hex_encode(encode_hop(hop_status(RelayStatus::kOk))) == "08022864");
  // Stop STATUS PERMISSION_DENIED: type 1 (08 01), status 202 in field 4 (20 ca 01).
  CHECK(hex_encode(encode_stop(stop_status(RelayStatus::kPermissionDenied))) == "080120ca01");

  const PeerId p = new_peer();
  HopMessage connect;
  connect.type = HopType::kConnect;
  connect.peer = RelayPeer{p, {}};
  const Bytes id = p.bytes();
  // 08 01, then field 2 (12) <len> { field 1 (0a) <len> id }.
  const std::string want = "0801" "12" + hex_encode(Bytes{static_cast<uint8_t>(id.size() + 2)}) + "0a" +
                           hex_encode(Bytes{static_cast<uint8_t>(id.size())}) + hex_encode(id);
  CHECK(hex_encode(encode_hop(connect)) == want);
}

TEST_CASE("relay messages round-trip with every field", "[relay]") {
  HopMessage m;
  m.type = HopType::kStatus;
  m.status = RelayStatus::kOk;
  m.peer = RelayPeer{new_peer(), {*Multiaddr::parse("/ip4/10.0.0.1/tcp/4001")}};
  Reservation res;
  res.expire_unix_s = 1'900'000'000;
  res.addrs = {*Multiaddr::parse("/ip4/1.2.3.4/tcp/4001/p2p/" + new_peer().to_string())};
  res.voucher = Bytes{1, 2, 3};
  m.reservation = res;
  m.limit = RelayLimit{120, 1ull << 40};
  auto back = decode_hop(encode_hop(m));
  REQUIRE(back.ok());
  CHECK(*back == m);

  StopMessage s;
  s.type = StopType::kConnect;
  s.peer = RelayPeer{new_peer(), {}};
  s.limit = RelayLimit{std::nullopt, 4096};
  auto sback = decode_stop(encode_stop(s));
  REQUIRE(sback.ok());
  CHECK(*sback == s);

  // An empty Limit means unlimited on both axes and survives as such.
  m.limit = RelayLimit{};
  CHECK(decode_hop(encode_hop(m))->limit == RelayLimit{});
}

TEST_CASE("relay decoders refuse malformed messages", "[relay]") {
  auto hop = [](std::string hex) { return decode_hop(*hex_decode(hex)); };
  auto stop = [](std::string hex) { return decode_stop(*hex_decode(hex)); };

  CHECK(hop("").status().code() == StatusCode::kCorrupt);          // no type
  CHECK(hop("2864").status().code() == StatusCode::kCorrupt);      // status but no type
  CHECK(hop("0803").status().code() == StatusCode::kCorrupt);      // unknown hop type 3
  CHECK(stop("0802").status().code() == StatusCode::kCorrupt);     // unknown stop type 2
  CHECK(hop("0a00").status().code() == StatusCode::kCorrupt);      // type as bytes
  CHECK(hop("08").status().code() == StatusCode::kCorrupt);        // truncated varint
  CHECK(hop("080112").status().code() == StatusCode::kCorrupt);    // truncated length
  CHECK(hop("0801120a").status().code() == StatusCode::kCorrupt);  // length past the end
  CHECK(hop("08011200").status().code() == StatusCode::kCorrupt);  // peer without an id
  CHECK(hop("080112020a00").status().code() == StatusCode::kCorrupt);  // empty peer id
  CHECK(hop("0801120410").status().code() == StatusCode::kCorrupt);    // peer id as varint
  CHECK(hop("08021a00").status().code() == StatusCode::kCorrupt);  // reservation without expire
  CHECK(hop("080228ffffffff1f").status().code() == StatusCode::kCorrupt);  // status over uint32
  // A limit duration over uint32.
  CHECK(hop("08022206088080808010").status().code() == StatusCode::kCorrupt);
  CHECK(hop("08022205088080808010").status().code() == StatusCode::kCorrupt);  // limit cut short

  // Garbage bytes as a PeerId.
  Bytes bad_id = {0x12, 0x03, 0xff, 0xff, 0xff};
  pb::Writer w;
  w.add_varint(1, 1);
  w.add_bytes(2, peer_field(bad_id));
  CHECK(decode_hop(w.bytes()).status().code() == StatusCode::kCorrupt);

  // Over the message cap, before anything is decoded.
  Bytes big(kMaxRelayMessage + 1, 0);
  CHECK(decode_hop(big).status().code() == StatusCode::kTooLarge);
  CHECK(decode_stop(big).status().code() == StatusCode::kTooLarge);
}

TEST_CASE("relay decoders cap addresses and vouchers and drop unparsable addresses", "[relay]") {
  const PeerId p = new_peer();
  const Bytes addr = Multiaddr::parse("/ip4/1.2.3.4/tcp/1")->to_bytes();
  auto peer_with = [&](size_t good, size_t bad) {
    pb::Writer pw;
    pw.add_bytes(1, p.bytes());
    for (size_t i = 0; i < good; ++i) pw.add_bytes(2, addr);
    for (size_t i = 0; i < bad; ++i) pw.add_bytes(2, Bytes{0xff, 0xff});
    pb::Writer w;
    w.add_varint(1, 1);
    w.add_bytes(2, pw.bytes());
    return w.take();
  };
  auto ok = decode_hop(peer_with(3, 2));
  REQUIRE(ok.ok());
  CHECK(ok->peer->addrs.size() == 3);
  CHECK(ok->dropped_addrs == 2);
  CHECK(decode_hop(peer_with(kMaxRelayAddrs, 0)).ok());
  CHECK(decode_hop(peer_with(kMaxRelayAddrs, 1)).status().code() == StatusCode::kTooLarge);

  pb::Writer rw;
  rw.add_varint(1, 5);
  rw.add_bytes(3, Bytes(kMaxVoucherBytes + 1, 7));
  pb::Writer w;
  w.add_varint(1, 2);
  w.add_bytes(3, rw.bytes());
  CHECK(decode_hop(w.bytes()).status().code() == StatusCode::kTooLarge);
}

TEST_CASE("relay decoders skip unknown fields and keep unknown status codes", "[relay]") {
  pb::Writer w;
  w.add_varint(1, 2);
  w.add_varint(5, 999);
  w.add_varint(15, 7);
  w.add_string(16, "future");
  auto m = decode_hop(w.bytes());
  REQUIRE(m.ok());
  CHECK(static_cast<uint32_t>(*m->status) == 999);
  CHECK(std::string(relay_status_name(*m->status)) == "UNKNOWN");
}
