#include <catch2/catch.hpp>

#include "common/encoding.h"
#include "p2p/multiaddr.h"

using namespace noloco;
using namespace noloco::p2p;

constexpr std::string_view kPeer = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";  // peer-ids.md example

// Binary forms worked out from the multiaddr table (multiformats/multiaddr protocols.csv):
// code varint, then the value (ip4 4 bytes, tcp 2 bytes big-endian, ip6 16 bytes,
// dns/p2p varint length + bytes).
TEST_CASE("multiaddr text and binary forms", "[multiaddr]") {
  struct Case {
    std::string text;
    std::string hex;
  } cases[] = {
      {"/ip4/127.0.0.1/tcp/4001", "047f000001060fa1"},
      {"/ip4/0.0.0.0/tcp/0", "0400000000060000"},
      {"/ip6/::1/tcp/65535", "2900000000000000000000000000000001" "06ffff"},
      {"/ip6/2001:db8::7/tcp/80", "2920010db8000000000000000000000007" "060050"},
      {"/dns4/example.com/tcp/443", "360b6578616d706c652e636f6d" "0601bb"},
      {"/dns6/a-b.c_d/tcp/1", "3707612d622e635f64" "060001"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto ma = Multiaddr::parse(c.text);
    REQUIRE(ma.ok());
    CHECK(ma->to_string() == c.text);
    auto back = Multiaddr::from_bytes(ma->to_bytes());
    REQUIRE(back.ok());
    CHECK(*back == *ma);
    CHECK(hex_encode(ma->to_bytes()) == c.hex);
  }
}

TEST_CASE("multiaddr with /p2p: accessors and helpers", "[multiaddr]") {
  std::string text = "/ip4/10.0.0.2/tcp/4001/p2p/" + std::string(kPeer);
  auto ma = Multiaddr::parse(text);
  REQUIRE(ma.ok());
  CHECK(ma->to_string() == text);
  Bytes bin = ma->to_bytes();
  // ... 0xa5 0x03 (421 as a varint), then 0x26 (38 = length of the multihash).
  CHECK(hex_encode(bin).substr(16, 6) == "a50326");
  CHECK(Multiaddr::from_bytes(bin)->to_string() == text);
  CHECK(ma->host() == "10.0.0.2");
  CHECK_FALSE(ma->host_is_dns());
  CHECK(ma->tcp_port() == 4001);
  REQUIRE(ma->peer_id().has_value());
  CHECK(ma->peer_id()->to_string() == kPeer);
  CHECK(ma->without_peer_id().to_string() == "/ip4/10.0.0.2/tcp/4001");
  CHECK(ma->without_peer_id().with_peer_id(*ma->peer_id()) == *ma);
  CHECK(ma->with_peer_id(*ma->peer_id()) == *ma);  // replaces, does not append

  auto legacy = Multiaddr::parse("/ip4/10.0.0.2/tcp/4001/ipfs/" + std::string(kPeer));
  REQUIRE(legacy.ok());
  CHECK(legacy->to_string() == text);

  auto dns = Multiaddr::parse("/dns4/boot.example.org/tcp/4001");
  CHECK(dns->host() == "boot.example.org");
  CHECK(dns->host_is_dns());
  CHECK_FALSE(dns->peer_id().has_value());

  auto made = Multiaddr::from_ip_tcp("::1", 9);
  REQUIRE(made.ok());
  CHECK(made->to_string() == "/ip6/::1/tcp/9");
  CHECK(Multiaddr::from_ip_tcp("1.2.3.4", 5)->to_string() == "/ip4/1.2.3.4/tcp/5");
  CHECK_FALSE(Multiaddr::from_ip_tcp("localhost", 5).ok());
}

TEST_CASE("multiaddr text parsing is strict", "[multiaddr]") {
  const char* bad[] = {
      "",
      "/",
      "ip4/1.2.3.4",
      "/ip4/1.2.3.4/",               // trailing slash
      "/ip4/1.2.3.4/tcp",            // missing value
      "/ip4/1.2.3.4/tcp/",           // empty value
      "/ip4/256.0.0.1",
      "/ip4/1.2.3",
      "/ip4/01.2.3.4",
      "/ip4/1.2.3.4/tcp/65536",
      "/ip4/1.2.3.4/tcp/-1",
      "/ip4/1.2.3.4/tcp/+80",
      "/ip4/1.2.3.4/tcp/080",
      "/ip4/1.2.3.4/tcp/99999999999999999999",
      "/ip6/1::2::3",
      "/ip6/127.0.0.1",
      "/udp/1234",                   // unknown protocol
      "/ip4/1.2.3.4/quic-v1",
      "/dns4/exa mple.com",
      "/dns4/a/b",                   // 'b' parsed as a protocol name: unknown
      "/p2p/notapeerid",
      "//ip4/1.2.3.4",
  };
  for (const char* t : bad) {
    INFO(t);
    CHECK_FALSE(Multiaddr::parse(t).ok());
  }
  CHECK(Multiaddr::parse(std::string(kMaxMultiaddrText + 1, '/')).status().code() == StatusCode::kTooLarge);
  // Regression (multiaddr_fuzz): a long binary multiaddr prints to text that parses back.
  Bytes many;
  for (int i = 0; i < 340; ++i) append(many, Bytes{0x06, 0x06, 0x06});  // 340 x /tcp/1542, 1020 bytes
  auto bin = Multiaddr::from_bytes(many);
  REQUIRE(bin.ok());
  auto text = Multiaddr::parse(bin->to_string());
  REQUIRE(text.ok());
  CHECK(*text == *bin);
  std::string too_long;
  for (int i = 0; i < 342; ++i) too_long += "/tcp/1";  // 2052 chars, 1026 bytes in binary
  CHECK(Multiaddr::parse(too_long).status().code() == StatusCode::kTooLarge);
}

TEST_CASE("multiaddr binary parsing is strict", "[multiaddr]") {
  auto bad = [](std::string_view h) { return !Multiaddr::from_bytes(*hex_decode(h)).ok(); };
  CHECK(bad(""));
  CHECK(bad("047f0000"));           // ip4 truncated
  CHECK(bad("047f000001060f"));     // tcp truncated
  CHECK(bad("ff01"));               // unknown code 255
  CHECK(bad("84007f000001"));       // code 4 as a non-minimal varint
  CHECK(bad("047f00000106"));       // tcp with no value
  CHECK(bad("3605616263"));         // dns4 length 5, 3 bytes present
  CHECK(bad("36ffffffff0f61"));     // dns4 length ~4 GiB
  CHECK(bad("3600"));               // empty dns name
  CHECK(bad("3603612f62"));         // '/' inside a dns name
  CHECK(bad("a50303010203"));       // p2p value not a multihash of a key
  CHECK(bad("80808080808080808080"));  // varint too long
  CHECK(Multiaddr::from_bytes(Bytes(5000, 4)).status().code() == StatusCode::kTooLarge);
}

TEST_CASE("multiaddr: every binary form we accept prints to text we accept", "[multiaddr]") {
  // multiaddr_fuzz, 2026-12-04: 734 bytes of p2p-circuit components (2 bytes each, 12 characters
  // each in text) printed to 4168 characters, past the text cap of the time (4x the binary cap).
  Bytes circuits;
  for (size_t i = 0; i < kMaxMultiaddrBytes / 2; ++i) circuits.insert(circuits.end(), {0xa2, 0x02});
  auto bin = Multiaddr::from_bytes(circuits);
  REQUIRE(bin.ok());
  const std::string text = bin->to_string();
  CHECK(text.size() == 12 * kMaxMultiaddrBytes / 2);
  auto back = Multiaddr::parse(text);
  REQUIRE(back.ok());
  CHECK(*back == *bin);
  // Text past the cap is still refused before any parsing.
  CHECK(Multiaddr::parse(std::string(kMaxMultiaddrText + 1, '/')).status().code() == StatusCode::kTooLarge);
}

TEST_CASE("multiaddr with /p2p-circuit: forms and circuit parts", "[multiaddr]") {
  auto relay_id = Identity::generate()->peer_id().to_string();
  const std::string relay = "/ip4/10.0.0.2/tcp/4001/p2p/" + relay_id;
  const std::string text = relay + "/p2p-circuit/p2p/" + std::string(kPeer);
  auto ma = Multiaddr::parse(text);
  REQUIRE(ma.ok());
  CHECK(ma->to_string() == text);
  CHECK(ma->is_circuit());
  Bytes bin = ma->to_bytes();
  // 290 as a varint is a2 02, with no value after it; a5 03 (p2p) follows at once.
  CHECK(hex_encode(bin).find("a202a503") != std::string::npos);
  auto back = Multiaddr::from_bytes(bin);
  REQUIRE(back.ok());
  CHECK(*back == *ma);

  auto parts = ma->circuit_parts();
  REQUIRE(parts.ok());
  CHECK(parts->relay.to_string() == relay);
  REQUIRE(parts->target.has_value());
  CHECK(parts->target->to_string() == kPeer);

  // A listen address on a relay has no target.
  auto listen = Multiaddr::parse(relay + "/p2p-circuit");
  REQUIRE(listen.ok());
  CHECK(listen->to_string() == relay + "/p2p-circuit");
  CHECK_FALSE(listen->circuit_parts()->target.has_value());

  CHECK_FALSE(Multiaddr::parse("/ip4/1.2.3.4/tcp/5")->is_circuit());
  CHECK_FALSE(Multiaddr::parse("/ip4/1.2.3.4/tcp/5")->circuit_parts().ok());
  // The relay must be dialable and named; one hop only.
  CHECK_FALSE(Multiaddr::parse("/p2p-circuit/p2p/" + std::string(kPeer))->circuit_parts().ok());
  CHECK_FALSE(Multiaddr::parse("/ip4/1.2.3.4/tcp/5/p2p-circuit/p2p/" + std::string(kPeer))->circuit_parts().ok());
  CHECK_FALSE(Multiaddr::parse(text + "/p2p-circuit")->circuit_parts().ok());
  // No value may follow the flag in text; binary with a stray length byte is refused too.
  CHECK_FALSE(Multiaddr::parse(relay + "/p2p-circuit/").ok());
  CHECK_FALSE(Multiaddr::parse(relay + "/p2p-circuit/xyz").ok());
}
