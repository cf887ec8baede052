// The client side of the hop protocol (circuit relay v2), sans-IO: the requests a NATed peer
// sends to reserve a slot on a relay, and a dialer sends to reach a peer through it, and the
// checks on the relay's answers. A refusal becomes a Status whose message names the relay's
// status code (e.g. "relay refused: NO_RESERVATION").
#pragma once

#include <optional>

#include "p2p/relay_wire.h"

namespace noloco::p2p::relay {

struct ReservationGrant {
  Reservation reservation;          // expiry (Unix s) and the relay's addresses
  std::optional<RelayLimit> limit;  // what each circuit to us may carry
};

Bytes reserve_request();
Result<ReservationGrant> parse_reserve_reply(ByteView body);

Bytes connect_request(const PeerId& target);
// The limit the relay puts on the circuit (nullopt: none announced).
Result<std::optional<RelayLimit>> parse_connect_reply(ByteView body);

// The Status a refusal maps to: NO_RESERVATION -> kNotFound, PERMISSION_DENIED ->
// kPermissionDenied, MALFORMED/UNEXPECTED_MESSAGE -> kProtocolError, others -> kUnavailable.
Status refusal_status(RelayStatus s);

}  // namespace noloco::p2p::relay
