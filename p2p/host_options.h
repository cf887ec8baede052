// Options of a p2p Host. Plain data with documented defaults; validate() before use.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "p2p/address_limits.h"
#include "p2p/autonat.h"
#include "p2p/pnet.h"
#include "p2p/relay_hop.h"

namespace noloco::p2p {

struct HostOptions {
  // Sent in identify as agentVersion.
  std::string agent_version = "noloco/0.1.0";
  // Private network: when set, every connection (in and out) runs under this pre-shared key;
  // peers without it never complete a handshake.
  std::optional<Psk> psk;

  // Protocols we open streams for without waiting for the listener's multistream answer (the
  // dialer's "lazy" select: header, protocol and first data in one flight). Only for protocols
  // every peer we open them to speaks (our own: exchange, all-reduce, state sync): a listener
  // that answers "na" turns into a reset stream. Saves one round trip per stream.
  std::vector<std::string> lazy_select_protocols;

  // Source IP of outbound connections (bind(ip, 0) before connect); empty: the kernel picks.
  // Lets one machine host many nodes that peers tell apart by address (tools/linkemu).
  std::string dial_from;

  // Resolve + TCP connect + security + muxer upgrade of an outbound connection.
  Duration dial_timeout = std::chrono::seconds(10);
  // An inbound connection must complete its upgrade within this, or it is dropped (a peer
  // that connects and stays silent cannot hold a slot).
  Duration handshake_timeout = std::chrono::seconds(10);
  // Host::ping gives up after this.
  Duration ping_timeout = std::chrono::seconds(10);

  size_t max_connections = 512;          // open + upgrading, both directions
  size_t max_connections_per_peer = 4;   // upgraded connections to one PeerId
  size_t max_streams_per_connection = 256;
  // Inbound connections and identities per remote address (p2p/address_limits.h).
  AddressLimitOptions address_limits;

  // yamux receive windows start at 256 KiB and auto-tune up to this per stream, bounded per
  // connection by max_connection_receive_window.
  uint32_t max_stream_window = 16u << 20;
  size_t max_connection_receive_window = 128u << 20;
  // Bytes a stream writer may have queued beyond the peer's window before write() waits.
  size_t max_stream_send_buffer = 4u << 20;
  // Cap for length-prefixed messages read with HostStream::read_message (protocol payloads).
  size_t max_message_size = 4u << 20;
  // Socket read size; larger reads mean fewer syscalls on bulk transfers.
  size_t read_buffer_size = 256u << 10;

  // Circuit relay v2: when set, this host relays for others (serves the hop protocol) under
  // these limits (docs/protocols/relay.md). Every host can dial through a relay and reserve
  // on one (Host::reserve_relay) without it.
  std::optional<relay::RelayOptions> relay;

  // AutoNAT v1 (docs/protocols/autonat.md): when set, this host answers dial-back requests
  // under `server` limits and Host::check_reachability asks peers to dial it back.
  struct Autonat {
    autonat::ServerOptions server;
    autonat::ClientOptions client;
  };
  std::optional<Autonat> autonat;

  // DCUtR hole punching (docs/protocols/dcutr.md): listeners get SO_REUSEPORT, /libp2p/dcutr
  // is served, and a relayed connection we accept starts an upgrade to a direct one.
  bool hole_punch = false;

  Status validate() const;
};

}  // namespace noloco::p2p
