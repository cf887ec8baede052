// AutoNAT on real hosts over loopback: a client that listens is dialled back and learns it is
// public (with the address the server reached); one that does not listen learns it is private.
#include <catch2/catch.hpp>

#include <asio/io_context.hpp>

#include <algorithm>

#include "p2p/host.h"
#include "tests/p2p/host_fixture.h"

using namespace noloco;
using namespace noloco::p2p;
using noloco::p2p::testing::make_host;
using noloco::p2p::testing::run_until;

namespace {

HostOptions with_autonat(size_t min_votes = 1) {
  HostOptions o;
  o.autonat = HostOptions::Autonat{};
  o.autonat->client.min_votes = min_votes;
  return o;
}

// Connects `client` to `server` and waits until identify told it the server speaks AutoNAT.
void connect_to_server(asio::io_context& io, Host& client, const Host& server) {
  std::optional<Result<PeerId>> got;
  client.connect(server.listen_addrs().at(0), [&](Result<PeerId> r) { got = std::move(r); });
  REQUIRE(run_until(io, [&] { return got.has_value(); }));
  REQUIRE(got->ok());
  REQUIRE(run_until(io, [&] {
    auto info = client.peer_info(server.peer_id());
    return info && std::count(info->protocols.begin(), info->protocols.end(), "/libp2p/autonat/1.0.0") == 1;
  }));
}

autonat::ReachabilityStatus check(asio::io_context& io, Host& client) {
  std::optional<autonat::ReachabilityStatus> got;
  client.check_reachability([&](autonat::ReachabilityStatus s) { got = s; });
  REQUIRE(run_until(io, [&] { return got.has_value(); }));
  return *got;
}

}  // namespace

TEST_CASE("autonat host: a listening client is dialled back and is public", "[autonat][host]") {
  asio::io_context io;
  auto server = make_host(io, with_autonat());
  auto client = make_host(io, with_autonat());
  connect_to_server(io, *client, *server);
  auto st = check(io, *client);
  CHECK(st.reachability == autonat::Reachability::kPublic);
  CHECK(st.public_votes == 1);
  REQUIRE(st.public_addr);
  CHECK(*st.public_addr == client->listen_addrs().at(0).without_peer_id());
  CHECK(client->reachability().reachability == autonat::Reachability::kPublic);
  // The dial-back connection was closed once it had proved the address.
  REQUIRE(run_until(io, [&] { return server->connection_count() == 1; }));
}

TEST_CASE("autonat host: a client nobody can dial is private", "[autonat][host]") {
  asio::io_context io;
  auto server = make_host(io, with_autonat());
  auto id = Identity::generate();
  REQUIRE(id.ok());
  auto made = Host::create(io, *id, with_autonat());
  REQUIRE(made.ok());
  auto client = *made;  // no listener: only the observed (ephemeral) address, where nothing listens
  connect_to_server(io, *client, *server);
  auto st = check(io, *client);
  CHECK(st.reachability == autonat::Reachability::kPrivate);
  CHECK(st.private_votes == 1);
  CHECK_FALSE(st.public_addr);
}

TEST_CASE("autonat host: without servers or without the option the verdict is unknown", "[autonat][host]") {
  asio::io_context io;
  auto lone = make_host(io, with_autonat());
  CHECK(check(io, *lone).reachability == autonat::Reachability::kUnknown);
  auto plain = make_host(io);
  auto server = make_host(io, with_autonat());
  connect_to_server(io, *plain, *server);
  CHECK(check(io, *plain).reachability == autonat::Reachability::kUnknown);
  // A server with one vote needed per verdict but three required by the client: unknown.
  auto picky = make_host(io, with_autonat(3));
  connect_to_server(io, *picky, *server);
  auto st = check(io, *picky);
  CHECK(st.public_votes == 1);
  CHECK(st.reachability == autonat::Reachability::kUnknown);
}
