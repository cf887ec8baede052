// The Asio adapter of `--metrics ADDR` (docs/metrics.md): a TCP listener on its own thread that
// answers each connection with one response built by common/metrics_http.h. It lives in p2p/
// because Asio may only be used here; it knows nothing of libp2p.
//
// Limits (a scrape endpoint must not become a way to exhaust the node): a connection gets
// `deadline` from accept to the last byte written, then is closed whatever state it is in (a
// slow or silent client cannot hold it); at most `max_connections` are open at once (more are
// accepted and closed at once); a request head over `max_request_bytes` is answered with 431.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics_http.h"
#include "common/status.h"

namespace noloco::p2p {

struct MetricsServerOptions {
  size_t max_connections = 16;
  std::chrono::milliseconds deadline{5000};
  size_t max_request_bytes = 8192;
};

class MetricsServerImpl;

class MetricsServer {
 public:
  // Binds `address` ("HOST:PORT", "[IPV6]:PORT"; port 0: any) and starts serving. `render` is
  // called on the server's thread for every GET /metrics and must be thread-safe.
  static Result<std::unique_ptr<MetricsServer>> start(const std::string& address, std::function<std::string()> render,
                                                      MetricsServerOptions options = {});
  // The same with several paths (e.g. /metrics and /status, docs/status.md); every `render` is
  // called on the server's thread and must be thread-safe.
  static Result<std::unique_ptr<MetricsServer>> start(const std::string& address,
                                                      std::vector<metrics::HttpRoute> routes,
                                                      MetricsServerOptions options = {});
  ~MetricsServer();  // stop()

  // Where it listens, "HOST:PORT" with the actual port ("[HOST]:PORT" for IPv6).
  std::string bound_address() const;
  // Closes the listener and every connection and joins the thread. Idempotent.
  void stop();

 private:
  explicit MetricsServer(std::shared_ptr<MetricsServerImpl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<MetricsServerImpl> impl_;
};

}  // namespace noloco::p2p
