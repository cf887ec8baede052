// The "noloco" measurement of p2p_throughput: two p2p Hosts, each on its own network thread,
// move `bytes` over one stream on loopback. Kept apart from p2p_throughput.cc so that only this
// file sees Asio and the Host.
#pragma once

#include <cstdint>

#include "common/status.h"

namespace noloco::bench {

// Sends `bytes` from host A to host B on one /noloco/bench/1.0.0 stream, B counts them until
// A's FIN and answers the count (8 bytes, big-endian). Returns B's count. With `pnet`, both
// hosts share a fresh pre-shared key.
Result<uint64_t> transfer_over_host(uint64_t bytes, bool pnet);

}  // namespace noloco::bench
