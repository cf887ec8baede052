// The client's stream-level steps of circuit relay v2, on top of HostStream (network thread):
// ask a relay for a reservation or a circuit on an open hop stream, and answer a relay's stop
// stream. The decisions are the sans-IO ones of relay_client.h and relay_stop.h; these only
// frame, read one reply (at most kMaxRelayMessage bytes) and write. After an OK circuit the
// stream carries the relayed connection; any bytes already received after the reply stay
// queued for its next read_some.
#pragma once

#include <functional>
#include <memory>

#include "p2p/host.h"
#include "p2p/relay_client.h"
#include "p2p/relay_stop.h"

namespace noloco::p2p::relay {

void request_reservation(std::shared_ptr<HostStream> hop, std::function<void(Result<ReservationGrant>)> cb);
void request_circuit(std::shared_ptr<HostStream> hop, const PeerId& target,
                     std::function<void(Result<std::optional<RelayLimit>>)> cb);
// Reads the relay's STOP CONNECT, answers it; cb gets the accepted decision (source set) or
// why not (the stream is then closed or reset).
void answer_stop(std::shared_ptr<HostStream> stop, bool relay_allowed, std::function<void(Result<StopDecision>)> cb);

}  // namespace noloco::p2p::relay
