// The connection pipeline without sockets: two ConnectionCores wired back to back.
#include <catch2/catch.hpp>

#include <algorithm>

#include "p2p/connection.h"

using namespace noloco;
using namespace noloco::p2p;

namespace {

Identity make_identity(uint8_t seed) { return *Identity::from_seed(Bytes(32, seed)); }

std::shared_ptr<const std::vector<std::string>> protos(std::vector<std::string> v) {
  return std::make_shared<const std::vector<std::string>>(std::move(v));
}

struct Wire {
  ConnectionCore d;
  ConnectionCore l;
  std::vector<ConnectionEvent> ed, el;
  Status derr, lerr;

  Wire(ConnectionCoreOptions od, ConnectionCoreOptions ol, uint8_t sd = 1, uint8_t sl = 2)
      : d(make_identity(sd), std::move(od)), l(make_identity(sl), std::move(ol)) {}

  // Moves bytes until quiet or until one side fails. `tamper` may alter dialer->listener bytes.
  template <typename F = std::nullptr_t>
  void run(F tamper = nullptr) {
    for (int i = 0; i < 1000 && (d.has_output() || l.has_output()); ++i) {
      Bytes x = d.take_output();
      if constexpr (!std::is_same_v<F, std::nullptr_t>) tamper(x);
      if (!x.empty() && lerr.ok()) lerr = l.feed(x);
      Bytes y = l.take_output();
      if (!y.empty() && derr.ok()) derr = d.feed(y);
      for (auto& e : d.take_events()) ed.push_back(std::move(e));
      for (auto& e : l.take_events()) el.push_back(std::move(e));
      if (!derr.ok() || !lerr.ok()) break;
    }
  }
};

ConnectionCoreOptions dialer_opts() {
  ConnectionCoreOptions o;
  o.role = ConnectionRole::kDialer;
  return o;
}
ConnectionCoreOptions listener_opts(std::vector<std::string> served = {"/echo/1.0.0"}) {
  ConnectionCoreOptions o;
  o.role = ConnectionRole::kListener;
  o.protocols = protos(std::move(served));
  return o;
}

const ConnectionEvent* find(const std::vector<ConnectionEvent>& ev, ConnectionEvent::Kind k) {
  auto it = std::find_if(ev.begin(), ev.end(), [&](const ConnectionEvent& e) { return e.kind == k; });
  return it == ev.end() ? nullptr : &*it;
}

Bytes data_of(const std::vector<ConnectionEvent>& ev, uint32_t id) {
  Bytes out;
  for (const auto& e : ev) {
    if (e.kind == ConnectionEvent::Kind::kData && e.stream == id) append(out, e.data);
  }
  return out;
}

}  // namespace

TEST_CASE("connection upgrades, learns peer ids and carries a stream", "[connection]") {
  auto od = dialer_opts();
  od.expected_remote = make_identity(2).peer_id();
  Wire w(od, listener_opts());
  w.run();
  REQUIRE(w.derr.ok());
  REQUIRE(w.lerr.ok());
  REQUIRE(w.d.upgraded());
  REQUIRE(w.l.upgraded());
  CHECK(w.d.remote_peer() == make_identity(2).peer_id());
  CHECK(w.l.remote_peer() == make_identity(1).peer_id());
  CHECK(find(w.ed, ConnectionEvent::Kind::kUpgraded));

  auto id = w.d.open_stream({"/other/1.0.0", "/echo/1.0.0"});
  REQUIRE(id.ok());
  w.run();
  const ConnectionEvent* ready_d = find(w.ed, ConnectionEvent::Kind::kStreamReady);
  const ConnectionEvent* ready_l = find(w.el, ConnectionEvent::Kind::kStreamReady);
  REQUIRE(ready_d);
  REQUIRE(ready_l);
  CHECK(ready_d->protocol == "/echo/1.0.0");
  CHECK_FALSE(ready_d->inbound);
  CHECK(ready_l->inbound);
  REQUIRE(w.d.write(*id, as_bytes("hello")).ok());
  REQUIRE(w.d.close_write(*id).ok());
  w.run();
  CHECK(to_string(data_of(w.el, *id)) == "hello");
  CHECK(find(w.el, ConnectionEvent::Kind::kStreamFinished));
  REQUIRE(w.l.write(*id, as_bytes("back")).ok());
  REQUIRE(w.l.close_write(*id).ok());
  w.run();
  CHECK(to_string(data_of(w.ed, *id)) == "back");
  CHECK(find(w.ed, ConnectionEvent::Kind::kStreamClosed));
  CHECK(w.d.stream_count() == 0);
}

