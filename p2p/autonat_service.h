// The Asio adapter of AutoNAT v1 (autonat.h) on a Host with HostOptions::autonat: serves
// /libp2p/autonat/1.0.0 (the server: decide with autonat::Server, dial back on fresh
// connections, answer, close the dial-back connection) and runs the client's checks
// (Host::check_reachability: ask connected peers that speak the protocol, feed the answers to
// autonat::Client).
#pragma once

#include <asio/io_context.hpp>

#include <functional>
#include <memory>

#include "p2p/autonat.h"
#include "p2p/host.h"

namespace noloco::p2p {
class HostImpl;
}

namespace noloco::p2p::autonat {

class AutonatService : public std::enable_shared_from_this<AutonatService> {
 public:
  static std::shared_ptr<AutonatService> start(asio::io_context& io, const std::shared_ptr<HostImpl>& host,
                                               ServerOptions server, ClientOptions client);
  AutonatService(asio::io_context& io, std::weak_ptr<HostImpl> host, ServerOptions server, ClientOptions client)
      : io_(io), host_(std::move(host)), server_(server), client_(client), client_options_(client) {}

  void check(std::function<void(ReachabilityStatus)> cb);
  ReachabilityStatus status() const { return client_.status(); }

 private:
  void serve(std::shared_ptr<HostStream> s);
  // Dials `addrs` one after another; cb gets the first reached, or none.
  void dial_back(PeerId peer, std::vector<Multiaddr> addrs, size_t next,
                 std::function<void(std::optional<Multiaddr>)> cb);
  void ask(const std::shared_ptr<HostConnection>& conn, Bytes request, std::function<void()> done);

  asio::io_context& io_;
  std::weak_ptr<HostImpl> host_;
  Server server_;
  Client client_;
  ClientOptions client_options_;
};

}  // namespace noloco::p2p::autonat
