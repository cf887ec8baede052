// Circuit relay v2 end to end on loopback: three hosts on one io_context (R relays, A reserves
// on R, B reaches A through R), real TCP, Noise and yamux inside the relayed stream. The test
// thread runs the io_context until the condition under test holds; the deadline only stops a
// broken test from hanging.
#include <catch2/catch.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <functional>

#include "p2p/framing.h"
#include "p2p/host.h"
#include "p2p/relay_service.h"
#include "tests/p2p/host_fixture.h"

using namespace noloco;
using namespace noloco::p2p;
using noloco::p2p::testing::circuit_to;
using noloco::p2p::testing::make_host;
using noloco::p2p::testing::run_until;
using namespace std::chrono_literals;

namespace {

Result<relay::ReservationGrant> reserve(asio::io_context& io, Host& client, const Host& relay) {
  std::optional<Result<relay::ReservationGrant>> got;
  client.reserve_relay(relay.listen_addrs().at(0), [&](Result<relay::ReservationGrant> r) { got = std::move(r); });
  REQUIRE(run_until(io, [&] { return got.has_value(); }));
  return std::move(*got);
}

Result<PeerId> connect(asio::io_context& io, Host& from, const Multiaddr& to) {
  std::optional<Result<PeerId>> got;
  from.connect(to, [&](Result<PeerId> r) { got = std::move(r); });
  REQUIRE(run_until(io, [&] { return got.has_value(); }));
  return std::move(*got);
}

Result<Duration> ping(asio::io_context& io, Host& from, const PeerId& to) {
  std::optional<Result<Duration>> got;
  from.ping(to, [&](Result<Duration> r) { got = std::move(r); });
  REQUIRE(run_until(io, [&] { return got.has_value(); }));
  return std::move(*got);
}

HostOptions relay_options(relay::RelayOptions limits = {}) {
  HostOptions o;
  o.relay = limits;
  return o;
}

// Writes `n` bytes on a fresh stream from `from` to `to` speaking `protocol`; the result of the
// last write (an error once the relay cut the circuit).
Status send_bytes(asio::io_context& io, Host& from, const PeerId& to, const std::string& protocol, size_t n) {
  std::optional<Result<std::shared_ptr<HostStream>>> s;
  from.new_stream(to, {protocol}, [&](Result<std::shared_ptr<HostStream>> r) { s = std::move(r); });
  REQUIRE(run_until(io, [&] { return s.has_value(); }));
  if (!s->ok()) return s->status();
  std::optional<Status> written;
  (**s)->write(Bytes(n, 0x5a), [&](Status st) { written = st; });
  REQUIRE(run_until(io, [&] { return written.has_value(); }));
  return *written;
}

}  // namespace

TEST_CASE("relay: A reserves on R, B dials A through R and they ping", "[relay][host]") {
  asio::io_context io;
  auto r = make_host(io, relay_options());
  auto a = make_host(io);
  auto b = make_host(io);

  auto grant = reserve(io, *a, *r);
  REQUIRE(grant.ok());
  CHECK(grant->reservation.expire_unix_s > static_cast<uint64_t>(unix_time_seconds()));
  REQUIRE_FALSE(grant->reservation.addrs.empty());
  CHECK(grant->reservation.addrs[0] == r->listen_addrs().at(0));
  CHECK(r->relay_service()->reservation_count() == 1);

  auto who = connect(io, *b, circuit_to(*r, *a));
  REQUIRE(who.ok());
  CHECK(*who == a->peer_id());
  CHECK(r->relay_service()->circuit_count() == 1);
  // B never had a direct connection to A: its only connection to A is the relayed one.
  auto rtt = ping(io, *b, a->peer_id());
  REQUIRE(rtt.ok());
  auto back = ping(io, *a, b->peer_id());
  REQUIRE(back.ok());
  // Identify ran over the relayed connection too, and proved A's key.
  REQUIRE(run_until(io, [&] { return b->peer_info(a->peer_id()).has_value(); }));

  // The circuit counts against R's table until either side closes it.
  b->close();
  REQUIRE(run_until(io, [&] { return r->relay_service()->circuit_count() == 0; }));
  CHECK(r->relay_service()->circuits_closed_at_limit() == 0);
}

TEST_CASE("relay: a circuit dial started while a direct dial to the same peer fails still connects", "[relay][host]") {
  asio::io_context io;
  auto r = make_host(io, relay_options());
  auto a = make_host(io);
  auto b = make_host(io);
  REQUIRE(reserve(io, *a, *r).ok());
  // A's "direct" address where nothing listens (a NATed peer's private address), dialled first;
  // the circuit dial is queued while that dial is still in flight and must not share its failure.
  const auto dead = Multiaddr::parse("/ip4/127.0.0.1/tcp/1")->with_peer_id(a->peer_id());
  std::optional<Result<PeerId>> direct, relayed;
  b->connect(dead, [&](Result<PeerId> res) { direct = std::move(res); });
  b->connect(circuit_to(*r, *a), [&](Result<PeerId> res) { relayed = std::move(res); });
  REQUIRE(run_until(io, [&] { return direct.has_value() && relayed.has_value(); }));
  CHECK_FALSE(direct->ok());
  REQUIRE(relayed->ok());
  CHECK(**relayed == a->peer_id());
}