TEST_CASE("connection carries bulk data across many Noise frames", "[connection]") {
  const bool pnet = GENERATE(false, true);
  INFO("pnet " << pnet);
  auto od = dialer_opts();
  auto ol = listener_opts();
  if (pnet) {
    Psk psk{};
    psk.fill(5);
    od.psk = psk;
    ol.psk = psk;
  }
  Wire w(od, ol);
  w.run();
  auto id = w.d.open_stream({"/echo/1.0.0"});
  w.run();
  Bytes big(3 * 1024 * 1024);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 13);
  size_t sent = 0;
  size_t got = 0;
  for (int round = 0; round < 10000 && got < big.size(); ++round) {
    if (sent < big.size()) {
      auto n = w.d.write(*id, ByteView(big).subspan(sent));
      REQUIRE(n.ok());
      sent += *n;
    }
    w.run();
    size_t now = data_of(w.el, *id).size();
    w.l.consume(*id, now - got);
    got = now;
  }
  CHECK(data_of(w.el, *id) == big);
}

TEST_CASE("connection with matching PSKs upgrades", "[connection][pnet]") {
  Psk psk{};
  psk.fill(9);
  auto od = dialer_opts();
  od.psk = psk;
  auto ol = listener_opts();
  ol.psk = psk;
  Wire w(od, ol);
  w.run();
  CHECK(w.d.upgraded());
  CHECK(w.l.upgraded());
}

TEST_CASE("connection with mismatched PSKs fails before any stream", "[connection][pnet]") {
  Psk a{}, b{};
  a.fill(1);
  b.fill(2);
  auto od = dialer_opts();
  od.psk = a;
  auto ol = listener_opts();
  ol.psk = b;
  Wire w(od, ol);
  w.run();
  CHECK((!w.derr.ok() || !w.lerr.ok()));
  CHECK_FALSE(w.d.upgraded());
  CHECK_FALSE(w.l.upgraded());
  CHECK(w.el.empty());
}

TEST_CASE("connection refuses a peer with an unexpected id", "[connection]") {
  auto od = dialer_opts();
  od.expected_remote = make_identity(77).peer_id();
  Wire w(od, listener_opts());
  w.run();
  CHECK(w.derr.code() == StatusCode::kPermissionDenied);
  CHECK_FALSE(w.d.upgraded());
}

TEST_CASE("connection fails on garbage instead of a handshake", "[connection]") {
  ConnectionCore l(make_identity(2), listener_opts());
  (void)l.take_output();
  Status st = l.feed(Bytes(200, 0x41));
  CHECK_FALSE(st.ok());
  CHECK(l.failed());
  CHECK_FALSE(l.upgraded());
}

TEST_CASE("connection closes when a transport byte is flipped", "[connection]") {
  Wire w(dialer_opts(), listener_opts());
  w.run();
  REQUIRE(w.d.upgraded());
  auto id = w.d.open_stream({"/echo/1.0.0"});
  w.run();
  REQUIRE(w.d.write(*id, as_bytes("secret payload")).ok());
  w.run([](Bytes& b) {
    if (b.size() > 20) b[b.size() - 5] ^= 0x01;
  });
  CHECK_FALSE(w.lerr.ok());
  CHECK(w.l.failed());
  CHECK(data_of(w.el, *id).empty());
}

TEST_CASE("connection reports an unsupported stream protocol", "[connection]") {
  Wire w(dialer_opts(), listener_opts({"/echo/1.0.0"}));
  w.run();
  auto id = w.d.open_stream({"/nope/1.0.0"});
  REQUIRE(id.ok());
  w.run();
  const ConnectionEvent* f = find(w.ed, ConnectionEvent::Kind::kStreamFailed);
  REQUIRE(f);
  CHECK(f->stream == *id);
  CHECK(f->status.code() == StatusCode::kUnsupported);
  CHECK(w.derr.ok());
}

TEST_CASE("connection write buffers nothing and reports kWritable as soon as the output is taken",
          "[connection]") {
  auto od = dialer_opts();
  od.yamux.output_high_water = 64 * 1024;
  od.yamux.max_data_frame = 16 * 1024;
  Wire w(od, listener_opts());
  w.run();
  auto id = w.d.open_stream({"/echo/1.0.0"});
  w.run();
  REQUIRE(find(w.ed, ConnectionEvent::Kind::kStreamReady));
  const Bytes chunk = Bytes(100 * 1024, 0x33);
  auto n = w.d.write(*id, chunk);
  REQUIRE(n.ok());
  CHECK(*n == 64 * 1024);  // up to the output high water, the rest stays with the caller
  CHECK(w.d.take_events().empty());
  // The socket takes the bytes; no reply has come back yet, and none is needed.
  Bytes out = w.d.take_output();
  auto ev = w.d.take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].kind == ConnectionEvent::Kind::kWritable);
  CHECK(ev[0].stream == *id);
  REQUIRE(w.l.feed(out).ok());
  auto rest = w.d.write(*id, ByteView(chunk).subspan(*n));
  REQUIRE(rest.ok());
  CHECK(*rest == chunk.size() - *n);
  w.run();
  CHECK(data_of(w.el, *id) == chunk);
}

