// identify (`/ipfs/id/1.0.0`, github.com/libp2p/specs identify/README.md): on a new stream the
// listener sends one varint-length-prefixed protobuf Identify message and closes the stream.
//   message Identify {
//     optional bytes  publicKey       = 1;  // libp2p PublicKey protobuf
//     repeated bytes  listenAddrs     = 2;  // binary multiaddrs
//     repeated string protocols       = 3;
//     optional bytes  observedAddr    = 4;  // binary multiaddr: how the sender sees us
//     optional string protocolVersion = 5;
//     optional string agentVersion    = 6;
//   }
// Other fields (signedPeerRecord = 8, ...) are skipped. Decoding is capped field by field; list
// entries we cannot parse (addresses of transports we do not know) are dropped, not fatal.
// See docs/protocols/identify.md.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "p2p/multiaddr.h"

namespace noloco::p2p {

constexpr std::string_view kIdentifyProtocolId = "/ipfs/id/1.0.0";
constexpr std::string_view kIdentifyProtocolVersion = "ipfs/0.1.0";
constexpr size_t kMaxIdentifyMessage = 64 * 1024;
constexpr size_t kMaxIdentifyListenAddrs = 64;
constexpr size_t kMaxIdentifyProtocols = 256;
constexpr size_t kMaxIdentifyString = 1024;

struct IdentifyInfo {
  std::string protocol_version;
  std::string agent_version;
  Bytes public_key;  // PublicKey protobuf
  std::vector<Multiaddr> listen_addrs;
  std::vector<std::string> protocols;
  std::optional<Multiaddr> observed_addr;
  size_t dropped_addrs = 0;  // listen addresses we could not parse
};

// The protobuf body (no length prefix).
Bytes encode_identify(const IdentifyInfo& info);
// kTooLarge beyond the caps above, kCorrupt for malformed protobuf.
Result<IdentifyInfo> decode_identify(ByteView protobuf);

}  // namespace noloco::p2p
