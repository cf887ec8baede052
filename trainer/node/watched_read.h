// Reading one message from a stream while a TrickleDetector watches the arrivals (Asio side of
// trickle_detector.h): used where we wait for a peer's message, on exchange and state streams.
#pragma once

#include <functional>
#include <memory>

#include "common/status.h"
#include "p2p/host.h"
#include "trainer/node/trickle_detector.h"

namespace noloco::node {

// What a read that caught a trickle ends with (code kProtocolError, the message says how little came).
Status trickle_error(const TrickleDetector& d);
bool is_trickle(const Status& st);

// Reads one <uvarint length><bytes> message of at most `max` bytes. Each chunk goes to a fresh
// detector first; when it says the peer trickles, the stream is reset and `done` gets
// trickle_error(). End of stream before a whole message: kTruncated.
void read_message_watched(std::shared_ptr<p2p::HostStream> s, size_t max, TrickleLimits limits,
                          std::function<void(Result<Bytes>)> done);

}  // namespace noloco::node
