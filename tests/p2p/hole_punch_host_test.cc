// The DCUtR adapter (hole_punch_service.*) on real hosts on loopback, against a scripted peer A:
// R relays, B (hole punching on) reserves on R, A dials B through R and answers B's DCUtR
// exchange by hand, so the test decides which dial works.
#include <catch2/catch.hpp>

#include <asio/ip/tcp.hpp>

#include <memory>
#include <optional>
#include <vector>

#include "p2p/dcutr_wire.h"
#include "p2p/framing.h"
#include "p2p/host.h"
#include "tests/p2p/host_fixture.h"

using namespace noloco;
using namespace noloco::p2p;
using noloco::p2p::testing::circuit_to;
using noloco::p2p::testing::make_host;
using noloco::p2p::testing::run_until;
using namespace std::chrono_literals;

namespace {

// Accepts TCP connections and never says a word: a dial to it connects and then its libp2p
// handshake never completes (what B's hole-punch dial meets at a js-libp2p listener, where
// both sides wait as responders).
struct SilentListener {
  explicit SilentListener(asio::io_context& io) : acceptor(io, {asio::ip::make_address("127.0.0.1"), 0}) { accept(); }
  void accept() {
    auto s = std::make_shared<asio::ip::tcp::socket>(acceptor.get_executor());
    acceptor.async_accept(*s, [this, s](const asio::error_code& ec) {
      if (ec) return;
      held.push_back(s);
      accept();
    });
  }
  Multiaddr addr() const { return *Multiaddr::from_ip_tcp("127.0.0.1", acceptor.local_endpoint().port()); }
  asio::ip::tcp::acceptor acceptor;
  std::vector<std::shared_ptr<asio::ip::tcp::socket>> held;
};

}  // namespace

TEST_CASE("hole punch: B's own dial fails but A's dial gave a direct connection, which counts as success",
          "[dcutr][host]") {
  asio::io_context io;
  HostOptions relay_opt;
  relay_opt.relay = relay::RelayOptions{};
  auto r = make_host(io, relay_opt);
  HostOptions b_opt;
  b_opt.hole_punch = true;
  b_opt.dial_timeout = 1s;  // how long B's dial to the silent listener takes to give up
  auto b = make_host(io, b_opt);
  auto a = make_host(io);
  SilentListener silent(io);

  std::optional<Result<relay::ReservationGrant>> grant;
  b->reserve_relay(r->listen_addrs().at(0), [&](Result<relay::ReservationGrant> g) { grant = std::move(g); });
  REQUIRE(run_until(io, [&] { return grant.has_value(); }));
  REQUIRE(grant->ok());

  // A's side of the exchange: on B's CONNECT, first connect to B directly (the dial that works),
  // then answer with the silent listener as A's only address, then read SYNC.
  const auto b_port = *b->listen_addrs().at(0).tcp_port();
  bool sync_seen = false;
  a->set_handler(std::string(dcutr::kDcutrProtocolId), [&](std::shared_ptr<HostStream> s) {
    s->read_message([&, s](Result<Bytes> connect) {
      REQUIRE(connect.ok());
      REQUIRE(dcutr::decode_hole_punch(*connect)->type == dcutr::HolePunchType::kConnect);
      // No /p2p/ part: a fresh dial, not the relayed connection A already has to B.
      a->connect(*Multiaddr::from_ip_tcp("127.0.0.1", b_port), [&, s](Result<PeerId> direct) {
        REQUIRE(direct.ok());
        s->write(encode_length_prefixed(
            dcutr::encode_hole_punch({dcutr::HolePunchType::kConnect, {silent.addr()}, 0})));
        s->read_message([&, s](Result<Bytes> sync) {
          REQUIRE(sync.ok());
          sync_seen = dcutr::decode_hole_punch(*sync)->type == dcutr::HolePunchType::kSync;
        });
      });
    });
  });

  std::optional<Result<PeerId>> relayed;
  a->connect(circuit_to(*r, *b), [&](Result<PeerId> res) { relayed = std::move(res); });
  REQUIRE(run_until(io, [&] { return relayed.has_value(); }));
  REQUIRE(relayed->ok());

  // B's punch ends as soon as it sees A's direct connection: when its dial starts (A connected
  // before answering) or when the connection's upgrade completes during B's dial to the silent
  // listener, which then does not need to give up first.
  REQUIRE(run_until(io, [&] {
    const auto st = b->hole_punch_stats();
    return st.succeeded + st.failed > 0;
  }));
  CHECK(sync_seen);
  CHECK(silent.held.size() <= 1);  // B dialled A's (silent) address at most once, or not at all
  CHECK(b->is_directly_connected(a->peer_id()));
  const auto st = b->hole_punch_stats();
  CHECK(st.attempts == 1);
  CHECK(st.succeeded == 1);
  CHECK(st.failed == 0);
}
