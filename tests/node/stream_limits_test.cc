// Inbound exchange streams cannot hold a node (node_network.h NetworkOptions::max_inbound_exchanges,
// exchange_idle_timeout; docs/defences.md "Streams"): a caller that opens an exchange and goes
// silent is reset at the idle deadline without a strike, a caller's newer stream replaces its
// older one, and beyond the cap new callers are turned away while those in progress keep going.
// (A SilentCaller must outlive its stream's read callback, which points at it.)
#include <catch2/catch.hpp>

#include <asio/io_context.hpp>

#include "p2p/host.h"
#include "tests/p2p/host_fixture.h"
#include "trainer/node/exchange_wire.h"
#include "trainer/node/node_network.h"

using namespace noloco;
using namespace noloco::node;
using noloco::p2p::testing::make_host;
using noloco::p2p::testing::run_until;

namespace {

std::unique_ptr<NodeNetwork> start_net(size_t max_inbound, Duration idle, std::vector<p2p::PeerId> banned = {}) {
  NetworkOptions o;
  o.banned = std::move(banned);
  o.identity = *p2p::Identity::generate();
  o.listen = *p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0");
  o.run_id = "limits-run";
  o.expect.run_id = "limits-run";
  o.max_inbound_exchanges = max_inbound;
  o.exchange_idle_timeout = idle;
  auto net = NodeNetwork::start(std::move(o));
  REQUIRE(net.ok());
  return std::move(*net);
}

// An exchange stream from `client` to the node that sends nothing; `ended` once the node resets it.
struct SilentCaller {
  std::shared_ptr<p2p::HostStream> stream;
  bool ended = false;
  Status why;
  void open(asio::io_context& io, p2p::Host& client, const NodeNetwork& node) {
    std::optional<Result<std::shared_ptr<p2p::HostStream>>> r;
    client.new_stream(node.bound_addr(), {std::string(kExchangeProtocolId)}, [&](auto x) { r = std::move(x); });
    REQUIRE(run_until(io, [&] { return r.has_value(); }));
    REQUIRE(r->ok());
    stream = **r;
    stream->read_some([this](Result<Bytes> b) {
      ended = true;
      why = b.ok() ? Status::Ok() : b.status();
    });
  }
};

}  // namespace

TEST_CASE("exchange streams: a silent caller is reset at the idle deadline and not struck", "[node][defence][streams]") {
  auto node = start_net(16, std::chrono::milliseconds(300));
  asio::io_context io;
  auto client = make_host(io);
  SilentCaller c;
  c.open(io, *client, *node);
  REQUIRE(run_until(io, [&] { return c.ended; }));
  CHECK_FALSE(c.why.ok());
  CHECK(node->take_events().empty());  // slowness is no offence
}

TEST_CASE("exchange streams: a caller's newer stream replaces its older one, the cap turns others away",
          "[node][defence][streams]") {
  auto node = start_net(2, std::chrono::minutes(10));
  asio::io_context io;
  auto c1 = make_host(io), c2 = make_host(io), c3 = make_host(io);
  SilentCaller a, a2, b, c;
  a.open(io, *c1, *node);
  a2.open(io, *c1, *node);  // same peer again: the first is reset
  REQUIRE(run_until(io, [&] { return a.ended; }));
  b.open(io, *c2, *node);
  c.open(io, *c3, *node);  // a third peer while two are in progress: refused
  REQUIRE(run_until(io, [&] { return c.ended; }));
  CHECK_FALSE(c.why.ok());
  CHECK_FALSE(a2.ended);
  CHECK_FALSE(b.ended);
}

TEST_CASE("exchange streams: a peer banned before a restart (the store's bans, given at start) is not answered",
          "[node][defence][streams]") {
  asio::io_context io;
  auto banned = make_host(io), other = make_host(io);
  auto node = start_net(16, std::chrono::minutes(10), {banned->peer_id()});
  SilentCaller b, o;
  b.open(io, *banned, *node);
  o.open(io, *other, *node);
  REQUIRE(run_until(io, [&] { return b.ended; }));
  CHECK_FALSE(b.why.ok());
  CHECK_FALSE(o.ended);
}
