// The network-level attacks of noloco-attacker (docs/attacks.md): a peer of the run with a valid
// identity (and the run's PSK) that speaks the real membership, exchange and state protocols
// through the real p2p Host, and abuses them. It trains nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "p2p/host_options.h"
#include "p2p/identity.h"

namespace noloco::attacker {

struct PeerAttackOptions {
  std::string attack;  // forged-membership | eclipse-flood | sybil | slow-reader | slow-writer | slow-state
  p2p::Identity identity;
  p2p::HostOptions host;
  std::string listen;    // multiaddr we listen on (sybils listen on the same IP)
  std::string announce;  // multiaddr others should dial (default: the bound one)
  std::vector<std::string> join;
  std::string run_id;
  uint64_t seed = 1;
  uint64_t ahead = 30;   // slow-state: outer steps past the swarm we claim to be
  int sybils = 16;       // sybil: identities from our one address
  int fakes = 200;       // eclipse-flood: fake peer records per gossip message
};

bool is_peer_attack(const std::string& attack);

// Runs until `stop`; `emit` gets our address line, then JSON events (docs/attacks.md).
int run_peer_attack(const PeerAttackOptions& options, const std::atomic<bool>& stop,
                    const std::function<void(const std::string&)>& emit);

}  // namespace noloco::attacker