TEST_CASE("relay: dialling a peer with no reservation fails with NO_RESERVATION", "[relay][host]") {
  asio::io_context io;
  auto r = make_host(io, relay_options());
  auto a = make_host(io);
  auto b = make_host(io);
  auto who = connect(io, *b, circuit_to(*r, *a));
  REQUIRE_FALSE(who.ok());
  CHECK(who.status().code() == StatusCode::kNotFound);
  CHECK(who.status().message().find("NO_RESERVATION") != std::string::npos);
  CHECK_FALSE(b->is_connected(a->peer_id()));
  CHECK(r->relay_service()->circuit_count() == 0);
}

TEST_CASE("relay: a host that is not a relay refuses the hop protocol", "[relay][host]") {
  asio::io_context io;
  auto r = make_host(io);  // no HostOptions::relay
  auto a = make_host(io);
  auto grant = reserve(io, *a, *r);
  REQUIRE_FALSE(grant.ok());
  CHECK(r->relay_service() == nullptr);
}

// Opens `protocol` from `from` to `to`, sends one framed message, returns the framed reply.
Result<Bytes> exchange(asio::io_context& io, Host& from, const Host& to, std::string_view protocol, Bytes body) {
  std::optional<Result<std::shared_ptr<HostStream>>> s;
  from.new_stream(to.listen_addrs().at(0), {std::string(protocol)}, [&](Result<std::shared_ptr<HostStream>> r) { s = std::move(r); });
  REQUIRE(run_until(io, [&] { return s.has_value(); }));
  if (!s->ok()) return s->status();
  (**s)->write(encode_length_prefixed(body));
  std::optional<Result<Bytes>> reply;
  (**s)->read_message([&](Result<Bytes> r) { reply = std::move(r); }, relay::kMaxRelayMessage);
  REQUIRE(run_until(io, [&] { return reply.has_value(); }));
  return std::move(*reply);
}

TEST_CASE("relay: a target answers stop requests only from relays it reserved on", "[relay][host]") {
  asio::io_context io;
  auto r = make_host(io, relay_options());
  auto x = make_host(io);
  auto a = make_host(io);
  REQUIRE(reserve(io, *a, *r).ok());
  relay::StopMessage connect;
  connect.type = relay::StopType::kConnect;
  connect.peer = relay::RelayPeer{x->peer_id(), {}};

  auto denied = exchange(io, *x, *a, relay::kStopProtocolId, relay::encode_stop(connect));
  REQUIRE(denied.ok());
  CHECK(relay::decode_stop(*denied)->status == relay::RelayStatus::kPermissionDenied);
  auto malformed = exchange(io, *r, *a, relay::kStopProtocolId, Bytes{0xff, 0xff});
  REQUIRE(malformed.ok());
  CHECK(relay::decode_stop(*malformed)->status == relay::RelayStatus::kMalformedMessage);
  auto accepted = exchange(io, *r, *a, relay::kStopProtocolId, relay::encode_stop(connect));
  REQUIRE(accepted.ok());
  CHECK(relay::decode_stop(*accepted)->status == relay::RelayStatus::kOk);
}

TEST_CASE("relay: the relay answers bad hop messages with MALFORMED_MESSAGE and keeps serving", "[relay][host]") {
  asio::io_context io;
  auto r = make_host(io, relay_options());
  auto x = make_host(io);
  auto bad = exchange(io, *x, *r, relay::kHopProtocolId, Bytes{0x08, 0x07});
  REQUIRE(bad.ok());
  CHECK(relay::decode_hop(*bad)->status == relay::RelayStatus::kMalformedMessage);
  auto unexpected = exchange(io, *x, *r, relay::kHopProtocolId, relay::encode_hop(relay::hop_status(relay::RelayStatus::kOk)));
  REQUIRE(unexpected.ok());
  CHECK(relay::decode_hop(*unexpected)->status == relay::RelayStatus::kUnexpectedMessage);
  // An announced length over the cap resets the stream before the body is read.
  auto huge = exchange(io, *x, *r, relay::kHopProtocolId, Bytes(relay::kMaxRelayMessage + 1, 0));
  CHECK_FALSE(huge.ok());
  CHECK(reserve(io, *x, *r).ok());
}

TEST_CASE("relay: the relay enforces its reservation limits end to end", "[relay][host]") {
  asio::io_context io;
  relay::RelayOptions limits;
  limits.max_reservations = 1;
  limits.max_reservations_per_peer = 2;
  auto r = make_host(io, relay_options(limits));
  auto a = make_host(io);
  auto c = make_host(io);
  REQUIRE(reserve(io, *a, *r).ok());
  auto refused = reserve(io, *c, *r);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("RESERVATION_REFUSED") != std::string::npos);
  REQUIRE(reserve(io, *a, *r).ok());     // a refresh
  CHECK_FALSE(reserve(io, *a, *r).ok());  // third grant within the TTL
  CHECK(r->relay_service()->reservation_count() == 1);
}

