// Host tests: real TCP on loopback, port 0, every host on one io_context run by the test thread
// until the condition under test holds (no sleeps; the deadline only stops a broken test from
// hanging, it asserts nothing about timing).
#include <catch2/catch.hpp>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <functional>

#include "common/varint.h"
#include "p2p/connection.h"
#include "p2p/framing.h"
#include "p2p/host.h"
#include "p2p/ping.h"
#include "tests/p2p/host_fixture.h"

using namespace noloco;
using namespace noloco::p2p;
using noloco::p2p::testing::make_host;
using noloco::p2p::testing::run_until;
using asio::ip::tcp;

namespace {

Multiaddr addr_of(const Host& h) { return h.listen_addrs().at(0); }

tcp::endpoint endpoint_of(const Host& h) {
  Multiaddr a = addr_of(h);
  return {asio::ip::make_address(*a.host()), *a.tcp_port()};
}

// Connect `from` to `to` and ping once; true when the round trip succeeded.
bool can_ping(asio::io_context& io, Host& from, const Host& to) {
  std::optional<Result<PeerId>> connected;
  from.connect(addr_of(to), [&](Result<PeerId> r) { connected = r; });
  if (!run_until(io, [&] { return connected.has_value(); }) || !connected->ok()) return false;
  std::optional<Result<Duration>> rtt;
  from.ping(to.peer_id(), [&](Result<Duration> r) { rtt = r; });
  return run_until(io, [&] { return rtt.has_value(); }) && rtt->ok();
}

// A hand-driven peer on a raw socket: sends exactly what a test wants, optionally running the
// real connection pipeline so it can misbehave after the handshake.
struct RawPeer {
  explicit RawPeer(asio::io_context& io) : sock(io) {}
  tcp::socket sock;
  std::unique_ptr<ConnectionCore> core;
  std::function<void(Bytes&)> tamper;
  std::vector<ConnectionEvent> events;
  bool closed = false;
  Bytes buf = Bytes(65536);

  void connect(const tcp::endpoint& ep) {
    sock.connect(ep);
    read();
  }
  void send(ByteView b) { asio::write(sock, asio::buffer(b.data(), b.size())); }
  void pump() {
    if (!core || !core->has_output()) return;
    Bytes out = core->take_output();
    if (tamper) tamper(out);
    asio::error_code ec;
    asio::write(sock, asio::buffer(out), ec);
  }
  void read() {
    sock.async_read_some(asio::buffer(buf), [this](const asio::error_code& ec, size_t n) {
      if (ec) {
        closed = true;
        return;
      }
      if (core) {
        (void)core->feed(ByteView(buf.data(), n));
        for (auto& e : core->take_events()) events.push_back(std::move(e));
        pump();
      }
      read();
    });
  }
  bool has(ConnectionEvent::Kind k) const {
    for (const auto& e : events) {
      if (e.kind == k) return true;
    }
    return false;
  }
};

}  // namespace

TEST_CASE("two hosts connect, identify and ping each other both ways", "[host]") {
  asio::io_context io;
  auto a = make_host(io);
  auto b = make_host(io);
  std::optional<Result<PeerId>> connected;
  a->connect(addr_of(*b), [&](Result<PeerId> r) { connected = r; });
  REQUIRE(run_until(io, [&] { return connected.has_value(); }));
  REQUIRE(connected->ok());
  CHECK(**connected == b->peer_id());

  REQUIRE(run_until(io, [&] { return a->peer_info(b->peer_id()) && b->peer_info(a->peer_id()); }));
  auto info_b = *a->peer_info(b->peer_id());
  CHECK(info_b.agent_version == "noloco/0.1.0");
  CHECK(info_b.protocol_version == "ipfs/0.1.0");
  CHECK(std::count(info_b.protocols.begin(), info_b.protocols.end(), "/ipfs/ping/1.0.0") == 1);
  REQUIRE(info_b.listen_addrs.size() == 1);
  CHECK(info_b.listen_addrs[0] == addr_of(*b).without_peer_id());
  REQUIRE(info_b.observed_addr.has_value());
  CHECK(info_b.observed_addr->host() == "127.0.0.1");

  std::optional<Result<Duration>> ab, ba;
  a->ping(b->peer_id(), [&](Result<Duration> r) { ab = r; });
  b->ping(a->peer_id(), [&](Result<Duration> r) { ba = r; });  // over the same connection
  REQUIRE(run_until(io, [&] { return ab && ba; }));
  CHECK(ab->ok());
  CHECK(ba->ok());
  CHECK(a->connection_count() == 1);
  CHECK(b->connection_count() == 1);

  // A second connect reuses the connection.
  std::optional<Result<PeerId>> again;
  a->connect(addr_of(*b), [&](Result<PeerId> r) { again = r; });
  REQUIRE(run_until(io, [&] { return again.has_value(); }));
  CHECK(again->ok());
  CHECK(a->connection_count() == 1);
}

