// The target side of circuit relay v2 (the "stop" protocol), sans-IO: a relay opens
// /libp2p/circuit/relay/0.2.0/stop to us and sends StopMessage CONNECT naming the source peer;
// we answer STATUS and, when OK, the stream becomes a raw connection on which the source and we
// run the usual upgrade (multistream, Noise, yamux) with us as the listener. The source named
// here must be the peer the Noise handshake then proves.
#pragma once

#include <optional>

#include "p2p/relay_wire.h"

namespace noloco::p2p::relay {

struct StopDecision {
  StopMessage reply;              // always sent
  std::optional<PeerId> source;   // set when accepted
  std::optional<RelayLimit> limit;
};

// body: the unframed protobuf. relay_allowed: whether we accept circuits from the relay that
// opened the stream (we do from relays we hold a reservation on). Refusals: MALFORMED_MESSAGE
// (undecodable, or CONNECT without a peer), UNEXPECTED_MESSAGE (not a CONNECT),
// PERMISSION_DENIED (relay not allowed).
StopDecision on_stop(ByteView body, bool relay_allowed);

}  // namespace noloco::p2p::relay
