// Choosing from the live view: a uniform partner, the most advanced peer (docs/node.md, "The node
// core"). Pure functions over plain values, shared by the node core and the swarm simulator.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "trainer/node/core_rng.h"

namespace noloco::node {

// A peer as the node's membership view sees it: an opaque reference (the adapter maps it to a
// PeerId, the simulator to a node index) and the outer step its record advertises.
using PeerRef = uint64_t;
struct LivePeer {
  PeerRef peer = 0;
  uint64_t outer_step = 0;
  // Its own record reached us over its own connection (p2p/membership.h); false: we only heard of
  // it from others (hearsay), which is all an eclipse flood's fake identities ever are.
  bool verified = true;
  // The address bucket a verified peer spoke from, numbered by the driver (0: not known, or an
  // exempt loopback address): peers sharing one count once where the number of peers is what
  // matters (the join wait), since one host can hold any number of identities.
  uint32_t origin = 0;
};

// Uniformly among `live` minus `exclude` and minus peers that lag `our_outer` by more than
// `max_staleness` (they still call us and we answer them; we just do not call them); among the
// verified ones of those while there are any, else among the hearsay ones. A flood of validly
// signed records of identities nobody runs fills up to half the view with hearsay
// (docs/defences.md, "Live view"); called at random, each costs a try that ends in a refused
// dial. Verified peers have talked to us; a swarm's honest peers become verified as they gossip.
std::optional<LivePeer> choose_partner(std::span<const LivePeer> live, std::span<const PeerRef> exclude,
                                       uint64_t our_outer, int64_t max_staleness, CoreRng& rng);

// The first live peer with the highest advertised outer step (state sync source), among the
// verified ones while there are any.
std::optional<LivePeer> most_advanced(std::span<const LivePeer> live);

}  // namespace noloco::node
