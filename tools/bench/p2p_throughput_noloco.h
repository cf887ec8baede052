// The "noloco" measurement of p2p_throughput: two p2p Hosts, each on its own network thread,
// move `bytes` over one stream on loopback. Kept apart from p2p_throughput.cc so that only this
// file sees Asio and the Host.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"

namespace noloco::bench {

// Sends `bytes` from host A to host B on one /noloco/bench/1.0.0 stream, B counts them until
// A's FIN and answers the count (8 bytes, big-endian). Returns B's count. With `pnet`, both
// hosts share a fresh pre-shared key.
Result<uint64_t> transfer_over_host(uint64_t bytes, bool pnet);

// Against another implementation (e.g. tools/interop/node.mjs): send `bytes` on one bench stream
// to the sink at `addr` and return its count; or listen, report the address (with /p2p/) to
// `on_listening`, serve one bench transfer and return the count received.
Result<uint64_t> send_to_sink(const std::string& addr, uint64_t bytes, const std::string& dial_from = "");
Result<uint64_t> serve_one_transfer(const std::function<void(const std::string&)>& on_listening,
                                    const std::string& listen = "/ip4/127.0.0.1/tcp/0");

}  // namespace noloco::bench
