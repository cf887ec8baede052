// Circuit relay v2 messages (libp2p/specs relay/circuit-v2.md): HopMessage on
// /libp2p/circuit/relay/0.2.0/hop (client <-> relay), StopMessage on .../stop (relay -> target),
// with their Peer, Reservation, Limit and Status parts. Each travels as one
// <uvarint length><protobuf> message, at most kMaxRelayMessage bytes.
//
// Decoding is for hostile input: a missing or unknown type, a PeerId that does not parse, a
// count or field over its cap is kCorrupt/kTooLarge (the relay answers MALFORMED_MESSAGE).
// Multiaddrs that do not parse are dropped and counted, as identify does, since peers may
// list transports we do not know. The reservation voucher (a signed envelope) is kept as
// opaque bytes: we neither sign nor check it (see docs/protocols/relay.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "p2p/identity.h"
#include "p2p/multiaddr.h"

namespace noloco::p2p::relay {

inline constexpr std::string_view kHopProtocolId = "/libp2p/circuit/relay/0.2.0/hop";
inline constexpr std::string_view kStopProtocolId = "/libp2p/circuit/relay/0.2.0/stop";

// Caps on what we accept (and never exceed when sending).
constexpr size_t kMaxRelayMessage = 4096;  // the whole protobuf, before anything is decoded
constexpr size_t kMaxRelayAddrs = 16;      // addrs in one Peer or Reservation
constexpr size_t kMaxVoucherBytes = 2048;

// Status codes (libp2p/specs relay/circuit-v2.md, "Status").
enum class RelayStatus : uint32_t {
  kUnused = 0,
  kOk = 100,
  kReservationRefused = 200,
  kResourceLimitExceeded = 201,
  kPermissionDenied = 202,
  kConnectionFailed = 203,
  kNoReservation = 204,
  kMalformedMessage = 400,
  kUnexpectedMessage = 401,
};
const char* relay_status_name(RelayStatus s);

enum class HopType : uint32_t { kReserve = 0, kConnect = 1, kStatus = 2 };
enum class StopType : uint32_t { kConnect = 0, kStatus = 1 };

struct RelayPeer {
  PeerId id;
  std::vector<Multiaddr> addrs;
  bool operator==(const RelayPeer&) const = default;
};

// Limits a relay puts on one relayed connection. Absent: unlimited on that axis.
struct RelayLimit {
  std::optional<uint32_t> duration_s;
  std::optional<uint64_t> data_bytes;  // per direction (the spec's reading, as in go and js)
  bool operator==(const RelayLimit&) const = default;
};

struct Reservation {
  uint64_t expire_unix_s = 0;
  std::vector<Multiaddr> addrs;
  Bytes voucher;  // opaque signed envelope, possibly empty
  bool operator==(const Reservation&) const = default;
};

struct HopMessage {
  HopType type = HopType::kStatus;
  std::optional<RelayPeer> peer;
  std::optional<Reservation> reservation;
  std::optional<RelayLimit> limit;
  std::optional<RelayStatus> status;  // any value the peer sent, known or not
  size_t dropped_addrs = 0;           // multiaddrs that did not parse (decode only)
  bool operator==(const HopMessage&) const = default;
};

struct StopMessage {
  StopType type = StopType::kStatus;
  std::optional<RelayPeer> peer;
  std::optional<RelayLimit> limit;
  std::optional<RelayStatus> status;
  size_t dropped_addrs = 0;
  bool operator==(const StopMessage&) const = default;
};

// Protobuf bodies (without the length prefix).
Bytes encode_hop(const HopMessage& m);
Result<HopMessage> decode_hop(ByteView protobuf);
Bytes encode_stop(const StopMessage& m);
Result<StopMessage> decode_stop(ByteView protobuf);

// Convenience constructors for the replies both sides send.
HopMessage hop_status(RelayStatus s);
StopMessage stop_status(RelayStatus s);

}  // namespace noloco::p2p::relay
