// The HTTP side of `--metrics ADDR`, sans-IO (docs/metrics.md): bytes of one request in, the bytes
// of one response out. One request per connection (the response says "Connection: close"), so
// there is no keep-alive, pipelining or request body to handle. The Asio adapter that owns the
// sockets, the per-connection deadline and the connection cap is p2p/metrics_server.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace noloco::metrics {

inline constexpr const char* kExpositionContentType = "text/plain; version=0.0.4; charset=utf-8";

class HttpRequestParser {
 public:
  enum class State { kNeedMore, kDone, kError };
  // A request (request line and headers) longer than this is refused with 431 before more is kept.
  explicit HttpRequestParser(size_t max_request_bytes = 8192) : max_bytes_(max_request_bytes) {}

  // Feeds received bytes; once kDone or kError, further bytes are ignored.
  State feed(std::string_view bytes);
  State state() const { return state_; }

  // kDone: the request line's parts (path without the query string).
  const std::string& method() const { return method_; }
  const std::string& path() const { return path_; }
  // kError: the status code to answer with (400, 431 or 505).
  int error_status() const { return error_status_; }

 private:
  State parse_head(std::string_view head);
  State fail(int status);

  size_t max_bytes_;
  std::string buf_;
  State state_ = State::kNeedMore;
  std::string method_, path_;
  int error_status_ = 0;
};

// One path the endpoint serves: GET or HEAD `path` -> 200, `content_type`, `render()` as the body.
struct HttpRoute {
  std::string path;
  std::string content_type;
  std::function<std::string()> render;  // only called for a 200
};

// The full response (status line, headers, body) for a finished parser: GET or HEAD of a route's
// path -> 200 with its body; another path -> 404 naming the routes; another method -> 405; a parse
// error -> its status.
std::string respond(const HttpRequestParser& request, const std::vector<HttpRoute>& routes);
// The single route GET /metrics with the Prometheus exposition type.
std::string respond(const HttpRequestParser& request, const std::function<std::string()>& render);
// A response with `status`, a text/plain body and "Connection: close" (HEAD: headers only).
std::string http_response(int status, std::string_view content_type, std::string_view body, bool head = false,
                          std::string_view extra_headers = {});

// "HOST:PORT" or "[IPV6]:PORT" (what --metrics takes) split into host and port; the host must be
// non-empty and the port 0..65535 (0: any free port).
struct ListenAddress {
  std::string host;
  uint16_t port = 0;
};
Result<ListenAddress> parse_listen_address(std::string_view text);
// True for 127.0.0.0/8, ::1 and "localhost": an address only this machine can reach.
bool is_loopback_host(std::string_view host);

// The client side (`noloco status --node`): a whole HTTP/1.x response as read until the server
// closed, split into status code and body. kCorrupt on a malformed status line or head,
// kTooLarge when `bytes` is over `max_bytes` (the reader stops reading there).
struct HttpResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};
Result<HttpResponse> parse_http_response(std::string_view bytes, size_t max_bytes = 1 << 20);

}  // namespace noloco::metrics
