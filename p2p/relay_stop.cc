#include "p2p/relay_stop.h"

namespace noloco::p2p::relay {

StopDecision on_stop(ByteView body, bool relay_allowed) {
  StopDecision d;
  auto msg = decode_stop(body);
  if (!msg.ok()) {
    d.reply = stop_status(RelayStatus::kMalformedMessage);
    return d;
  }
  if (msg->type != StopType::kConnect) {
    d.reply = stop_status(RelayStatus::kUnexpectedMessage);
    return d;
  }
  if (!msg->peer) {
    d.reply = stop_status(RelayStatus::kMalformedMessage);
    return d;
  }
  if (!relay_allowed) {
    d.reply = stop_status(RelayStatus::kPermissionDenied);
    return d;
  }
  d.reply = stop_status(RelayStatus::kOk);
  d.source = msg->peer->id;
  d.limit = msg->limit;
  return d;
}

}  // namespace noloco::p2p::relay
