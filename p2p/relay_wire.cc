#include "p2p/relay_wire.h"

#include <limits>

#include "p2p/protobuf.h"

namespace noloco::p2p::relay {
namespace {

// Field numbers from libp2p/specs relay/circuit-v2.md (the .proto in "Protobuf").
enum HopField : uint32_t { kHopType = 1, kHopPeer = 2, kHopReservation = 3, kHopLimit = 4, kHopStatus = 5 };
enum StopField : uint32_t { kStopType = 1, kStopPeer = 2, kStopLimit = 3, kStopStatus = 4 };
enum PeerField : uint32_t { kPeerId = 1, kPeerAddrs = 2 };
enum ReservationField : uint32_t { kResExpire = 1, kResAddrs = 2, kResVoucher = 3 };
enum LimitField : uint32_t { kLimitDuration = 1, kLimitData = 2 };

Status want(const pb::Field& f, pb::WireType t, const char* what) {
  if (f.type != t) return corrupt(std::string("relay: ") + what + " has the wrong wire type");
  return Status::Ok();
}

// Appends a multiaddr, or counts it as dropped; the count of both is capped.
Status add_addr(ByteView bytes, std::vector<Multiaddr>& out, size_t& seen, size_t& dropped) {
  if (++seen > kMaxRelayAddrs) return too_large("relay: too many addresses");
  auto a = Multiaddr::from_bytes(bytes);
  if (a.ok()) {
    out.push_back(std::move(*a));
  } else {
    ++dropped;
  }
  return Status::Ok();
}

Bytes encode_peer(const RelayPeer& p) {
  pb::Writer w;
  w.add_bytes(kPeerId, p.id.bytes());
  for (const auto& a : p.addrs) w.add_bytes(kPeerAddrs, a.to_bytes());
  return w.take();
}

Result<RelayPeer> decode_peer(ByteView in, size_t& dropped) {
  std::optional<PeerId> id;
  std::vector<Multiaddr> addrs;
  size_t seen = 0;
  pb::Reader r(in, kMaxRelayMessage);
  while (!r.done()) {
    NOLOCO_ASSIGN_OR_RETURN(pb::Field f, r.next());
    if (f.number == kPeerId) {
      NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kLengthDelimited, "peer id"));
      auto parsed = PeerId::from_bytes(f.data);
      if (!parsed.ok()) return corrupt("relay: bad peer id: " + parsed.status().message());
      id = std::move(*parsed);
    } else if (f.number == kPeerAddrs) {
      NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kLengthDelimited, "peer addr"));
      NOLOCO_RETURN_IF_ERROR(add_addr(f.data, addrs, seen, dropped));
    }
  }
  if (!id) return corrupt("relay: peer without an id");
  return RelayPeer{std::move(*id), std::move(addrs)};
}

Bytes encode_reservation(const Reservation& res) {
  pb::Writer w;
  w.add_varint(kResExpire, res.expire_unix_s);
  for (const auto& a : res.addrs) w.add_bytes(kResAddrs, a.to_bytes());
  if (!res.voucher.empty()) w.add_bytes(kResVoucher, res.voucher);
  return w.take();
}

Result<Reservation> decode_reservation(ByteView in, size_t& dropped) {
  Reservation res;
  bool have_expire = false;
  size_t seen = 0;
  pb::Reader r(in, kMaxRelayMessage);
  while (!r.done()) {
    NOLOCO_ASSIGN_OR_RETURN(pb::Field f, r.next());
    if (f.number == kResExpire) {
      NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kVarint, "reservation expire"));
      res.expire_unix_s = f.value;
      have_expire = true;
    } else if (f.number == kResAddrs) {
      NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kLengthDelimited, "reservation addr"));
      NOLOCO_RETURN_IF_ERROR(add_addr(f.data, res.addrs, seen, dropped));
    } else if (f.number == kResVoucher) {
      NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kLengthDelimited, "voucher"));
      if (f.data.size() > kMaxVoucherBytes) return too_large("relay: voucher too large");
      res.voucher.assign(f.data.begin(), f.data.end());
    }
  }
  if (!have_expire) return corrupt("relay: reservation without expire");
  return res;
}

Bytes encode_limit(const RelayLimit& l) {
  pb::Writer w;
  if (l.duration_s) w.add_varint(kLimitDuration, *l.duration_s);
  if (l.data_bytes) w.add_varint(kLimitData, *l.data_bytes);
  return w.take();
}

Result<RelayLimit> decode_limit(ByteView in) {
  RelayLimit l;
  pb::Reader r(in, kMaxRelayMessage);
  while (!r.done()) {
    NOLOCO_ASSIGN_OR_RETURN(pb::Field f, r.next());
    if (f.number == kLimitDuration) {
      NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kVarint, "limit duration"));
      if (f.value > std::numeric_limits<uint32_t>::max()) return corrupt("relay: limit duration over uint32");
      l.duration_s = static_cast<uint32_t>(f.value);
    } else if (f.number == kLimitData) {
      NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kVarint, "limit data"));
      l.data_bytes = f.value;
    }
  }
  return l;
}

Result<RelayStatus> decode_status(const pb::Field& f) {
  NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kVarint, "status"));
  if (f.value > std::numeric_limits<uint32_t>::max()) return corrupt("relay: status over uint32");
  return static_cast<RelayStatus>(f.value);
}