TEST_CASE("relay: a circuit over its byte limit is closed", "[relay][host]") {
  asio::io_context io;
  relay::RelayOptions limits;
  limits.circuit_data_bytes = 64 << 10;  // the handshake and a ping fit; 1 MiB does not
  auto r = make_host(io, relay_options(limits));
  auto a = make_host(io);
  auto b = make_host(io);
  a->set_handler("/test/sink/1", [](std::shared_ptr<HostStream> s) {
    auto step = std::make_shared<std::function<void(Result<Bytes>)>>();
    *step = [s, weak = std::weak_ptr(step)](Result<Bytes> got) {
      if (!got.ok() || got->empty()) return;
      if (auto next = weak.lock()) s->read_some([next](Result<Bytes> g) { (*next)(std::move(g)); });
    };
    s->read_some([step](Result<Bytes> g) { (*step)(std::move(g)); });
  });
  REQUIRE(reserve(io, *a, *r).ok());
  REQUIRE(connect(io, *b, circuit_to(*r, *a)).ok());
  REQUIRE(ping(io, *b, a->peer_id()).ok());
  (void)send_bytes(io, *b, a->peer_id(), "/test/sink/1", 1 << 20);
  REQUIRE(run_until(io, [&] { return !b->is_connected(a->peer_id()) && !a->is_connected(b->peer_id()); }));
  CHECK(r->relay_service()->circuits_closed_at_limit() == 1);
  CHECK(r->relay_service()->circuit_count() == 0);
  CHECK_FALSE(ping(io, *b, a->peer_id()).ok());
}

TEST_CASE("relay: a circuit over its duration limit is closed", "[relay][host]") {
  asio::io_context io;
  relay::RelayOptions limits;
  limits.circuit_duration = 1s;
  limits.circuit_data_bytes = 0;
  auto r = make_host(io, relay_options(limits));
  auto a = make_host(io);
  auto b = make_host(io);
  REQUIRE(reserve(io, *a, *r).ok());
  const auto opened = std::chrono::steady_clock::now();
  REQUIRE(connect(io, *b, circuit_to(*r, *a)).ok());
  REQUIRE(run_until(io, [&] { return !b->is_connected(a->peer_id()); }));
  // A lower bound only: the relay never cuts before the limit.
  CHECK(std::chrono::steady_clock::now() - opened >= 1s);
  CHECK(r->relay_service()->circuits_closed_at_limit() == 1);
  CHECK(r->relay_service()->circuit_count() == 0);
}

TEST_CASE("relay: identify over a relayed connection carries no observed address", "[relay][host]") {
  asio::io_context io;
  auto r = make_host(io, relay_options());
  auto a = make_host(io);
  auto b = make_host(io);
  REQUIRE(reserve(io, *a, *r).ok());
  REQUIRE(connect(io, *b, circuit_to(*r, *a)).ok());
  REQUIRE(run_until(io, [&] { return b->peer_info(a->peer_id()).has_value() && a->peer_info(b->peer_id()).has_value(); }));
  CHECK_FALSE(b->peer_info(a->peer_id())->observed_addr.has_value());
  CHECK_FALSE(a->peer_info(b->peer_id())->observed_addr.has_value());
  // Over the direct connection to R it is still there.
  REQUIRE(run_until(io, [&] { return a->peer_info(r->peer_id()).has_value(); }));
  CHECK(a->peer_info(r->peer_id())->observed_addr.has_value());
}

// A relayed connection starts right after a STATUS message on the same stream: the bytes that
// arrive with the message must reach the next read_some, not be dropped with read_message's buffer.
TEST_CASE("relay: read_some returns the bytes read_message received past its message", "[relay][host]") {
  asio::io_context io;
  auto x = make_host(io);
  auto y = make_host(io);
  std::optional<Bytes> message, rest;
  y->set_handler("/test/mixed/1", [&](std::shared_ptr<HostStream> s) {
    s->read_message([&, s](Result<Bytes> m) {
      REQUIRE(m.ok());
      message = *m;
      s->read_some([&](Result<Bytes> r) { rest = r.ok() ? *r : Bytes{}; });
    });
  });
  std::optional<Result<std::shared_ptr<HostStream>>> s;
  x->new_stream(y->listen_addrs().at(0), {"/test/mixed/1"}, [&](Result<std::shared_ptr<HostStream>> r) { s = std::move(r); });
  REQUIRE(run_until(io, [&] { return s.has_value(); }));
  REQUIRE(s->ok());
  Bytes out = encode_length_prefixed(to_bytes("hello"));
  append(out, to_bytes("tail"));
  (**s)->write(out);  // one write: the message and what follows arrive together
  REQUIRE(run_until(io, [&] { return rest.has_value(); }));
  CHECK(*message == to_bytes("hello"));
  CHECK(*rest == to_bytes("tail"));
}
