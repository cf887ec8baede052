// Per-address limits (p2p/address_limits.h): the limiter on its own, then real hosts on loopback
// with the loopback exemption switched off.
#include <catch2/catch.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <memory>
#include <optional>

#include "p2p/address_limits.h"
#include "p2p/host.h"
#include "tests/p2p/host_fixture.h"

using namespace noloco;
using namespace noloco::p2p;
using noloco::p2p::testing::make_host;
using noloco::p2p::testing::run_until;
using asio::ip::tcp;

namespace {

PeerId fresh_peer() { return Identity::generate().value().peer_id(); }

// A socket that connects and stays silent; `closed` once the host hangs up on it.
struct SilentPeer {
  explicit SilentPeer(asio::io_context& io) : sock(io) {}
  tcp::socket sock;
  bool closed = false;
  char byte = 0;
  void connect(const Host& h) {
    Multiaddr a = h.listen_addrs().at(0);
    sock.connect({asio::ip::make_address(*a.host()), *a.tcp_port()});
    sock.async_read_some(asio::buffer(&byte, 1), [this](const asio::error_code& ec, size_t) { closed = closed || ec; });
  }
};

HostOptions limited(size_t per_address, size_t ids_per_address) {
  HostOptions o;
  o.address_limits.limit_loopback = true;
  o.address_limits.max_inbound_per_address = per_address;
  o.address_limits.max_peer_ids_per_address = ids_per_address;
  o.handshake_timeout = std::chrono::seconds(30);  // silent sockets must not time out during the test
  return o;
}

}  // namespace

TEST_CASE("address limiter: buckets are the IPv4 address or the IPv6 /64, 127.0.0.1 exempt by default",
          "[address-limits]") {
  AddressLimiter def({});
  CHECK(def.bucket_of("127.0.0.1").empty());
  CHECK(def.bucket_of("::1").empty());
  CHECK(def.bucket_of("::ffff:127.0.0.1").empty());
  // Other loopback addresses are one process each in tools/linkemu's swarms: limited per address.
  CHECK(def.bucket_of("127.0.1.8") == "127.0.1.8");
  CHECK(def.bucket_of("127.0.0.2") == "127.0.0.2");
  CHECK(def.bucket_of("not an address").empty());
  CHECK(def.bucket_of("192.0.2.7") == "192.0.2.7");
  CHECK(def.bucket_of("::ffff:192.0.2.7") == "192.0.2.7");
  CHECK(def.bucket_of("2001:db8:1:2:aaaa::1") == def.bucket_of("2001:db8:1:2:bbbb::9"));
  CHECK(def.bucket_of("2001:db8:1:2::1") != def.bucket_of("2001:db8:1:3::1"));
  AddressLimitOptions o;
  o.limit_loopback = true;
  CHECK(AddressLimiter(o).bucket_of("127.0.0.1") == "127.0.0.1");
}

TEST_CASE("address limiter: connections and identities per address are capped and released", "[address-limits]") {
  AddressLimitOptions o;
  o.max_inbound_per_address = 3;
  o.max_peer_ids_per_address = 2;
  AddressLimiter lim(o);
  int c[6];
  const std::string ip = "198.51.100.4";
  REQUIRE(lim.admit_inbound(&c[0], ip).ok());
  REQUIRE(lim.admit_inbound(&c[1], ip).ok());
  REQUIRE(lim.admit_inbound(&c[2], ip).ok());
  CHECK(lim.admit_inbound(&c[3], ip).code() == StatusCode::kUnavailable);
  CHECK(lim.admit_inbound(&c[3], "198.51.100.5").ok());  // another address has its own budget
  CHECK(lim.inbound_from(ip) == 3);

  const PeerId a = fresh_peer(), b = fresh_peer(), x = fresh_peer();
  REQUIRE(lim.admit_peer(&c[0], a).ok());
  REQUIRE(lim.admit_peer(&c[1], b).ok());
  CHECK(lim.admit_peer(&c[2], x).code() == StatusCode::kUnavailable);  // a third identity
  CHECK(lim.admit_peer(&c[2], a).ok());                                // a second connection of a known one
  CHECK(lim.peer_ids_from(ip) == 2);

  lim.release(&c[1]);  // b leaves: its identity slot and connection slot are free again
  CHECK(lim.peer_ids_from(ip) == 1);
  REQUIRE(lim.admit_inbound(&c[4], ip).ok());
  CHECK(lim.admit_peer(&c[4], x).ok());
  lim.release(&c[5]);  // never admitted: nothing happens
  for (int i : {0, 2, 4}) lim.release(&c[i]);
  CHECK(lim.inbound_from(ip) == 0);
  CHECK(lim.peer_ids_from(ip) == 0);
  CHECK(lim.admit_peer(&c[5], x).ok());  // not admitted inbound (an outbound dial): not limited
}

