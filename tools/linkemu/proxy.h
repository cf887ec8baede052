// The linkemu proxy: one Asio thread that listens on every node's proxy address, tells the
// dialer apart by the connection's source IP, connects on to the node's real address and
// shapes each direction with the LinkModel of that ordered pair (docs/linkemu.md).
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "tools/linkemu/link_model.h"
#include "tools/linkemu/topology.h"

namespace noloco::linkemu {

class ProxyConn;

class Proxy {
 public:
  using LogSink = std::function<void(const std::string&)>;
  static constexpr size_t kMaxConnections = 4096;  // beyond it dials are refused (file descriptors)

  // The io_context must not run handlers after the Proxy is gone (destroy the Proxy first,
  // then the io_context, or stop running it).
  Proxy(asio::io_context& io, Topology topology, LogSink log);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Binds every node's proxy address and starts accepting.
  Status start();
  // New link settings (a reload). The nodes must be the same as before; links whose settings
  // changed restart their schedules now; connections over a link that is now down are reset.
  Status apply(Topology topology);
  // Closes the acceptors and resets every connection.
  void stop();

  // Where node `i`'s proxy listens (the bound port when the topology said 0).
  Endpoint proxy_endpoint(size_t i) const;
  size_t open_connections() const { return conns_.size(); }
  // The most bytes waiting in any one connection direction (bounded by queue_limit_kb + a read).
  size_t max_queued_bytes() const;

  // For ProxyConn.
  Ns now() const { return std::chrono::steady_clock::now() - start_; }
  std::chrono::steady_clock::time_point at(Ns t) const { return start_ + t; }
  LinkModel& model(size_t from, size_t to) { return links_[from * topology_.nodes.size() + to]->model; }
  const Topology& topology() const { return topology_; }
  asio::io_context& io() { return io_; }
  void log(const std::string& line) { if (log_) log_(line); }
  void forget(uint64_t id) { conns_.erase(id); }

 private:
  struct Link {
    Link(asio::io_context& io, const LinkParams& p, uint64_t seed, Ns start) : model(p, seed, start), reset_timer(io) {}
    LinkModel model;
    asio::steady_timer reset_timer;
  };

  void accept_loop(size_t node);
  void on_accept(size_t node, asio::ip::tcp::socket socket);
  void schedule_reset(size_t link);
  void reset_link(size_t link, const std::string& why);
  void reset_down_links();

  asio::io_context& io_;
  Topology topology_;
  LogSink log_;
  std::chrono::steady_clock::time_point start_;
  std::vector<std::unique_ptr<Link>> links_;  // row = sender, column = receiver
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors_;
  std::map<uint64_t, std::shared_ptr<ProxyConn>> conns_;
  uint64_t next_id_ = 1;
  bool stopped_ = false;
};

}  // namespace noloco::linkemu