// Reads the `type` field, which both messages require, as a value below `count`.
Result<uint32_t> decode_type(const pb::Field& f, uint32_t count) {
  NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kVarint, "type"));
  if (f.value >= count) return corrupt("relay: unknown message type " + std::to_string(f.value));
  return static_cast<uint32_t>(f.value);
}

}  // namespace

const char* relay_status_name(RelayStatus s) {
  switch (s) {
    case RelayStatus::kUnused: return "UNUSED";
    case RelayStatus::kOk: return "OK";
    case RelayStatus::kReservationRefused: return "RESERVATION_REFUSED";
    case RelayStatus::kResourceLimitExceeded: return "RESOURCE_LIMIT_EXCEEDED";
    case RelayStatus::kPermissionDenied: return "PERMISSION_DENIED";
    case RelayStatus::kConnectionFailed: return "CONNECTION_FAILED";
    case RelayStatus::kNoReservation: return "NO_RESERVATION";
    case RelayStatus::kMalformedMessage: return "MALFORMED_MESSAGE";
    case RelayStatus::kUnexpectedMessage: return "UNEXPECTED_MESSAGE";
  }
  return "UNKNOWN";
}

Bytes encode_hop(const HopMessage& m) {
  pb::Writer w;
  w.add_varint(kHopType, static_cast<uint32_t>(m.type));
  if (m.peer) w.add_bytes(kHopPeer, encode_peer(*m.peer));
  if (m.reservation) w.add_bytes(kHopReservation, encode_reservation(*m.reservation));
  if (m.limit) w.add_bytes(kHopLimit, encode_limit(*m.limit));
  if (m.status) w.add_varint(kHopStatus, static_cast<uint32_t>(*m.status));
  return w.take();
}

Result<HopMessage> decode_hop(ByteView in) {
  if (in.size() > kMaxRelayMessage) return too_large("relay: hop message too large");
  HopMessage m;
  bool have_type = false;
  pb::Reader r(in, kMaxRelayMessage);
  while (!r.done()) {
    NOLOCO_ASSIGN_OR_RETURN(pb::Field f, r.next());
    switch (f.number) {
      case kHopType: {
        NOLOCO_ASSIGN_OR_RETURN(uint32_t t, decode_type(f, 3));
        m.type = static_cast<HopType>(t);
        have_type = true;
        break;
      }
      case kHopPeer: {
        NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kLengthDelimited, "peer"));
        NOLOCO_ASSIGN_OR_RETURN(m.peer, decode_peer(f.data, m.dropped_addrs));
        break;
      }
      case kHopReservation: {
        NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kLengthDelimited, "reservation"));
        NOLOCO_ASSIGN_OR_RETURN(m.reservation, decode_reservation(f.data, m.dropped_addrs));
        break;
      }
      case kHopLimit: {
        NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kLengthDelimited, "limit"));
        NOLOCO_ASSIGN_OR_RETURN(m.limit, decode_limit(f.data));
        break;
      }
      case kHopStatus: {
        NOLOCO_ASSIGN_OR_RETURN(m.status, decode_status(f));
        break;
      }
      default:
        break;  // unknown fields: forward compatibility
    }
  }
  if (!have_type) return corrupt("relay: hop message without a type");
  return m;
}

Bytes encode_stop(const StopMessage& m) {
  pb::Writer w;
  w.add_varint(kStopType, static_cast<uint32_t>(m.type));
  if (m.peer) w.add_bytes(kStopPeer, encode_peer(*m.peer));
  if (m.limit) w.add_bytes(kStopLimit, encode_limit(*m.limit));
  if (m.status) w.add_varint(kStopStatus, static_cast<uint32_t>(*m.status));
  return w.take();
}

Result<StopMessage> decode_stop(ByteView in) {
  if (in.size() > kMaxRelayMessage) return too_large("relay: stop message too large");
  StopMessage m;
  bool have_type = false;
  pb::Reader r(in, kMaxRelayMessage);
  while (!r.done()) {
    NOLOCO_ASSIGN_OR_RETURN(pb::Field f, r.next());
    switch (f.number) {
      case kStopType: {
        NOLOCO_ASSIGN_OR_RETURN(uint32_t t, decode_type(f, 2));
        m.type = static_cast<StopType>(t);
        have_type = true;
        break;
      }
      case kStopPeer: {
        NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kLengthDelimited, "peer"));
        NOLOCO_ASSIGN_OR_RETURN(m.peer, decode_peer(f.data, m.dropped_addrs));
        break;
      }
      case kStopLimit: {
        NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kLengthDelimited, "limit"));
        NOLOCO_ASSIGN_OR_RETURN(m.limit, decode_limit(f.data));
        break;
      }
      case kStopStatus: {
        NOLOCO_ASSIGN_OR_RETURN(m.status, decode_status(f));
        break;
      }
      default:
        break;
    }
  }
  if (!have_type) return corrupt("relay: stop message without a type");
  return m;
}

HopMessage hop_status(RelayStatus s) {
  HopMessage m;
  m.type = HopType::kStatus;
  m.status = s;
  return m;
}

StopMessage stop_status(RelayStatus s) {
  StopMessage m;
  m.type = StopType::kStatus;
  m.status = s;
  return m;
}

}  // namespace noloco::p2p::relay
