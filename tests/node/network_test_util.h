// Helpers for tests of NodeNetwork on real hosts (exchange_refusals_test, address_taint_network_test,
// exchange_inbox_test):
// a node on loopback with a tiny payload shape, its payload, and waiting for a peer's record.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "p2p/identity.h"
#include "trainer/node/node_network.h"

namespace noloco::test {

inline const std::string kNetRun = "0123456789abcdef0123456789abcdef";
constexpr uint64_t kNetNumel = 64;

// A node listening on `ip` (any port) and, for any address but 127.0.0.1, dialling from it too
// (as under tools/linkemu: peers tell it apart by address), gossiping every 100 ms. `tweak` may
// change any other option before the start.
inline std::unique_ptr<node::NodeNetwork> start_network(
    std::vector<p2p::Multiaddr> bootstrap, const std::string& ip = "127.0.0.1",
    const std::function<void(node::NetworkOptions&)>& tweak = {}) {
  node::NetworkOptions o;
  o.identity = *p2p::Identity::generate();
  o.listen = *p2p::Multiaddr::parse("/ip4/" + ip + "/tcp/0");
  if (ip != "127.0.0.1") o.host.dial_from = ip;
  o.bootstrap = std::move(bootstrap);
  o.run_id = kNetRun;
  o.expect.run_id = kNetRun;
  o.expect.numel = kNetNumel;
  o.expect.form = node::WireForm::kDeltaPhi;
  o.expect.max_tensor_bytes = kNetNumel * 4 + 4096;
  o.gossip_interval = std::chrono::milliseconds(100);
  o.reachability = node::ReachabilityMode::kPublic;
  if (tweak) tweak(o);
  auto net = node::NodeNetwork::start(std::move(o));
  REQUIRE(net.ok());
  return std::move(*net);
}

// A well-formed payload of `n` at `outer_step`.
inline std::shared_ptr<const node::WirePayload> payload_of(const node::NodeNetwork& n, uint64_t outer_step = 1) {
  node::PayloadHeader h;
  h.run_id = kNetRun;
  h.sender = n.peer_id().to_string();
  h.outer_step = outer_step;
  h.inner_step = outer_step * 10;
  h.form = node::WireForm::kDeltaPhi;
  h.numel = kNetNumel;
  return std::make_shared<const node::WirePayload>(
      node::frame_payload(h, {{"delta", {Bytes(kNetNumel * 2, 1)}}, {"phi", {Bytes(kNetNumel * 2, 2)}}}));
}

// `peer`'s record once `in` holds it live. Polls up to a generous bound: setup only, never what a
// check measures.
inline std::optional<p2p::PeerRecord> record_of(node::NodeNetwork& in, const p2p::PeerId& peer) {
  for (int i = 0; i < 300; ++i) {
    for (auto& r : in.live_peers())
      if (r.peer == peer) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::nullopt;
}

}  // namespace noloco::test
