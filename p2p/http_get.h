// A one-shot HTTP/1.0 GET over TCP with a deadline, for `noloco status --node` (docs/status.md):
// connect, send the request, read until the server closes (the endpoint of p2p/metrics_server.h
// closes after one response), parse with common/metrics_http.h. It lives in p2p/ because Asio may
// only be used here; it knows nothing of libp2p.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "common/metrics_http.h"
#include "common/status.h"

namespace noloco::p2p {

// `address` is "HOST:PORT" or "[IPV6]:PORT" with HOST an IP address. kIoError naming the address
// when nothing answers (refused, unreachable) or the deadline passes (the whole exchange, connect
// included, has `timeout`); kTooLarge past `max_bytes`; parse errors as parse_http_response.
Result<metrics::HttpResponse> http_get(const std::string& address, const std::string& path,
                                       std::chrono::milliseconds timeout, size_t max_bytes = 1 << 20);

}  // namespace noloco::p2p