TEST_CASE("address limits: host options are validated", "[address-limits]") {
  HostOptions o;
  o.address_limits.max_inbound_per_address = 0;
  CHECK_FALSE(o.validate().ok());
  o = HostOptions{};
  o.address_limits.max_peer_ids_per_address = 0;
  CHECK_FALSE(o.validate().ok());
}

TEST_CASE("address limits: a host refuses inbound connections from one address beyond its cap", "[address-limits][host]") {
  asio::io_context io;
  auto host = make_host(io, limited(2, 8));
  std::vector<std::unique_ptr<SilentPeer>> peers;
  for (int i = 0; i < 3; ++i) {
    peers.push_back(std::make_unique<SilentPeer>(io));
    peers.back()->connect(*host);
  }
  // The third is hung up on at once; the first two hold their (upgrading) slots.
  REQUIRE(run_until(io, [&] { return peers[2]->closed; }));
  REQUIRE(run_until(io, [&] { return host->connection_count() == 2; }));
  CHECK_FALSE(peers[0]->closed);
  CHECK_FALSE(peers[1]->closed);
  // A slot given back is free for the next connection from that address.
  peers[0]->sock.close();
  REQUIRE(run_until(io, [&] { return host->connection_count() == 1; }));
  auto other = make_host(io);
  std::optional<Result<PeerId>> r;
  other->connect(host->listen_addrs().at(0).with_peer_id(host->peer_id()), [&](Result<PeerId> x) { r = x; });
  REQUIRE(run_until(io, [&] { return r.has_value(); }));
  CHECK(r->ok());
}

TEST_CASE("address limits: identities beyond the cap from one address are disconnected, the first ones stay",
          "[address-limits][host]") {
  asio::io_context io;
  auto host = make_host(io, limited(16, 2));
  std::vector<std::shared_ptr<Host>> sybils;
  for (int i = 0; i < 4; ++i) {
    sybils.push_back(make_host(io));
    std::optional<Result<PeerId>> r;
    sybils.back()->connect(host->listen_addrs().at(0).with_peer_id(host->peer_id()), [&](Result<PeerId> x) { r = x; });
    REQUIRE(run_until(io, [&] { return r.has_value(); }));
  }
  // The host closes the third and fourth once their identities are known.
  REQUIRE(run_until(io, [&] { return !sybils[2]->is_connected(host->peer_id()) && !sybils[3]->is_connected(host->peer_id()); }));
  CHECK(host->is_connected(sybils[0]->peer_id()));
  CHECK(host->is_connected(sybils[1]->peer_id()));
  CHECK_FALSE(host->is_connected(sybils[2]->peer_id()));
  CHECK_FALSE(host->is_connected(sybils[3]->peer_id()));
  // With the default options loopback is exempt: the same four all stay.
  auto open = make_host(io);
  for (auto& s : sybils) {
    std::optional<Result<PeerId>> r;
    s->connect(open->listen_addrs().at(0).with_peer_id(open->peer_id()), [&](Result<PeerId> x) { r = x; });
    REQUIRE(run_until(io, [&] { return r.has_value(); }));
    CHECK(r->ok());
  }
  for (auto& s : sybils) CHECK(open->is_connected(s->peer_id()));
}
