#include <catch2/catch.hpp>

#include "common/encoding.h"
#include "p2p/identify.h"
#include "p2p/identity.h"
#include "p2p/protobuf.h"

using namespace noloco;
using namespace noloco::p2p;

TEST_CASE("identify encodes the spec's field numbers and round-trips", "[identify]") {
  auto id = Identity::from_seed(Bytes(32, 7));
  REQUIRE(id.ok());
  IdentifyInfo info;
  info.protocol_version = "ipfs/0.1.0";
  info.agent_version = "noloco/0.1.0";
  info.public_key = id->public_key_protobuf();
  info.listen_addrs.push_back(*Multiaddr::parse("/ip4/127.0.0.1/tcp/4001"));
  info.protocols = {"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"};
  info.observed_addr = *Multiaddr::parse("/ip4/10.0.0.1/tcp/5555");
  Bytes wire = encode_identify(info);

  // Field numbers, checked independently of the decoder.
  std::vector<uint32_t> numbers;
  pb::Reader r(wire);
  while (!r.done()) numbers.push_back(r.next()->number);
  CHECK(numbers == std::vector<uint32_t>{1, 2, 3, 3, 4, 5, 6});

  auto back = decode_identify(wire);
  REQUIRE(back.ok());
  CHECK(back->protocol_version == info.protocol_version);
  CHECK(back->agent_version == info.agent_version);
  CHECK(back->public_key == info.public_key);
  REQUIRE(back->listen_addrs.size() == 1);
  CHECK(back->listen_addrs[0].to_string() == "/ip4/127.0.0.1/tcp/4001");
  CHECK(back->protocols == info.protocols);
  REQUIRE(back->observed_addr.has_value());
  CHECK(back->observed_addr->to_string() == "/ip4/10.0.0.1/tcp/5555");
}

TEST_CASE("identify drops addresses it cannot parse and skips unknown fields", "[identify]") {
  pb::Writer w;
  w.add_bytes(2, Bytes{0xCC, 0x03, 0x01});  // an unknown multiaddr protocol
  w.add_bytes(2, Multiaddr::parse("/ip4/1.2.3.4/tcp/1")->to_bytes());
  w.add_bytes(8, Bytes(100, 1));            // signedPeerRecord
  w.add_varint(9, 5);
  w.add_string(6, "js-libp2p/3.0");
  auto info = decode_identify(w.bytes());
  REQUIRE(info.ok());
  CHECK(info->listen_addrs.size() == 1);
  CHECK(info->dropped_addrs == 1);
  CHECK(info->agent_version == "js-libp2p/3.0");
}

TEST_CASE("identify enforces its caps", "[identify]") {
  pb::Writer many;
  for (size_t i = 0; i <= kMaxIdentifyProtocols; ++i) many.add_string(3, "/p");
  CHECK(decode_identify(many.bytes()).status().code() == StatusCode::kTooLarge);
  pb::Writer longs;
  longs.add_string(6, std::string(kMaxIdentifyString + 1, 'a'));
  CHECK(decode_identify(longs.bytes()).status().code() == StatusCode::kTooLarge);
  CHECK(decode_identify(Bytes(kMaxIdentifyMessage + 1, 0)).status().code() == StatusCode::kTooLarge);
  // Truncated field.
  CHECK_FALSE(decode_identify(Bytes{0x32, 0x10, 'a'}).ok());
}