TEST_CASE("a custom protocol moves a large payload and the reply", "[host]") {
  asio::io_context io;
  auto a = make_host(io);
  auto b = make_host(io);
  b->set_handler("/test/sum/1.0.0", [](std::shared_ptr<HostStream> s) {
    s->read_to_end(64 << 20, [s](Result<Bytes> all) {
      if (!all.ok()) return;
      uint64_t sum = 0;
      for (uint8_t x : *all) sum += x;
      Bytes out;
      put_u64_be(out, sum);
      put_u64_be(out, all->size());
      s->write(out);
      s->close_write();
    });
  });
  Bytes payload(20 << 20);
  uint64_t expect = 0;
  for (size_t i = 0; i < payload.size(); ++i) {
    payload[i] = static_cast<uint8_t>(i * 7 + (i >> 13));
    expect += payload[i];
  }
  std::optional<Result<Bytes>> reply;
  a->new_stream(addr_of(*b), {"/test/sum/1.0.0"}, [&](Result<std::shared_ptr<HostStream>> r) {
    REQUIRE(r.ok());
    auto s = *r;
    s->write(payload);
    s->close_write();
    s->read_to_end(16, [&reply](Result<Bytes> got) { reply = got; });
  });
  REQUIRE(run_until(io, [&] { return reply.has_value(); }));
  REQUIRE(reply->ok());
  REQUIRE((*reply)->size() == 16);
  CHECK(get_u64_be((*reply)->data()) == expect);
  CHECK(get_u64_be((*reply)->data() + 8) == payload.size());
}

TEST_CASE("a handler added after connecting is served on the existing connection", "[host]") {
  asio::io_context io;
  auto a = make_host(io);
  auto b = make_host(io);
  REQUIRE(can_ping(io, *a, *b));
  bool served = false;
  b->set_handler("/test/late/1.0.0", [&](std::shared_ptr<HostStream> s) {
    served = true;
    s->close_write();
  });
  std::optional<Result<std::shared_ptr<HostStream>>> r;
  a->new_stream(b->peer_id(), {"/test/late/1.0.0"}, [&](Result<std::shared_ptr<HostStream>> x) { r = x; });
  REQUIRE(run_until(io, [&] { return r.has_value() && served; }));
  CHECK(r->ok());
  CHECK(a->connection_count() == 1);
}

TEST_CASE("a protocol the peer does not serve is reported as unsupported", "[host]") {
  asio::io_context io;
  auto a = make_host(io);
  auto b = make_host(io);
  std::optional<Result<std::shared_ptr<HostStream>>> r;
  a->new_stream(addr_of(*b), {"/nope/1.0.0"}, [&](Result<std::shared_ptr<HostStream>> x) { r = x; });
  REQUIRE(run_until(io, [&] { return r.has_value(); }));
  CHECK(r->status().code() == StatusCode::kUnsupported);
}

TEST_CASE("dialling with the wrong /p2p/ id fails", "[host]") {
  asio::io_context io;
  auto a = make_host(io);
  auto b = make_host(io);
  auto other = Identity::generate();
  Multiaddr wrong = addr_of(*b).with_peer_id(other->peer_id());
  std::optional<Result<PeerId>> r;
  a->connect(wrong, [&](Result<PeerId> x) { r = x; });
  REQUIRE(run_until(io, [&] { return r.has_value(); }));
  CHECK(r->status().code() == StatusCode::kPermissionDenied);
  CHECK(can_ping(io, *a, *b));
}

TEST_CASE("dialling a closed port fails as unreachable", "[host]") {
  asio::io_context io;
  auto a = make_host(io);
  tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const uint16_t port = probe.local_endpoint().port();
  probe.close();
  std::optional<Result<PeerId>> r;
  a->connect(*Multiaddr::parse("/ip4/127.0.0.1/tcp/" + std::to_string(port)), [&](Result<PeerId> x) { r = x; });
  REQUIRE(run_until(io, [&] { return r.has_value(); }));
  CHECK(r->status().code() == StatusCode::kUnavailable);
}

