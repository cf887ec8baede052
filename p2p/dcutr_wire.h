// DCUtR messages (libp2p/specs relay/DCUtR.md, "RPC messages"): on /libp2p/dcutr each side sends
// <uvarint length><HolePunch protobuf>, at most kMaxDcutrMessage bytes (the spec's 4 KiB).
//   message HolePunch { required Type type = 1;  // CONNECT = 100, SYNC = 300
//                       repeated bytes ObsAddrs = 2; }
// Decoding is for hostile input: a missing or unknown type, a field of the wrong wire type or
// more than kMaxDcutrAddrs addresses is an error; addresses that do not parse are dropped and
// counted (peers may list transports we do not know).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "p2p/multiaddr.h"

namespace noloco::p2p::dcutr {

inline constexpr std::string_view kDcutrProtocolId = "/libp2p/dcutr";
constexpr size_t kMaxDcutrMessage = 4096;
constexpr size_t kMaxDcutrAddrs = 16;

enum class HolePunchType : uint32_t { kConnect = 100, kSync = 300 };

struct HolePunch {
  HolePunchType type = HolePunchType::kConnect;
  std::vector<Multiaddr> addrs;
  size_t dropped_addrs = 0;  // decode only
  bool operator==(const HolePunch&) const = default;
};

Bytes encode_hole_punch(const HolePunch& m);
Result<HolePunch> decode_hole_punch(ByteView protobuf);

}  // namespace noloco::p2p::dcutr