TEST_CASE("connection delivers nothing of a read whose later Noise frame was tampered with", "[connection]") {
  Wire w(dialer_opts(), listener_opts());
  w.run();
  auto id = w.d.open_stream({"/echo/1.0.0"});
  w.run();
  REQUIRE(find(w.el, ConnectionEvent::Kind::kStreamReady));
  // Two Noise frames in one read: a genuine one, then one with a flipped bit.
  REQUIRE(*w.d.write(*id, as_bytes("genuine")) == 7);
  Bytes read = w.d.take_output();
  REQUIRE(*w.d.write(*id, as_bytes("forged")) == 6);
  Bytes second = w.d.take_output();
  REQUIRE(second.size() > 20);
  second[second.size() - 3] ^= 0x04;
  append(read, second);
  CHECK(w.l.feed(read).code() == StatusCode::kCorrupt);
  CHECK(w.l.failed());
  for (auto& e : w.l.take_events()) w.el.push_back(std::move(e));
  CHECK(data_of(w.el, *id).empty());
  CHECK_FALSE(w.l.feed(Bytes(10, 0)).ok());  // dead for good
}

TEST_CASE("connection lazy select: the stream is writable before the listener answers, data rides with the proposal",
          "[connection]") {
  auto od = dialer_opts();
  od.lazy_protocols = {"/echo/1.0.0"};
  Wire w(od, listener_opts({"/echo/1.0.0"}));
  w.run();
  REQUIRE(w.d.upgraded());
  w.ed.clear();
  auto id = w.d.open_stream({"/echo/1.0.0"});
  REQUIRE(id.ok());
  // Ready at once, before a single byte came back.
  auto early = w.d.take_events();
  REQUIRE(early.size() == 1);
  CHECK(early[0].kind == ConnectionEvent::Kind::kStreamReady);
  CHECK(early[0].protocol == "/echo/1.0.0");
  CHECK_FALSE(early[0].inbound);
  REQUIRE(w.d.write(*id, as_bytes("hello")).ok());
  REQUIRE(w.d.close_write(*id).ok());
  // One flight dialer -> listener carries header, proposal, data and FIN.
  Bytes flight = w.d.take_output();
  REQUIRE(w.l.feed(flight).ok());
  for (auto& e : w.l.take_events()) w.el.push_back(std::move(e));
  const ConnectionEvent* ready_l = find(w.el, ConnectionEvent::Kind::kStreamReady);
  REQUIRE(ready_l);
  CHECK(ready_l->protocol == "/echo/1.0.0");
  CHECK(to_string(data_of(w.el, *id)) == "hello");
  CHECK(find(w.el, ConnectionEvent::Kind::kStreamFinished));
  // The answer (multistream echo, then data) reaches the dialer as plain stream data.
  REQUIRE(w.l.write(*id, as_bytes("back")).ok());
  REQUIRE(w.l.close_write(*id).ok());
  w.run();
  CHECK(to_string(data_of(w.ed, *id)) == "back");
  CHECK(find(w.ed, ConnectionEvent::Kind::kStreamClosed));
  CHECK_FALSE(find(w.ed, ConnectionEvent::Kind::kStreamReady));  // announced once, at open
  CHECK(w.d.stream_count() == 0);
}

TEST_CASE("connection lazy select refused by the listener turns into a reset stream", "[connection]") {
  auto od = dialer_opts();
  od.lazy_protocols = {"/nope/1.0.0"};
  Wire w(od, listener_opts({"/echo/1.0.0"}));
  w.run();
  auto id = w.d.open_stream({"/nope/1.0.0"});
  REQUIRE(id.ok());
  REQUIRE(w.d.write(*id, as_bytes("unwanted")).ok());
  w.run();
  CHECK(find(w.ed, ConnectionEvent::Kind::kStreamReady));
  const ConnectionEvent* reset = find(w.ed, ConnectionEvent::Kind::kStreamReset);
  REQUIRE(reset);
  CHECK(reset->stream == *id);
  CHECK(data_of(w.el, *id).empty());  // the listener handed nothing to any handler
  CHECK_FALSE(find(w.el, ConnectionEvent::Kind::kStreamReady));
  CHECK(w.derr.ok());
  CHECK(w.lerr.ok());
  // Proposing two protocols is never lazy: the usual negotiation and failure report.
  auto two = w.d.open_stream({"/nope/1.0.0", "/also-nope/1.0.0"});
  REQUIRE(two.ok());
  CHECK(w.d.take_events().empty());
  w.run();
  const ConnectionEvent* failed = find(w.ed, ConnectionEvent::Kind::kStreamFailed);
  REQUIRE(failed);
  CHECK(failed->stream == *two);
}