TEST_CASE("a host dialling from a source IP is seen from that IP", "[host]") {
  asio::io_context io;
  HostOptions opt;
  opt.dial_from = "127.0.0.7";
  auto a = make_host(io, opt);
  auto b = make_host(io);
  // A raw listener sees the source address of the TCP connection itself.
  tcp::acceptor raw(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::optional<tcp::endpoint> raw_peer;
  raw.async_accept([&](const asio::error_code& ec, tcp::socket s) {
    if (!ec) raw_peer = s.remote_endpoint();
  });
  a->connect(*Multiaddr::parse("/ip4/127.0.0.1/tcp/" + std::to_string(raw.local_endpoint().port())),
             [](Result<PeerId>) {});
  REQUIRE(run_until(io, [&] { return raw_peer.has_value(); }));
  CHECK(raw_peer->address().to_string() == "127.0.0.7");
  CHECK(raw_peer->port() != 0);

  // A host peer reports the same address back through identify.
  std::optional<Result<PeerId>> connected;
  a->connect(addr_of(*b), [&](Result<PeerId> r) { connected = r; });
  REQUIRE(run_until(io, [&] { return connected.has_value(); }));
  REQUIRE(connected->ok());
  REQUIRE(run_until(io, [&] { return a->peer_info(b->peer_id()).has_value(); }));
  auto seen = a->peer_info(b->peer_id())->observed_addr;
  REQUIRE(seen.has_value());
  CHECK(seen->host() == "127.0.0.7");
  CHECK(can_ping(io, *a, *b));
}

TEST_CASE("dialling from an IPv4 source to an IPv6-only address fails cleanly", "[host]") {
  asio::io_context io;
  HostOptions opt;
  opt.dial_from = "127.0.0.7";
  auto a = make_host(io, opt);
  std::optional<Result<PeerId>> r;
  a->connect(*Multiaddr::parse("/ip6/::1/tcp/9"), [&](Result<PeerId> x) { r = x; });
  REQUIRE(run_until(io, [&] { return r.has_value(); }));
  CHECK(r->status().code() == StatusCode::kUnavailable);
  CHECK(r->status().message().find("dial_from") != std::string::npos);
}

TEST_CASE("dns4 names are resolved when dialling", "[host]") {
  asio::io_context io;
  auto a = make_host(io);
  auto b = make_host(io);
  auto addr = Multiaddr::parse("/dns4/localhost/tcp/" + std::to_string(*addr_of(*b).tcp_port()) + "/p2p/" +
                               b->peer_id().to_string());
  REQUIRE(addr.ok());
  std::optional<Result<PeerId>> r;
  a->connect(*addr, [&](Result<PeerId> x) { r = x; });
  REQUIRE(run_until(io, [&] { return r.has_value(); }));
  CHECK(r->ok());
}

TEST_CASE("a dial to a peer that never answers times out", "[host]") {
  asio::io_context io;
  HostOptions opt;
  opt.dial_timeout = std::chrono::milliseconds(200);
  auto a = make_host(io, opt);
  tcp::acceptor mute(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));  // accepts, never speaks
  tcp::socket accepted(io);
  mute.async_accept(accepted, [](const asio::error_code&) {});
  std::optional<Result<PeerId>> r;
  a->connect(*Multiaddr::parse("/ip4/127.0.0.1/tcp/" + std::to_string(mute.local_endpoint().port())),
             [&](Result<PeerId> x) { r = x; });
  REQUIRE(run_until(io, [&] { return r.has_value(); }));
  CHECK(r->status().code() == StatusCode::kTimeout);
  REQUIRE(run_until(io, [&] { return a->connection_count() == 0; }));
}

TEST_CASE("hosts with the same PSK connect and ping", "[host][pnet]") {
  asio::io_context io;
  HostOptions opt;
  Psk psk{};
  psk.fill(0x5A);
  opt.psk = psk;
  auto a = make_host(io, opt);
  auto b = make_host(io, opt);
  CHECK(can_ping(io, *a, *b));
  CHECK(can_ping(io, *b, *a));
}

