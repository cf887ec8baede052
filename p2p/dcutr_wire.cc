#include "p2p/dcutr_wire.h"

#include "p2p/protobuf.h"

namespace noloco::p2p::dcutr {
namespace {
// Field numbers from libp2p/specs relay/DCUtR.md (the HolePunch .proto).
enum Field : uint32_t { kType = 1, kObsAddrs = 2 };
}  // namespace

Bytes encode_hole_punch(const HolePunch& m) {
  pb::Writer w;
  w.add_varint(kType, static_cast<uint32_t>(m.type));
  for (const auto& a : m.addrs) w.add_bytes(kObsAddrs, a.to_bytes());
  return w.take();
}

Result<HolePunch> decode_hole_punch(ByteView protobuf) {
  if (protobuf.size() > kMaxDcutrMessage) return too_large("dcutr: message over 4 KiB");
  HolePunch m;
  bool have_type = false;
  size_t seen = 0;
  pb::Reader r(protobuf, kMaxDcutrMessage);
  while (!r.done()) {
    NOLOCO_ASSIGN_OR_RETURN(pb::Field f, r.next());
    if (f.number == kType) {
      if (f.type != pb::WireType::kVarint) return corrupt("dcutr: type has the wrong wire type");
      if (f.value != static_cast<uint32_t>(HolePunchType::kConnect) &&
          f.value != static_cast<uint32_t>(HolePunchType::kSync)) {
        return corrupt("dcutr: unknown message type " + std::to_string(f.value));
      }
      m.type = static_cast<HolePunchType>(f.value);
      have_type = true;
    } else if (f.number == kObsAddrs) {
      if (f.type != pb::WireType::kLengthDelimited) return corrupt("dcutr: address has the wrong wire type");
      if (++seen > kMaxDcutrAddrs) return too_large("dcutr: too many addresses");
      auto a = Multiaddr::from_bytes(f.data);
      if (a.ok()) {
        m.addrs.push_back(std::move(*a));
      } else {
        ++m.dropped_addrs;
      }
    }
  }
  if (!have_type) return corrupt("dcutr: message without a type");
  return m;
}

}  // namespace noloco::p2p::dcutr
