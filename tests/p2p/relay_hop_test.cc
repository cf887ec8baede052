// The relay's sans-IO core: reservations, admission of circuits, and the limits on each
// circuit, with time moved by hand.
#include <catch2/catch.hpp>

#include "common/encoding.h"
#include "p2p/relay_client.h"
#include "p2p/relay_hop.h"
#include "p2p/relay_stop.h"

using namespace noloco;
using namespace noloco::p2p;
using namespace noloco::p2p::relay;
using namespace std::chrono_literals;

namespace {

PeerId new_peer() { return Identity::generate()->peer_id(); }

const std::vector<Multiaddr>& relay_addrs() {
  static const std::vector<Multiaddr> addrs = {
      *Multiaddr::parse("/ip4/127.0.0.1/tcp/4001/p2p/" + new_peer().to_string())};
  return addrs;
}

struct Relay {
  explicit Relay(RelayOptions opt = {}) : hop(opt) {}
  RelayHop hop;
  TimePoint now{};
  uint64_t unix_now = 1'800'000'000;

  RelayHop::Decision send(const PeerId& from, ByteView body) { return hop.on_hop(from, body, now, unix_now, relay_addrs()); }
  RelayStatus status_of(const RelayHop::Decision& d) {
    REQUIRE(d.reply.has_value());
    REQUIRE(d.reply->status.has_value());
    return *d.reply->status;
  }
  RelayStatus reserve(const PeerId& p) { return status_of(send(p, reserve_request())); }
  // CONNECT from `src` to `dst`; on admission, the target accepts. Returns the circuit id, or 0.
  uint64_t open(const PeerId& src, const PeerId& dst) {
    auto d = send(src, connect_request(dst));
    if (!d.stop) return 0;
    auto stop = on_stop(encode_stop(*d.stop), true);
    REQUIRE(stop.source == src);
    HopMessage reply = hop.on_stop_reply(d.circuit, decode_stop(encode_stop(stop.reply)), now);
    REQUIRE(reply.status == RelayStatus::kOk);
    return d.circuit;
  }
};

}  // namespace

TEST_CASE("relay grants a reservation with its addresses, expiry and limit", "[relay]") {
  Relay r;
  const PeerId a = new_peer();
  auto d = r.send(a, reserve_request());
  REQUIRE(d.reply.has_value());
  CHECK_FALSE(d.stop.has_value());
  auto grant = parse_reserve_reply(encode_hop(*d.reply));
  REQUIRE(grant.ok());
  CHECK(grant->reservation.expire_unix_s == r.unix_now + 3600);
  CHECK(grant->reservation.addrs == relay_addrs());
  REQUIRE(grant->limit.has_value());
  CHECK(grant->limit->duration_s == 120u);
  CHECK(grant->limit->data_bytes == 128u * 1024);
  CHECK(r.hop.has_reservation(a, r.now));
  CHECK(r.hop.reservation_count() == 1);
}

TEST_CASE("relay refuses malformed and unexpected hop messages", "[relay]") {
  Relay r;
  const PeerId a = new_peer();
  CHECK(r.status_of(r.send(a, *hex_decode(""))) == RelayStatus::kMalformedMessage);
  CHECK(r.status_of(r.send(a, *hex_decode("0803"))) == RelayStatus::kMalformedMessage);  // unknown type
  CHECK(r.status_of(r.send(a, *hex_decode("ffff"))) == RelayStatus::kMalformedMessage);
  CHECK(r.status_of(r.send(a, *hex_decode("0801"))) == RelayStatus::kMalformedMessage);  // CONNECT, no peer
  CHECK(r.status_of(r.send(a, encode_hop(hop_status(RelayStatus::kOk)))) == RelayStatus::kUnexpectedMessage);
  CHECK(r.hop.reservation_count() == 0);
  CHECK(r.hop.circuit_count() == 0);
  // The client maps these to errors that name the code.
  auto refused = parse_reserve_reply(encode_hop(hop_status(RelayStatus::kMalformedMessage)));
  CHECK(refused.status().code() == StatusCode::kProtocolError);
  CHECK(refused.status().message().find("MALFORMED_MESSAGE") != std::string::npos);
}