TEST_CASE("hosts with different PSKs never deliver an application byte", "[host][pnet]") {
  asio::io_context io;
  HostOptions oa, ob;
  Psk ka{}, kb{};
  ka.fill(1);
  kb.fill(2);
  oa.psk = ka;
  ob.psk = kb;
  auto a = make_host(io, oa);
  auto b = make_host(io, ob);
  size_t delivered = 0;
  bool handler_ran = false;
  b->set_handler("/test/sink/1.0.0", [&](std::shared_ptr<HostStream> s) {
    handler_ran = true;
    s->read_to_end(1 << 20, [&](Result<Bytes> r) {
      if (r.ok()) delivered += r->size();
    });
  });
  std::optional<Result<std::shared_ptr<HostStream>>> r;
  a->new_stream(addr_of(*b), {"/test/sink/1.0.0"}, [&](Result<std::shared_ptr<HostStream>> x) {
    r = x;
    if (x.ok()) (*x)->write(to_bytes("must not arrive"));
  });
  REQUIRE(run_until(io, [&] { return r.has_value(); }));
  REQUIRE_FALSE(r->ok());
  INFO(r->status().to_string());
  CHECK(r->status().message().find("handshake failed") != std::string::npos);
  REQUIRE(run_until(io, [&] { return b->connection_count() == 0; }));
  CHECK_FALSE(handler_ran);
  CHECK(delivered == 0);
}

TEST_CASE("a stream message announcing gigabytes is refused before allocating", "[host][bad-input]") {
  asio::io_context io;
  auto a = make_host(io);
  auto b = make_host(io);
  std::optional<Result<Bytes>> got;
  b->set_handler("/test/msg/1.0.0", [&](std::shared_ptr<HostStream> s) {
    s->read_message([&got](Result<Bytes> m) { got = m; }, 1 << 20);
  });
  a->new_stream(addr_of(*b), {"/test/msg/1.0.0"}, [&](Result<std::shared_ptr<HostStream>> r) {
    REQUIRE(r.ok());
    Bytes evil;
    put_varint(evil, uint64_t{6} << 30);  // 6 GiB
    append(evil, Bytes(100, 0xEE));
    (*r)->write(evil);
  });
  REQUIRE(run_until(io, [&] { return got.has_value(); }));
  CHECK(got->status().code() == StatusCode::kTooLarge);
  auto c = make_host(io);
  CHECK(can_ping(io, *c, *b));
}

TEST_CASE("a handshake message announcing gigabytes drops the connection", "[host][bad-input]") {
  asio::io_context io;
  auto b = make_host(io);
  RawPeer raw(io);
  raw.connect(endpoint_of(*b));
  Bytes evil;
  put_varint(evil, uint64_t{4} << 30);
  append(evil, Bytes(64, 'x'));
  raw.send(evil);
  REQUIRE(run_until(io, [&] { return raw.closed; }));
  REQUIRE(run_until(io, [&] { return b->connection_count() == 0; }));
  auto c = make_host(io);
  CHECK(can_ping(io, *c, *b));
}

TEST_CASE("garbage instead of a handshake drops the connection", "[host][bad-input]") {
  asio::io_context io;
  auto b = make_host(io);
  RawPeer raw(io);
  raw.connect(endpoint_of(*b));
  Bytes garbage(4096);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 151 + 3);
  raw.send(garbage);
  REQUIRE(run_until(io, [&] { return raw.closed; }));
  auto c = make_host(io);
  CHECK(can_ping(io, *c, *b));
}

TEST_CASE("a peer that connects and stays silent is dropped after the handshake timeout", "[host][bad-input]") {
  asio::io_context io;
  HostOptions opt;
  opt.handshake_timeout = std::chrono::milliseconds(200);
  auto b = make_host(io, opt);
  RawPeer raw(io);
  raw.connect(endpoint_of(*b));
  REQUIRE(run_until(io, [&] { return b->connection_count() == 1; }));
  REQUIRE(run_until(io, [&] { return raw.closed; }));
  CHECK(b->connection_count() == 0);
  auto c = make_host(io);
  CHECK(can_ping(io, *c, *b));
}

