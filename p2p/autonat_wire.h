// AutoNAT v1 messages (libp2p/specs autonat/autonat-v1.md, "RPC messages"), on
// /libp2p/autonat/1.0.0 as <uvarint length><Message protobuf>, at most kMaxAutonatMessage bytes:
//   Message      { type 1 (DIAL 0, DIAL_RESPONSE 1), dial 2, dialResponse 3 }
//   Dial         { peer 1 }
//   PeerInfo     { id 1 (PeerId bytes), addrs 2 (repeated binary multiaddr) }
//   DialResponse { status 1, statusText 2, addr 3 }
//   status: OK 0, E_DIAL_ERROR 100, E_DIAL_REFUSED 101, E_BAD_REQUEST 200, E_INTERNAL_ERROR 300
// Decoding is for hostile input: wrong wire types, a PeerId that does not parse, more than
// kMaxAutonatAddrs addresses or a status text over kMaxStatusText are errors; addresses that do
// not parse are dropped and counted; unknown status codes are kept as numbers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "p2p/identity.h"
#include "p2p/multiaddr.h"

namespace noloco::p2p::autonat {

inline constexpr std::string_view kAutonatProtocolId = "/libp2p/autonat/1.0.0";
constexpr size_t kMaxAutonatMessage = 4096;
constexpr size_t kMaxAutonatAddrs = 32;
constexpr size_t kMaxStatusText = 256;

enum class MessageType : uint32_t { kDial = 0, kDialResponse = 1 };
enum class ResponseStatus : uint32_t {
  kOk = 0,
  kDialError = 100,
  kDialRefused = 101,
  kBadRequest = 200,
  kInternalError = 300,
};
const char* response_status_name(ResponseStatus s);

struct DialRequest {
  std::optional<PeerId> peer;  // PeerInfo.id (optional on the wire)
  std::vector<Multiaddr> addrs;
  bool operator==(const DialRequest&) const = default;
};

struct DialResponse {
  std::optional<ResponseStatus> status;  // any value the peer sent
  std::string text;
  std::optional<Multiaddr> addr;
  bool operator==(const DialResponse&) const = default;
};

struct Message {
  std::optional<MessageType> type;  // absent or unknown: nullopt (the caller refuses it)
  std::optional<DialRequest> dial;
  std::optional<DialResponse> response;
  size_t dropped_addrs = 0;  // decode only
  bool operator==(const Message&) const = default;
};

Bytes encode_message(const Message& m);
Result<Message> decode_message(ByteView protobuf);

Message dial_request(const PeerId& self, std::vector<Multiaddr> addrs);
Message dial_response(ResponseStatus s, std::string text, std::optional<Multiaddr> addr = std::nullopt);

}  // namespace noloco::p2p::autonat