TEST_CASE("relay answers CONNECT to a peer without a reservation with NO_RESERVATION", "[relay]") {
  Relay r;
  const PeerId a = new_peer(), b = new_peer();
  auto d = r.send(b, connect_request(a));
  CHECK(r.status_of(d) == RelayStatus::kNoReservation);
  CHECK_FALSE(d.stop.has_value());
  CHECK(parse_connect_reply(encode_hop(*d.reply)).status().code() == StatusCode::kNotFound);

  // With a reservation the same request is admitted and names the source to the target.
  REQUIRE(r.reserve(a) == RelayStatus::kOk);
  auto ok = r.send(b, connect_request(a));
  CHECK_FALSE(ok.reply.has_value());
  REQUIRE(ok.stop.has_value());
  CHECK(ok.target == a);
  CHECK(ok.stop->type == StopType::kConnect);
  CHECK(ok.stop->peer->id == b);
  CHECK(ok.stop->limit == r.hop.limit());

  // A peer cannot relay to itself.
  CHECK(r.status_of(r.send(a, connect_request(a))) == RelayStatus::kPermissionDenied);
}

TEST_CASE("relay reservations expire", "[relay]") {
  RelayOptions opt;
  opt.reservation_ttl = 10min;
  Relay r(opt);
  const PeerId a = new_peer(), b = new_peer();
  REQUIRE(r.reserve(a) == RelayStatus::kOk);
  r.now += 10min - 1s;
  CHECK(r.hop.has_reservation(a, r.now));
  r.now += 1s;
  CHECK_FALSE(r.hop.has_reservation(a, r.now));
  CHECK(r.status_of(r.send(b, connect_request(a))) == RelayStatus::kNoReservation);
  CHECK(r.hop.reservation_count() == 0);
}

TEST_CASE("relay enforces the total and per-peer reservation limits", "[relay]") {
  RelayOptions opt;
  opt.max_reservations = 2;
  opt.max_reservations_per_peer = 3;
  opt.reservation_ttl = 10min;
  Relay r(opt);
  const PeerId a = new_peer(), b = new_peer(), c = new_peer();
  CHECK(r.reserve(a) == RelayStatus::kOk);
  CHECK(r.reserve(b) == RelayStatus::kOk);
  CHECK(r.reserve(c) == RelayStatus::kReservationRefused);  // table full
  CHECK(r.reserve(a) == RelayStatus::kOk);                  // a refresh takes no new slot
  CHECK(r.reserve(a) == RelayStatus::kOk);
  CHECK(r.reserve(a) == RelayStatus::kReservationRefused);  // 4th grant to a within one TTL
  CHECK(parse_reserve_reply(encode_hop(hop_status(RelayStatus::kReservationRefused))).status().code() ==
        StatusCode::kUnavailable);
  CHECK(r.hop.has_reservation(a, r.now));  // the refusal leaves the live reservation alone

  // Grants age out with their TTL, which frees both limits.
  r.now += 10min;
  CHECK(r.reserve(c) == RelayStatus::kOk);
  CHECK(r.reserve(a) == RelayStatus::kOk);
}

