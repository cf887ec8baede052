// Per-address limits of a host (docs/defences.md, "Per-address limits"): how many inbound
// connections one remote address may hold open (upgrading or upgraded), and how many distinct
// peer identities may arrive from it. A key pair costs nothing, an IPv4 address (or an IPv6 /64)
// does, so these bound what one machine can take of our connection table, and of the swarm
// through us, by minting identities (a Sybil attack, Douceur, IPTPS 2002; the per-address caps
// are those of Bitcoin Core's and libp2p's connection managers).
//
// Sans-IO: addresses arrive as text, connections as opaque keys; the host calls admit_inbound
// when it accepts a socket, admit_peer once the connection's identity is proven, release when it
// closes.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/status.h"
#include "p2p/identity.h"

namespace noloco::p2p {

struct AddressLimitOptions {
  size_t max_inbound_per_address = 16;   // open inbound connections from one address
  size_t max_peer_ids_per_address = 8;   // distinct identities connected in from one address
  // 127.0.0.1 and ::1 are exempt unless this is set: one machine running many nodes on its default
  // loopback address (tests, the demo) has them all there. Every other 127/8 address is limited
  // like any other address: a harness that gives each process its own (tools/linkemu) gets the
  // limits applied per process. Tests of the limits set it.
  bool limit_loopback = false;
  Status validate() const;
};

class AddressLimiter {
 public:
  explicit AddressLimiter(AddressLimitOptions options) : opt_(options) {}

  // The bucket an IP address counts in: the address itself for IPv4, its /64 for IPv6 (one
  // subscriber commonly holds a whole /64). Empty for 127.0.0.1 and ::1 when exempt, and for text
  // that is not an IP address: no limit applies to those.
  std::string bucket_of(const std::string& ip) const;

  // An inbound connection `conn` from `ip` was accepted: OK and counted, or refused (nothing counted).
  Status admit_inbound(const void* conn, const std::string& ip);
  // `conn`'s remote proved to be `peer`: OK, or refused when that would be one identity too many
  // from its address. Connections not admitted through admit_inbound are not limited.
  Status admit_peer(const void* conn, const PeerId& peer);
  // `conn` closed: whatever it counted is released. Safe for connections never admitted.
  void release(const void* conn);

  size_t inbound_from(const std::string& ip) const;
  size_t peer_ids_from(const std::string& ip) const;

 private:
  struct Bucket {
    size_t connections = 0;
    std::map<PeerId, size_t> peers;  // identity -> its connections from here
  };
  struct Slot {
    std::string bucket;
    std::optional<PeerId> peer;
  };
  AddressLimitOptions opt_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::unordered_map<const void*, Slot> slots_;
};

}  // namespace noloco::p2p
