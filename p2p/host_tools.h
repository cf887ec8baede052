// Small programs built on the Host, for the command line (which may not include Asio): serve
// identify + ping until a signal, or dial a peer and ping it. Each owns its io_context and runs
// it on the calling thread.
#pragma once

#include <functional>
#include <optional>

#include "common/status.h"
#include "p2p/host.h"
#include "p2p/host_options.h"
#include "p2p/identity.h"
#include "p2p/multiaddr.h"

namespace noloco::p2p {

struct ListenToolOptions {
  Multiaddr listen;
  HostOptions host;
  // Called once listening, with the full dialable address (/p2p/ included).
  std::function<void(const Multiaddr&)> on_listening;
  // Circuit relay v2: reserve on this relay (/.../p2p/<relay>) once listening, and again before
  // the reservation expires; on_reserved gets <relay>/p2p-circuit/p2p/<us>. A failed first
  // reservation ends the tool with its error.
  std::optional<Multiaddr> reserve_on;
  std::function<void(const Multiaddr&)> on_reserved;
  // AutoNAT (needs host.autonat): connect to this peer once listening, wait for its identify,
  // ask it to dial us back (Host::check_reachability) and pass the verdict on. A failed
  // connection ends the tool with its error.
  std::optional<Multiaddr> autonat_ask;
  std::function<void(const autonat::ReachabilityStatus&)> on_reachability;
  // Called on SIGINT/SIGTERM before the host closes (e.g. to print its counters).
  std::function<void(const Host&)> on_stopping;
};

// Serves identify, ping and /noloco/time/1.0.0 (plus what options.host turns on) until SIGINT or SIGTERM, then closes gracefully. Ok after a signal.
Status run_listen_tool(const Identity& identity, const ListenToolOptions& options);

struct PingToolOptions {
  Multiaddr target;  // with /p2p/<id> the peer must prove that id
  HostOptions host;
  int count = 1;
  std::function<void(const PeerId& peer, int seq, Duration rtt)> on_reply;
  std::function<void(const PeerId& peer, const IdentifyInfo& info)> on_identify;
  // Hole punching (with host.hole_punch): listen here first (DCUtR dials from the listen port
  // and offers it to the peer), then, once connected (typically through a relay), wait up to
  // wait_direct for a direct connection to the peer before pinging; on_direct gets its address.
  std::optional<Multiaddr> listen;
  Duration wait_direct{0};
  std::function<void(const Multiaddr&)> on_direct;
};

// Dials, pings `count` times. The error says what failed, in words a user can act on:
// "unreachable", "handshake failed", "peer id mismatch", "protocol not supported", "timeout".
Status run_ping_tool(const Identity& identity, const PingToolOptions& options);

}  // namespace noloco::p2p
