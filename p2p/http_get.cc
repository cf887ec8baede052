// http_get (http_get.h): a private io_context run on the calling thread until the exchange ends
// or the deadline closes the socket.
#include "p2p/http_get.h"

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <array>
#include <memory>

namespace noloco::p2p {

using asio::ip::tcp;

namespace {

struct GetState {
  explicit GetState(asio::io_context& io) : socket(io), timer(io) {}
  tcp::socket socket;
  asio::steady_timer timer;
  std::string request, received;
  std::array<char, 4096> buf{};
  size_t max_bytes = 0;
  Status error;
  bool done = false;

  void finish(Status st) {
    if (done) return;
    done = true;
    error = std::move(st);
    asio::error_code ignored;
    timer.cancel();
    socket.close(ignored);
  }
  void read() {
    socket.async_read_some(asio::buffer(buf), [this](const asio::error_code& ec, size_t n) {
      if (done) return;
      received.append(buf.data(), n);
      if (received.size() > max_bytes) return finish(too_large("response over " + std::to_string(max_bytes) + " bytes"));
      if (ec == asio::error::eof) return finish(Status::Ok());
      if (ec) return finish(io_error("read: " + ec.message()));
      read();
    });
  }
};

}  // namespace

Result<metrics::HttpResponse> http_get(const std::string& address, const std::string& path,
                                       std::chrono::milliseconds timeout, size_t max_bytes) {
  NOLOCO_ASSIGN_OR_RETURN(metrics::ListenAddress a, metrics::parse_listen_address(address));
  asio::error_code ec;
  const auto ip = asio::ip::make_address(a.host, ec);
  if (ec) return invalid_argument("'" + a.host + "' is not an IP address");
  if (a.port == 0) return invalid_argument(address + ": port 0 cannot be dialed");
  asio::io_context io;
  GetState s(io);
  s.max_bytes = max_bytes;
  s.request = "GET " + path + " HTTP/1.0\r\nHost: " + address + "\r\nUser-Agent: noloco\r\n\r\n";
  s.timer.expires_after(timeout);
  s.timer.async_wait([&s, timeout](const asio::error_code& e) {
    if (!e) s.finish(io_error("no complete answer within " + std::to_string(timeout.count()) + " ms"));
  });
  s.socket.async_connect(tcp::endpoint(ip, a.port), [&s](const asio::error_code& e) {
    if (s.done) return;
    if (e) return s.finish(io_error("connect: " + e.message()));
    asio::async_write(s.socket, asio::buffer(s.request), [&s](const asio::error_code& w, size_t) {
      if (s.done) return;
      if (w) return s.finish(io_error("write: " + w.message()));
      s.read();
    });
  });
  try {
    io.run();
  } catch (const std::exception& e) {
    return internal_error(std::string("http get: ") + e.what());
  }
  if (!s.error.ok()) return s.error.context("http://" + address + path);
  auto r = metrics::parse_http_response(s.received, max_bytes);
  if (!r.ok()) return r.status().context("http://" + address + path);
  return r;
}

}  // namespace noloco::p2p
