// Helpers shared by the Host tests (host_test.cc, relay_host_test.cc): drive one io_context
// until a condition holds, and make a host listening on loopback.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <memory>

#include "p2p/host.h"

namespace noloco::p2p::testing {

// Runs `io` one handler at a time until `pred` holds; false after 60 s (a hang, not a timing check).
inline bool run_until(asio::io_context& io, const std::function<bool()>& pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(50));
  }
  return true;
}

// A host with a fresh identity, listening on 127.0.0.1 on a port the kernel picks.
inline std::shared_ptr<Host> make_host(asio::io_context& io, HostOptions opt = {}) {
  auto id = Identity::generate();
  REQUIRE(id.ok());
  auto h = Host::create(io, *id, opt);
  REQUIRE(h.ok());
  REQUIRE((*h)->listen(*Multiaddr::parse("/ip4/127.0.0.1/tcp/0")).ok());
  return *h;
}

// `target`'s address through `relay`'s circuit (the relay's first listen address).
inline Multiaddr circuit_to(const Host& relay, const Host& target) {
  return *Multiaddr::parse(relay.listen_addrs().at(0).to_string() + "/p2p-circuit/p2p/" + target.peer_id().to_string());
}

}  // namespace noloco::p2p::testing
