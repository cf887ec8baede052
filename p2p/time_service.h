// /noloco/time/1.0.0 on a Host (time_wire.h has the bytes and the arithmetic): serve it, and ask
// a connected peer for one clock sample. Network thread only, like every Host call.
#pragma once

#include <functional>

#include "p2p/host.h"
#include "p2p/time_wire.h"

namespace noloco::p2p::timeproto {

// Every noloco node and `noloco listen` serve this (docs/protocols/time.md).
void serve_time(Host& host);

// One request to `peer` over an existing connection; cb gets the sample or why not.
void query_time(Host& host, const PeerId& peer, std::function<void(Result<ClockSample>)> cb);

}  // namespace noloco::p2p::timeproto