TEST_CASE("relay caps reservations per IP so one address cannot take every slot", "[relay]") {
  RelayOptions opt;
  opt.max_reservations = 10;
  opt.max_reservations_per_ip = 2;
  opt.reservation_ttl = 10min;
  Relay r(opt);
  auto reserve_from = [&](const PeerId& p, const std::string& ip) {
    return r.status_of(r.hop.on_hop(p, reserve_request(), r.now, r.unix_now, relay_addrs(), ip));
  };
  const PeerId a = new_peer(), b = new_peer(), c = new_peer(), d = new_peer();
  CHECK(reserve_from(a, "203.0.113.7") == RelayStatus::kOk);
  CHECK(reserve_from(b, "203.0.113.7") == RelayStatus::kOk);
  CHECK(reserve_from(c, "203.0.113.7") == RelayStatus::kReservationRefused);  // a third identity there
  CHECK(reserve_from(a, "203.0.113.7") == RelayStatus::kOk);  // a refresh keeps its place
  CHECK(reserve_from(c, "198.51.100.1") == RelayStatus::kOk);  // another address has its own cap
  CHECK(r.hop.reservations_from("203.0.113.7") == 2);
  // IPv6 counts per /64: one subscriber's prefix is one bucket.
  CHECK(reserve_from(d, "2001:db8:1:2::1") == RelayStatus::kOk);
  CHECK(reserve_from(new_peer(), "2001:db8:1:2::99") == RelayStatus::kOk);
  CHECK(reserve_from(new_peer(), "2001:db8:1:2:ffff::5") == RelayStatus::kReservationRefused);
  // Expiry frees the address's slots.
  r.now += 10min;
  CHECK(reserve_from(c, "203.0.113.7") == RelayStatus::kOk);
  CHECK(r.hop.reservations_from("203.0.113.7") == 1);
}

TEST_CASE("relay exempts loopback from the per-IP cap unless asked to limit it", "[relay]") {
  RelayOptions opt;
  opt.max_reservations_per_ip = 1;
  {
    Relay r(opt);
    for (int i = 0; i < 3; ++i)
      CHECK(r.status_of(r.hop.on_hop(new_peer(), reserve_request(), r.now, r.unix_now, relay_addrs(), "127.0.0.1")) ==
            RelayStatus::kOk);
  }
  opt.limit_loopback = true;
  Relay r(opt);
  CHECK(r.status_of(r.hop.on_hop(new_peer(), reserve_request(), r.now, r.unix_now, relay_addrs(), "127.0.0.1")) ==
        RelayStatus::kOk);
  CHECK(r.status_of(r.hop.on_hop(new_peer(), reserve_request(), r.now, r.unix_now, relay_addrs(), "127.0.0.1")) ==
        RelayStatus::kReservationRefused);
  // No address known (a reservation over a relayed connection): the per-IP cap cannot apply.
  CHECK(r.reserve(new_peer()) == RelayStatus::kOk);
}

TEST_CASE("relay enforces the circuit count limits", "[relay]") {
  RelayOptions opt;
  opt.max_circuits = 3;
  opt.max_circuits_per_peer = 2;
  Relay r(opt);
  const PeerId a = new_peer(), b = new_peer(), c = new_peer(), d = new_peer(), e = new_peer();
  REQUIRE(r.reserve(a) == RelayStatus::kOk);
  REQUIRE(r.reserve(d) == RelayStatus::kOk);
  CHECK(r.open(b, a) != 0);
  CHECK(r.open(c, a) != 0);
  // a is the target of two circuits already.
  CHECK(r.status_of(r.send(e, connect_request(a))) == RelayStatus::kResourceLimitExceeded);
  CHECK(r.open(b, d) != 0);
  // Three circuits in all.
  CHECK(r.status_of(r.send(e, connect_request(d))) == RelayStatus::kResourceLimitExceeded);
  CHECK(parse_connect_reply(encode_hop(hop_status(RelayStatus::kResourceLimitExceeded))).status().code() ==
        StatusCode::kUnavailable);
  // Closing one frees a slot.
  r.hop.on_circuit_closed(1);
  CHECK(r.hop.circuit_count() == 2);
  CHECK(r.open(e, d) != 0);
}

