#include "p2p/autonat_wire.h"

#include "p2p/protobuf.h"

namespace noloco::p2p::autonat {
namespace {

// Field numbers from libp2p/specs autonat/autonat-v1.md (the Message .proto).
enum MsgField : uint32_t { kType = 1, kDial = 2, kDialResponse = 3 };
enum DialField : uint32_t { kDialPeer = 1 };
enum PeerField : uint32_t { kPeerId = 1, kPeerAddrs = 2 };
enum ResponseField : uint32_t { kStatus = 1, kStatusText = 2, kAddr = 3 };

Status want(const pb::Field& f, pb::WireType t, const char* what) {
  if (f.type != t) return corrupt(std::string("autonat: ") + what + " has the wrong wire type");
  return Status::Ok();
}

Bytes encode_dial(const DialRequest& d) {
  pb::Writer peer;
  if (d.peer) peer.add_bytes(kPeerId, d.peer->bytes());
  for (const auto& a : d.addrs) peer.add_bytes(kPeerAddrs, a.to_bytes());
  pb::Writer w;
  w.add_bytes(kDialPeer, peer.bytes());
  return w.take();
}

Result<DialRequest> decode_peer_info(ByteView in, size_t& dropped) {
  DialRequest d;
  size_t seen = 0;
  pb::Reader r(in, kMaxAutonatMessage);
  while (!r.done()) {
    NOLOCO_ASSIGN_OR_RETURN(pb::Field f, r.next());
    if (f.number == kPeerId) {
      NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kLengthDelimited, "peer id"));
      auto id = PeerId::from_bytes(f.data);
      if (!id.ok()) return corrupt("autonat: bad peer id: " + id.status().message());
      d.peer = std::move(*id);
    } else if (f.number == kPeerAddrs) {
      NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kLengthDelimited, "address"));
      if (++seen > kMaxAutonatAddrs) return too_large("autonat: too many addresses");
      auto a = Multiaddr::from_bytes(f.data);
      if (a.ok()) {
        d.addrs.push_back(std::move(*a));
      } else {
        ++dropped;
      }
    }
  }
  return d;
}

Result<DialRequest> decode_dial(ByteView in, size_t& dropped) {
  std::optional<DialRequest> d;
  pb::Reader r(in, kMaxAutonatMessage);
  while (!r.done()) {
    NOLOCO_ASSIGN_OR_RETURN(pb::Field f, r.next());
    if (f.number != kDialPeer) continue;
    NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kLengthDelimited, "dial peer"));
    NOLOCO_ASSIGN_OR_RETURN(d, decode_peer_info(f.data, dropped));
  }
  return d ? std::move(*d) : DialRequest{};
}

Bytes encode_response(const DialResponse& d) {
  pb::Writer w;
  if (d.status) w.add_varint(kStatus, static_cast<uint32_t>(*d.status));
  if (!d.text.empty()) w.add_string(kStatusText, d.text.substr(0, kMaxStatusText));
  if (d.addr) w.add_bytes(kAddr, d.addr->to_bytes());
  return w.take();
}

Result<DialResponse> decode_response(ByteView in) {
  DialResponse d;
  pb::Reader r(in, kMaxAutonatMessage);
  while (!r.done()) {
    NOLOCO_ASSIGN_OR_RETURN(pb::Field f, r.next());
    if (f.number == kStatus) {
      NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kVarint, "status"));
      if (f.value > 0xffffffffu) return corrupt("autonat: status out of range");
      d.status = static_cast<ResponseStatus>(f.value);
    } else if (f.number == kStatusText) {
      NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kLengthDelimited, "status text"));
      if (f.data.size() > kMaxStatusText) return too_large("autonat: status text too long");
      d.text.assign(f.data.begin(), f.data.end());
    } else if (f.number == kAddr) {
      NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kLengthDelimited, "address"));
      auto a = Multiaddr::from_bytes(f.data);
      if (a.ok()) d.addr = std::move(*a);  // one we cannot parse is as good as none
    }
  }
  return d;
}

}  // namespace

const char* response_status_name(ResponseStatus s) {
  switch (s) {
    case ResponseStatus::kOk: return "OK";
    case ResponseStatus::kDialError: return "E_DIAL_ERROR";
    case ResponseStatus::kDialRefused: return "E_DIAL_REFUSED";
    case ResponseStatus::kBadRequest: return "E_BAD_REQUEST";
    case ResponseStatus::kInternalError: return "E_INTERNAL_ERROR";
  }
  return "unknown";
}

Bytes encode_message(const Message& m) {
  pb::Writer w;
  if (m.type) w.add_varint(kType, static_cast<uint32_t>(*m.type));
  if (m.dial) w.add_bytes(kDial, encode_dial(*m.dial));
  if (m.response) w.add_bytes(kDialResponse, encode_response(*m.response));
  return w.take();
}

Result<Message> decode_message(ByteView protobuf) {
  if (protobuf.size() > kMaxAutonatMessage) return too_large("autonat: message over 4 KiB");
  Message m;
  pb::Reader r(protobuf, kMaxAutonatMessage);
  while (!r.done()) {
    NOLOCO_ASSIGN_OR_RETURN(pb::Field f, r.next());
    if (f.number == kType) {
      NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kVarint, "type"));
      if (f.value <= 1) m.type = static_cast<MessageType>(f.value);
    } else if (f.number == kDial) {
      NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kLengthDelimited, "dial"));
      NOLOCO_ASSIGN_OR_RETURN(m.dial, decode_dial(f.data, m.dropped_addrs));
    } else if (f.number == kDialResponse) {
      NOLOCO_RETURN_IF_ERROR(want(f, pb::WireType::kLengthDelimited, "dial response"));
      NOLOCO_ASSIGN_OR_RETURN(m.response, decode_response(f.data));
    }
  }
  return m;
}

Message dial_request(const PeerId& self, std::vector<Multiaddr> addrs) {
  Message m;
  m.type = MessageType::kDial;
  m.dial = DialRequest{self, std::move(addrs)};
  return m;
}

Message dial_response(ResponseStatus s, std::string text, std::optional<Multiaddr> addr) {
  Message m;
  m.type = MessageType::kDialResponse;
  if (text.size() > kMaxStatusText) text.resize(kMaxStatusText);
  m.response = DialResponse{s, std::move(text), std::move(addr)};
  return m;
}

}  // namespace noloco::p2p::autonat
