#include "p2p/relay_client.h"

namespace noloco::p2p::relay {
namespace {

// A reply must be a STATUS message carrying OK; anything else is why we failed.
Result<HopMessage> check_reply(ByteView body) {
  auto msg = decode_hop(body);
  if (!msg.ok()) return protocol_error("relay: bad reply: " + msg.status().message());
  if (msg->type != HopType::kStatus) return protocol_error("relay: reply is not a STATUS message");
  if (!msg->status) return protocol_error("relay: STATUS reply without a status");
  if (*msg->status != RelayStatus::kOk) return refusal_status(*msg->status);
  return std::move(*msg);
}

}  // namespace

Status refusal_status(RelayStatus s) {
  const std::string what = std::string("relay refused: ") + relay_status_name(s) + " (" +
                           std::to_string(static_cast<uint32_t>(s)) + ")";
  switch (s) {
    case RelayStatus::kNoReservation:
      return Status(StatusCode::kNotFound, what);
    case RelayStatus::kPermissionDenied:
      return Status(StatusCode::kPermissionDenied, what);
    case RelayStatus::kMalformedMessage:
    case RelayStatus::kUnexpectedMessage:
      return Status(StatusCode::kProtocolError, what);
    default:
      return Status(StatusCode::kUnavailable, what);
  }
}

Bytes reserve_request() {
  HopMessage m;
  m.type = HopType::kReserve;
  return encode_hop(m);
}

Result<ReservationGrant> parse_reserve_reply(ByteView body) {
  NOLOCO_ASSIGN_OR_RETURN(HopMessage msg, check_reply(body));
  if (!msg.reservation) return protocol_error("relay: OK to RESERVE without a reservation");
  return ReservationGrant{std::move(*msg.reservation), msg.limit};
}

Bytes connect_request(const PeerId& target) {
  HopMessage m;
  m.type = HopType::kConnect;
  m.peer = RelayPeer{target, {}};
  return encode_hop(m);
}

Result<std::optional<RelayLimit>> parse_connect_reply(ByteView body) {
  NOLOCO_ASSIGN_OR_RETURN(HopMessage msg, check_reply(body));
  return msg.limit;
}

}  // namespace noloco::p2p::relay
