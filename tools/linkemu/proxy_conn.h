// One proxied TCP connection: the dialer's socket, the socket to the node it dialed, and a
// pump per direction that holds each chunk until its LinkModel delivery time.
#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "tools/linkemu/proxy.h"

namespace noloco::linkemu {

class ProxyConn : public std::enable_shared_from_this<ProxyConn> {
 public:
  ProxyConn(Proxy& proxy, uint64_t id, size_t from, size_t to, asio::ip::tcp::socket client);

  // Connects on after the from->to delay (the SYN's trip) and starts moving bytes.
  void start();
  // Resets both sides at once (RST, no lingering data); logs why. Idempotent.
  void abort(const std::string& why);
  size_t from() const { return from_; }
  size_t to() const { return to_; }
  size_t max_queued_bytes() const { return std::max(up_.queued_bytes, down_.queued_bytes); }

 private:
  struct Chunk {
    Ns when;
    std::vector<uint8_t> bytes;  // empty: the sender's FIN
  };
  struct Pump {
    Pump(asio::io_context& io, asio::ip::tcp::socket& s, asio::ip::tcp::socket& d, size_t f, size_t t)
        : src(s), dst(d), link_from(f), link_to(t), timer(io) {}
    asio::ip::tcp::socket& src;
    asio::ip::tcp::socket& dst;
    size_t link_from, link_to;  // the LinkModel shaping this direction
    std::deque<Chunk> queue;
    size_t queued_bytes = 0;
    uint64_t moved_bytes = 0;
    bool reading = false, writing = false, eof = false, done = false;
    std::vector<uint8_t> buf;
    asio::steady_timer timer;
  };

  void connect_upstream();
  void read(Pump& p);
  void on_read(Pump& p, size_t n);
  void on_eof(Pump& p);
  void write(Pump& p);
  void on_written(Pump& p);
  void close_gracefully();
  std::string name() const;

  Proxy& proxy_;
  const uint64_t id_;
  const size_t from_, to_;
  asio::ip::tcp::socket client_, server_;
  asio::steady_timer connect_timer_;
  Pump up_, down_;  // up: dialer -> node (link from->to); down: node -> dialer (link to->from)
  bool connected_ = false, closed_ = false;
  Ns opened_at_;
};

}  // namespace noloco::linkemu