TEST_CASE("streams beyond the per-connection cap are reset", "[host][bad-input]") {
  asio::io_context io;
  HostOptions ob;
  ob.max_streams_per_connection = 16;
  auto a = make_host(io);
  auto b = make_host(io, ob);
  std::vector<std::shared_ptr<HostStream>> held;  // the handler never lets go
  b->set_handler("/test/hold/1.0.0", [&](std::shared_ptr<HostStream> s) { held.push_back(s); });
  std::optional<Result<PeerId>> connected;
  a->connect(addr_of(*b), [&](Result<PeerId> r) { connected = r; });
  REQUIRE(run_until(io, [&] { return connected.has_value(); }));
  REQUIRE(connected->ok());
  // Let identify finish so it does not compete for slots.
  REQUIRE(run_until(io, [&] { return a->peer_info(b->peer_id()).has_value(); }));
  size_t ok = 0, refused = 0;
  const size_t attempts = 200;
  for (size_t i = 0; i < attempts; ++i) {
    a->new_stream(b->peer_id(), {"/test/hold/1.0.0"}, [&](Result<std::shared_ptr<HostStream>> r) {
      if (r.ok()) {
        ++ok;
      } else {
        ++refused;
      }
    });
  }
  REQUIRE(run_until(io, [&] { return ok + refused == attempts; }));
  CHECK(ok <= 16);
  CHECK(held.size() == ok);
  CHECK(refused >= attempts - 16);
  auto c = make_host(io);
  CHECK(can_ping(io, *c, *b));
}

TEST_CASE("a bit flipped in a transport message closes the connection", "[host][bad-input]") {
  asio::io_context io;
  auto b = make_host(io);
  size_t delivered = 0;
  b->set_handler("/test/sink/1.0.0", [&](std::shared_ptr<HostStream> s) {
    // The pending read holds the loop; the loop holds itself only weakly (a strong self-capture
    // is a cycle that LeakSanitizer reports once the stream fails).
    auto step = std::make_shared<std::function<void(Result<Bytes>)>>();
    *step = [s, &delivered, weak_step = std::weak_ptr(step)](Result<Bytes> r) {
      if (!r.ok() || r->empty()) return;
      delivered += r->size();
      if (auto next = weak_step.lock()) s->read_some([next](Result<Bytes> r2) { (*next)(std::move(r2)); });
    };
    s->read_some([step](Result<Bytes> r) { (*step)(std::move(r)); });
  });
  auto id = Identity::generate();
  RawPeer raw(io);
  ConnectionCoreOptions co;
  co.role = ConnectionRole::kDialer;
  co.expected_remote = b->peer_id();
  raw.core = std::make_unique<ConnectionCore>(*id, co);
  raw.connect(endpoint_of(*b));
  raw.pump();
  REQUIRE(run_until(io, [&] { return raw.core->upgraded(); }));
  auto sid = raw.core->open_stream({"/test/sink/1.0.0"});
  REQUIRE(sid.ok());
  raw.pump();
  REQUIRE(run_until(io, [&] { return raw.has(ConnectionEvent::Kind::kStreamReady); }));
  raw.tamper = [](Bytes& b) {
    if (!b.empty()) b[b.size() - 1] ^= 0x10;  // inside the Poly1305 tag of the last frame
  };
  REQUIRE(raw.core->write(*sid, as_bytes("payload that must not arrive")).ok());
  raw.pump();
  REQUIRE(run_until(io, [&] { return raw.closed; }));
  CHECK(delivered == 0);
  auto c = make_host(io);
  CHECK(can_ping(io, *c, *b));
}

TEST_CASE("close says goodbye and fails later operations", "[host]") {
  asio::io_context io;
  auto a = make_host(io);
  auto b = make_host(io);
  REQUIRE(can_ping(io, *a, *b));
  b->close();
  REQUIRE(run_until(io, [&] { return !a->is_connected(b->peer_id()); }));
  std::optional<Result<Duration>> r;
  a->ping(b->peer_id(), [&](Result<Duration> x) { r = x; });
  REQUIRE(run_until(io, [&] { return r.has_value(); }));
  CHECK(r->status().code() == StatusCode::kUnavailable);
}

TEST_CASE("host options are validated", "[host]") {
  HostOptions o;
  CHECK(o.validate().ok());
  o.max_streams_per_connection = 0;
  CHECK_FALSE(o.validate().ok());
  o = HostOptions{};
  o.handshake_timeout = Duration::zero();
  CHECK_FALSE(o.validate().ok());
  o = HostOptions{};
  o.dial_from = "127.0.1.2";
  CHECK(o.validate().ok());
  o.dial_from = "not-an-ip";
  CHECK_FALSE(o.validate().ok());
}