TEST_CASE("relay drops a circuit the target refuses or never answers", "[relay]") {
  Relay r;
  const PeerId a = new_peer(), b = new_peer();
  REQUIRE(r.reserve(a) == RelayStatus::kOk);
  auto d = r.send(b, connect_request(a));
  REQUIRE(d.stop.has_value());
  CHECK(r.hop.circuit_count() == 1);
  auto refused = r.hop.on_stop_reply(d.circuit, stop_status(RelayStatus::kPermissionDenied), r.now);
  CHECK(refused.status == RelayStatus::kConnectionFailed);
  CHECK(r.hop.circuit_count() == 0);

  auto d2 = r.send(b, connect_request(a));
  auto lost = r.hop.on_stop_reply(d2.circuit, Status(StatusCode::kUnavailable, "stream reset"), r.now);
  CHECK(lost.status == RelayStatus::kConnectionFailed);
  // A reply that is not a STATUS message is no acceptance either.
  auto d3 = r.send(b, connect_request(a));
  StopMessage wrong;
  wrong.type = StopType::kConnect;
  CHECK(r.hop.on_stop_reply(d3.circuit, wrong, r.now).status == RelayStatus::kConnectionFailed);
  CHECK(r.hop.circuit_count() == 0);
}

TEST_CASE("relay closes a circuit at its byte limit, per direction, after the allowed bytes", "[relay]") {
  RelayOptions opt;
  opt.circuit_data_bytes = 1000;
  Relay r(opt);
  const PeerId a = new_peer(), b = new_peer();
  REQUIRE(r.reserve(a) == RelayStatus::kOk);
  const uint64_t c = r.open(b, a);
  REQUIRE(c != 0);
  auto v = r.hop.on_data(c, Direction::kSourceToTarget, 600, r.now);
  CHECK(v.forward == 600);
  CHECK_FALSE(v.close);
  // The other direction has its own budget.
  v = r.hop.on_data(c, Direction::kTargetToSource, 999, r.now);
  CHECK(v.forward == 999);
  CHECK_FALSE(v.close);
  // 400 left this way: 400 of 500 pass, then the circuit must close.
  v = r.hop.on_data(c, Direction::kSourceToTarget, 500, r.now);
  CHECK(v.forward == 400);
  CHECK(v.close);
  r.hop.on_circuit_closed(c);
  CHECK(r.hop.on_data(c, Direction::kTargetToSource, 1, r.now).close);
}

TEST_CASE("relay closes a circuit at its duration limit", "[relay]") {
  RelayOptions opt;
  opt.circuit_duration = 30s;
  opt.circuit_data_bytes = 0;  // unlimited bytes
  Relay r(opt);
  const PeerId a = new_peer(), b = new_peer();
  REQUIRE(r.reserve(a) == RelayStatus::kOk);
  const uint64_t c = r.open(b, a);
  REQUIRE(c != 0);
  CHECK(r.hop.limit().duration_s == 30u);
  CHECK_FALSE(r.hop.limit().data_bytes.has_value());
  REQUIRE(r.hop.deadline(c).has_value());
  CHECK(*r.hop.deadline(c) == r.now + 30s);
  r.now += 29s;
  CHECK_FALSE(r.hop.expired(c, r.now));
  CHECK(r.hop.on_data(c, Direction::kSourceToTarget, 1 << 20, r.now).forward == size_t{1} << 20);
  r.now += 1s;
  CHECK(r.hop.expired(c, r.now));
  auto v = r.hop.on_data(c, Direction::kSourceToTarget, 10, r.now);
  CHECK(v.forward == 0);
  CHECK(v.close);
}

TEST_CASE("relay options are validated", "[relay]") {
  CHECK(RelayOptions{}.validate().ok());
  RelayOptions o;
  o.max_reservations = 0;
  CHECK_FALSE(o.validate().ok());
  o = {};
  o.reservation_ttl = 0s;
  CHECK_FALSE(o.validate().ok());
  o = {};
  o.max_circuits_per_peer = 0;
  CHECK_FALSE(o.validate().ok());
  o = {};
  o.max_reservations_per_ip = 0;
  CHECK_FALSE(o.validate().ok());
}
