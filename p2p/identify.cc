#include "p2p/identify.h"

#include "p2p/protobuf.h"

namespace noloco::p2p {
namespace {

// Field numbers from libp2p/specs identify/README.md.
enum Field : uint32_t {
  kPublicKey = 1,
  kListenAddrs = 2,
  kProtocols = 3,
  kObservedAddr = 4,
  kProtocolVersion = 5,
  kAgentVersion = 6,
};

}  // namespace

Bytes encode_identify(const IdentifyInfo& info) {
  pb::Writer w;
  if (!info.public_key.empty()) w.add_bytes(kPublicKey, info.public_key);
  for (const auto& a : info.listen_addrs) w.add_bytes(kListenAddrs, a.to_bytes());
  for (const auto& p : info.protocols) w.add_string(kProtocols, p);
  if (info.observed_addr) w.add_bytes(kObservedAddr, info.observed_addr->to_bytes());
  w.add_string(kProtocolVersion, info.protocol_version);
  w.add_string(kAgentVersion, info.agent_version);
  return w.take();
}

Result<IdentifyInfo> decode_identify(ByteView protobuf) {
  if (protobuf.size() > kMaxIdentifyMessage) return too_large("identify: message too large");
  IdentifyInfo info;
  size_t addrs_seen = 0;
  pb::Reader r(protobuf, kMaxIdentifyMessage);
  while (!r.done()) {
    NOLOCO_ASSIGN_OR_RETURN(pb::Field f, r.next());
    const bool is_bytes = f.type == pb::WireType::kLengthDelimited;
    if (!is_bytes) continue;  // none of our fields is a varint; skip whatever it is
    switch (f.number) {
      case kPublicKey:
        if (f.data.size() > kMaxIdentifyString) return too_large("identify: public key too large");
        info.public_key.assign(f.data.begin(), f.data.end());
        break;
      case kListenAddrs: {
        if (++addrs_seen > kMaxIdentifyListenAddrs) return too_large("identify: too many listen addresses");
        auto a = Multiaddr::from_bytes(f.data);
        if (a.ok()) {
          info.listen_addrs.push_back(std::move(*a));
        } else {
          ++info.dropped_addrs;
        }
        break;
      }
      case kProtocols:
        if (info.protocols.size() >= kMaxIdentifyProtocols) return too_large("identify: too many protocols");
        if (f.data.size() > kMaxIdentifyString) return too_large("identify: protocol id too long");
        info.protocols.push_back(to_string(f.data));
        break;
      case kObservedAddr: {
        auto a = Multiaddr::from_bytes(f.data);
        if (a.ok()) info.observed_addr = std::move(*a);
        break;
      }
      case kProtocolVersion:
        if (f.data.size() > kMaxIdentifyString) return too_large("identify: protocol version too long");
        info.protocol_version = to_string(f.data);
        break;
      case kAgentVersion:
        if (f.data.size() > kMaxIdentifyString) return too_large("identify: agent version too long");
        info.agent_version = to_string(f.data);
        break;
      default:
        break;  // signedPeerRecord and future fields
    }
  }
  return info;
}

}  // namespace noloco::p2p
